package labels

// The join in the state file: a small record rewritten whole with each checkpoint, and
// the pending predictions and labels written incrementally (only what changed).

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/internal/wire"
	"github.com/driftmon/driftmon/sketch"
)

// Buckets of the state file that hold the join's pending entries; the stream's name
// is part of each key.
const (
	labelsBucket  = "labels"
	pendingBucket = "labels_pending"
	orphanBucket  = "labels_orphans"
)

// joinerState is the part of the join a checkpoint rewrites whole: small, bounded by
// the windows within max_delay. The pending predictions and labels are written
// incrementally (save).
type joinerState struct {
	Next    map[int]int64     `json:"next"`
	Stats   Stats             `json:"stats"`
	Clock   window.ClockState `json:"clock"`
	PredWM  int64             `json:"pred_watermark"`
	Windows []perfWindowState `json:"windows"`
	Refs    []perfRefsState   `json:"refs"`
}

type perfWindowState struct {
	Model, Version string
	Start          int64
	Predictions    int64
	Perf           []byte
	Scores         []byte `json:",omitempty"`
	Revised        bool
	Sent           int
	Decided        bool
}

type perfRefsState struct {
	Model, Version string
	Perfs          [][]byte
}

// save writes the join's state in tx: the windows, references, offsets and counters
// under the stream's name, and the pending entries that changed since the last save.
func (j *Join) Save(tx *state.Tx) error {
	st := joinerState{Next: j.next, Stats: j.Stats(), Clock: j.clock.State(), PredWM: j.predWM}
	for _, w := range j.windows {
		b, err := w.perf.MarshalBinary()
		if err != nil {
			return err
		}
		ws := perfWindowState{Model: w.key.model.model, Version: w.key.model.version,
			Start: w.key.start, Predictions: w.predictions, Perf: b, Revised: w.revised, Sent: w.sent, Decided: w.decided}
		if w.scores != nil {
			if ws.Scores, err = w.scores.MarshalBinary(); err != nil {
				return err
			}
		}
		st.Windows = append(st.Windows, ws)
	}
	for mk, refs := range j.refs {
		rs := perfRefsState{Model: mk.model, Version: mk.version}
		for _, p := range refs {
			b, err := p.MarshalBinary()
			if err != nil {
				return err
			}
			rs.Perfs = append(rs.Perfs, b)
		}
		st.Refs = append(st.Refs, rs)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := tx.Put(labelsBucket, j.stream, b); err != nil {
		return err
	}
	prefix := j.stream + "\x00"
	if err := saveChanged(tx, pendingBucket, prefix, j.changedPreds, j.preds, encodePending); err != nil {
		return err
	}
	if err := saveChanged(tx, orphanBucket, prefix, j.changedOrphans, j.orphans, encodeOrphan); err != nil {
		return err
	}
	return nil
}

// saveChanged writes the entries of live whose ids changed, and deletes those no
// longer in it, under prefix+id in bucket.
func saveChanged[V any](tx *state.Tx, bucket, prefix string, changed map[string]bool, live map[string]V, encode func(V) []byte) error {
	for id := range changed {
		var err error
		if v, ok := live[id]; ok {
			err = tx.Put(bucket, prefix+id, encode(v))
		} else {
			err = tx.Delete(bucket, prefix+id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// saved forgets what changed: the checkpoint that holds it has committed.
func (j *Join) Saved() {
	clear(j.changedPreds)
	clear(j.changedOrphans)
}

// encodePending is a pending prediction as stored: model, version, window start, score.
func encodePending(p pendingPred) []byte {
	b := wire.AppendString(nil, p.win.model.model)
	b = wire.AppendString(b, p.win.model.version)
	b = binary.AppendVarint(b, p.win.start)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.score))
	if p.matched {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodePending(b []byte) (pendingPred, error) {
	r := wire.NewReader(b)
	model, version, start := r.String(), r.String(), r.Varint()
	score, matched := math.Float64frombits(r.Uint64()), r.Byte()
	if r.Err() != nil || len(r.B) > 0 || matched > 1 {
		return pendingPred{}, errors.New("bad pending prediction")
	}
	return pendingPred{win: winKey{modelKey{model, version}, start}, score: score, matched: matched == 1}, nil
}

// encodeOrphan is a pending label as stored: its value and time.
func encodeOrphan(o orphanLabel) []byte {
	b := binary.LittleEndian.AppendUint64(nil, math.Float64bits(o.value))
	return binary.LittleEndian.AppendUint64(b, uint64(o.at))
}

func decodeOrphan(b []byte) (orphanLabel, error) {
	if len(b) != 16 {
		return orphanLabel{}, errors.New("bad pending label")
	}
	return orphanLabel{value: math.Float64frombits(binary.LittleEndian.Uint64(b)), at: int64(binary.LittleEndian.Uint64(b[8:]))}, nil
}

// restore loads the join's state from the store; a store without it leaves the join
// empty (a stream that had no labels before).
func (j *Join) Restore(st *state.Store, now time.Time) error {
	return st.View(func(tx *state.Tx) error {
		b := tx.Get(labelsBucket, j.stream)
		if b == nil {
			return nil
		}
		var s joinerState
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("labels state of stream %s: %w", j.stream, err)
		}
		j.next, j.stats, j.predWM = s.Next, s.Stats, s.PredWM
		j.lost.Store(s.Stats.Lost)
		if j.next == nil {
			j.next = map[int]int64{}
		}
		if j.stats.Rejected == nil {
			j.stats.Rejected = map[string]int64{}
		}
		j.clock = window.RestoreClock(j.spec, s.Clock, now)
		for _, ws := range s.Windows {
			p := &sketch.Performance{}
			if err := p.UnmarshalBinary(ws.Perf); err != nil {
				return fmt.Errorf("labels state of stream %s: %w", j.stream, err)
			}
			k := winKey{modelKey{ws.Model, ws.Version}, ws.Start}
			w := &perfWindow{key: k, predictions: ws.Predictions, perf: p, revised: ws.Revised, sent: ws.Sent, decided: ws.Decided}
			if ws.Scores != nil {
				w.scores = &sketch.ScoreHistogram{}
				if err := w.scores.UnmarshalBinary(ws.Scores); err != nil {
					return fmt.Errorf("labels state of stream %s: %w", j.stream, err)
				}
			}
			j.windows[k] = w
		}
		for _, rs := range s.Refs {
			mk := modelKey{rs.Model, rs.Version}
			for _, b := range rs.Perfs {
				p := &sketch.Performance{}
				if err := p.UnmarshalBinary(b); err != nil {
					return fmt.Errorf("labels state of stream %s: %w", j.stream, err)
				}
				j.refs[mk] = append(j.refs[mk], p)
			}
		}
		err := j.eachPending(tx, pendingBucket, func(id string, v []byte) error {
			p, err := decodePending(v)
			j.preds[id] = p
			return err
		})
		if err != nil {
			return err
		}
		return j.eachPending(tx, orphanBucket, func(id string, v []byte) error {
			o, err := decodeOrphan(v)
			j.orphans[id] = o
			return err
		})
	})
}

// eachPending calls fn with the id and value of each of the stream's entries in
// bucket (keys are the stream's name, a 0 byte, the event id).
func (j *Join) eachPending(tx *state.Tx, bucket string, fn func(id string, v []byte) error) error {
	prefix := j.stream + "\x00"
	return tx.ForPrefix(bucket, prefix, func(key string, v []byte) error {
		if err := fn(key[len(prefix):], v); err != nil {
			return fmt.Errorf("labels state of stream %s: %w", j.stream, err)
		}
		return nil
	})
}
