package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
)

const testToken = "xoxb-1234-5678-secrettoken"

// fast keeps the rate limit short so tests stay quick.
func fast(o Options) Options {
	o.MinInterval = time.Millisecond
	return o
}

func newServer(t *testing.T) *slacktest.Server {
	t.Helper()
	srv := slacktest.NewServer(slacktest.Options{Token: testToken, WebhookPath: "/services/T1/B2/hooksecret"})
	t.Cleanup(srv.Close)
	return srv
}

// fire is the notice that opens an episode of the alert.
func fire(a alerting.Alert) alerting.Decision {
	return alerting.Decision{Alert: a, Step: alerting.StepFire, Started: a.WindowStart, New: []string{"car_value", "salary_range"}}
}

func TestOpenModes(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name string
		opts Options
	}{
		{"bot token", Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}},
		{"incoming webhook", Options{WebhookURL: srv.WebhookURL()}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(fast(tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			a := carLoanAlert()
			if _, err := n.Open(context.Background(), fire(a)); err != nil {
				t.Fatalf("Open: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != i+1 {
				t.Fatalf("server has %d messages, want %d", len(msgs), i+1)
			}
			m := msgs[i]
			if m.Channel != tt.opts.Channel || m.Text != Text(a) {
				t.Errorf("message channel %q text %q, want %q %q", m.Channel, m.Text, tt.opts.Channel, Text(a))
			}
			if r := slacktest.Render(m.Blocks); !strings.Contains(r, "**car_value** — KS 0.43 (p<0.001)") {
				t.Errorf("rendered message lacks the car_value line:\n%s", r)
			}
		})
	}
}

func TestOpenAndRefresh(t *testing.T) {
	srv := newServer(t)
	n, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := carLoanAlert()
	ts, err := n.Open(ctx, fire(a))
	if err != nil || ts == "" {
		t.Fatalf("Open = %q, %v; want a timestamp", ts, err)
	}
	a.Severity = "warning"
	if err := n.Refresh(ctx, ts, alerting.Decision{Alert: a, Step: alerting.StepUpdate, Started: a.WindowStart}); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || !msgs[1].Updated || msgs[1].TS != ts || !strings.Contains(msgs[1].Text, "warning") {
		t.Fatalf("messages after refresh = %+v", msgs)
	}
	err = n.Refresh(ctx, "1.000000", alerting.Decision{Alert: a, Step: alerting.StepUpdate})
	var perr *alerting.PermanentError
	if !errors.As(err, &perr) || perr.Reason != "message_not_found" {
		t.Errorf("Refresh of an unknown ts = %v, want PermanentError message_not_found", err)
	}
}

// TestTemporaryFailuresAreOneAttempt: a rate limit, a 5xx or a transient Slack error
// fails the call it meets, once, with an error that is not permanent — the outbox
// retries it — and a 429's Retry-After is reported and holds back the next call.
func TestTemporaryFailuresAreOneAttempt(t *testing.T) {
	tests := []struct {
		name     string
		modes    []string
		failures []slacktest.Failure
		wait     time.Duration // the Retry-After reported
	}{
		{"429 with Retry-After", []string{"token", "webhook"}, []slacktest.Failure{{Status: http.StatusTooManyRequests, RetryAfter: time.Second}}, time.Second},
		{"503 then 502", []string{"token", "webhook"}, []slacktest.Failure{{Status: http.StatusServiceUnavailable}, {Status: http.StatusBadGateway}}, 0},
		// Incoming webhooks have no JSON errors, only HTTP status codes.
		{"internal_error", []string{"token"}, []slacktest.Failure{{Error: "internal_error"}}, 0},
	}
	for _, tt := range tests {
		for _, mode := range tt.modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				srv := newServer(t)
				opts := Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}
				if mode == "webhook" {
					opts = Options{WebhookURL: srv.WebhookURL()}
				}
				n, err := New(fast(opts))
				if err != nil {
					t.Fatal(err)
				}
				srv.FailNext(tt.failures...)
				var failed time.Time
				for i := range tt.failures {
					_, err := n.Open(context.Background(), fire(carLoanAlert()))
					failed = time.Now()
					var perr *alerting.PermanentError
					if err == nil || errors.As(err, &perr) {
						t.Fatalf("attempt %d = %v, want a temporary error", i+1, err)
					}
					if got := RetryAfter(err); got != tt.wait {
						t.Errorf("attempt %d: RetryAfter = %s, want %s", i+1, got, tt.wait)
					}
					if got := srv.Requests(); got != i+1 {
						t.Fatalf("server saw %d requests after attempt %d: the notifier retried on its own", got, i+1)
					}
				}
				if _, err := n.Open(context.Background(), fire(carLoanAlert())); err != nil {
					t.Fatalf("the attempt after the failures: %v", err)
				}
				if d := time.Since(failed); d < tt.wait-100*time.Millisecond {
					t.Errorf("the next call came %s after the 429, before its Retry-After %s", d, tt.wait)
				}
				if len(srv.Messages()) != 1 {
					t.Errorf("server accepted %d messages, want 1", len(srv.Messages()))
				}
			})
		}
	}
}

