package alerter

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/state"
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
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"], group_id: g}
streams:
  - name: s
    topic: t
    event_time: ts
    features: {x: {type: numeric}}
    window: {size: 1m}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
