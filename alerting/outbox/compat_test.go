package outbox

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/alerting/slack"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/internal/state"
)

// compatWindows is how many windows compatScenario commits before the sample's
// state; window compatWindows is the one observed after it.
const compatWindows = 4

// compatObservation is the i-th window of the scenario the store sample
// (testdata/store-v1.jsonl) was written with: drift with and without p-values
// (PSI has none), chart data of numeric and categorical features, rules, a critical
// feature, an insufficient one, and in window 3 a performance verdict beside drift.
func compatObservation(i int) []policy.Observation {
	start := w0.Add(time.Duration(i) * time.Hour)
	o := policy.Observation{
		Stream: "loan-applications", Model: "car-loan", Version: "v3",
		WindowStart: start, WindowEnd: start.Add(time.Hour), Rows: 12000 + int64(i),
		Reference: "baseline reference.parquet (50,000 rows)", DashboardURL: "http://127.0.0.1:8080/#/car-loan",
	}
	car := policy.Drift{PSI: 0.61, Change: alerting.Change{Feature: "car_value", Detector: "wasserstein", Score: 0.31, Threshold: 0.08,
		PValue: 1e-7, Summary: "p50 29.6k → 47.1k", Rule: "W1 0.31σ, lower bound 0.25σ ≥ min 0.08σ; BH p<0.001 ≤ 0.05",
		Distribution: &alerting.Distribution{Edges: []float64{0, 10000, 25000.5, 50000}, Reference: []float64{0.2, 0.5, 0.3}, Current: []float64{0.1, 0.3, 0.6}}}}
	salary := policy.Drift{PSI: 0.14, Change: alerting.Change{Feature: "salary_range", Detector: "psi", Score: 0.14, Threshold: 0.1,
		PValue: math.NaN(), Summary: "40K - 60K € 31% → 45%",
		Distribution: &alerting.Distribution{Labels: []string{"0 - 20K €", "40K - 60K €", "(other)"}, Reference: []float64{0.4, 0.31, 0.29}, Current: []float64{0.3, 0.45, 0.25}}}}
	loan := policy.Drift{PSI: 0.11, Change: alerting.Change{Feature: "loan_length", Detector: "ks", Score: 0.12, Threshold: 0.1,
		PValue: 0.004, Summary: "p50 18 → 24", Rule: "KS D 0.12, lower bound 0.105 ≥ min 0.1; BH p=0.004 ≤ 0.05"}}
	switch i {
	case 0:
		o.Drifted, o.Stable, o.Insufficient = []policy.Drift{car, salary}, []string{"loan_length"}, []string{"region"}
	case 1:
		o.Drifted, o.Stable = []policy.Drift{car, salary}, []string{"loan_length"}
	case 2:
		o.Drifted, o.Stable = []policy.Drift{car, loan}, []string{"salary_range"}
	case 3:
		o.Drifted, o.Stable = []policy.Drift{car}, []string{"salary_range", "loan_length"}
		perf := o
		perf.Kind, perf.Rows, perf.Stable = alerting.KindPerformance, 4100, nil
		perf.Drifted = []policy.Drift{{Change: alerting.Change{Feature: "roc_auc", Detector: "performance", Score: 0.71, Threshold: 0.75,
			PValue: math.NaN(), Summary: "roc_auc 0.71, final: 4,100 of 12,003 predictions labelled", Rule: "ROC AUC 0.71 < 0.75"}}}
		return []policy.Observation{o, perf}
	default:
		o.Drifted, o.Stable = []policy.Drift{car}, []string{"salary_range", "loan_length"}
	}
	return []policy.Observation{o}
}

