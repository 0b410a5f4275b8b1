package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/outbox"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/state"
)

// outboxFixture is a server over a real outbox on a temporary store whose one
// route ("hook") refuses every item for good until working is set.
type outboxFixture struct {
	srv     *Server
	ob      *outbox.Outbox
	store   *state.Store
	working atomic.Bool
	sent    atomic.Int64
}

func newOutboxFixture(t *testing.T) *outboxFixture {
	t.Helper()
	st, err := state.Open(t.TempDir() + "/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &outboxFixture{store: st}
	sender := outbox.SenderFunc(func(_ context.Context, _ outbox.Item) (time.Duration, error) {
		if !f.working.Load() {
			return 0, alerting.Permanent(errors.New("410 from receiver"))
		}
		f.sent.Add(1)
		return 0, nil
	})
	f.ob, err = outbox.New(st, outbox.Options{
		Senders:  map[string]outbox.Sender{"hook": sender},
		Schedule: []time.Duration{0}, Jitter: -1, Poll: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = New(Options{
		Token: testToken, Outbox: f.ob,
		Audit: func(q audit.Query) ([]audit.Entry, error) { return audit.List(st, q) },
	})
	return f
}

// run delivers until the test ends.
func (f *outboxFixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.ob.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func (f *outboxFixture) enqueue(t *testing.T, id string) {
	t.Helper()
	it := outbox.Item{ID: id, Route: "hook", Body: []byte(`{}`), ContentType: "application/json",
		Subject: audit.Subject{Alert: "alert-1", Model: "car-loan", Stream: "credit"}}
	if err := f.store.Update(func(tx *state.Tx) error { return f.ob.Enqueue(tx, it) }); err != nil {
		t.Fatal(err)
	}
	f.ob.Wake()
}

// items lists the outbox through the API, checking the body against the document.
func (f *outboxFixture) items(t *testing.T, status string) []map[string]any {
	t.Helper()
	code, _, body := do(t, f.srv.Handler(), "GET", "/api/v1/outbox?status="+status, "", "")
	if code != 200 {
		t.Fatalf("GET outbox?status=%s = %d %s", status, code, body)
	}
	checkShape(t, "GET", "/api/v1/outbox", code, body)
	var v struct{ Items []map[string]any }
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Items
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkShape checks a response body against the document's schema for it.
func checkShape(t *testing.T, method, path string, code int, body []byte) {
	t.Helper()
	doc := openAPIDoc(t)
	op := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	resp, ok := op["responses"].(map[string]any)[fmt.Sprint(code)].(map[string]any)
	if !ok {
		t.Fatalf("openapi.json has no %d response for %s %s", code, method, path)
	}
	schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range (&shapeChecker{doc: doc}).check("$", schema, v) {
		t.Error(p)
	}
}

// TestOutboxDeadLetterAndReplay: an item a receiver refuses is listed as dead,
// replaying it needs the token, and once replayed a working receiver gets it.
func TestOutboxDeadLetterAndReplay(t *testing.T) {
	f := newOutboxFixture(t)
	h := f.srv.Handler()
	replay := func(id, token string) (int, []byte) {
		code, _, body := do(t, h, "POST", "/api/v1/outbox/"+id+"/replay", token, "")
		checkShape(t, "POST", "/api/v1/outbox/{id}/replay", code, body)
		return code, body
	}

	// Not running yet: the item waits, and a pending item cannot be replayed.
	f.enqueue(t, "msg-1")
	if got := f.items(t, "pending"); len(got) != 1 || got[0]["id"] != "msg-1" || got[0]["route"] != "hook" {
		t.Fatalf("pending = %v", got)
	}
	if code, body := replay("msg-1", testToken); code != 409 {
		t.Fatalf("replay pending = %d %s", code, body)
	}
	if code, body := replay("nope", testToken); code != 404 {
		t.Fatalf("replay unknown = %d %s", code, body)
	}

	f.run(t)
	waitFor(t, "the item to dead-letter", func() bool { return len(f.items(t, "dead")) == 1 })
	dead := f.items(t, "dead")[0]
	if dead["id"] != "msg-1" || dead["status"] != "dead" || dead["attempts"] != 1.0 || dead["last_error"] != "410 from receiver" {
		t.Errorf("dead item = %v", dead)
	}
	if sub, _ := dead["subject"].(map[string]any); sub["model"] != "car-loan" {
		t.Errorf("dead item subject = %v", dead["subject"])
	}
	fams := scrape(t, f.srv)
	if v, _ := value(fams, "driftmon_outbox_dead", nil); v != 1 {
		t.Errorf("driftmon_outbox_dead = %v, want 1", v)
	}
	if v, ok := value(fams, "driftmon_outbox_depth", nil); !ok || v != 0 {
		t.Errorf("driftmon_outbox_depth = %v (%v), want 0", v, ok)
	}

	if code, body := replay("msg-1", ""); code != 401 {
		t.Fatalf("replay without token = %d %s", code, body)
	}
	if len(f.items(t, "dead")) != 1 {
		t.Fatal("an unauthorized replay moved the item")
	}
	f.working.Store(true)
	if code, body := replay("msg-1", testToken); code != 202 {
		t.Fatalf("replay = %d %s", code, body)
	}
	waitFor(t, "the replayed item to be delivered", func() bool { return len(f.items(t, "delivered")) == 1 })
	if n := f.sent.Load(); n != 1 {
		t.Errorf("receiver got %d items, want 1", n)
	}
	if got := f.items(t, "dead"); len(got) != 0 {
		t.Errorf("dead after replay = %v", got)
	}
	fams = scrape(t, f.srv)
	if v, _ := value(fams, "driftmon_outbox_dead", nil); v != 0 {
		t.Errorf("driftmon_outbox_dead after replay = %v, want 0", v)
	}

	// The audit trail tells the story.
	code, _, body := do(t, h, "GET", "/api/v1/audit?model=car-loan&limit=100", "", "")
	if code != 200 {
		t.Fatalf("GET audit = %d %s", code, body)
	}
	checkShape(t, "GET", "/api/v1/audit", code, body)
	var v struct {
		Entries []struct{ Event, Outcome, Delivery string }
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	var story []string
	for _, e := range v.Entries {
		if e.Delivery != "msg-1" {
			t.Errorf("entry about %q", e.Delivery)
		}
		story = append(story, strings.TrimSuffix(e.Event+":"+e.Outcome, ":"))
	}
	want := "enqueue attempt:dead replay attempt:delivered"
	if got := strings.Join(story, " "); got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
	if code, _, body := do(t, h, "GET", "/api/v1/audit?model=other", "", ""); code != 200 || !strings.Contains(string(body), `"entries":[]`) {
		t.Errorf("audit for another model = %d %s", code, body)
	}
}

func TestOutboxBadRequests(t *testing.T) {
	f := newOutboxFixture(t)
	for _, tt := range []struct{ target, path string }{
		{"/api/v1/outbox?status=lost", "/api/v1/outbox"},
		{"/api/v1/audit?limit=0", "/api/v1/audit"},
		{"/api/v1/audit?after=-1", "/api/v1/audit"},
	} {
		code, _, body := do(t, f.srv.Handler(), "GET", tt.target, "", "")
		if code != 400 {
			t.Errorf("GET %s = %d %s", tt.target, code, body)
		}
		checkShape(t, "GET", tt.path, code, body)
	}
}

// TestOutboxAbsent: without an outbox or audit trail the routes answer 503 and
// the gauges read 0.
func TestOutboxAbsent(t *testing.T) {
	s := New(Options{Token: testToken})
	for _, tt := range []struct{ method, target, path, token string }{
		{"GET", "/api/v1/outbox", "/api/v1/outbox", ""},
		{"GET", "/api/v1/audit", "/api/v1/audit", ""},
		{"POST", "/api/v1/outbox/x/replay", "/api/v1/outbox/{id}/replay", testToken},
	} {
		code, _, body := do(t, s.Handler(), tt.method, tt.target, tt.token, "")
		if code != 503 {
			t.Errorf("%s %s = %d %s", tt.method, tt.target, code, body)
		}
		checkShape(t, tt.method, tt.path, code, body)
	}
	fams := scrape(t, s)
	for _, name := range []string{"driftmon_outbox_depth", "driftmon_outbox_dead"} {
		if v, ok := value(fams, name, nil); !ok || v != 0 {
			t.Errorf("%s = %v (%v), want 0", name, v, ok)
		}
	}
}

// followerOutbox is the outbox of a cluster's follower: it has none.
type followerOutbox struct{}

var errFollower = fmt.Errorf("%w: this process does not lead the cluster", monitor.ErrNoOutbox)

func (followerOutbox) List(outbox.Status) ([]outbox.Record, error) { return nil, errFollower }
func (followerOutbox) Replay(string) error                         { return errFollower }
func (followerOutbox) Counts() (int, int, error)                   { return 0, 0, errFollower }

// TestFollowerHasNoOutboxAnd503Says: a follower's outbox and audit trail are the
// leader's to serve; that is not a server fault.
func TestFollowerHasNoOutboxAnd503Says(t *testing.T) {
	srv := New(Options{Token: testToken, Outbox: followerOutbox{},
		Audit: func(audit.Query) ([]audit.Entry, error) { return nil, errFollower }})
	for _, target := range []string{"/api/v1/outbox", "/api/v1/audit"} {
		code, _, body := do(t, srv.Handler(), "GET", target, "", "")
		if code != 503 || !strings.Contains(string(body), "does not lead the cluster") {
			t.Errorf("GET %s: %d %s, want 503 saying the process does not lead", target, code, body)
		}
	}
}