func TestRefusalsArePermanent(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name    string
		opts    Options
		fail    []slacktest.Failure
		reason  string
		secrets []string
	}{
		{"wrong token", Options{Token: "xoxb-9999-wrongsecret", Channel: "C0DRIFT", APIURL: srv.URL()}, nil, "invalid_auth", []string{"wrongsecret"}},
		{"channel_not_found", Options{Token: testToken, Channel: "C0GONE", APIURL: srv.URL()}, []slacktest.Failure{{Error: "channel_not_found"}}, "channel_not_found", []string{"secrettoken"}},
		{"account_inactive", Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}, []slacktest.Failure{{Error: "account_inactive"}}, "account_inactive", []string{"secrettoken"}},
		{"webhook 404", Options{WebhookURL: strings.Replace(srv.WebhookURL(), "hooksecret", "otherhooksecret", 1)}, nil, "http 404", []string{"hooksecret", "/services"}},
		{"webhook 403", Options{WebhookURL: srv.WebhookURL()}, []slacktest.Failure{{Status: http.StatusForbidden}}, "http 403", []string{"hooksecret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(fast(tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			srv.FailNext(tt.fail...)
			before := srv.Requests()
			_, err = n.Open(context.Background(), fire(carLoanAlert()))
			var perr *alerting.PermanentError
			if !errors.As(err, &perr) || perr.Reason != tt.reason {
				t.Fatalf("Open = %v, want *PermanentError %s", err, tt.reason)
			}
			if got := srv.Requests() - before; got != 1 {
				t.Errorf("permanent error retried: %d requests", got)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}

func TestNetworkErrorHidesWebhookPath(t *testing.T) {
	srv := slacktest.NewServer(slacktest.Options{WebhookPath: "/services/T1/B2/hooksecret"})
	url := srv.WebhookURL()
	srv.Close() // connection refused from now on
	n, err := New(fast(Options{WebhookURL: url}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Open(context.Background(), fire(carLoanAlert()))
	if err == nil {
		t.Fatal("Open to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "hooksecret") {
		t.Errorf("error %q leaks the webhook path", err)
	}
}

// TestRetryAfterHonoursContext: a call held back by a long Retry-After gives up when
// its context ends, without waiting the Retry-After out.
func TestRetryAfterHonoursContext(t *testing.T) {
	srv := newServer(t)
	n, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(slacktest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second})
	if _, err := n.Open(context.Background(), fire(carLoanAlert())); RetryAfter(err) != 30*time.Second {
		t.Fatalf("Open = %v, want a 429 asking for 30s", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = n.Open(ctx, fire(carLoanAlert()))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open ignored the context for %s", d)
	}
	if srv.Requests() != 1 {
		t.Errorf("server saw %d requests, want 1: the held call must not be sent", srv.Requests())
	}
}

func TestRateLimitSpacesPosts(t *testing.T) {
	srv := newServer(t)
	n, err := New(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL(), MinInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		if _, err := n.Open(context.Background(), fire(carLoanAlert())); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 550*time.Millisecond {
		t.Errorf("3 posts took %s, want ≥ 2 × MinInterval", d)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error; nil = valid
	}{
		{"token", Options{Token: "xoxb-1", Channel: "C1"}, nil},
		{"webhook", Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}, nil},
		{"nothing", Options{}, []string{"token or webhook_url is required"}},
		{"both", Options{Token: "xoxb-1", Channel: "C1", WebhookURL: "https://hooks.slack.com/services/T/B/X"}, []string{"not both"}},
		{"no channel", Options{Token: "xoxb-1"}, []string{"slack.channel"}},
		{"bad api url", Options{Token: "xoxb-1", Channel: "C1", APIURL: "http://127.0.0.1/api"}, []string{"must end in"}},
		{"bad webhook", Options{WebhookURL: "hooks.slack.com/services/T/B/SECRETPATH"}, []string{"slack.webhook_url"}},
		{"negative interval", Options{Token: "xoxb-1", Channel: "C1", MinInterval: -1}, []string{"min_interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %+v", tt.opts)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRETPATH") {
				t.Errorf("error %q leaks the webhook URL", err)
			}
		})
	}
}
