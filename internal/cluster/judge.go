package cluster

// The leader's judging, one stream at a time (the monitor's leader wraps it with the
// alert state and the outbox).
//
// Each pass reads every partition's record of the stream: a window is ready when every
// partition that is not idle has closed it. It merges the window's partials in
// partition order, judges the merged profile like one process would
// (engine.Engine.Evaluate), and, once the caller has recorded the results, deletes the
// partials (tombstones; compaction drops them). A partial of a window judged already
// (its partition was idle then) is counted as late. A partition that no process has
// read yet holds every window back, as in one process.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/window"
)

// Judge judges the windows of one stream that the cluster's workers have published.
// It is owned by the leader's goroutine.
type Judge struct {
	stream string
	engine *engine.Engine
	log    *Log
	// partitions says how many partitions the stream's topic has.
	partitions func(context.Context) (int, error)
	logger     *slog.Logger
	// badReferences is the last problem with the stream's handed-over references,
	// logged when it changes rather than on every pass.
	badReferences string
}

// NewJudge returns the judge of stream, which judges with e (restored from the
// leader's state) the partials that lg holds; partitions says how many partitions the
// stream's topic has.
func NewJudge(stream string, e *engine.Engine, lg *Log, partitions func(context.Context) (int, error), logger *slog.Logger) *Judge {
	return &Judge{stream: stream, engine: e, log: lg, partitions: partitions, logger: logger}
}

// Pass is what one pass judged.
type Pass struct {
	// Results are the windows judged, in order of start, model and version.
	Results []engine.Result
	// Lost is the stream's messages deleted before any process read them, over all
	// partitions, for the data-loss alert.
	Lost int64
	// Total and Bad are the stream's messages read by every process so far and, of
	// them, those that came late or were refused (the judge's own late rows included),
	// for the blind alert.
	Total, Bad int64
	// keys are the partials the pass judged or counted as late.
	keys []string
}

// Empty reports whether the pass judged nothing and has nothing to forget.
func (p *Pass) Empty() bool { return len(p.Results) == 0 && len(p.keys) == 0 }

