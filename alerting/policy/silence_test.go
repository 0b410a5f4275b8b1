package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/internal/state"
)

// TestSilencesSurviveARestart: a silence is state. Saved with the alert state into a
// real state file, it is restored after a restart into a fresh policy and still mutes
// what it matched; one removed before the save stays removed, even from the memory of
// a process that takes over; and an expired one is dropped, in memory and on disk.
// Saving an unchanged set writes nothing, so a cluster replicates nothing.
func TestSilencesSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	store, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var before Silences
	kept := before.Add(Silence{Model: "car-loan", Feature: "b", Kind: "drift", Comment: "known shift", CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)})
	removed := before.Add(Silence{Model: "car-loan", CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)})
	before.Add(Silence{Stream: "loans", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	save := func(s *Silences, now time.Time) {
		t.Helper()
		if err := store.Update(func(tx *state.Tx) error { return s.Save(tx, now) }); err != nil {
			t.Fatal(err)
		}
	}
	save(&before, t0)
	if !before.Remove(removed.ID) {
		t.Fatalf("Remove(%s) = false", removed.ID)
	}
	save(&before, t0.Add(90*time.Minute)) // the "loans" silence has expired by now
	var changes int
	store.Replicate(func(c []state.Change) error { changes += len(c); return nil })
	save(&before, t0.Add(90*time.Minute))
	if changes != 0 {
		t.Errorf("saving an unchanged set wrote %d keys", changes)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	after := &Silences{}
	after.Add(Silence{Model: "car-loan", CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)}) // this process's memory, stale
	restore := func(now time.Time) {
		t.Helper()
		if err := store.View(func(tx *state.Tx) error { return after.Restore(tx, now) }); err != nil {
			t.Fatal(err)
		}
	}
	restore(t0.Add(90 * time.Minute))
	if got := after.Active(t0.Add(90 * time.Minute)); len(got) != 1 || got[0] != kept {
		t.Fatalf("restored %+v, want only %+v", got, kept)
	}

	p := mustNew(t, Rules{}, after.Silenced)
	var st State
	for i, tc := range []struct{ spec, want string }{
		{"b|a", "muted:silenced fire  warning"}, // only b drifts: the silence mutes it
		{"a,b|", "fire a warning"},              // a is not silenced: told, b left out
	} {
		ds := p.Observe(&st, window(i, tc.spec), t0.Add(90*time.Minute))
		if len(ds) != 1 || summary(ds[0]) != tc.want {
			t.Errorf("window %d (%s): %v, want %q", i, tc.spec, ds, tc.want)
		}
	}
	if after.Silenced("loans", "other-model", "b", alerting.KindDrift, t0.Add(90*time.Minute)) {
		t.Error("the silence of car-loan muted another model")
	}
	if after.Silenced("loans", "car-loan", Dataset, alerting.KindNoData, t0.Add(90*time.Minute)) {
		t.Error("a silence muted a no-data alert; only drift alerts are silenced")
	}

	restore(t0.Add(3 * time.Hour)) // restarted after the silence expired
	if got := after.Active(t0.Add(3 * time.Hour)); len(got) != 0 {
		t.Errorf("restored %+v after expiry, want none", got)
	}
}

// TestSilenceKinds: a silence without a kind mutes drift only, as before silences could
// name one; naming performance or objective mutes those alerts and not drift; no
// silence mutes availability alerts; data_quality (kept for old silences) mutes nothing.
func TestSilenceKinds(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	all := []alerting.Kind{alerting.KindDrift, alerting.KindPerformance, alerting.KindObjective,
		alerting.KindNoData, alerting.KindDataLoss, alerting.KindBlind, alerting.KindRetrain}
	for _, tc := range []struct {
		kind  string
		mutes []alerting.Kind
	}{
		{"", []alerting.Kind{alerting.KindDrift}},
		{"drift", []alerting.Kind{alerting.KindDrift}},
		{"performance", []alerting.Kind{alerting.KindPerformance}},
		{"objective", []alerting.Kind{alerting.KindObjective}},
		{"data_quality", nil},
		{"no_data", nil},
	} {
		s := &Silences{}
		s.Add(Silence{Stream: "credit", Kind: tc.kind, ExpiresAt: now.Add(time.Hour)})
		for _, k := range all {
			want := slices.Contains(tc.mutes, k)
			if got := s.Silenced("credit", "m", "latency_ms p99", k, now); got != want {
				t.Errorf("silence of kind %q: Silenced(%s) = %v, want %v", tc.kind, k, got, want)
			}
		}
		if s.Silenced("fraud", "m", "latency_ms p99", alerting.KindObjective, now) {
			t.Errorf("silence of kind %q mutes another stream", tc.kind)
		}
	}
}

// TestObjectiveSilenceMutesTheBreach: through the policy, a silence of kind objective
// mutes the objective episode of the objective it names, and neither the drift alert
// of the same window nor another objective's breach.
func TestObjectiveSilenceMutesTheBreach(t *testing.T) {
	silences := &Silences{}
	silences.Add(Silence{Model: "car-loan", Feature: "latency_ms p99", Kind: "objective", ExpiresAt: t0.Add(24 * time.Hour)})
	p := mustNew(t, Rules{}, silences.Silenced)
	s := &State{}
	for i, tc := range []struct{ kind, spec, want string }{
		{"objective", "latency_ms p99|rows", "muted:silenced objective fire  warning"},
		{"", "a|b", "fire a warning"},
		{"objective", "rows|latency_ms p99", "objective fire rows warning"},
	} {
		o := window(i, tc.spec)
		o.Kind = alerting.Kind(tc.kind)
		var got []string
		for _, d := range p.Observe(s, o, t0) {
			got = append(got, summary(d))
		}
		if g := strings.Join(got, "; "); g != tc.want {
			t.Errorf("window %d (%s %s): got %q, want %q", i, tc.kind, tc.spec, g, tc.want)
		}
	}
}
