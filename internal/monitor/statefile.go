package monitor

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// checkpointBucket holds one checkpoint per stream (engine.EncodeCheckpoint), keyed by
// the stream's name.
const checkpointBucket = "checkpoint"

// keptBucket holds the windows a stream's trailing or seasonal reference keeps
// (engine.KeptWindow), under "<stream>/<key>": each is written once, by the checkpoint
// that first names it, and deleted by the first that no longer does. A checkpoint, which
// is written every few seconds, names them by key and stays small however many a
// reference keeps (7 days of hourly windows are 1.5 MB of profiles for 4 features).
const keptBucket = "kept_windows"

// openState opens the state file that cfg names, or returns nil when it names none
// (nothing survives a restart then).
func openState(cfg config.State) (*state.Store, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	return state.Open(cfg.Path)
}

// closeState closes st, if any, logging a failure: everything in it was committed
// already, so there is nothing left to lose.
func closeState(st *state.Store, log *slog.Logger) {
	if st == nil {
		return
	}
	if err := st.Close(); err != nil {
		log.Error("cannot close state file", "path", st.Path(), "err", err)
	}
}

// loadCheckpoint restores e from stream name's checkpoint in store and returns it, or
// nil when store has none.
func loadCheckpoint(store *state.Store, name string, e *engine.Engine, log *slog.Logger) (*engine.Checkpoint, error) {
	var cp *engine.Checkpoint
	err := store.View(func(tx *state.Tx) error {
		data := tx.Get(checkpointBucket, name)
		if data == nil {
			return nil
		}
		var err error
		cp, err = engine.DecodeCheckpoint(data, e, func(key string) []byte {
			return tx.Get(keptBucket, keptKey(name, key)) // copied by DecodeCheckpoint
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot restore stream %s from %s: %w", name, store.Path(), err)
	}
	if cp == nil {
		log.Info("no checkpoint: starting afresh", "state", store.Path())
		return nil, nil
	}
	e.Restore(cp, true)
	log.Info("restored checkpoint", "state", store.Path(), "offsets", cp.Pos.Next,
		"models", cp.Models(), "open_windows", cp.OpenWindows(), "watermark", e.Watermark())
	return cp, nil
}

// saveCheckpoint writes data, e's checkpoint (engine.EncodeCheckpoint), as stream
// name's in one transaction with what also writes: all of it becomes durable, or none.
// Then e goes on from exactly what a restart would load (engine/checkpoint.go says
// why).
func saveCheckpoint(store *state.Store, name string, e *engine.Engine, data []byte, also func(tx *state.Tx) error) error {
	err := store.Update(func(tx *state.Tx) error {
		if err := tx.Put(checkpointBucket, name, data); err != nil {
			return err
		}
		if err := saveKept(tx, name, e.Kept()); err != nil {
			return err
		}
		return also(tx)
	})
	if err != nil {
		return fmt.Errorf("cannot checkpoint stream %s: %w", name, err)
	}
	// e holds every window its checkpoint names: no lookup is needed.
	cp, err := engine.DecodeCheckpoint(data, e, nil)
	if err != nil {
		panic("BUG: a checkpoint just written does not decode: " + err.Error())
	}
	e.Restore(cp, false)
	return nil
}

// keptKey is where stream name's kept window key is in keptBucket.
func keptKey(name, key string) string { return name + "/" + key }

// saveKept writes the kept windows of stream name that the state does not hold yet and
// deletes those no longer kept.
func saveKept(tx *state.Tx, name string, kept []engine.KeptWindow) error {
	want := make(map[string]bool, len(kept))
	for _, k := range kept {
		key := keptKey(name, k.Key)
		want[key] = true
		if tx.Get(keptBucket, key) != nil {
			continue
		}
		if err := tx.Put(keptBucket, key, k.Data); err != nil {
			return err
		}
	}
	prefix := keptKey(name, "")
	return tx.DeleteIf(keptBucket, prefix, func(key string, _ []byte) bool {
		// A key with another "/" is another stream's, whose name starts with this
		// one's and a "/".
		return !want[key] && !strings.Contains(key[len(prefix):], "/")
	})
}

// schedule says when a checkpoint is due: after state.checkpoint_records messages or
// state.checkpoint_interval, whichever comes first, if anything changed.
type schedule struct {
	every   config.State
	unsaved int       // messages handled since the last checkpoint
	dirty   bool      // something changed since the last checkpoint
	saved   time.Time // when the last checkpoint was written
}

func newSchedule(every config.State) schedule {
	if every.CheckpointRecords <= 0 {
		every.CheckpointRecords = config.DefaultCheckpointRecords
	}
	if every.CheckpointInterval <= 0 {
		every.CheckpointInterval = config.DefaultCheckpointInterval
	}
	return schedule{every: every}
}

// add notes n messages handled.
func (c *schedule) add(n int) {
	c.unsaved += n
	c.dirty = true
}

// due reports whether to checkpoint now: something changed, and it is time, or force,
// or urgent (alert decisions wait for it: they are sent only once committed).
func (c *schedule) due(force, urgent bool) bool {
	due := c.unsaved >= c.every.CheckpointRecords || time.Since(c.saved) >= c.every.CheckpointInterval || urgent
	return c.dirty && (due || force)
}

// done notes a checkpoint written.
func (c *schedule) done() { c.unsaved, c.dirty, c.saved = 0, false, time.Now() }

// offsets is what the latest checkpoint made durable of one Kafka source, to be
// committed to its group, and whether that source has had it yet: the batch of either
// of a stream's sources (predictions, labels) may write the checkpoint that makes the
// other's offsets durable.
type offsets struct {
	next  map[int]int64
	fresh bool
}

// set notes next as durable.
func (o *offsets) set(next map[int]int64) { o.next, o.fresh = maps.Clone(next), true }

// take returns what the source has not had yet, or nil.
func (o *offsets) take() map[int]int64 {
	if !o.fresh {
		return nil
	}
	o.fresh = false
	return o.next
}
