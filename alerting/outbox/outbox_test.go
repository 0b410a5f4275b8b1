package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/slack"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/internal/state"
)

// fastSchedule is the Standard Webhooks schedule's shape in milliseconds.
var fastSchedule = []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond}

func openStore(t *testing.T, path string) *state.Store {
	t.Helper()
	s, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newOutbox(t *testing.T, store *state.Store, opts Options) *Outbox {
	t.Helper()
	if opts.Schedule == nil {
		opts.Schedule = fastSchedule
	}
	if opts.Poll == 0 {
		opts.Poll = 5 * time.Millisecond
	}
	o, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// start runs o until the returned stop is called (or the test ends).
func start(t *testing.T, o *Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := o.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond for up to 20 s, a bound generous enough for -race on
// a busy machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func enqueue(t *testing.T, s *state.Store, o *Outbox, items ...Item) {
	t.Helper()
	err := s.Update(func(tx *state.Tx) error {
		for _, it := range items {
			if err := o.Enqueue(tx, it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Wake()
}

func list(t *testing.T, o *Outbox, s Status) []Record {
	t.Helper()
	rs, err := o.List(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// retrainDecision is a retraining decision for model i.
func retrainDecision(i int) alerting.Decision {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	a := alerting.Alert{
		Stream: "loans", Model: fmt.Sprintf("model-%d", i), ModelVersion: "v3",
		WindowStart: start, WindowEnd: start.Add(time.Hour), Rows: 5000, Reference: "baseline",
		Severity: alerting.SeverityWarning,
		Drifted:  []alerting.Change{{Feature: "car_value", Detector: "ks", Score: 0.4, Threshold: 0.1, PValue: 1e-9}},
	}
	a.ID = fmt.Sprintf("msg_retrain_%d", i)
	return alerting.Decision{ID: a.ID, Step: alerting.StepRetrain, Kind: alerting.KindRetrain, Alert: a, Trigger: "airflow"}
}

// gate is a receiver that is down (503) until opened, then passes requests
// to a verifying webhook.Receiver. It records the webhook-id of every
// request and counts the 2xx answers per id.
type gate struct {
	mu    sync.Mutex
	up    bool
	ids   []string
	oks   map[string]int
	inner *webhook.Receiver
}

func newGate(t *testing.T, secret string) (*gate, *httptest.Server) {
	t.Helper()
	recv, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{oks: map[string]int{}, inner: recv}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(webhook.HeaderID)
	g.mu.Lock()
	g.ids = append(g.ids, id)
	up := g.up
	g.mu.Unlock()
	if !up {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	rec := httptest.NewRecorder()
	g.inner.ServeHTTP(rec, r)
	if rec.Code < 300 {
		g.mu.Lock()
		g.oks[id]++
		g.mu.Unlock()
	}
	w.WriteHeader(rec.Code)
}

func (g *gate) open() {
	g.mu.Lock()
	g.up = true
	g.mu.Unlock()
}

func (g *gate) requests() (n int, ids map[string]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids = map[string]bool{}
	for _, id := range g.ids {
		ids[id] = true
	}
	return len(g.ids), ids
}

func (g *gate) ok(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.oks[id]
}

func webhookNotifier(t *testing.T, url, secret string) *webhook.Notifier {
	t.Helper()
	n, err := webhook.New(webhook.Options{URL: url, Secret: secret, Template: webhook.Template{Format: webhook.FormatAirflow}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A receiver down for several attempts, and driftmon restarted in the
// middle of the retry schedule: once the receiver is up, each call arrives
// exactly once per webhook-id, none is lost.
func TestOutageAndRestartDeliverEachCallOnce(t *testing.T) {
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	g, srv := newGate(t, secret)
	n := webhookNotifier(t, srv.URL+"/api/v1/dags/retrain/dagRuns", secret)
	path := filepath.Join(t.TempDir(), "state.db")

	// First life: the receiver is down; every call is attempted a few times.
	store := openStore(t, path)
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"airflow": Webhook(n)}})
	var items []Item
	for i := range 3 {
		it, err := WebhookItem("airflow", n, retrainDecision(i), audit.Of(retrainDecision(i).Alert, "cfg123"))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	enqueue(t, store, o, items...)
	stop := start(t, o)
	waitFor(t, "2 attempts per call", func() bool { n, _ := g.requests(); return n >= 6 })
	stop()
	pending := list(t, o, Pending)
	if len(pending) != 3 {
		t.Fatalf("%d pending after the outage, want 3", len(pending))
	}
	for _, r := range pending {
		if r.Attempts < 1 || r.Attempts >= len(fastSchedule) || !strings.Contains(r.LastError, "503") {
			t.Errorf("pending %s: %d attempts, last error %q", r.ID, r.Attempts, r.LastError)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life on the same file: the receiver is back.
	g.open()
	store = openStore(t, path)
	defer store.Close()
	o = newOutbox(t, store, Options{Senders: map[string]Sender{"airflow": Webhook(n)}})
	enqueue(t, store, o, items...) // the monitor replaying its last window enqueues nothing twice
	stop = start(t, o)
	waitFor(t, "3 deliveries", func() bool { return len(list(t, o, Delivered)) == 3 })
	stop()

	_, seen := g.requests()
	if len(seen) != 3 {
		t.Errorf("requests carried %d distinct webhook-ids, want 3 (one per call, stable across attempts)", len(seen))
	}
	for _, it := range items {
		if got := g.ok(it.ID); got != 1 {
			t.Errorf("%s accepted %d times, want exactly once", it.ID, got)
		}
	}
	if len(g.inner.Deliveries()) != 3 || len(list(t, o, Pending)) != 0 {
		t.Errorf("receiver has %d deliveries, outbox %d pending; want 3 and 0", len(g.inner.Deliveries()), len(list(t, o, Pending)))
	}

	// The audit trail tells the story of each call.
	entries, err := audit.List(store, audit.Query{Delivery: items[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range entries {
		if e.ConfigHash != "cfg123" || e.Model != "model-0" || e.ModelVersion != "v3" || e.WindowStart.IsZero() {
			t.Errorf("audit entry lacks its subject: %+v", e)
		}
		outcomes = append(outcomes, e.Event+":"+e.Outcome)
	}
	if len(outcomes) < 3 || outcomes[0] != "enqueue:" || outcomes[1] != "attempt:retry" || outcomes[len(outcomes)-1] != "attempt:delivered" {
		t.Errorf("audit of %s: %v", items[0].ID, outcomes)
	}
}

// driftmon dies after the receiver took a call but before the outbox
// recorded it: the next run sends it again with the same webhook-id, and
// the receiver deduplicates.
func TestCrashAfterReceiptResendsTheSameID(t *testing.T) {
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	recv, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, crash := context.WithCancel(context.Background())
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(webhook.HeaderID))
		first := len(ids) == 1
		mu.Unlock()
		rec := httptest.NewRecorder()
		recv.ServeHTTP(rec, r)
		if first {
			crash()              // driftmon dies before the answer arrives
			<-r.Context().Done() // and the connection with it
		}
		w.WriteHeader(rec.Code)
	}))
	defer srv.Close()

	path := filepath.Join(t.TempDir(), "state.db")
	store := openStore(t, path)
	n := webhookNotifier(t, srv.URL, secret)
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"airflow": Webhook(n)}})
	it, err := WebhookItem("airflow", n, retrainDecision(0), audit.Subject{})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, store, o, it)
	if err := o.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = openStore(t, path)
	defer store.Close()
	o = newOutbox(t, store, Options{Senders: map[string]Sender{"airflow": Webhook(n)}})
	stop := start(t, o)
	waitFor(t, "the delivery", func() bool { return len(list(t, o, Delivered)) == 1 })
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != it.ID || ids[1] != it.ID {
		t.Errorf("requests carried ids %v, want %s twice", ids, it.ID)
	}
	if len(recv.Deliveries()) != 1 {
		t.Errorf("receiver kept %d deliveries, want 1 after deduplication", len(recv.Deliveries()))
	}
	if r, err := o.Get(it.ID); err != nil || r.Attempts != 1 {
		t.Errorf("record %+v, %v: the attempt cut by the crash must not count", r, err)
	}
}

// A receiver that answers 400 or 410 refuses the call for good: it is
// dead-lettered at once, listed, and can be replayed once fixed.
func TestRefusalDeadLettersAndReplayRedelivers(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusGone} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			secret, err := webhook.GenerateSecret()
			if err != nil {
				t.Fatal(err)
			}
			g, srv := newGate(t, secret)
			var mu sync.Mutex
			refuse := true
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if refuse {
					http.Error(w, "no such DAG", status)
					return
				}
				g.open()
				g.ServeHTTP(w, r)
			})
			store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
			defer store.Close()
			n := webhookNotifier(t, srv.URL, secret)
			o := newOutbox(t, store, Options{Senders: map[string]Sender{"airflow": Webhook(n)}})
			it, err := WebhookItem("airflow", n, retrainDecision(0), audit.Subject{})
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, store, o, it)
			start(t, o)
			waitFor(t, "the dead letter", func() bool { return len(list(t, o, Dead)) == 1 })

			dead := list(t, o, Dead)[0]
			if dead.ID != it.ID || dead.Attempts != 1 || !strings.Contains(dead.LastError, fmt.Sprint(status)) {
				t.Errorf("dead letter %+v, want %s after 1 attempt with the status in its error", dead, it.ID)
			}
			if p, d, err := o.Counts(); err != nil || p != 0 || d != 1 {
				t.Errorf("Counts = %d pending, %d dead, %v; want 0 and 1", p, d, err)
			}

			mu.Lock()
			refuse = false
			mu.Unlock()
			if err := o.Replay(it.ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the replayed delivery", func() bool { return len(list(t, o, Delivered)) == 1 })
			if got := g.ok(it.ID); got != 1 || len(list(t, o, Dead)) != 0 {
				t.Errorf("after replay: accepted %d times, %d dead", got, len(list(t, o, Dead)))
			}
			if err := o.Replay("msg_unknown"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Replay of an unknown id = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestScheduleRunsOutToDeadLetter(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	var mu sync.Mutex
	attempts := 0
	failing := SenderFunc(func(context.Context, Item) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return 0, errors.New("connection refused")
	})
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"hook": failing}, Schedule: []time.Duration{0, time.Millisecond, 2 * time.Millisecond}})
	enqueue(t, store, o, Item{ID: "msg_1", Route: "hook", Body: []byte(`{}`)})
	start(t, o)
	waitFor(t, "the dead letter", func() bool { return len(list(t, o, Dead)) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 {
		t.Errorf("%d attempts, want 3 (the schedule's length)", attempts)
	}
	if err := o.Replay("msg_1"); err != nil {
		t.Fatal(err)
	}
	if err := o.Replay("msg_1"); !errors.Is(err, ErrPending) {
		t.Errorf("Replay of a pending item = %v, want ErrPending", err)
	}
}

// TestRoutesKeepTheirSchedules: a route with a schedule of its own (Slack's, whose
// messages people wait for) is retried on it, while the others keep the standard one:
// two failures in a row cost a chat message seconds, not the webhook schedule's
// minutes.
func TestRoutesKeepTheirSchedules(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	var mu sync.Mutex
	attempts := map[string]int{}
	twice := SenderFunc(func(_ context.Context, it Item) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts[it.Route]++
		if attempts[it.Route] <= 2 {
			return 0, errors.New("503 service unavailable")
		}
		return 0, nil
	})
	o := newOutbox(t, store, Options{
		Senders:   map[string]Sender{"hook": twice, "chat": twice},
		Schedule:  []time.Duration{0, time.Millisecond, time.Hour},
		Schedules: map[string][]time.Duration{"chat": {0, time.Millisecond, 2 * time.Millisecond}},
	})
	enqueue(t, store, o, Item{ID: "msg_hook", Route: "hook", Body: []byte(`{}`)}, Item{ID: "msg_chat", Route: "chat", Body: []byte(`{}`)})
	start(t, o)
	waitFor(t, "the chat message delivered", func() bool { return len(list(t, o, Delivered)) == 1 })
	// The attempt is counted when the sender is called and the item rescheduled after
	// it returns: wait for the schedule, not the count, or a loaded machine reads the
	// first failure's 1 ms schedule in between.
	waitFor(t, "the webhook's item due in about an hour after its second attempt", func() bool {
		pending := list(t, o, Pending)
		return len(pending) == 1 && pending[0].ID == "msg_hook" && time.Until(pending[0].NextAttempt) > 50*time.Minute
	})
	mu.Lock()
	if attempts["hook"] != 2 {
		t.Errorf("the webhook was attempted %d times, want 2 (the third is an hour away)", attempts["hook"])
	}
	mu.Unlock()
	if _, err := New(store, Options{Senders: map[string]Sender{"chat": twice}, Schedules: map[string][]time.Duration{"chat": {}}}); err == nil {
		t.Error("an empty route schedule was accepted")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	n, err := webhook.New(webhook.Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"hook": Webhook(n)}})
	enqueue(t, store, o, Item{ID: "msg_1", Route: "hook", Body: []byte(`{}`)})
	start(t, o)
	waitFor(t, "the delivery", func() bool { return len(list(t, o, Delivered)) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
	}
}

// Items with one Key are delivered in order, each after the previous one
// succeeded; a failing key does not hold up the others.
func TestKeyOrdersDeliveries(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	var mu sync.Mutex
	var delivered []string
	failures := map[string]int{"a1": 2}
	s := SenderFunc(func(_ context.Context, it Item) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		if failures[it.ID] > 0 {
			failures[it.ID]--
			return 0, errors.New("503")
		}
		delivered = append(delivered, it.ID)
		return 0, nil
	})
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"slack": s}})
	enqueue(t, store, o,
		Item{ID: "a1", Route: "slack", Key: "episode-a"},
		Item{ID: "a2", Route: "slack", Key: "episode-a"},
		Item{ID: "b1", Route: "slack", Key: "episode-b"},
	)
	start(t, o)
	waitFor(t, "3 deliveries", func() bool { return len(list(t, o, Delivered)) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(delivered, " ") != "b1 a1 a2" {
		t.Errorf("delivery order %v, want b1 a1 a2", delivered)
	}
}

func TestEnqueue(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	ok := SenderFunc(func(context.Context, Item) (time.Duration, error) { return 0, nil })
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"hook": ok}, KeepDelivered: 2})

	enqueue(t, store, o, Item{ID: "msg_1", Route: "hook"}, Item{ID: "msg_1", Route: "hook"})
	boom := errors.New("boom")
	err := store.Update(func(tx *state.Tx) error {
		if err := o.Enqueue(tx, Item{ID: "msg_2", Route: "hook"}); err != nil {
			return err
		}
		return boom // the window's transaction fails: its notifications vanish with it
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if p := list(t, o, Pending); len(p) != 1 || p[0].ID != "msg_1" {
		t.Errorf("pending %+v, want msg_1 once", p)
	}
	err = store.Update(func(tx *state.Tx) error {
		return errors.Join(o.Enqueue(tx, Item{ID: "msg_3", Route: "nowhere"}), o.Enqueue(tx, Item{Route: "hook"}))
	})
	if err == nil || !strings.Contains(err.Error(), `no sender for route "nowhere"`) || !strings.Contains(err.Error(), "no ID") {
		t.Errorf("Enqueue of bad items = %v", err)
	}

	// Delivered items are kept up to KeepDelivered, and their IDs with them.
	enqueue(t, store, o, Item{ID: "msg_4", Route: "hook"}, Item{ID: "msg_5", Route: "hook"})
	start(t, o)
	waitFor(t, "the deliveries", func() bool { return len(list(t, o, Pending)) == 0 })
	d := list(t, o, Delivered)
	if len(d) != 2 || d[0].ID != "msg_4" || d[1].ID != "msg_5" {
		t.Errorf("delivered %+v, want the last 2", d)
	}
	if _, err := o.Get("msg_1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a pruned item = %v, want ErrNotFound", err)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New[*state.Tx](nil, Options{Schedule: []time.Duration{-1}, Senders: map[string]Sender{"x": nil}})
	for _, want := range []string{"store is required", `senders["x"]`, "schedule[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want it to report %q", err, want)
		}
	}
}