// compatScenario commits windows 0 to n-1 of compatObservation into store as the
// monitor does (policy state, audit entries, one outbox item per decision sent: a
// Slack message, or the airflow webhook for a retraining call) and returns the state.
func compatScenario(t *testing.T, store *state.Store, n int) *policy.State {
	t.Helper()
	clock := w0
	hook, err := webhook.New(webhook.Options{URL: "http://127.0.0.1:9/api/v1/dags/retrain/dagRuns", Template: webhook.Template{Format: webhook.FormatAirflow}})
	if err != nil {
		t.Fatal(err)
	}
	ob := newOutbox(t, store, Options{Now: func() time.Time { return clock },
		Senders: map[string]Sender{"slack": SenderFunc(nil), "webhook airflow": Webhook(hook)}})
	pol, err := policy.New(policy.Rules{FireAfter: 1, ResolveAfter: 2, RepeatEvery: 2 * time.Hour,
		Retrain: []policy.Trigger{{Name: "airflow", MinFeatures: 2, ForWindows: 2, Cooldown: 4 * time.Hour}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &policy.State{}
	for i := range n {
		clock = w0.Add(time.Duration(i+1)*time.Hour + time.Minute)
		err := store.Update(func(tx *state.Tx) error {
			for _, o := range compatObservation(i) {
				for _, d := range pol.Observe(st, o, clock) {
					subject := audit.Of(d.Alert, "cfg-compat")
					if err := audit.Append(tx, audit.Entry{Time: clock, Event: audit.EventDecision, Subject: subject,
						Decision: string(d.Step), Muted: d.Muted, Features: d.New, Note: d.Reason}); err != nil {
						return err
					}
					if d.Muted != "" {
						continue
					}
					var it Item
					var err error
					if d.Step == alerting.StepRetrain {
						it, err = WebhookItem("webhook airflow", hook, d, subject)
					} else {
						it, err = SlackItem("slack", d, subject)
					}
					if err != nil {
						return err
					}
					if err := ob.Enqueue(tx, it); err != nil {
						return err
					}
				}
			}
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return tx.Put("alert_state", "loan-applications", b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// compatBuckets are the buckets the store sample holds.
var compatBuckets = []string{"alert_state", bucketPending, bucketIndex, "audit"}

// sampleEntry is one line of the store sample: a value under a key of a bucket,
// JSON values as they are, others as a string.
type sampleEntry struct {
	Bucket string          `json:"bucket"`
	Key    string          `json:"key"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Text   string          `json:"text,omitempty"`
}

// readSample reads the store sample: the entries of compatBuckets as driftmon wrote
// them at commit 9f2f0e6, before alerting.Change and alerting.Alert carried their
// own JSON encoding, after compatScenario's windows 0 to compatWindows-1, and under
// "next_decisions" the decisions that build made from that state for window
// compatWindows.
func readSample(t *testing.T) []sampleEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "store-v1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []sampleEntry
	for line := range bytes.Lines(b) {
		var e sampleEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// A state file written before the decision's JSON was moved into the alerting
// types reads back as the same alert state, outbox and audit trail as one written
// now: the policy goes on with the same decisions (those that build made), the
// pending Slack items render the same messages and the webhook calls send what
// they sent.
//
// Since, retraining calls carry their episode (issue 22), which that build did not
// record: the policy state is compared without what it could not know (the first
// drifting windows, the features a call named, the versions' traffic), and the
// items and bodies written now must hold everything the sample holds, the same,
// and may hold more (the episode, its first window; see webhook's
// TestBodiesOnlyAddFields).
func TestStoreWrittenByEarlierBuildReadsTheSame(t *testing.T) {
	sample := readSample(t)
	old := openStore(t, filepath.Join(t.TempDir(), "old.db"))
	defer old.Close()
	var oldNext []alerting.Decision
	err := old.Update(func(tx *state.Tx) error {
		for _, e := range sample {
			v := []byte(e.Text)
			if e.JSON != nil {
				v = e.JSON
			}
			if e.Bucket == "next_decisions" {
				var d alerting.Decision
				if err := json.Unmarshal(v, &d); err != nil {
					return err
				}
				oldNext = append(oldNext, d)
				continue
			}
			if err := tx.Put(e.Bucket, e.Key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now := openStore(t, filepath.Join(t.TempDir(), "now.db"))
	defer now.Close()
	nowState := compatScenario(t, now, compatWindows)

	// The policy state decodes to the state this build reaches, and goes on alike.
	oldState := loadState(t, old, "loan-applications")
	if got, want := withoutKeys(t, mustJSON(t, oldState), unrecorded...), withoutKeys(t, mustJSON(t, nowState), unrecorded...); got != want {
		t.Errorf("policy state:\n got %s\nwant %s", got, want)
	}
	pol, err := policy.New(policy.Rules{FireAfter: 1, ResolveAfter: 2, RepeatEvery: 2 * time.Hour,
		Retrain: []policy.Trigger{{Name: "airflow", MinFeatures: 2, ForWindows: 2, Cooldown: 4 * time.Hour}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var next []alerting.Decision
	for _, o := range compatObservation(compatWindows) {
		next = append(next, pol.Observe(oldState, o, w0)...)
	}
	if len(next) == 0 || mustJSON(t, next) != mustJSON(t, oldNext) {
		t.Errorf("decisions after the restored state:\n got %s\nwant %s", mustJSON(t, next), mustJSON(t, oldNext))
	}

	// The outbox items decode to the items this build enqueues.
	senders := map[string]Sender{"slack": SenderFunc(nil), "webhook airflow": SenderFunc(nil)}
	oldItems := list(t, newOutbox(t, old, Options{Senders: senders}), Pending)
	nowItems := list(t, newOutbox(t, now, Options{Senders: senders}), Pending)
	if len(oldItems) != 5 || len(oldItems) != len(nowItems) {
		t.Fatalf("%d pending items in the sample, %d now", len(oldItems), len(nowItems))
	}
	for i, o := range oldItems {
		n := nowItems[i]
		if o.ID != n.ID || o.Route != n.Route || o.Key != n.Key || o.Seq != n.Seq || !o.Enqueued.Equal(n.Enqueued) ||
			o.Subject != n.Subject || o.Decision == nil || !holds(t, mustJSON(t, n.Decision), mustJSON(t, o.Decision)) {
			t.Errorf("item %d (%s %s):\n got %+v %s\nwant %+v %s", i, o.Route, o.ID, o.Subject, mustJSON(t, o.Decision), n.Subject, mustJSON(t, n.Decision))
		}
		if o.Route != "slack" {
			if !holds(t, string(n.Body), string(o.Body)) || o.ContentType != n.ContentType || !maps.Equal(o.Header, n.Header) {
				t.Errorf("webhook item %d sends\n%s\nwant\n%s", i, o.Body, n.Body)
			}
			continue
		}
		var od, nd alerting.Decision
		if err := json.Unmarshal(o.Body, &od); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(n.Body, &nd); err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, od) != mustJSON(t, nd) || slackRendering(t, od) != slackRendering(t, nd) {
			t.Errorf("slack item %d:\n got %s\nwant %s", i, mustJSON(t, od), mustJSON(t, nd))
		}
	}

	// The audit trail reads the same.
	oldTrail, err := audit.List(old, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	nowTrail, err := audit.List(now, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(oldTrail) != 10 || !reflect.DeepEqual(oldTrail, nowTrail) {
		t.Errorf("audit trail:\n got %+v\nwant %+v", oldTrail, nowTrail)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// slackRendering is every Slack message d may become: its parent and its reply.
func slackRendering(t *testing.T, d alerting.Decision) string {
	t.Helper()
	return mustJSON(t, slack.ParentBlocks(d)) + slack.ParentText(d) + mustJSON(t, slack.ReplyBlocks(d)) + slack.ReplyText(d)
}

// unrecorded are the keys of the policy state that builds before issue 22 did not
// write: the first drifting windows, the features a retraining call named, the
// versions' traffic.
var unrecorded = []string{"first_start", "first_end", "called", "versions"}

// withoutKeys re-encodes the JSON document doc without keys, at any depth.
func withoutKeys(t *testing.T, doc string, keys ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	var strip func(any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range keys {
				delete(v, k)
			}
			for _, x := range v {
				strip(x)
			}
		case []any:
			for _, x := range v {
				strip(x)
			}
		}
	}
	strip(v)
	return mustJSON(t, v)
}

// holds reports whether the JSON document doc holds everything part does, the
// same: every key of each object of part, with a value it holds in turn, and
// arrays of the same length whose elements hold part's.
func holds(t *testing.T, doc, part string) bool {
	t.Helper()
	var d, p any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(part), &p); err != nil {
		t.Fatal(err)
	}
	var within func(d, p any) bool
	within = func(d, p any) bool {
		switch p := p.(type) {
		case map[string]any:
			dm, ok := d.(map[string]any)
			if !ok {
				return false
			}
			for k, pv := range p {
				if dv, ok := dm[k]; !ok || !within(dv, pv) {
					return false
				}
			}
			return true
		case []any:
			da, ok := d.([]any)
			if !ok || len(da) != len(p) {
				return false
			}
			for i := range p {
				if !within(da[i], p[i]) {
					return false
				}
			}
			return true
		default:
			return reflect.DeepEqual(d, p)
		}
	}
	return within(d, p)
}
