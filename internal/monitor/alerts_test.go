package monitor

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/internal/state"
)

// TestLossSeenSurvivesARestart: the lost-message count the data-loss alert last looked
// at is kept with the alert state, so a restart (or a new cluster leader) neither
// alerts again about a loss it has seen nor misses one it has not.
func TestLossSeenSurvivesARestart(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:1", "t", "{size: 1m}", "")
	al, err := newAlerter(cfg, slog.New(slog.DiscardHandler), func(string, string, string, policy.Kind, time.Time) bool { return false }, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := &verdicts{stream: cfg.Streams[0].Name, alerts: &policy.State{}, lossSeen: 1234}
	if err := st.Update(func(tx *state.Tx) error { return al.record(tx, before) }); err != nil {
		t.Fatal(err)
	}
	after, err := restoreVerdicts(st, cfg.Streams[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.lossSeen != 1234 {
		t.Errorf("after a restart the alerts have seen %d lost messages, want 1234", after.lossSeen)
	}
}
