package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
)

// episode returns the notices of a car-loan drift episode: it fires at
// 10:00, loan_length joins at 11:00, and everything is clean at 13:00.
func episode() (fire, update, resolve alerting.Decision) {
	a := carLoanAlert()
	started := a.WindowStart
	fire = alerting.Decision{Alert: a, Step: alerting.StepFire, Started: started, New: []string{"car_value", "salary_range"}}

	u := carLoanAlert()
	u.WindowStart, u.WindowEnd = started.Add(time.Hour), started.Add(2*time.Hour)
	u.Rows = 11873
	u.Drifted = append(u.Drifted, alerting.Change{Feature: "loan_length", Detector: "ks", Score: 0.18, Threshold: 0.1, PValue: 0.0004, Summary: "p50 48 → 60 months"})
	u.Stable = []string{"age", "employment_years", "region", "score"}
	update = alerting.Decision{Alert: u, Step: alerting.StepUpdate, Started: started, New: []string{"loan_length"}}

	r := carLoanAlert()
	r.WindowStart, r.WindowEnd = started.Add(3*time.Hour), started.Add(4*time.Hour)
	r.Rows = 12022
	r.Drifted = nil
	r.Stable = []string{"age", "car_value", "employment_years", "loan_length", "region", "salary_range", "score"}
	resolve = alerting.Decision{Alert: r, Step: alerting.StepResolve, Started: started, Resolved: []string{"car_value", "loan_length", "salary_range"}}
	return fire, update, resolve
}

// superseded is the car-loan episode ended by the model's next version, whose
// traffic replaced v3's: no row of v3 in the window that ended it.
func superseded() alerting.Decision {
	_, _, r := episode()
	r.Alert.Rows, r.Alert.Reference, r.Alert.Stable = 0, "", nil
	r.Resolved = []string{"car_value", "loan_length", "salary_range"}
	r.Reason = "superseded by version v4: version v3 sent nothing while 3 windows of the model closed"
	return r
}

// segmentEpisode is a car-loan episode whose drift is confined to one segment: it
// fires on income in country=DE alone (10% of the rows), and a window later
// car_value drifts in the whole traffic and in country=FR, all in the model's
// one episode.
func segmentEpisode() (fire, update alerting.Decision) {
	a := carLoanAlert()
	started := a.WindowStart
	a.Severity = alerting.SeverityWarning
	a.Drifted = []alerting.Change{{Feature: "income@country=DE", Detector: "ks", Score: 0.75, Threshold: 0.1, PValue: 1e-190,
		Summary: "drift only in country=DE (10.6% of rows): income p50 41.2k → 50k, mean 41.1k → 50k (PSI 4.02)",
		Rule:    "KS D 0.75, lower bound 0.7 ≥ min 0.1; BH p<0.001 ≤ 0.05"}}
	a.Stable = []string{"age", "car_value", "country", "income", "loan_length", "salary_range"}
	fire = alerting.Decision{Alert: a, Step: alerting.StepFire, Started: started, New: []string{"income@country=DE"}}

	u := a
	u.WindowStart, u.WindowEnd = started.Add(time.Hour), started.Add(2*time.Hour)
	u.Drifted = append(slices.Clone(a.Drifted),
		alerting.Change{Feature: "car_value", Detector: "ks", Score: 0.21, Threshold: 0.1, PValue: 1e-9, Summary: "p50 29.6k → 35.2k, mean 31.0k → 36.1k (PSI 0.31)"},
		alerting.Change{Feature: "car_value@country=FR", Detector: "ks", Score: 0.44, Threshold: 0.1, PValue: 1e-30, Summary: "in country=FR (19.8% of rows): car_value p50 30.1k → 44.0k, mean 31.5k → 45.2k (PSI 1.10)"})
	u.Stable = []string{"age", "country", "income", "loan_length", "salary_range"}
	update = alerting.Decision{Alert: u, Step: alerting.StepUpdate, Started: started, New: []string{"car_value", "car_value@country=FR"}}
	return fire, update
}

