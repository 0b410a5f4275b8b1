package alerter

import (
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

// TestLossSeenSurvivesARestart: the lost-message count the data-loss alert last looked
// at is kept with the alert state, so a restart (or a new cluster leader) neither
// alerts again about a loss it has seen nor misses one it has not.
func TestLossSeenSurvivesARestart(t *testing.T) {
	cfg := testConfig(t)
	al, err := New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := &Verdicts{Stream: cfg.Streams[0].Name, State: &policy.State{}, LossSeen: 1234}
	if err := st.Update(func(tx *state.Tx) error { return al.Record(tx, before) }); err != nil {
		t.Fatal(err)
	}
	after, err := al.Restore(st, cfg.Streams[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.LossSeen != 1234 {
		t.Errorf("after a restart the alerts have seen %d lost messages, want 1234", after.LossSeen)
	}
}

// TestSilencesSurviveARestart: the silences are written with the alert state, in the
// transaction that records a stream's decisions, and restored with it, so a restart
// (or a new cluster leader, which restores from the replicated state) keeps them.
func TestSilencesSurviveARestart(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := testConfig(t)
	run := func(silences *policy.Silences, fn func(al *Alerter, v *Verdicts) error) {
		t.Helper()
		al, err := New(cfg, slog.New(slog.DiscardHandler), silences, nil)
		if err == nil {
			err = fn(al, &Verdicts{Stream: cfg.Streams[0].Name, State: &policy.State{}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	before, after := &policy.Silences{}, &policy.Silences{}
	sl := before.Add(policy.Silence{Model: "car-loan", Feature: "car_value", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	run(before, func(al *Alerter, v *Verdicts) error {
		return st.Update(func(tx *state.Tx) error { return al.Record(tx, v) })
	})
	run(after, func(al *Alerter, v *Verdicts) error {
		_, err := al.Restore(st, v.Stream)
		return err
	})
	if got := after.Active(time.Now()); len(got) != 1 || got[0].ID != sl.ID {
		t.Fatalf("silences after a restart: %+v, want %+v", got, sl)
	}
	if !after.Silenced(cfg.Streams[0].Name, "car-loan", "car_value", alerting.KindDrift, time.Now()) {
		t.Error("the restored silence does not mute what it matched")
	}
}

// testConfig is a config of one stream with nothing to notify.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	return configWith(t, "")
}

// webhookConfig is testConfig with one retraining webhook, its YAML given.
func webhookConfig(t *testing.T, webhook string) *config.Config {
	t.Helper()
	return configWith(t, "alerting:\n  webhooks: ["+webhook+"]\n")
}

// configWith is a config of stream s (models with versions, features x, y and z,
// hourly windows) and the YAML alerting.
func configWith(t *testing.T, alerting string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"], group_id: g}
streams:
  - name: s
    topic: t
    event_time: ts
    model: model
    model_version: version
    features: {x: {type: numeric}, y: {type: numeric}, z: {type: numeric}}
    window: {size: 1h}
`+alerting), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hourly is window i (an hour) of model m version 1 on stream s: of its features x,
// y and z, those named drifted, the others stable.
func hourly(i int, drifted ...string) engine.Result {
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	r := engine.Result{Stream: "s", Model: "m", ModelVersion: "1", Start: start, End: start.Add(time.Hour), Rows: 5000,
		Reference: "baseline train.profile (50,000 rows)"}
	for _, f := range []string{"x", "y", "z"} {
		if slices.Contains(drifted, f) {
			r.Findings = append(r.Findings, detectors.Finding{Feature: f, Detector: "ks", Score: 0.3, Threshold: 0.1, AdjustedP: 1e-9, Verdict: detectors.Drift, PSI: 0.3})
		} else {
			r.Findings = append(r.Findings, detectors.Finding{Feature: f, Detector: "ks", Score: 0.01, Threshold: 0.1, AdjustedP: 0.9, Verdict: detectors.Stable})
		}
	}
	return r
}

// retrainingCalls observes the windows and returns, per window, its retraining
// decisions ("call", or "muted:<why>"), joined by "; ".
func retrainingCalls(t *testing.T, cfg *config.Config, windows []engine.Result) []string {
	t.Helper()
	al, err := New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verdicts{Stream: "s", State: &policy.State{}}
	out := make([]string, len(windows))
	for i, r := range windows {
		al.Observe(v, r, 0, false)
		var calls []string
		for _, d := range v.Decided {
			switch {
			case d.Step != alerting.StepRetrain:
			case d.Muted != "":
				calls = append(calls, "muted:"+d.Muted)
			default:
				calls = append(calls, "call")
			}
		}
		out[i] = strings.Join(calls, "; ")
		v.Decided = nil
	}
	return out
}

// TestOneRetrainingCallPerEpisode: with the configuration's defaults a retraining
// webhook is called once for an episode of many drifting windows, and a second episode
// within the day (of event time) after the call waits for the day to pass;
// every_window: true calls in every drifting window, as before.
func TestOneRetrainingCallPerEpisode(t *testing.T) {
	var windows []engine.Result
	for i := range 6 {
		windows = append(windows, hourly(i, "x", "y"))
	}
	windows = append(windows, hourly(6), hourly(7), hourly(8, "x")) // resolved after two clean windows; again at 8
	for i := 9; i < 26; i++ {
		windows = append(windows, hourly(i, "x"))
	}
	want := []string{"call", "", "", "", "", "", "", "", "muted:cooldown"}
	want = append(want, make([]string, 24-9)...)
	want = append(want, "call", "") // hour 24 ends a day after the first call's window end (hour 1)
	got := retrainingCalls(t, webhookConfig(t, `{name: retrain, url: "http://127.0.0.1:9/r"}`), windows)
	if !slices.Equal(got, want) {
		t.Errorf("retraining decisions per window with the defaults:\n got %q\nwant %q", got, want)
	}

	got = retrainingCalls(t, webhookConfig(t, `{name: retrain, url: "http://127.0.0.1:9/r", every_window: true}`), windows)
	for i, r := range windows {
		if drifting := len(r.Drifted()) > 0; (got[i] == "call") != drifting {
			t.Errorf("every_window, window %d (drifted %v): %q", i, r.Drifted(), got[i])
		}
	}
}

// TestRetrainingCallNamesItsReference: a retraining call carries the id of the
// reference profile the window was judged against: the same for the same profile, a
// different one for another.
func TestRetrainingCallNamesItsReference(t *testing.T) {
	al, err := New(webhookConfig(t, `{name: retrain, url: "http://127.0.0.1:9/r", every_window: true}`), slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	newRef := func(rows int64) *sketch.Profile {
		p := sketch.NewProfile([]sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}, sketch.Options{})
		p.Rows = rows
		return p
	}
	v := &Verdicts{Stream: "s", State: &policy.State{}}
	var ids []string
	for i, ref := range []*sketch.Profile{newRef(50000), newRef(50000), newRef(40000)} {
		r := hourly(i, "x")
		r.ReferenceProfile = ref
		al.Observe(v, r, 0, false)
		for _, d := range v.Decided {
			if d.Step == alerting.StepRetrain {
				ids = append(ids, d.Alert.ReferenceID)
			}
		}
		v.Decided = nil
	}
	if len(ids) != 3 || !strings.HasPrefix(ids[0], "ref_") || len(ids[0]) != 36 || ids[0] != ids[1] || ids[1] == ids[2] {
		t.Errorf("reference ids %q: want one ref_ id for the two equal references and another for the third", ids)
	}
}

// TestProvisionalPerformanceCannotResolve: a performance window that is not final can
// fire an alert but not resolve one: a few early labels that look fine do not end the
// label-drift alert (which the next window would fire again); two final clean windows
// (resolve_after's default) do.
func TestProvisionalPerformanceCannotResolve(t *testing.T) {
	al, err := New(webhookConfig(t, `{name: retrain, url: "http://127.0.0.1:9/r"}`), slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	result := func(i int, final, degraded, labelDrift bool) labels.Result {
		start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		r := labels.Result{Stream: "s", Model: "m", ModelVersion: "1", Start: start, End: start.Add(time.Hour), Final: final, Decided: true,
			Predictions: 5000, Labelled: 2000,
			Verdict: detectors.PerformanceVerdict{Metric: "roc_auc", Value: 0.9, Bound: 0.75, Degraded: degraded, Rule: "ROC AUC vs 0.75"},
			LabelShift: detectors.LabelShift{Statistic: "positive_rate", Reference: 0.3, Current: 0.31, PValue: 0.6,
				Effect: detectors.Effect{Statistic: "tvd", Value: 0.01, Min: 0.05}}}
		if degraded {
			r.Verdict.Value = 0.7
		}
		if labelDrift {
			r.LabelShift.Current, r.LabelShift.PValue, r.LabelShift.Drifted, r.LabelShift.Effect.Value = 0.45, 1e-6, true, 0.15
		}
		if !final {
			r.Labelled = 100
		}
		return r
	}
	v := &Verdicts{Stream: "s", State: &policy.State{}}
	steps := []struct {
		r    labels.Result
		want string
	}{
		{result(0, true, true, true), "fire"},
		{result(1, false, true, false), ""}, // provisional: the label looks fine on 100 labels
		{result(2, false, true, false), ""},
		{result(3, true, false, false), ""}, // final and clean: one of resolve_after's two
		{result(4, true, false, false), "resolve"},
	}
	for i, st := range steps {
		al.ObservePerformance(v, st.r, 100)
		var got []string
		for _, d := range v.Decided {
			if d.Kind == alerting.KindPerformance {
				got = append(got, string(d.Step))
			}
		}
		v.Decided = nil
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("window %d (%s): %q, want %q", i, st.r.Status(), g, st.want)
		}
	}
}

// TestSupersededEpisodeIsAudited: when version 2 of a model flows and version 1 has
// sent nothing for supersede_after windows, version 1's open episode ends, and the
// audit trail records the resolve with its reason.
func TestSupersededEpisodeIsAudited(t *testing.T) {
	cfg := testConfig(t)
	al, err := New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := &Verdicts{Stream: "s", State: &policy.State{}}
	windows := []engine.Result{hourly(0, "x"), hourly(1, "x")}
	for i := 2; i < 2+config.DefaultSupersedeAfter; i++ {
		r := hourly(i)
		r.ModelVersion = "2"
		windows = append(windows, r)
	}
	for _, r := range windows {
		al.Observe(v, r, 0, false)
		if err := st.Update(func(tx *state.Tx) error { return al.Record(tx, v) }); err != nil {
			t.Fatal(err)
		}
		al.Recorded(v)
	}
	trail, err := audit.List(st, audit.Query{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range trail {
		if e.Event == audit.EventDecision {
			steps = append(steps, e.ModelVersion+" "+e.Decision+": "+e.Note)
		}
	}
	want := []string{"1 fire: ", "1 resolve: superseded by version 2: version 1 sent nothing while 3 windows of the model closed"}
	if !slices.Equal(steps, want) {
		t.Errorf("audit trail:\n got %q\nwant %q", steps, want)
	}
}

// TestObjectiveBreachesAreAlerted: a window's breached objective fires an episode of
// the objective kind, warm-up windows included (objectives need no reference), with
// the rule as its evidence; a window within sketch error neither fires nor resolves
// it; met windows resolve it; the webhook that names the objective is called once,
// the drift webhook never.
func TestObjectiveBreachesAreAlerted(t *testing.T) {
	cfg := configWith(t, `    objectives: [{field: x, quantile: 0.99, max: 250, unit: ms}]
alerting:
  webhooks: [{name: retrain, url: "http://127.0.0.1:1/r", min_features: 1},
             {name: rollback, url: "http://127.0.0.1:1/b", objectives: ["x p99"]}]
`)
	al, err := New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verdicts{Stream: "s", State: &policy.State{}}
	window := func(i int, warmup bool, verdict detectors.Verdict) engine.Result {
		r := hourly(i)
		if warmup {
			r.Warmup, r.Findings, r.Reference = true, nil, "warm-up: 1 of 2 windows"
		}
		r.Objectives = []detectors.ObjectiveFinding{{Name: "x p99", Field: "x", Stat: detectors.StatQuantile, Verdict: verdict,
			Value: 312, Min: math.Inf(-1), Max: 250, Rule: "objective breached: x p99 312 ms > 250 ms", Summary: "312 ms > 250 ms"}}
		return r
	}
	steps := []struct {
		r    engine.Result
		want string
	}{
		{window(0, true, detectors.Breached), "objective fire x p99: 312 ms > 250 ms; retrain rollback x p99: 312 ms > 250 ms"},
		{window(1, false, detectors.Breached), ""},
		{window(2, false, detectors.WithinError), ""},
		{window(3, false, detectors.Met), ""},
		{window(4, false, detectors.WithinError), ""},
		{window(5, false, detectors.Met), "objective resolve"},
	}
	for i, st := range steps {
		al.Observe(v, st.r, 0, false)
		var got []string
		for _, d := range v.Decided {
			s := string(d.Kind) + " " + string(d.Step)
			if d.Step == alerting.StepRetrain {
				s = "retrain " + d.Trigger
			}
			for _, c := range d.Alert.Drifted {
				s += " " + c.Feature + ": " + c.Summary
			}
			got = append(got, s)
		}
		v.Decided = nil
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("window %d: %q, want %q", i, g, st.want)
		}
	}
}

// TestSegmentFindingsInTheObservation: a segment's drift is a drifted feature of the
// model's window under its segment name; the segments judged without drift count as
// clean (so that a segment's alert resolves) without being listed as stable.
func TestSegmentFindingsInTheObservation(t *testing.T) {
	r := engine.Result{Stream: "loans", Model: "m", Rows: 5000, Findings: []detectors.Finding{
		{Feature: "income", Verdict: detectors.Stable},
		{Feature: "income@country=DE", Segment: "country=DE", SegmentShare: 0.1, Verdict: detectors.Drift, Detector: "ks"},
		{Feature: "income@country=FR", Segment: "country=FR", SegmentShare: 0.2, Verdict: detectors.Stable},
	}}
	o := observation(r, "")
	if len(o.Drifted) != 1 || o.Drifted[0].Feature != "income@country=DE" || !slices.Equal(o.Stable, []string{"income"}) ||
		!slices.Equal(o.Quiet, []string{"income@country=FR"}) {
		t.Errorf("drifted %v, stable %v, quiet %v", o.Drifted, o.Stable, o.Quiet)
	}
}
