package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

func testAlert() alerting.Alert {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return alerting.Alert{
		ID:     alerting.AlertID("loan-applications", "car-loan", "v3", start),
		Stream: "loan-applications", Model: "car-loan", ModelVersion: "v3",
		WindowStart: start, WindowEnd: start.Add(time.Hour), Rows: 12480,
		Reference: "baseline reference.profile (50,000 rows)",
		Severity:  alerting.SeverityCritical,
		Drifted: []alerting.Change{
			{Feature: "car_value", Detector: "ks", Score: 0.43, Threshold: 0.1, PValue: 1e-12, Summary: "p50 29.6k → 47.1k"},
			{Feature: "salary_range", Detector: "psi", Score: 0.61, Threshold: 0.1, PValue: math.NaN(), Summary: "'60K+ €' 10.0% → 31.0%"},
		},
		Stable: []string{"age", "region"},
	}
}

// flaky answers the queued statuses first, then hands requests to next.
type flaky struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	ids      []string
	next     http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.ids = append(f.ids, r.Header.Get(HeaderID))
	var status int
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()
	if status != 0 {
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *flaky) seenIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...)
}

func setup(t *testing.T, statuses []int, header http.Header, opts Options) (*Notifier, *Receiver, *flaky) {
	t.Helper()
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	recv, err := NewReceiver(ReceiverOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{statuses: statuses, header: header, next: recv}
	srv := httptest.NewServer(f) // httptest listens on 127.0.0.1
	t.Cleanup(srv.Close)
	opts.URL = srv.URL + "/hooks/driftmon?token=querysecret"
	opts.Secret = secret
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return n, recv, f
}

// send renders a's generic payload in n's template under the alert's ID, as the
// outbox does when it enqueues, and makes one attempt, as the outbox does per try.
func send(ctx context.Context, n *Notifier, a alerting.Alert) (time.Duration, error) {
	req, err := n.Render(a.ID, NewPayload(a))
	if err != nil {
		return 0, err
	}
	return n.Send(ctx, a.ID, req)
}

func TestSendDelivers(t *testing.T) {
	n, recv, _ := setup(t, nil, nil, Options{BearerToken: "bearersecret", Headers: map[string]string{"X-Team": "risk"}})
	a := testAlert()
	if _, err := send(context.Background(), n, a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ds := recv.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("receiver has %d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if d.ID != a.ID {
		t.Errorf("webhook-id %q, want the alert ID %q", d.ID, a.ID)
	}
	if got := d.Header.Get("Authorization"); got != "Bearer bearersecret" {
		t.Errorf("Authorization %q", got)
	}
	if d.Header.Get("X-Team") != "risk" || d.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v lack X-Team or Content-Type", d.Header)
	}
	var p Payload
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != EventDrift || p.ID != a.ID || p.Model != "car-loan" || len(p.Drifted) != 2 || p.Drifted[1].PValue != nil || *p.Drifted[0].Score != 0.43 {
		t.Errorf("payload %+v", p)
	}
	if p.Insufficient == nil || !strings.Contains(string(d.Payload), `"insufficient":[]`) {
		t.Errorf("empty lists must be [] not null: %s", d.Payload)
	}
}

// TestTemporaryFailuresKeepTheID: a 5xx, 408 or 429 fails the attempt it meets, once,
// with an error that is not permanent and the receiver's Retry-After; every attempt
// carries the same webhook-id, and the one after the failures is delivered once.
func TestTemporaryFailuresKeepTheID(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		header   http.Header
		wait     time.Duration
	}{
		{"503 then success", []int{503}, nil, 0},
		{"500, 502, 408", []int{500, 502, 408}, nil, 0},
		{"429 with Retry-After", []int{429}, http.Header{"Retry-After": {"1"}}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, recv, f := setup(t, tt.statuses, tt.header, Options{})
			a := testAlert()
			for i := range tt.statuses {
				wait, err := send(context.Background(), n, a)
				var perr *alerting.PermanentError
				if err == nil || errors.As(err, &perr) {
					t.Fatalf("attempt %d = %v, want a temporary error", i+1, err)
				}
				if wait != tt.wait {
					t.Errorf("attempt %d: Retry-After %s, want %s", i+1, wait, tt.wait)
				}
				if got := len(f.seenIDs()); got != i+1 {
					t.Fatalf("%d requests after attempt %d: Send retried on its own", got, i+1)
				}
			}
			if _, err := send(context.Background(), n, a); err != nil {
				t.Fatalf("the attempt after the failures: %v", err)
			}
			ids := f.seenIDs()
			if len(ids) != len(tt.statuses)+1 {
				t.Fatalf("%d attempts, want %d", len(ids), len(tt.statuses)+1)
			}
			for _, id := range ids {
				if id != a.ID {
					t.Errorf("attempt used webhook-id %q, want %q on every attempt", id, a.ID)
				}
			}
			if len(recv.Deliveries()) != 1 {
				t.Errorf("receiver has %d deliveries, want 1", len(recv.Deliveries()))
			}
		})
	}
}

