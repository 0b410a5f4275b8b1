package monitor

// The cluster's leader: the one process that judges windows and alerts (cluster.go
// says how partitions publish their windows).
//
// Leadership is the assignment of the cluster topic's only partition in the consumer
// group <group_id>-leader (cluster.Election): Kafka decides, no clock or file does, and
// a rebalance ends one leader's term before the next begins.
//
// The leader's state — each stream's judged-up-to times and warm-up references, the
// alert policy state, the audit trail, the webhook and Slack outbox — is a bbolt file
// like one process's, but a scratch one: it is loaded from the cluster topic (keys s/…)
// when a term starts, and every transaction on it is written to the topic before it
// commits (state.Store.Replicate). So a new leader goes on from exactly what the last
// one recorded: no recorded window judged again (its stream checkpoint says how far
// each model was judged), no decision lost or made twice (they are recorded in the
// same transaction), and an outbox item delivered once is known as delivered. Only
// the windows of a pass that the dead leader had judged but not yet recorded are
// judged again, with the same results (reported twice, like the windows one process
// closes between its last checkpoint and a kill -9). A delivery
// interrupted by the leader's death between sending and recording is sent again under
// the same webhook-id, as after a kill -9 of one process.
//
// Each pass the leader reads every partition's record of each stream: a window is
// ready when every partition that is not idle has closed it. It merges the window's
// partials in partition order, judges the merged profile like one process would
// (Engine.evaluate), hands the results out, checkpoints, and then deletes the partials
// (tombstones; compaction drops them). A partial of a window judged already (its
// partition was idle then) is counted as late. A partition that no process has read
// yet holds every window back, as in one process.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/driftmon/driftmon/internal/engine"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/internal/window"
)