// Pass judges what every partition has closed since the last pass. It returns nil
// while some partition has no record yet (it holds every window back); a pass that
// judged nothing is Empty. The caller records the results (the engine's checkpoint
// with them), then calls Forget.
func (j *Judge) Pass(ctx context.Context) (*Pass, error) {
	j.syncReferences()
	n, err := j.partitions(ctx)
	if err != nil {
		j.logger.Warn("cannot learn the topic's partitions; will retry", "err", err)
		return nil, nil
	}
	ready, active, furthest := int64(math.MaxInt64), false, int64(math.MinInt64)
	pass := &Pass{}
	closed := make([]int64, n)
	idle := make([]bool, n)
	for p := range n {
		b, ok := j.log.Get(partitionKey(j.stream, int32(p)))
		if !ok {
			return nil, nil // no process has read partition p yet: it holds every window
		}
		rec, err := decodePartitionRecord(b)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		closed[p], idle[p] = rec.closedTo, rec.idle
		furthest = max(furthest, rec.closedTo)
		pass.Lost += rec.lost
		pass.Total += rec.events
		pass.Bad += rec.bad
		if !rec.idle {
			ready, active = min(ready, rec.closedTo), true
		}
	}
	if !active {
		// Every partition idle: none holds a window back, and event time has got as
		// far as the furthest of them closed. (One process's watermark stays where
		// it was when the last partition went idle, which is the same once every
		// partition has gone idle after sending the same event time.)
		ready = furthest
	}
	type windowKey struct {
		start          int64
		model, version string
	}
	windows := map[windowKey][]partial{}
	var bad error
	j.log.Scan(partialsOf(j.stream), func(k string, v []byte) {
		pt, err := decodePartial(v)
		if err != nil {
			bad = errors.Join(bad, fmt.Errorf("%s: %w", k, err))
			return
		}
		if pt.start >= ready {
			return // open in some partition still
		}
		pt.profile = bytes.Clone(pt.profile)
		wk := windowKey{pt.start, pt.model, pt.version}
		windows[wk] = append(windows[wk], pt)
		pass.keys = append(pass.keys, k)
	})
	if bad != nil {
		return nil, bad
	}
	if len(windows) == 0 {
		pass.Bad += j.engine.Late()
		return pass, nil
	}
	order := slices.Collect(maps.Keys(windows))
	slices.SortFunc(order, func(a, b windowKey) int {
		return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.model, b.model), strings.Compare(a.version, b.version))
	})
	e := j.engine
	for _, wk := range order {
		start := time.Unix(0, wk.start).UTC()
		if closedTo, ok := e.ClosedTo(wk.model, wk.version); ok && wk.start < closedTo {
			// Judged already, without these partitions (idle then): late rows.
			var rows int64
			for _, pt := range windows[wk] {
				if prof, err := mergePartials(e, []partial{pt}); err == nil {
					rows += prof.Rows
				}
			}
			e.CountLate(wk.model, wk.version, rows)
			j.logger.Warn("rows of a partition came after their window was judged: counted as late",
				"model", wk.model, "version", wk.version, "start", start, "rows", rows)
			continue
		}
		prof, err := mergePartials(e, windows[wk])
		if err != nil {
			return nil, fmt.Errorf("window %v of model %s %s: %w", start, wk.model, wk.version, err)
		}
		r := e.Evaluate(wk.model, wk.version, &window.Window{Start: start, End: start.Add(e.WindowSize()), Profile: prof})
		for p := range n {
			if idle[p] && closed[p] <= wk.start {
				r.Missing = append(r.Missing, int32(p))
			}
		}
		pass.Results = append(pass.Results, r)
	}
	if err := j.storeRead(ctx); err != nil {
		return nil, err
	}
	pass.Bad += e.Late()
	return pass, nil
}

// syncReferences gives the engine the references handed over for the stream's
// versions, as the topic has them now.
func (j *Judge) syncReferences() {
	err := j.engine.SyncHandovers(j.log.References(j.stream))
	switch {
	case err == nil:
		j.badReferences = ""
	case err.Error() != j.badReferences:
		j.badReferences = err.Error()
		j.logger.Error("a handed-over reference in the cluster topic cannot be used; its version falls back", "err", err)
	}
}

// storeRead writes the references the engine read from reference.per_version files in
// this pass to the topic, so that the next leader judges with them too, whatever
// became of the files. A reference handed over by the API for the same version
// meanwhile is kept: the engine takes it at the next pass. (One put by another process
// in the moment between the check and the write is overwritten by the file's, which is
// that version's training profile too, and shown by GET.)
func (j *Judge) storeRead(ctx context.Context) error {
	var recs []Record
	for _, h := range j.engine.NewlyRead() {
		if _, ok := j.log.Reference(j.stream, h.Model, h.Version); !ok {
			recs = append(recs, Record{Key: referenceKey(j.stream, h.Model, h.Version), Value: h.Encode()})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if err := j.log.Put(ctx, recs...); err != nil {
		return fmt.Errorf("cannot store the references read from files: %w", err)
	}
	return j.log.Sync(ctx)
}

// Forget deletes the partials that pass judged or counted as late, once the caller has
// recorded it: a new leader would skip them anyway, and they only take room. It
// returns when the deletions have been read back, so that the next pass does not see
// them again.
func (j *Judge) Forget(ctx context.Context, pass *Pass) error {
	if len(pass.keys) == 0 {
		return nil
	}
	done := make([]Record, len(pass.keys))
	for i, k := range pass.keys {
		done[i] = Record{Key: k}
	}
	if err := j.log.Put(ctx, done...); err != nil {
		return err
	}
	return j.log.Sync(ctx)
}