// senderFunc is a Sender from a function.
type senderFunc func(context.Context, Item) (time.Duration, error)

func (f senderFunc) Send(ctx context.Context, it Item) (time.Duration, error) { return f(ctx, it) }

// TestUnrecordedAttemptWaitsItsTurn: while the state file cannot record a delivery
// attempt (a full disk), the item is sent again on the schedule, with its ID, not in a
// loop — the soak campaign saw 1,652 sends of one webhook-id in 8 s before this — and
// once the disk has room its delivery is recorded.
func TestUnrecordedAttemptWaitsItsTurn(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	var mu sync.Mutex
	sends := 0
	var full bool
	o := newOutbox(t, store, Options{Senders: map[string]Sender{"hook": senderFunc(
		func(context.Context, Item) (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			sends++
			return 0, nil
		})}})
	enqueue(t, store, o, Item{ID: "msg_1", Route: "hook", Body: []byte(`{}`)})
	o.record = func(fn func(tx alerting.Tx) error) error {
		mu.Lock()
		f := full
		mu.Unlock()
		if f {
			return errors.New("write state.db: no space left on device")
		}
		return o.update(fn)
	}
	mu.Lock()
	full = true
	mu.Unlock()
	stop := start(t, o)
	defer stop()
	// fastSchedule's waits add up to 635 ms over its 8 attempts; 400 ms of full disk
	// leaves room for about 7.
	time.Sleep(400 * time.Millisecond)
	mu.Lock()
	during := sends
	full = false
	mu.Unlock()
	if during < 2 || during > 8 {
		t.Errorf("%d sends in 400 ms of full disk, want the schedule's 2–8", during)
	}
	waitFor(t, "the delivery recorded", func() bool { return len(list(t, o, Delivered)) == 1 })
}

