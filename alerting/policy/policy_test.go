package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// window builds the i-th hourly window of car-loan v3 on stream loans from
// a spec "a,b|c,d": features a and b drifted, c and d were stable. A
// feature written "a!" drifted with a critical PSI. "nodata" flags a window
// without data; "loss:a|b" flags data loss in a window that drifted.
func window(i int, spec string) Observation {
	o := Observation{
		Stream: "loans", Model: "car-loan", Version: "v3",
		WindowStart: t0.Add(time.Duration(i) * time.Hour), WindowEnd: t0.Add(time.Duration(i+1) * time.Hour),
		Rows: 5000, Reference: "baseline reference.parquet (50,000 rows)",
	}
	switch spec {
	case "nodata":
		o.NoData, o.Rows = true, 0
		return o
	}
	if rest, ok := strings.CutPrefix(spec, "loss"); ok {
		o.DataLoss = true
		spec = strings.TrimPrefix(rest, ":")
	}
	drifted, stable, _ := strings.Cut(spec, "|")
	for _, f := range strings.Split(drifted, ",") {
		if f == "" {
			continue
		}
		psi := 0.12
		if name, ok := strings.CutSuffix(f, "!"); ok {
			f, psi = name, 0.6
		}
		o.Drifted = append(o.Drifted, Drift{Change: alerting.Change{Feature: f, Detector: "ks", Score: 0.3, Threshold: 0.1, PValue: 1e-6, Summary: "p50 1 → 2"}, PSI: psi})
	}
	for _, f := range strings.Split(stable, ",") {
		if f != "" {
			o.Stable = append(o.Stable, f)
		}
	}
	return o
}

// summary is a decision in one short line: "fire a,b warning",
// "update +c -a critical", "muted:silenced fire", "retrain:airflow".
func summary(d alerting.Decision) string {
	var s string
	switch d.Step {
	case alerting.StepRetrain:
		s = "retrain:" + d.Trigger
		if strings.HasPrefix(d.Reason, "escalation") {
			s += " escalation"
		}
	case alerting.StepFire, alerting.StepRepeat:
		s = string(d.Step) + " " + strings.Join(features(d.Alert), ",") + " " + string(d.Alert.Severity)
	case alerting.StepUpdate:
		s = "update"
		for _, f := range d.New {
			s += " +" + f
		}
		for _, f := range d.Resolved {
			s += " -" + f
		}
		s += " " + string(d.Alert.Severity)
	case alerting.StepResolve:
		s = "resolve " + strings.Join(d.Resolved, ",")
	}
	if d.Kind != alerting.KindDrift && d.Kind != alerting.KindRetrain {
		s = string(d.Kind) + " " + s
	}
	if d.Muted != "" {
		s = "muted:" + d.Muted + " " + s
	}
	return strings.TrimSpace(s)
}

func features(a alerting.Alert) []string {
	var out []string
	for _, c := range a.Drifted {
		out = append(out, c.Feature)
	}
	slices.Sort(out)
	return out
}