func manyFeatures() alerting.Decision {
	a := carLoanAlert()
	a.Drifted = nil
	for i := range 45 {
		a.Drifted = append(a.Drifted, alerting.Change{Feature: fmt.Sprintf("sensor_%02d", i), Detector: "ks", Score: 0.5 - float64(i)/100, Threshold: 0.1, PValue: 1e-5, Summary: "p50 1.0 → 1.4"})
	}
	a.Stable = nil
	return alerting.Decision{Alert: a, Step: alerting.StepFire, Started: a.WindowStart}
}

func noData() alerting.Decision {
	a := carLoanAlert()
	a.Rows, a.Drifted, a.Stable = 0, nil, nil
	a.Severity = alerting.SeverityWarning
	return alerting.Decision{Alert: a, Step: alerting.StepFire, Kind: alerting.KindNoData, Started: a.WindowStart}
}

func blind() alerting.Decision {
	a := carLoanAlert()
	a.Model, a.ModelVersion, a.Drifted, a.Stable = "", "", nil, nil
	a.Severity = alerting.SeverityWarning
	return alerting.Decision{Alert: a, Step: alerting.StepFire, Kind: alerting.KindBlind, Started: a.WindowStart}
}

// objectiveBreach is the car-loan model's p99 latency episode: it fires in one
// window, and resolves two windows later.
func objectiveBreach() (fire, resolve alerting.Decision) {
	a := carLoanAlert()
	a.Drifted = []alerting.Change{{Feature: "latency_ms p99", Detector: "objective", Score: 312, Threshold: 250, PValue: math.NaN(),
		Summary: "312 ms > 250 ms (sketch error band 306–318 ms, rank ±0.1%)",
		Rule:    "objective breached: latency_ms p99 312 ms > 250 ms (sketch error band 306–318 ms, rank ±0.1%)"}}
	a.Stable = []string{"rows per minute"}
	a.Severity = alerting.SeverityWarning
	fire = alerting.Decision{Alert: a, Step: alerting.StepFire, Kind: alerting.KindObjective, Started: a.WindowStart, New: []string{"latency_ms p99"}}
	r := carLoanAlert()
	r.WindowStart, r.WindowEnd = a.WindowStart.Add(2*time.Hour), a.WindowStart.Add(3*time.Hour)
	r.Drifted, r.Stable, r.Severity = nil, []string{"latency_ms p99", "rows per minute"}, alerting.SeverityWarning
	resolve = alerting.Decision{Alert: r, Step: alerting.StepResolve, Kind: alerting.KindObjective, Started: a.WindowStart, Resolved: []string{"latency_ms p99"}}
	return fire, resolve
}

type rendered struct {
	Message string           `json:"message"`
	Text    string           `json:"text"`
	Blocks  []slackapi.Block `json:"blocks"`
}

// TestEpisodeGolden writes, per scenario, the exact Slack payloads
// (testdata/episode_*.json) and how a person reads them
// (testdata/episode_*.txt). Review the .txt files after go test -update.
func TestEpisodeGolden(t *testing.T) {
	fire, update, resolve := episode()
	segFire, segUpdate := segmentEpisode()
	parent := func(nt alerting.Decision, how string) rendered {
		return rendered{how, ParentText(nt), ParentBlocks(nt)}
	}
	reply := func(nt alerting.Decision) rendered {
		return rendered{"chat.postMessage (reply in the parent's thread)", ReplyText(nt), ReplyBlocks(nt)}
	}
	tests := []struct {
		name     string
		messages []rendered
	}{
		{"fire", []rendered{parent(fire, "chat.postMessage (parent)")}},
		{"followup", []rendered{reply(update), parent(update, "chat.update (parent)")}},
		{"resolved", []rendered{reply(resolve), parent(resolve, "chat.update (parent)")}},
		{"superseded", []rendered{reply(superseded()), parent(superseded(), "chat.update (parent)")}},
		{"many_features", []rendered{parent(manyFeatures(), "chat.postMessage (parent)")}},
		{"segment_fire", []rendered{parent(segFire, "chat.postMessage (parent)")}},
		{"segment_followup", []rendered{reply(segUpdate), parent(segUpdate, "chat.update (parent)")}},
		{"no_data", []rendered{parent(noData(), "chat.postMessage (parent)")}},
		{"blind", []rendered{parent(blind(), "chat.postMessage (parent)")}},
		{"objective", func() []rendered {
			fire, resolve := objectiveBreach()
			return []rendered{parent(fire, "chat.postMessage (parent)"), reply(resolve), parent(resolve, "chat.update (parent)")}
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload bytes.Buffer
			enc := json.NewEncoder(&payload)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(tt.messages); err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for _, m := range tt.messages {
				raw := mustJSON(t, m.Blocks)
				if err := slacktest.CheckBlocks(raw); err != nil {
					t.Errorf("%s breaks Block Kit limits: %v", m.Message, err)
				}
				fmt.Fprintf(&text, "── %s ──\ntext: %s\n\n%s\n", m.Message, m.Text, slacktest.Render(raw))
			}
			golden(t, "episode_"+tt.name+".json", payload.Bytes())
			golden(t, "episode_"+tt.name+".txt", []byte(text.String()))
		})
	}
}