// elsewhere is a host nobody configured: it records whatever reaches it and answers
// as a receiver that took it would, Slack's answer included.
type elsewhere struct {
	mu   sync.Mutex
	seen []string
}

func (e *elsewhere) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.seen = append(e.seen, fmt.Sprintf("%s %s auth=%q signature=%q", r.Method, r.URL, r.Header.Get("Authorization"), r.Header.Get(webhook.HeaderSignature)))
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true,"channel":"C0DRIFT","ts":"1700000000.000100"}`))
}

func (e *elsewhere) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

// TestDeliveriesNeverFollowRedirects: a configured endpoint (webhook, Slack's Web API
// or an incoming webhook) that answers with a redirect to another host gets a failed
// attempt, retried on the schedule, whose error names where the redirect pointed;
// the other host receives nothing — no body, no credentials, no signature — and the
// item is not delivered. Followed, a 301/302/303 would turn into a GET the other host
// answers 200, recorded as delivered; a 307/308 would send body, bearer token and
// signature there.
func TestDeliveriesNeverFollowRedirects(t *testing.T) {
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	senders := map[string]func(t *testing.T, configured string) (Sender, Item){
		"webhook": func(t *testing.T, configured string) (Sender, Item) {
			n, err := webhook.New(webhook.Options{URL: configured + "/hooks/driftmon", Secret: secret, BearerToken: "bearersecret"})
			if err != nil {
				t.Fatal(err)
			}
			it, err := WebhookItem("hook", n, retrainDecision(1), audit.Subject{})
			if err != nil {
				t.Fatal(err)
			}
			it.Route = "hook"
			return Webhook(n), it
		},
		"slack bot token": func(t *testing.T, configured string) (Sender, Item) {
			return slackSenderAt(t, slack.Options{Token: slackToken, Channel: "C0DRIFT", APIURL: configured + "/api/"})
		},
		"slack incoming webhook": func(t *testing.T, configured string) (Sender, Item) {
			return slackSenderAt(t, slack.Options{WebhookURL: configured + "/services/T1/B2/hooksecret"})
		},
	}
	for name, sender := range senders {
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(fmt.Sprintf("%s/%d", name, code), func(t *testing.T) {
				other := &elsewhere{}
				otherSrv := httptest.NewServer(other)
				defer otherSrv.Close()
				configured := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, otherSrv.URL+"/landing?from=driftmon", code)
				}))
				defer configured.Close()

				s, it := sender(t, configured.URL)
				store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
				defer store.Close()
				o := newOutbox(t, store, Options{Senders: map[string]Sender{it.Route: s}, Schedule: []time.Duration{0, time.Hour}})
				enqueue(t, store, o, it)
				stop := start(t, o)
				waitFor(t, "the first attempt", func() bool {
					r, err := o.Get(it.ID)
					return err == nil && r.Attempts == 1
				})
				stop()

				r, err := o.Get(it.ID)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != Pending {
					t.Errorf("status %s after a %d, want pending (retried on the schedule)", r.Status, code)
				}
				if want := otherSrv.URL; !strings.Contains(r.LastError, want) || !strings.Contains(r.LastError, "redirect") {
					t.Errorf("error %q does not name the redirect target %s", r.LastError, want)
				}
				for _, secret := range []string{"hooksecret", "bearersecret", "from=driftmon"} {
					if strings.Contains(r.LastError, secret) {
						t.Errorf("error %q shows %q", r.LastError, secret)
					}
				}
				if got := other.requests(); len(got) != 0 {
					t.Errorf("the host the redirect named received %q", got)
				}
			})
		}
	}
}

// slackSenderAt is the Slack sender of opts with an item announcing a fired episode.
func slackSenderAt(t *testing.T, opts slack.Options) (Sender, Item) {
	t.Helper()
	opts.MinInterval = time.Millisecond
	n, err := slack.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t, filepath.Join(t.TempDir(), "threads.db"))
	t.Cleanup(func() { store.Close() })
	d := retrainDecision(2)
	d.Step, d.Kind = alerting.StepFire, alerting.KindDrift
	it, err := SlackItem("slack", d, audit.Subject{})
	if err != nil {
		t.Fatal(err)
	}
	return Slack(n, store, nil), it
}