func TestRefusalIsPermanent(t *testing.T) {
	for _, status := range []int{400, 401, 404, 410, 422} {
		n, _, f := setup(t, []int{status}, nil, Options{BearerToken: "bearersecret"})
		_, err := send(context.Background(), n, testAlert())
		var perr *alerting.PermanentError
		if !errors.As(err, &perr) || perr.Reason != fmt.Sprintf("http %d", status) {
			t.Errorf("status %d: Send = %v, want *PermanentError", status, err)
			continue
		}
		if len(f.seenIDs()) != 1 {
			t.Errorf("status %d retried %d times", status, len(f.seenIDs())-1)
		}
		for _, s := range []string{"querysecret", "bearersecret", "/hooks"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q leaks %q", err, s)
			}
		}
	}
}

func TestNetworkErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/hooks/pathsecret?token=querysecret"
	srv.Close()
	n, err := New(Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(context.Background(), n, testAlert())
	if err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
	for _, s := range []string{"pathsecret", "querysecret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks %q", err, s)
		}
	}
}

// TestSendHonoursContext: an attempt at a receiver that does not answer ends with
// its context.
func TestSendHonoursContext(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	n, err := New(Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := send(ctx, n, testAlert()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"no url", Options{}, []string{"webhook.url: required"}},
		{"relative url", Options{URL: "/hooks/SECRETPATH"}, []string{"webhook.url"}},
		{"bad secret", Options{URL: "http://127.0.0.1/", Secret: "whsec_***SECRETKEY"}, []string{"webhook.secret"}},
		{"bad header", Options{URL: "http://127.0.0.1/", Headers: map[string]string{"Bad Header": "x"}}, []string{"webhook.headers"}},
		{"all at once", Options{URL: "ftp://x", Secret: "%", Headers: map[string]string{"Bad Header": "x"}}, []string{"webhook.url", "webhook.secret", "webhook.headers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range []string{"SECRETPATH", "SECRETKEY"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Wed, 01 May 2024 10:00:30 GMT": 30 * time.Second,
		"Wed, 01 May 2024 09:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestObjectivePayloadType: a call whose changes are all breached objectives says so
// in its type, so a receiver that also gets drift calls can tell a rollback from a
// retraining; one drifted feature among them keeps the drift type.
func TestObjectivePayloadType(t *testing.T) {
	a := testAlert()
	a.Drifted = []alerting.Change{{Feature: "latency_ms p99", Detector: DetectorObjective, Score: 312, Threshold: 250, PValue: math.NaN(),
		Summary: "312 ms > 250 ms"}}
	if p := NewPayload(a); p.Type != EventObjective || p.Drifted[0].PValue != nil {
		t.Errorf("objective call: type %q, p-value %v", p.Type, p.Drifted[0].PValue)
	}
	a.Drifted = append(a.Drifted, alerting.Change{Feature: "car_value", Detector: "ks", Score: 0.4, Threshold: 0.1, PValue: 1e-9})
	if p := NewPayload(a); p.Type != EventDrift {
		t.Errorf("mixed call: type %q, want %q", p.Type, EventDrift)
	}
}