func TestEpisodeBlocksWithinLimits(t *testing.T) {
	long := strings.Repeat("very_long_feature_name_<&>_", 400)
	huge := carLoanAlert()
	huge.Model, huge.Reference = long, long
	for i := range 300 {
		huge.Drifted = append(huge.Drifted, alerting.Change{Feature: fmt.Sprintf("%s%d", long, i), Detector: "ks", Score: 0.3, Threshold: 0.1, PValue: 0.01, Summary: long})
	}
	var names []string
	for i := range 3000 {
		names = append(names, fmt.Sprintf("feature_%04d", i))
	}
	for _, step := range []alerting.Step{alerting.StepFire, alerting.StepUpdate, alerting.StepRepeat, alerting.StepResolve} {
		for _, kind := range []alerting.Kind{alerting.KindDrift, alerting.KindNoData, alerting.KindDataLoss, alerting.KindBlind, alerting.KindObjective} {
			nt := alerting.Decision{Alert: huge, Step: step, Kind: kind, Started: huge.WindowStart.Add(-49 * time.Hour), New: names, Resolved: names}
			for what, blocks := range map[string][]slackapi.Block{"parent": ParentBlocks(nt), "reply": ReplyBlocks(nt)} {
				if err := slacktest.CheckBlocks(mustJSON(t, blocks)); err != nil {
					t.Errorf("%s %s %s: %v", step, kind, what, err)
				}
			}
			for what, text := range map[string]string{"parent": ParentText(nt), "reply": ReplyText(nt)} {
				if n := len([]rune(text)); n == 0 || n > maxFallbackText {
					t.Errorf("%s %s %s text has %d characters", step, kind, what, n)
				}
			}
		}
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0m", 45 * time.Minute: "45m", 3 * time.Hour: "3h", 26*time.Hour + 30*time.Minute: "1d 2h 30m"} {
		if got := span(d); got != want {
			t.Errorf("span(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestThreadAndRefresh(t *testing.T) {
	srv := newServer(t)
	n, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fire, update, resolve := episode()
	ts, err := n.Open(ctx, fire)
	if err != nil || ts == "" || !n.Threaded() {
		t.Fatalf("Open = %q, %v", ts, err)
	}
	for _, nt := range []alerting.Decision{update, resolve} {
		if _, err := n.Reply(ctx, ts, nt); err != nil {
			t.Fatal(err)
		}
		if err := n.Refresh(ctx, ts, nt); err != nil {
			t.Fatal(err)
		}
	}
	if replies := srv.Thread(ts); len(replies) != 2 || !strings.Contains(replies[1].Text, "Resolved") {
		t.Errorf("thread %+v", replies)
	}
	cur, updates, ok := srv.Current(ts)
	if !ok || updates != 2 || !strings.Contains(slacktest.Render(cur.Blocks), "Resolved: drift in car-loan v3") {
		t.Errorf("parent after the episode (%d updates):\n%s", updates, slacktest.Render(cur.Blocks))
	}

	hook, err := New(fast(Options{WebhookURL: srv.WebhookURL()}))
	if err != nil {
		t.Fatal(err)
	}
	var perr *alerting.PermanentError
	if _, err := hook.Reply(ctx, ts, update); !errors.As(err, &perr) || hook.Threaded() {
		t.Errorf("Reply through an incoming webhook = %v, want a PermanentError", err)
	}
}
