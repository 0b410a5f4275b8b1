package monitor

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// TestKeptWindowsAreStoredOnce: the windows a trailing reference keeps are written to
// the state file once, beside the checkpoints that name them, and deleted when no
// longer kept; a restart finds them. (Written into every checkpoint, a seasonal
// reference's 1.5 MB would be rewritten every few seconds, and in a cluster
// replicated to Kafka as one record.)
func TestKeptWindowsAreStoredOnce(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: ["127.0.0.1:1"], group_id: g}
%s`, strings.Replace(datasetStream("events", "{size: 1m}"), "{warmup_windows: 2}", "{trailing: {windows: 3}}", 1))), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := &cfg.Streams[0]
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var changes []state.Change
	st.Replicate(func(c []state.Change) error { changes = append(changes, c...); return nil })
	// Another stream's kept window, whose name starts with this one's and a "/".
	foreign := keptKey("s/x", strings.Repeat("ab", 32))
	if err := st.Update(func(tx *state.Tx) error { return tx.Put(keptBucket, foreign, []byte("x")) }); err != nil {
		t.Fatal(err)
	}

	run := newEngineRun(t, sc)
	msgs := dataset{seed: 3, n: 9000, parts: 1, step: 50 * time.Millisecond, shiftAt: 9000}.messages() // 7.5 minutes
	save := func() (puts, deletes int) {
		t.Helper()
		changes = nil
		data, err := engine.EncodeCheckpoint(run.e, engine.NewPosition())
		if err != nil {
			t.Fatal(err)
		}
		if err := saveCheckpoint(st, sc.Name, run.e, data, func(*state.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			switch {
			case c.Bucket != keptBucket:
			case c.Value == nil:
				deletes++
			default:
				puts++
			}
		}
		return puts, deletes
	}
	stored := func() []string {
		t.Helper()
		var keys []string
		st.View(func(tx *state.Tx) error {
			return tx.ForEach(keptBucket, "", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		})
		return keys
	}
	keys := func(e *engine.Engine) []string {
		var out []string
		for _, k := range e.Kept() {
			out = append(out, keptKey(sc.Name, k.Key))
		}
		out = append(out, foreign)
		slices.Sort(out)
		return out
	}

	run.feed(msgs[:6000], 500) // 5 minutes: 4 windows closed, the first not kept (engine/history.go)
	if puts, _ := save(); puts != 3 || len(run.e.Kept()) != 3 {
		t.Fatalf("first checkpoint wrote %d kept windows; the engine keeps %d, want 3", puts, len(run.e.Kept()))
	}
	if puts, deletes := save(); puts != 0 || deletes != 0 {
		t.Fatalf("a checkpoint with no new window kept wrote %d kept windows and deleted %d, want none", puts, deletes)
	}
	run.feed(msgs[6000:], 500) // 3 more windows closed: the 3 kept before no longer are
	if puts, deletes := save(); puts != 3 || deletes != 3 {
		t.Fatalf("after 3 more windows the checkpoint wrote %d kept windows and deleted %d, want 3 and 3", puts, deletes)
	}
	if got, want := stored(), keys(run.e); !slices.Equal(got, want) {
		t.Fatalf("the state holds %v, want %v", got, want)
	}

	restarted := newEngineRun(t, sc)
	if _, err := loadCheckpoint(st, sc.Name, restarted.e, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(restarted.e), keys(run.e); !slices.Equal(got, want) {
		t.Fatalf("a restart keeps %v, want %v", got, want)
	}
	// Without its kept windows a checkpoint does not restore, and says why.
	if err := st.Update(func(tx *state.Tx) error { return tx.Delete(keptBucket, keptKey(sc.Name, run.e.Kept()[0].Key)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCheckpoint(st, sc.Name, newEngineRun(t, sc).e, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "missing from the state") {
		t.Fatalf("restored without a kept window: %v", err)
	}
}
