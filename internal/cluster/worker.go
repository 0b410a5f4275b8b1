package cluster

// A worker is one stream's share of the work in this process. The engine is Kafka
// itself, nothing home-made:
//
//   - Processes with the same kafka.group_id split a stream's partitions through the
//     consumer group, as one process does alone. A worker keeps one engine per partition
//     (engine.Engine.ForPartition), whose windows close on that partition's own
//     watermark.
//   - Publish writes, to the one partition of the compacted cluster topic, first each
//     window closed since the last publish (its profile, a "partial", key w/…), then
//     each changed partition's record (key p/…: the partition's checkpoint — open
//     windows, clock, next offset, counters — with its closed-to time and whether it is
//     idle). The topic keeps their order, so whoever reads a record has read the
//     partials before it.
//   - A partition taken over after a rebalance or a crash goes on from its record, the
//     way one process goes on from its state file. A window closed again after a crash
//     publishes the same key again; the last one wins, and a judged window is not
//     judged twice.
//   - The leader (leader.go) merges partials and judges windows.
//
// One difference from one process: an event is late when it is older than its own
// partition's watermark, not the slowest partition's. With events out of order by less
// than window.lateness within each partition, both give the same windows; and unlike
// one process's, a cluster's windows do not depend on how fast each partition is read.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// Worker is a stream's partitions that this process reads in a cluster. It is owned by
// the stream's goroutine, except Stats and AddLoss, which any goroutine may call.
type Worker struct {
	stream string
	proto  *engine.Engine // what each partition's engine is made from
	log    *Log
	parts  map[int32]*part
	// out are the partials of windows closed since the last publish, in order.
	out []pendingPartial
	// mu guards the partitions' positions' counters and late counts, and parts itself
	// against Stats.
	mu sync.Mutex
}

// part is one partition's engine and position.
type part struct {
	engine *engine.Engine
	pos    *engine.Position
	dirty  bool  // changed since it was last published
	idle   bool  // as last published
	late   int64 // the engine's late events, for Stats
}

// pendingPartial is a partial waiting for the next publish.
type pendingPartial struct {
	partition int32
	rec       Record
}

// NewWorker returns the worker of stream, whose partitions' engines are made from
// proto (engine.Engine.ForPartition), publishing to lg.
func NewWorker(stream string, proto *engine.Engine, lg *Log) *Worker {
	return &Worker{stream: stream, proto: proto, log: lg, parts: map[int32]*part{}}
}

// Assign makes partitions this process's share: each new one goes on from its record
// in the cluster topic (written by whoever read it before), or starts afresh. It
// returns where to read each partition that has a record, and each that this worker
// reads already.
func (w *Worker) Assign(ctx context.Context, partitions []int) (map[int]int64, error) {
	// A previous owner wrote its last record before this assignment was made (a
	// rebalance waits for it, ingest.Revoker); Sync makes sure it has been read.
	if err := w.log.Sync(ctx); err != nil {
		return nil, fmt.Errorf("cannot read the cluster topic: %w", err)
	}
	keep := map[int32]bool{}
	for _, p := range partitions {
		keep[int32(p)] = true
	}
	w.mu.Lock()
	for p := range w.parts {
		if !keep[p] {
			delete(w.parts, p)
		}
	}
	w.mu.Unlock()
	// Partials a failed publish left of partitions now read elsewhere: their new
	// owner closes those windows again from the partitions' records.
	w.out = slices.DeleteFunc(w.out, func(pp pendingPartial) bool { return !keep[pp.partition] })
	next := map[int]int64{}
	for _, p := range partitions {
		p32 := int32(p)
		if pt, ok := w.parts[p32]; ok {
			// Read without a break: what is in memory is what was published.
			next[p] = pt.pos.Next[p]
			continue
		}
		pt := &part{engine: w.proto.ForPartition(), pos: engine.NewPosition(), dirty: true}
		if b, ok := w.log.Get(partitionKey(w.stream, p32)); ok {
			rec, err := decodePartitionRecord(b)
			if err != nil {
				return nil, fmt.Errorf("stream %s partition %d: %w", w.stream, p, err)
			}
			cp, err := engine.DecodeCheckpoint(rec.checkpoint, pt.engine, nil)
			if err != nil {
				return nil, fmt.Errorf("stream %s partition %d: %w", w.stream, p, err)
			}
			pt.engine.Restore(cp, true)
			pt.pos = cp.Pos
			if o, ok := cp.Pos.Next[p]; ok {
				next[p] = o
			}
		}
		pt.engine.Assign([]int32{p32})
		pt.late = pt.engine.Late()
		w.mu.Lock()
		w.parts[p32] = pt
		w.mu.Unlock()
	}
	return next, nil
}

