package integration

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting/slack/slacktest"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/internal/engine"
)

// The drift scenario: one warm-up window becomes the reference, two more windows of the
// same traffic, then three of shifted traffic.
const (
	driftRows      = 2000
	driftReference = 3 // windows before the shift, the warm-up included
	driftShifted   = 3
)

// TestDriftDetectedAndAlerted sends reference and then shifted traffic through the real
// broker and checks every window's verdict, the Slack message and the signed webhook.
func TestDriftDetectedAndAlerted(t *testing.T) {
	addr := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	topic := newTopic(ctx, t, addr, 1)
	g := newTraffic(1)
	sent := append(g.events(t, driftReference*driftRows, false), g.events(t, driftShifted*driftRows, true)...)
	produce(ctx, t, addr, topic, sent)

	slackSink := slacktest.NewServer(slacktest.Options{Token: "xoxb-test"})
	defer slackSink.Close()
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(receiver)
	defer hooks.Close()

	alerting := fmt.Sprintf(`alerting:
  slack: {token: xoxb-test, channel: "#ml", api_url: %q}
  webhooks: [{name: retrain, url: %q, secret: %q, min_features: 2}]
`, slackSink.URL(), hooks.URL, secret)
	run := startMonitor(ctx, t, configYAML(addr, topic, []string{stream("churn", topic, driftRows)}, alerting), nil)

	waitFor(t, 45*time.Second, "every window and its alerts", func() bool {
		return len(run.windows()) == driftReference+driftShifted &&
			len(slackSink.Messages()) >= 1 && len(receiver.Deliveries()) == 1
	})
	run.stop(t)

	if got, want := run.events("churn"), int64(len(sent)); got != want {
		t.Errorf("monitor counted %d events, want %d", got, want)
	}
	checkNoRejections(t, run)
	checkWindows(t, run.windows(), driftRows, driftReference, driftShifted)

	// One drift episode: the parent message fires with the first drifting window;
	// later windows with the same features add nothing, a changed set a thread reply.
	msgs := slackSink.Messages()
	if len(msgs) == 0 || msgs[0].ThreadTS != "" {
		t.Fatalf("Slack got %d messages, want the episode's parent first", len(msgs))
	}
	text := slacktest.Render(msgs[0].Blocks)
	t.Logf("first alert as Slack shows it:\n%s", text)
	for _, f := range shiftedFeatures {
		if !strings.Contains(text, "*"+f+"*") {
			t.Errorf("Slack message does not name %s as drifted:\n%s", f, text)
		}
	}
	stableLine := text[strings.Index(text, "Stable"):]
	for _, f := range stableFeatures {
		if strings.Contains(text, "*"+f+"*") || !strings.Contains(stableLine, f) {
			t.Errorf("Slack message does not list %s as stable:\n%s", f, text)
		}
	}
	// The retraining trigger holds in every drifting window, and is called once for
	// the episode they make. The receiver answers 401 to a bad signature and records
	// only verified calls.
	if got := len(receiver.Deliveries()); got != 1 {
		t.Errorf("webhook receiver verified %d calls over %d drifting windows, want one for the episode", got, driftShifted)
	}
}

// checkWindows checks the results of the drift scenario: exactly reference+shifted
// windows of rows rows each, the first a warm-up, then no drift until the shift, then
// every shifted feature and no stable one.
func checkWindows(t *testing.T, results []engine.Result, rows int64, reference, shifted int) {
	t.Helper()
	if len(results) != reference+shifted {
		t.Errorf("%d windows closed, want %d", len(results), reference+shifted)
	}
	for i, r := range results {
		drifted := r.Drifted()
		if r.Rows != rows {
			t.Errorf("window %d has %d rows, want %d", i, r.Rows, rows)
		}
		switch {
		case i == 0:
			if !r.Warmup {
				t.Errorf("window 0 is not the warm-up: %+v", r)
			}
		case i < reference:
			if r.Warmup || len(drifted) > 0 {
				t.Errorf("window %d (before the shift): warm-up %v, drifted %v; want a comparison and no drift", i, r.Warmup, drifted)
			}
		default:
			for _, f := range shiftedFeatures {
				if !slices.Contains(drifted, f) {
					t.Errorf("window %d (after the shift) misses %s; drifted %v", i, f, drifted)
				}
			}
			for _, f := range stableFeatures {
				if slices.Contains(drifted, f) {
					t.Errorf("window %d flags stable feature %s", i, f)
				}
			}
		}
	}
}
