package policy

import (
	"path/filepath"
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