// Feed gives partition p's decoded rows to its engine (rows[i] is row i's partition,
// all p), notes next as the partition's next offset and counts the rows, the messages
// that did not decode and the rows the engine refused, which it returns (valid until
// the next call). The windows that close are kept for the next publish: a cluster's
// windows are the leader's to judge.
func (w *Worker) Feed(p int32, rec arrow.Record, rows []int32, next int64, rejected []ingest.Rejected) []engine.Refusal {
	pt := w.parts[p]
	if pt == nil {
		panic(fmt.Sprintf("BUG: a message of partition %d, which is not assigned", p))
	}
	w.addPartials(p, pt.engine.ProcessPartitions(rec, rows))
	pt.pos.Next[int(p)] = next
	pt.dirty = true
	late := pt.engine.Late()
	refused := pt.engine.Refused()
	w.mu.Lock()
	pt.pos.Count(rec.NumRows(), rejected, refused)
	pt.late = late
	w.mu.Unlock()
	return refused
}

// Tick lets the wall clock act on every partition (idle ones), and reports whether a
// partition's idleness changed since it was last published: the leader must be told.
// Call it with every batch: a partition that gets no messages while others do must
// still go idle.
func (w *Worker) Tick() (changed bool) {
	for p, pt := range w.parts {
		w.addPartials(p, pt.engine.Tick())
		if pt.engine.Clock().Idle() != pt.idle {
			pt.dirty, changed = true, true
		}
	}
	return changed
}

// addPartials keeps the windows that partition p closed, for the next publish.
func (w *Worker) addPartials(p int32, results []engine.Result) {
	for _, r := range results {
		data, err := r.Profile.MarshalBinary()
		if err != nil {
			panic("BUG: a closed window's profile does not encode: " + err.Error())
		}
		pt := partial{model: r.Model, version: r.ModelVersion, start: r.Start.UnixNano(), partition: p, profile: data}
		w.out = append(w.out, pendingPartial{p, Record{Key: partialKey(w.stream, pt), Value: encodePartial(pt)}})
	}
}

// Publish writes the closed windows, then every changed partition's record, in one
// ordered write to the cluster topic. When it fails (the broker away) nothing is
// marked published: the caller tries again later and, until then, commits nothing to
// the group. An error wrapping ErrTooLarge will not go away by trying again.
func (w *Worker) Publish(ctx context.Context) error {
	recs := make([]Record, 0, len(w.out)+len(w.parts))
	for _, pp := range w.out {
		recs = append(recs, pp.rec)
	}
	type written struct {
		p    int32
		data []byte
	}
	var done []written
	for _, p := range slices.Sorted(maps.Keys(w.parts)) {
		pt := w.parts[p]
		if !pt.dirty {
			continue
		}
		w.mu.Lock()
		data, err := engine.EncodeCheckpoint(pt.engine, pt.pos)
		lost := pt.pos.Lost
		events, bad := pt.pos.Seen(pt.late)
		w.mu.Unlock()
		if err != nil {
			return fmt.Errorf("cannot checkpoint stream %s partition %d: %w", w.stream, p, err)
		}
		idle := pt.engine.Clock().Idle()
		recs = append(recs, Record{Key: partitionKey(w.stream, p),
			Value: encodePartitionRecord(partitionRecord{idle: idle, closedTo: pt.engine.Clock().ClosedTo(), lost: lost,
				events: events, bad: bad, checkpoint: data})})
		done = append(done, written{p, data})
		pt.idle = idle
	}
	if err := w.log.Put(ctx, recs...); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("cannot publish stream %s: %w", w.stream, err)
		}
		return err
	}
	for _, wr := range done {
		pt := w.parts[wr.p]
		pt.dirty = false
		// Go on from exactly what a new owner would load, as one process's checkpoint
		// does.
		cp, err := engine.DecodeCheckpoint(wr.data, pt.engine, nil)
		if err != nil {
			panic("BUG: a checkpoint just written does not decode: " + err.Error())
		}
		pt.engine.Restore(cp, false)
	}
	w.out = nil
	return nil
}

// Next is where to read each partition of the worker's next: after a Publish, what the
// topic holds, to be committed to the group.
func (w *Worker) Next() map[int]int64 {
	next := make(map[int]int64, len(w.parts))
	for p, pt := range w.parts {
		if o, ok := pt.pos.Next[int(p)]; ok {
			next[int(p)] = o
		}
	}
	return next
}

// AddLoss counts n messages of partition p deleted before they were read, and
// reports false when the worker does not read p. Safe from any goroutine.
func (w *Worker) AddLoss(p int32, n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	pt := w.parts[p]
	if pt == nil {
		return false
	}
	pt.pos.Lost += n
	return true
}

// Stats adds up the counters of the partitions this worker reads. Safe from any
// goroutine.
func (w *Worker) Stats() (events, lost, late int64, rejected map[ingest.Reason]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rejected = map[ingest.Reason]int64{}
	for _, pt := range w.parts {
		events += pt.pos.Events
		lost += pt.pos.Lost
		late += pt.late
		for r, n := range pt.pos.Rejected {
			rejected[r] += n
		}
	}
	return events, lost, late, rejected
}
