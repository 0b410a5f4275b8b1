package webhook

import (
	"context"
	"encoding/json"
	"errors"
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
	if opts.Backoff == nil {
		opts.Backoff = []time.Duration{time.Millisecond, 2 * time.Millisecond}
	}
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return n, recv, f
}

func TestNotifyDelivers(t *testing.T) {
	n, recv, _ := setup(t, nil, nil, Options{BearerToken: "bearersecret", Headers: map[string]string{"X-Team": "risk"}})
	a := testAlert()
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatalf("Notify: %v", err)
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

func TestNotifyRetriesKeepTheID(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		header   http.Header
		minWait  time.Duration
	}{
		{"503 then success", []int{503}, nil, 0},
		{"500, 502, 408", []int{500, 502, 408}, nil, 0},
		{"429 with Retry-After", []int{429}, http.Header{"Retry-After": {"1"}}, 900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, recv, f := setup(t, tt.statuses, tt.header, Options{MaxAttempts: 5})
			a := testAlert()
			start := time.Now()
			if err := n.Notify(context.Background(), a); err != nil {
				t.Fatalf("Notify: %v", err)
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
			if d := time.Since(start); d < tt.minWait {
				t.Errorf("retried after %s, before Retry-After", d)
			}
		})
	}
}

func TestNotifyPermanent(t *testing.T) {
	for _, status := range []int{400, 401, 404, 410, 422} {
		n, _, f := setup(t, []int{status}, nil, Options{BearerToken: "bearersecret"})
		err := n.Notify(context.Background(), testAlert())
		var perr *PermanentError
		if !errors.As(err, &perr) || perr.StatusCode != status {
			t.Errorf("status %d: Notify = %v, want *PermanentError", status, err)
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

func TestNotifyGivesUp(t *testing.T) {
	n, recv, f := setup(t, []int{503, 503, 503, 503}, nil, Options{MaxAttempts: 3})
	err := n.Notify(context.Background(), testAlert())
	var perr *PermanentError
	if err == nil || errors.As(err, &perr) {
		t.Fatalf("Notify = %v, want a temporary error", err)
	}
	if len(f.seenIDs()) != 3 || len(recv.Deliveries()) != 0 {
		t.Errorf("%d attempts and %d deliveries, want 3 and 0", len(f.seenIDs()), len(recv.Deliveries()))
	}
}

func TestNotifyNetworkErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/hooks/pathsecret?token=querysecret"
	srv.Close()
	n, err := New(Options{URL: u, Backoff: []time.Duration{time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), testAlert())
	if err == nil {
		t.Fatal("Notify to a closed server succeeded")
	}
	for _, s := range []string{"pathsecret", "querysecret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks %q", err, s)
		}
	}
}

func TestNotifyHonoursContext(t *testing.T) {
	n, _, _ := setup(t, []int{503}, nil, Options{Backoff: []time.Duration{time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := n.Notify(ctx, testAlert()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Notify = %v, want context.DeadlineExceeded", err)
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
		{"all at once", Options{URL: "ftp://x", Secret: "%", MaxAttempts: -1, Backoff: []time.Duration{-1}}, []string{"webhook.url", "webhook.secret", "max_attempts", "backoff[0]"}},
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