func mustNew(t *testing.T, r Rules, s Silencer) *Policy {
	t.Helper()
	p, err := New(r, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run observes the windows in order and returns, per window, the summaries
// of its decisions joined by "; ".
func run(p *Policy, s *State, specs []string) []string {
	out := make([]string, len(specs))
	for i, spec := range specs {
		var parts []string
		for _, d := range p.Observe(s, window(i, spec), t0) {
			parts = append(parts, summary(d))
		}
		out[i] = strings.Join(parts, "; ")
	}
	return out
}

func TestEpisodes(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		windows []string
		want    []string
	}{
		{
			name:    "fire at once, resolve at once",
			windows: []string{"a|b", "|a,b"},
			want:    []string{"fire a warning", "resolve a"},
		},
		{
			name:    "fire after 2, resolve after 2; one clean window does not resolve",
			rules:   Rules{FireAfter: 2, ResolveAfter: 2},
			windows: []string{"a|b", "a|b", "a|b", "|a,b", "a|b", "|a,b", "|a,b", "|a,b"},
			want:    []string{"", "fire a warning", "", "", "", "", "resolve a", ""},
		},
		{
			name:    "a streak broken by a clean window starts over",
			rules:   Rules{FireAfter: 2},
			windows: []string{"a|", "|a", "a|", "a|"},
			want:    []string{"", "", "", "fire a warning"},
		},
		{
			name:    "insufficient data neither fires nor resolves",
			rules:   Rules{FireAfter: 2},
			windows: []string{"a|", "|", "a|", "|", "|a"},
			want:    []string{"", "", "fire a warning", "", "resolve a"},
		},
		{
			name:    "one window with many features is one message",
			windows: []string{"f01,f02,f03,f04,f05,f06,f07,f08,f09,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21,f22,f23,f24,f25,f26,f27,f28,f29,f30,f31,f32,f33,f34,f35,f36,f37,f38,f39,f40|"},
			want:    []string{"fire f01,f02,f03,f04,f05,f06,f07,f08,f09,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21,f22,f23,f24,f25,f26,f27,f28,f29,f30,f31,f32,f33,f34,f35,f36,f37,f38,f39,f40 warning"},
		},
		{
			name:    "features joining and leaving update the episode",
			windows: []string{"a|b,c", "a,b|c", "a,b|c", "b|a,c", "|a,b,c"},
			want:    []string{"fire a warning", "update +b warning", "", "update -a warning", "resolve b"},
		},
		{
			name:    "severity follows the effect size",
			windows: []string{"a|", "a!|", "a|", "|a"},
			want:    []string{"fire a warning", "update critical", "update warning", "resolve a"},
		},
		{
			name:    "repeat an unchanged episode every 2h of window time",
			rules:   Rules{RepeatEvery: 2 * time.Hour},
			windows: []string{"a|", "a|", "a|", "a|", "a,b|", "a,b|", "a,b|", "|a,b"},
			want:    []string{"fire a warning", "", "repeat a warning", "", "update +b warning", "", "repeat a,b warning", "resolve a,b"},
		},
		{
			name:    "a new episode after a resolve",
			windows: []string{"a|", "|a", "a|"},
			want:    []string{"fire a warning", "resolve a", "fire a warning"},
		},
		{
			name:    "no data fires its own alert and inhibits drift notifications, not their resolve",
			windows: []string{"a|b", "nodata", "a,b|", "nodata", "nodata", "a,b|", "|a,b"},
			want: []string{
				"fire a warning",
				"no_data fire  warning",
				"no_data resolve dataset; update +b warning",
				"no_data fire  warning",
				"",
				"no_data resolve dataset",
				"resolve a,b",
			},
		},
		{
			name:    "drift news is muted while no data fires, then sent",
			rules:   Rules{ResolveAfter: 2},
			windows: []string{"a|b", "nodata", "a,b|", "a,b|"},
			want:    []string{"fire a warning", "no_data fire  warning", "muted:inhibited update +b warning", "no_data resolve dataset; update +b warning"},
		},
		{
			name:    "data loss mutes the drift of its own window",
			windows: []string{"a|b", "loss:a,b|", "a,b|"},
			want:    []string{"fire a warning", "data_loss fire  warning; muted:inhibited update +b warning", "data_loss resolve dataset; update +b warning"},
		},
		{
			name:    "data loss inhibits drift updates until it resolves",
			windows: []string{"a|b", "loss", "a,b|", "a,b|"},
			want:    []string{"fire a warning", "data_loss fire  warning", "data_loss resolve dataset; update +b warning", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(mustNew(t, tt.rules, nil), &State{}, tt.windows)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decisions per window:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestInhibitedWhileNoData(t *testing.T) {
	// While the stream sends nothing, drift notifications that come due are
	// muted, and the no-data alert fires once.
	p := mustNew(t, Rules{RepeatEvery: time.Hour}, nil)
	s := &State{}
	p.Observe(s, window(0, "a|"), t0)
	p.Observe(s, Observation{Stream: "loans", WindowStart: window(1, "").WindowStart, WindowEnd: window(1, "").WindowEnd, NoData: true}, t0)
	// A model of the stream still reports (e.g. another partition): drift
	// is muted because the stream-wide no-data alert fires.
	var got []string
	for _, d := range p.Observe(s, window(2, "a,b|"), t0) {
		got = append(got, summary(d))
	}
	want := []string{"no_data resolve dataset", "update +b warning"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	eps := s.Episodes()
	if len(eps) != 1 || eps[0].Kind != alerting.KindDrift || !reflect.DeepEqual(eps[0].Features, []string{"a", "b"}) {
		t.Errorf("episodes %+v", eps)
	}
	// The model goes silent: its no-data alert fires, and the drift repeat
	// that came due is not sent with stale evidence.
	ds := p.Observe(s, Observation{Stream: "loans", Model: "car-loan", Version: "v3", NoData: true, WindowStart: window(3, "").WindowStart, WindowEnd: window(3, "").WindowEnd}, t0)
	if len(ds) != 1 || summary(ds[0]) != "no_data fire  warning" {
		t.Errorf("decisions %+v", ds)
	}
	// Data again, drift unchanged: the model's and the stream's no-data
	// alerts resolve, and the repeat that came due is sent.
	p.Observe(s, Observation{Stream: "loans", NoData: true, WindowStart: window(4, "").WindowStart, WindowEnd: window(4, "").WindowEnd}, t0)
	got = nil
	for _, d := range p.Observe(s, window(5, "a,b|"), t0) {
		got = append(got, summary(d))
	}
	want = []string{"no_data resolve dataset", "no_data resolve dataset", "repeat a,b warning"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSilences(t *testing.T) {
	silenceUntil := t0.Add(2 * time.Hour)
	silenced := func(stream, model, feature string, kind alerting.Kind, now time.Time) bool {
		return model == "car-loan" && feature == "b" && kind == alerting.KindDrift && now.Before(silenceUntil)
	}
	p := mustNew(t, Rules{}, silenced)
	s := &State{}
	steps := []struct {
		spec string
		now  time.Time
		want string
	}{
		{"b|", t0, "muted:silenced fire  warning"}, // only b drifts: nothing to tell
		{"b|", t0, "muted:silenced fire  warning"},
		{"a,b|", t0, "fire a warning"},                       // a joins: fire with a only
		{"a,b|", t0, ""},                                     // nothing changed for people
		{"a,b|", t0.Add(3 * time.Hour), "update +b warning"}, // the silence expired
		{"|a,b", t0.Add(3 * time.Hour), "resolve a,b"},
		{"b|", t0, "muted:silenced fire  warning"},
		{"|b", t0, "muted:unannounced resolve"}, // never told, so never resolved
	}
	for i, st := range steps {
		ds := p.Observe(s, window(i, st.spec), st.now)
		var got []string
		for _, d := range ds {
			got = append(got, summary(d))
		}
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("window %d (%s): got %q, want %q", i, st.spec, g, st.want)
		}
		if i == 2 && (len(ds) != 1 || !reflect.DeepEqual(ds[0].Silenced, []string{"b"})) {
			t.Errorf("window 2: Silenced = %v, want [b]", ds[0].Silenced)
		}
	}
}

// The state survives a restart at any window: encoding and decoding it
// between windows gives exactly the decisions of an uninterrupted run, so
// a restart neither repeats nor loses a notification.
func TestStateSurvivesRestart(t *testing.T) {
	rules := Rules{FireAfter: 2, ResolveAfter: 2, RepeatEvery: 3 * time.Hour, Retrain: []Trigger{{Name: "airflow", MinFeatures: 2, ForWindows: 2, Cooldown: 4 * time.Hour}}}
	specs := []string{"a|b,c", "a,b|c", "a,b!|c", "a,b!|c", "nodata", "a,b|c", "a|b,c", "|a,b,c", "|a,b,c", "a,b,c|", "a,b,c|", "a,b,c|", "|a,b,c", "|a,b,c", "c|", "c|"}
	p := mustNew(t, rules, nil)

	type result struct {
		ids   []string
		steps []string
	}
	observe := func(restartAt int) result {
		var r result
		s := &State{}
		for i, spec := range specs {
			if i == restartAt {
				s = restarted(t, s)
			}
			for _, d := range p.Observe(s, window(i, spec), t0) {
				r.ids = append(r.ids, d.ID)
				r.steps = append(r.steps, fmt.Sprintf("%d:%s", i, summary(d)))
			}
		}
		return r
	}
	want := observe(-1)
	if len(want.steps) < 8 {
		t.Fatalf("scenario too thin: %q", want.steps)
	}
	for at := range specs {
		if got := observe(at); !reflect.DeepEqual(got, want) {
			t.Errorf("restart before window %d:\n got %q\nwant %q", at, got.steps, want.steps)
		}
	}
}

// restarted is s as a restart reads it back: encoded and decoded.
func restarted(t *testing.T, s *State) *State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back := &State{}
	if err := json.Unmarshal(b, back); err != nil {
		t.Fatal(err)
	}
	return back
}

// Observing the same window again from the same state (a replay after a
// crash before the commit) gives the same decisions with the same IDs.
func TestReplayIsDeterministic(t *testing.T) {
	p := mustNew(t, Rules{Retrain: []Trigger{{Name: "gh", MinFeatures: 1, OnNewFeatures: true}}}, nil)
	s := &State{}
	p.Observe(s, window(0, "a|b"), t0)
	before := s.Clone()
	first := p.Observe(s, window(1, "a,b|"), t0)
	again := p.Observe(before, window(1, "a,b|"), t0)
	if len(first) != 2 || !reflect.DeepEqual(first, again) {
		t.Fatalf("replay differs:\n%+v\n%+v", first, again)
	}
	ids := map[string]bool{}
	for _, d := range first {
		for _, route := range []string{"slack", "airflow"} {
			id := d.DeliveryID(route)
			if ids[id] || !strings.HasPrefix(id, "msg_") || len(id) != 36 {
				t.Errorf("delivery id %q duplicated or malformed", id)
			}
			ids[id] = true
		}
	}
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(before)
	if string(a) != string(b) {
		t.Errorf("states differ after the same window:\n%s\n%s", a, b)
	}
}

func TestEpisodeIDStableAcrossEpisode(t *testing.T) {
	p := mustNew(t, Rules{RepeatEvery: time.Hour}, nil)
	s := &State{}
	var ids []string
	for i, spec := range []string{"a|", "a|", "a,b|", "|a,b"} {
		for _, d := range p.Observe(s, window(i, spec), t0) {
			ids = append(ids, d.Alert.ID)
			if d.Started != t0 {
				t.Errorf("%s: Started %s, want %s", d.Step, d.Started, t0)
			}
		}
	}
	if len(ids) != 4 || ids[0] != ids[1] || ids[1] != ids[2] || ids[2] != ids[3] || !strings.HasPrefix(ids[0], "ep_") {
		t.Errorf("episode ids %q, want one ep_ id across fire, repeat, update, resolve", ids)
	}
}

// TestRetrainEveryWindow: with every_window a trigger calls in every window its
// condition holds, whether an alert fires or not, as driftmon did before episodes.
func TestRetrainEveryWindow(t *testing.T) {
	tests := []struct {
		name    string
		trigger Trigger
		windows []string
		want    []string
	}{
		{
			name:    "3 features for 2 windows",
			trigger: Trigger{Name: "airflow", MinFeatures: 3, ForWindows: 2},
			windows: []string{"a,b,c|", "a,b|c", "a,b,c|", "a,b,c|", "a,b,c|"},
			want:    []string{"", "", "", "retrain:airflow", ""},
		},
		{
			name:    "a key feature alone is enough",
			trigger: Trigger{Name: "gh", MinFeatures: 5, KeyFeatures: []string{"income"}},
			windows: []string{"a,b|income", "income|a"},
			want:    []string{"", "retrain:gh"},
		},
		{
			name:    "cooldown per model, counted in window time",
			trigger: Trigger{Name: "jenkins", MinFeatures: 1, Cooldown: 3 * time.Hour},
			windows: []string{"a|", "a|", "a|", "a|", "|a", "a|"},
			want:    []string{"retrain:jenkins", "muted:cooldown retrain:jenkins", "muted:cooldown retrain:jenkins", "retrain:jenkins", "", "muted:cooldown retrain:jenkins"},
		},
		{
			name:    "windows without evidence neither count nor break the streak",
			trigger: Trigger{Name: "argo", MinFeatures: 1, ForWindows: 2},
			windows: []string{"a|", "nodata", "a|"},
			want:    []string{"", "", "retrain:argo"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.trigger.EveryWindow = true
			p := mustNew(t, Rules{FireAfter: 100, Retrain: []Trigger{tt.trigger}}, nil)
			s := &State{}
			got := make([]string, len(tt.windows))
			for i, spec := range tt.windows {
				for _, d := range p.Observe(s, window(i, spec), t0) {
					if d.Step == alerting.StepRetrain {
						got[i] = summary(d)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRetrainDecisionCarriesTheEvidence(t *testing.T) {
	silenced := func(_, _, feature string, kind alerting.Kind, _ time.Time) bool {
		return feature == "c" && kind == alerting.KindRetrain
	}
	p := mustNew(t, Rules{Retrain: []Trigger{{Name: "airflow", MinFeatures: 2}}}, silenced)
	s := &State{}
	// c is silenced for retraining: a and c drifting is one feature, too few.
	for _, d := range p.Observe(s, window(0, "a,c|b"), t0) {
		if d.Step == alerting.StepRetrain {
			t.Fatalf("retrained on a silenced feature: %+v", d)
		}
	}
	var r alerting.Decision
	for _, d := range p.Observe(s, window(1, "a,b!,c|"), t0) {
		if d.Step == alerting.StepRetrain {
			r = d
		}
	}
	if r.Step != alerting.StepRetrain || r.Alert.ID != r.ID || r.Alert.Severity != alerting.SeverityCritical ||
		!reflect.DeepEqual(features(r.Alert), []string{"a", "b"}) || !strings.Contains(r.Reason, "2 features drifted") {
		t.Errorf("retrain decision %+v", r)
	}
}

func TestDecisionJSONRoundTrip(t *testing.T) {
	p := mustNew(t, Rules{}, nil)
	o := window(0, "a!,b|c")
	o.Drifted[1].PValue = math.NaN()
	o.Insufficient = []string{"d"}
	o.DashboardURL = "http://127.0.0.1/d"
	ds := p.Observe(&State{}, o, t0)
	if len(ds) != 1 {
		t.Fatalf("%d decisions", len(ds))
	}
	b, err := json.Marshal(ds[0])
	if err != nil {
		t.Fatal(err)
	}
	var back alerting.Decision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.Alert.Drifted[1].PValue) {
		t.Errorf("a missing p-value came back as %v, want NaN", back.Alert.Drifted[1].PValue)
	}
	back.Alert.Drifted[1].PValue = ds[0].Alert.Drifted[1].PValue
	if fmt.Sprint(back) != fmt.Sprint(ds[0]) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, ds[0])
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Rules{
		FireAfter: -1, ResolveAfter: -1, RepeatEvery: -1, CriticalPSI: -1,
		Retrain: []Trigger{{}, {Name: "x", MinFeatures: 1, ForWindows: -1, Cooldown: -1}, {Name: "x", MinFeatures: 1}},
	}, nil)
	if err == nil {
		t.Fatal("New accepted invalid rules")
	}
	for _, want := range []string{
		"policy.fire_after", "policy.resolve_after", "policy.repeat_every", "policy.critical_psi",
		"policy.retrain[0].name: required", "policy.retrain[0]: set min_features, key_features or objectives",
		"policy.retrain[1].for_windows", "policy.retrain[1].cooldown", `policy.retrain[2].name: "x" is used twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// retrains observes the windows in order and returns, per window, the summaries of
// its retraining decisions joined by "; ".
func retrains(p *Policy, s *State, specs []string) []string {
	got := make([]string, len(specs))
	for i, spec := range specs {
		var parts []string
		for _, d := range p.Observe(s, window(i, spec), t0) {
			if d.Step == alerting.StepRetrain {
				parts = append(parts, summary(d))
			}
		}
		got[i] = strings.Join(parts, "; ")
	}
	return got
}

// repeatSpec is n copies of spec.
func repeatSpec(spec string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = spec
	}
	return out
}

// TestRetrainOncePerEpisode: a retraining webhook is called when the model's alert
// episode fires, not in every drifting window; a new episode is called for once the
// cooldown since the last call has passed; escalations call again only for new
// features and only when asked for.
func TestRetrainOncePerEpisode(t *testing.T) {
	// Episode 1 fires at hour 0 and resolves at 1; episode 2 fires at 2, within the
	// cooldown, and drifts on until hour 24, when the day since the call ends.
	cooled := append([]string{"a|", "|a"}, repeatSpec("a|", 24)...)
	cooledWant := append([]string{"retrain:x", "", "muted:cooldown retrain:x"}, repeatSpec("", 21)...)
	cooledWant = append(cooledWant, "retrain:x", "")
	tests := []struct {
		name    string
		rules   Rules
		trigger Trigger
		windows []string
		want    []string
	}{
		{
			name:    "one call for an episode of many drifting windows",
			trigger: Trigger{Name: "x", MinFeatures: 1},
			windows: []string{"a|", "a|", "a,b|", "a!|", "a|", "|a"},
			want:    []string{"retrain:x", "", "", "", "", ""},
		},
		{
			name:    "every_window keeps a call per qualifying window",
			trigger: Trigger{Name: "x", MinFeatures: 1, EveryWindow: true},
			windows: []string{"a|", "a|", "a,b|", "a!|", "a|", "|a"},
			want:    []string{"retrain:x", "retrain:x", "retrain:x", "retrain:x", "retrain:x", ""},
		},
		{
			name:    "a new episode is called for once the cooldown has passed",
			trigger: Trigger{Name: "x", MinFeatures: 1, Cooldown: 24 * time.Hour},
			windows: cooled,
			want:    cooledWant,
		},
		{
			name:    "without a cooldown every episode has its call",
			trigger: Trigger{Name: "x", MinFeatures: 1},
			windows: []string{"a|", "|a", "a|", "a|", "|a", "b|"},
			want:    []string{"retrain:x", "", "retrain:x", "", "", "retrain:x"},
		},
		{
			name:    "escalation to new features, when asked for",
			trigger: Trigger{Name: "x", MinFeatures: 1, OnNewFeatures: true, Cooldown: 24 * time.Hour},
			windows: []string{"a|", "a|", "a,b|", "a,b|", "b|a", "a,b,c|", "|a,b,c"},
			want:    []string{"retrain:x", "", "retrain:x escalation", "", "", "retrain:x escalation", ""},
		},
		{
			name:    "no escalation unless asked for",
			trigger: Trigger{Name: "x", MinFeatures: 1},
			windows: []string{"a|", "a|", "a,b|", "a,b,c|"},
			want:    []string{"retrain:x", "", "", ""},
		},
		{
			name:    "the call waits for the alert to fire",
			rules:   Rules{FireAfter: 3},
			trigger: Trigger{Name: "x", MinFeatures: 1},
			windows: []string{"a|", "a|", "a|", "a|"},
			want:    []string{"", "", "retrain:x", ""},
		},
		{
			name:    "for_windows still counts towards the episode's call",
			trigger: Trigger{Name: "x", MinFeatures: 2, ForWindows: 2},
			windows: []string{"a,b|", "a|b", "a,b|", "a,b|", "a,b|"},
			want:    []string{"", "", "", "retrain:x", ""},
		},
		{
			name:    "a muted call is audited once and made when it no longer is",
			trigger: Trigger{Name: "x", MinFeatures: 1},
			windows: []string{"loss:a|", "loss:a|", "a|", "a|"},
			want:    []string{"muted:inhibited retrain:x", "", "retrain:x", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rules.Retrain = []Trigger{tt.trigger}
			got := retrains(mustNew(t, tt.rules, nil), &State{}, tt.windows)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("retraining decisions per window:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRetrainCarriesTheEpisode: the call names the episode (the ID its Slack
// messages carry) and the first drifting window, which may precede the window the
// episode fired in, and the window that decided the call.
func TestRetrainCarriesTheEpisode(t *testing.T) {
	p := mustNew(t, Rules{FireAfter: 2, Retrain: []Trigger{{Name: "x", MinFeatures: 1}}}, nil)
	s := &State{}
	var fire, call alerting.Decision
	for i, spec := range []string{"a|", "a|"} {
		for _, d := range p.Observe(s, window(i, spec), t0) {
			switch d.Step {
			case alerting.StepFire:
				fire = d
			case alerting.StepRetrain:
				call = d
			}
		}
	}
	w0, w1 := window(0, ""), window(1, "")
	if call.Step != alerting.StepRetrain || call.Alert.Episode == "" || call.Alert.Episode != fire.Alert.ID {
		t.Fatalf("the call names episode %q, the alert is %q", call.Alert.Episode, fire.Alert.ID)
	}
	if !call.Alert.FirstWindowStart.Equal(w0.WindowStart) || !call.Alert.FirstWindowEnd.Equal(w0.WindowEnd) {
		t.Errorf("first drifting window %s–%s, want %s–%s", call.Alert.FirstWindowStart, call.Alert.FirstWindowEnd, w0.WindowStart, w0.WindowEnd)
	}
	if !call.Alert.WindowStart.Equal(w1.WindowStart) || call.Alert.ModelVersion != "v3" || call.Alert.Reference != w1.Reference {
		t.Errorf("the call's window %s, version %q, reference %q", call.Alert.WindowStart, call.Alert.ModelVersion, call.Alert.Reference)
	}
}

// versioned is window i of the given version of car-loan (see window).
func versioned(i int, version, spec string) Observation {
	o := window(i, spec)
	o.Version = version
	return o
}

// performance is window i's performance verdict (see window) of version v3,
// provisional or final.
func performance(i int, spec string, provisional bool) Observation {
	o := window(i, spec)
	o.Kind, o.Provisional = alerting.KindPerformance, provisional
	return o
}

// TestSupersededVersion: once a model's new version flows and the old one has sent
// nothing for SupersedeAfter windows of the model, the old version's open episodes
// resolve as superseded, its late reports (performance, here) are not judged and its
// retraining webhook is not called again; its traffic coming back revives it. The
// state survives a restart at every step.
func TestSupersededVersion(t *testing.T) {
	v1perf := func(i int) Observation {
		o := performance(i, "roc_auc|", false)
		o.Version = "v1"
		return o
	}
	p := mustNew(t, Rules{Retrain: []Trigger{{Name: "x", KeyFeatures: []string{"a", "roc_auc"}}}}, nil)
	steps := []struct {
		obs  Observation
		want string
	}{
		{versioned(0, "v1", "a|b"), "fire a warning; retrain:x"},
		{v1perf(0), "performance fire roc_auc warning; retrain:x"}, // an episode of its own
		{versioned(1, "v1", "a|b"), ""},
		{versioned(1, "v2", "|a,b"), ""}, // both flow in window 1
		{versioned(2, "v2", "|a,b"), ""},
		{versioned(3, "v2", "|a,b"), ""},
		{versioned(4, "v2", "|a,b"), "resolve a; performance resolve roc_auc"}, // the third window of v2 without v1
		{v1perf(1), ""}, // v1's late labels
		{versioned(5, "v2", "a|b"), "fire a warning; retrain:x"},
		{versioned(6, "v1", "a|b"), "fire a warning; retrain:x"}, // v1 rolled back in
	}
	s := &State{}
	var superseded []alerting.Decision
	for i, st := range steps {
		s = restarted(t, s)
		var got []string
		for _, d := range p.Observe(s, st.obs, t0) {
			got = append(got, summary(d))
			if d.Step == alerting.StepResolve {
				superseded = append(superseded, d)
			}
		}
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("step %d (%s %s): got %q, want %q", i, st.obs.Version, st.obs.Kind, g, st.want)
		}
	}
	for _, d := range superseded {
		if d.Alert.ModelVersion != "v1" || !strings.HasPrefix(d.Reason, "superseded by version v2") || d.Muted != "" {
			t.Errorf("resolve of %s %s: reason %q, muted %q", d.Alert.ModelVersion, d.Kind, d.Reason, d.Muted)
		}
	}
}

// TestSupersededVersionsAreForgotten: the state remembers the last maxRetired
// superseded versions of a model, not every version it ever saw.
func TestSupersededVersionsAreForgotten(t *testing.T) {
	p := mustNew(t, Rules{SupersedeAfter: 1}, nil)
	s := &State{}
	for i := range 20 {
		p.Observe(s, versioned(i, fmt.Sprintf("v%02d", i), "|a"), t0)
	}
	var in struct {
		Versions []versionJSON `json:"versions"`
	}
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Versions) != maxRetired+1 || in.Versions[0].Version != "v11" || in.Versions[maxRetired].Superseded != "" {
		t.Errorf("versions remembered: %+v, want v11 to v18 superseded and v19 live", in.Versions)
	}
}

// TestProvisionalCannotResolve: a provisional window's degradation fires, its clean
// verdicts neither resolve an alert nor break a retraining trigger's run; final
// clean windows resolve.
func TestProvisionalCannotResolve(t *testing.T) {
	p := mustNew(t, Rules{Retrain: []Trigger{{Name: "x", KeyFeatures: []string{"label"}, ForWindows: 2}}}, nil)
	s := &State{}
	steps := []struct {
		obs  Observation
		want string
	}{
		{performance(0, "roc_auc,label|", true), "performance fire label,roc_auc warning"},
		{performance(1, "roc_auc|label", true), ""},
		{performance(2, "roc_auc|label", true), ""},
		{performance(3, "label|roc_auc", false), "performance update -roc_auc warning; retrain:x"},
		{performance(4, "|label,roc_auc", true), ""},
		{performance(5, "|label,roc_auc", false), "performance resolve label"},
	}
	for i, st := range steps {
		var got []string
		for _, d := range p.Observe(s, st.obs, t0) {
			got = append(got, summary(d))
		}
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("window %d (provisional %v): got %q, want %q", i, st.obs.Provisional, g, st.want)
		}
	}
}

// TestStateWrittenByEarlierBuild: alert state written before retraining calls were
// per episode (testdata/state-ff81162.json, written by driftmon at ff81162 after an
// episode of three drifting windows, each with an airflow call, and two windows of a
// three-window gh trigger) decodes, and goes on sensibly: the open episode already
// had airflow's call, so it is not called again; gh, which never called, calls once
// its third window comes; after the episode, a new one within the day's cooldown
// waits for it.
func TestStateWrittenByEarlierBuild(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "state-ff81162.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, Rules{FireAfter: 1, ResolveAfter: 2, Retrain: []Trigger{
		{Name: "airflow", MinFeatures: 2, Cooldown: 24 * time.Hour},
		{Name: "gh", KeyFeatures: []string{"c"}, ForWindows: 3, Cooldown: 24 * time.Hour}}}, nil)
	var got []string
	for i, spec := range []string{"a,b,c|", "a,b,c|", "|a,b,c", "|a,b,c", "a,b,c|", "a,b,c|", "a,b,c|"} {
		var parts []string
		for _, d := range p.Observe(s, window(3+i, spec), t0) {
			parts = append(parts, summary(d))
		}
		got = append(got, strings.Join(parts, "; "))
	}
	want := []string{"retrain:gh", "", "", "resolve a,b,c", "fire a,b,c warning; muted:cooldown retrain:airflow", "", "muted:cooldown retrain:gh"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decisions after the restored state:\n got %q\nwant %q", got, want)
	}
}

// objective is window i's objectives (see window): breached ones before "|", met ones
// after.
func objective(i int, spec string) Observation {
	o := window(i, spec)
	o.Kind = alerting.KindObjective
	return o
}

// TestObjectiveEpisodes: an objective breach is an episode of its own kind beside the
// model's drift, whose objectives the triggers that name them call for, once per
// episode; a drift trigger is never called for a breach, and a trigger of objectives
// only never for drift. The state survives a restart at every step.
func TestObjectiveEpisodes(t *testing.T) {
	p := mustNew(t, Rules{ResolveAfter: 2, Retrain: []Trigger{
		{Name: "retrain", MinFeatures: 1},
		{Name: "rollback", Objectives: []string{"latency_ms p99"}},
	}}, nil)
	s := &State{}
	steps := []struct {
		obs  Observation
		want string
	}{
		{objective(0, "|latency_ms p99,rows per minute"), ""},
		{objective(1, "latency_ms p99|rows per minute"), "objective fire latency_ms p99 warning; retrain:rollback"},
		{window(1, "car_value|age"), "fire car_value warning; retrain:retrain"},
		{objective(2, "latency_ms p99,rows per minute|"), "objective update +rows per minute warning"},
		{objective(3, "|latency_ms p99,rows per minute"), ""},
		// Within sketch error is no evidence either way: it does not resolve.
		{func() Observation {
			o := objective(4, "|rows per minute")
			o.Insufficient = []string{"latency_ms p99"}
			return o
		}(), "objective update -rows per minute warning"},
		{objective(5, "|latency_ms p99,rows per minute"), "objective resolve latency_ms p99"},
		{objective(6, "latency_ms p99|"), "objective fire latency_ms p99 warning; retrain:rollback"},
	}
	for i, st := range steps {
		s = restarted(t, s)
		var got []string
		for _, d := range p.Observe(s, st.obs, t0) {
			got = append(got, summary(d))
		}
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("step %d: got %q, want %q", i, g, st.want)
		}
	}
}

// TestQuietFindingsResolveButAreNotListed: a segment's drift joins the model's
// episode; the segments judged without drift (Quiet) count as clean, so the
// segment's drift resolves, but they are not listed as stable in the alert.
func TestQuietFindingsResolveButAreNotListed(t *testing.T) {
	p := mustNew(t, Rules{FireAfter: 1, ResolveAfter: 2}, nil)
	s := &State{}
	quiet := func(o Observation, names ...string) Observation { o.Quiet = names; return o }
	steps := []struct {
		obs  Observation
		want string
	}{
		{quiet(window(0, "income@country=DE|income,age"), "age@country=DE", "income@country=FR"), "fire income@country=DE warning"},
		{quiet(window(1, "|income,age"), "income@country=DE", "income@country=FR"), ""},
		{quiet(window(2, "|income,age"), "income@country=DE", "income@country=FR"), "resolve income@country=DE"},
	}
	for i, st := range steps {
		var got []string
		for _, d := range p.Observe(s, st.obs, t0) {
			got = append(got, summary(d))
			if a := d.Alert; slices.ContainsFunc(a.Stable, func(f string) bool { return strings.Contains(f, "@") }) {
				t.Errorf("window %d: the alert lists segments as stable: %v", i, a.Stable)
			}
		}
		if g := strings.Join(got, "; "); g != st.want {
			t.Errorf("window %d: got %q, want %q", i, g, st.want)
		}
	}
}