// lead does the leader's work until ctx ends (the leadership with it). A term that
// fails — the cluster topic cannot be written — starts again from the topic.
func (m *Monitor) lead(ctx context.Context, lg *cluster.Log) error {
	for {
		m.log.Info("leading: judging windows and alerting for the cluster")
		err := m.term(ctx, lg)
		if ctx.Err() != nil {
			m.log.Info("no longer the leader")
			return nil
		}
		m.log.Error("leader's term failed; starting again from the cluster topic", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// term is one leadership term: load the state, judge and alert until ctx ends.
func (m *Monitor) term(ctx context.Context, lg *cluster.Log) error {
	// Everything the last leader recorded was acknowledged by the topic before it
	// acted on it: read all of it.
	if err := lg.Sync(ctx); err != nil {
		return err
	}
	store, drop, err := scratchStore()
	if err != nil {
		return err
	}
	defer drop()
	if err := loadState(store, lg); err != nil {
		return err
	}
	store.Replicate(func(changes []state.Change) error {
		recs := make([]cluster.Record, len(changes))
		for i, c := range changes {
			recs[i] = cluster.Record{Key: stateKey(c.Bucket, c.Key), Value: c.Value}
		}
		return lg.Put(ctx, recs...)
	})

	// The next leader delivers what is left: stop at once when the term ends.
	obCtx, stopOutbox := context.WithCancel(ctx)
	outboxDone, err := m.startOutbox(obCtx, store)
	if err != nil {
		stopOutbox()
		return err
	}
	defer func() {
		stopOutbox()
		if err := outboxDone(); err != nil {
			m.log.Error("outbox stopped with an error", "err", err)
		}
	}()

	leaders := make([]*stream, len(m.streams))
	for i, w := range m.streams {
		ls, err := m.newLeaderStream(w, store)
		if err != nil {
			return err
		}
		defer ls.results.close()
		defer w.judgedLate.Store(0)
		leaders[i] = ls
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, ls := range leaders {
			if err := m.judge(ctx, ls, lg); err != nil {
				return fmt.Errorf("stream %s: %w", ls.cfg.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lg.Changed():
		case <-tick.C:
		}
	}
}

// loadState copies the leader's state (keys s/…) from the cluster topic into store.
func loadState(store *state.Store, lg *cluster.Log) error {
	return store.Update(func(tx *state.Tx) error {
		var err error
		lg.Scan(statePrefix, func(k string, v []byte) {
			if bucket, key, ok := splitStateKey(k); ok && err == nil {
				err = tx.Put(bucket, key, v)
			}
		})
		if err != nil {
			return fmt.Errorf("cannot load the leader's state from the cluster topic: %w", err)
		}
		return nil
	})
}

// newLeaderStream is the leader's side of stream w: an engine that only judges, and
// the stream's checkpoint and alert state, restored from store.
func (m *Monitor) newLeaderStream(w *stream, store *state.Store) (*stream, error) {
	log := w.log.With("role", "leader")
	eng, err := engine.New(w.cfg, log)
	if err != nil {
		return nil, err
	}
	ls := &stream{cfg: w.cfg, log: log, engine: eng, every: w.every, pos: engine.NewPosition(), store: store,
		topicParts: w.topicParts, worker: w}
	if err := ls.restore(); err != nil {
		return nil, err
	}
	w.judgedLate.Store(eng.Late())
	al := m.alerter
	if err := al.restore(store, ls); err != nil {
		return nil, err
	}
	ls.onCheckpoint(func(tx *state.Tx) error { return al.record(tx, ls) })
	ls.onCommit(func() { ls.decided = nil; al.wake() })
	if ls.results, err = openResultLog(); err != nil {
		return nil, err
	}
	return ls, nil
}

// judge judges the windows of stream s that every partition has closed, hands the
// results out and records them, then deletes their partials.
func (m *Monitor) judge(ctx context.Context, s *stream, lg *cluster.Log) (err error) {
	n, err := s.topicParts(ctx)
	if err != nil {
		s.log.Warn("cannot learn the topic's partitions; will retry", "topic", s.cfg.Topic, "err", err)
		return nil
	}
	name := s.cfg.Name
	ready, active, furthest, lost := int64(math.MaxInt64), false, int64(math.MinInt64), int64(0)
	closed := make([]int64, n)
	idle := make([]bool, n)
	for p := range n {
		b, ok := lg.Get(partitionKey(name, int32(p)))
		if !ok {
			return nil // no process has read partition p yet: it holds every window
		}
		rec, err := decodePartitionRecord(b)
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		closed[p], idle[p] = rec.closedTo, rec.idle
		furthest = max(furthest, rec.closedTo)
		lost += rec.lost
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
	var keys []string
	var bad error
	lg.Scan(partialsOf(name), func(k string, v []byte) {
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
		keys = append(keys, k)
	})
	if bad != nil {
		return bad
	}
	if len(windows) == 0 {
		return nil
	}
	// What this pass judges or counts as late, it deletes; the next pass must not see
	// it again (Put returns before the tail has read the tombstones back: Sync).
	defer func() {
		if err == nil {
			err = lg.Sync(ctx)
		}
	}()
	order := make([]windowKey, 0, len(windows))
	for wk := range windows {
		order = append(order, wk)
	}
	slices.SortFunc(order, func(a, b windowKey) int {
		return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.model, b.model), strings.Compare(a.version, b.version))
	})
	// Messages deleted before any process read them fire the data-loss alert, as
	// in one process (alerter.observe).
	s.mu.Lock()
	s.pos.Lost = lost
	s.mu.Unlock()
	e := s.engine
	var results []engine.Result
	for _, wk := range order {
		if closedTo, ok := e.ClosedTo(wk.model, wk.version); ok && wk.start < closedTo {
			// Judged already, without these partitions (idle then): late rows.
			var rows int64
			for _, pt := range windows[wk] {
				if prof, err := mergePartials(e, []partial{pt}); err == nil {
					rows += prof.Rows
				}
			}
			e.CountLate(wk.model, wk.version, rows)
			s.worker.judgedLate.Store(e.Late())
			s.log.Warn("rows of a partition came after their window was judged: counted as late",
				"model", wk.model, "version", wk.version, "start", time.Unix(0, wk.start).UTC(), "rows", rows)
			continue
		}
		prof, err := mergePartials(e, windows[wk])
		if err != nil {
			return fmt.Errorf("window %v of model %s %s: %w", time.Unix(0, wk.start).UTC(), wk.model, wk.version, err)
		}
		start := time.Unix(0, wk.start).UTC()
		r := e.Evaluate(wk.model, wk.version, &window.Window{Start: start, End: start.Add(e.WindowSize()), Profile: prof})
		for p := range n {
			if idle[p] && closed[p] <= wk.start {
				r.Missing = append(r.Missing, int32(p))
			}
		}
		results = append(results, r)
	}
	// Handed out before they are recorded, as one process does: a leader killed in
	// between has these windows judged again by the next one, with the same results
	// (reported twice, as after a kill -9 of one process). Reported after recording,
	// a kill in between lost them from the results and the API for good.
	s.results.write(results)
	m.handOut(s, results)
	s.dirty = true
	if err := s.checkpoint(true); err != nil {
		return err
	}
	done := make([]cluster.Record, len(keys))
	for i, k := range keys {
		done[i] = cluster.Record{Key: k}
	}
	// Once judged, partials only take room: a new leader skips them anyway.
	return lg.Put(ctx, done...)
}
