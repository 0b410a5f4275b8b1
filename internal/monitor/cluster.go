package monitor

// Cluster mode: several driftmon processes share the streams (config cluster). The
// engine is Kafka itself, nothing home-made:
//
//   - Processes with the same kafka.group_id split a stream's partitions through the
//     consumer group, as one process does alone. Each keeps one engine per partition
//     (Engine.forPartition), whose windows close on that partition's own watermark.
//   - A checkpoint publishes, to the one partition of the compacted topic
//     cluster.partials_topic, first each window closed since the last one (its profile,
//     a "partial", key w/…), then each changed partition's record (key p/…: the
//     partition's checkpoint — open windows, clock, next offset, counters — with its
//     closed-to time and whether it is idle). The topic keeps their order, so whoever
//     reads a record has read the partials before it.
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
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/wire"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/sketch"
)

// clusterPart is a stream's share of the work in a cluster: the partitions this
// process reads. Owned by the stream's goroutine, except that stats reads parts under
// the stream's mu.
type clusterPart struct {
	log   *cluster.Log
	parts map[int32]*partState
	// out are the partials of windows closed since the last publish, in order, with
	// their partitions.
	out []pendingPartial
}

// pendingPartial is a partial waiting for the next publish.
type pendingPartial struct {
	partition int32
	rec       cluster.Record
}

// partState is one partition's engine and position.
type partState struct {
	engine *engine.Engine
	pos    *engine.Position
	dirty  bool
	idle   bool  // as last published
	late   int64 // the engine's late events, for stats (guarded by the stream's mu)
}

// Keys in the cluster topic. Names are path-escaped, so "/" separates parts.
const (
	partitionPrefix = "p/"
	partialPrefix   = "w/"
	statePrefix     = "s/"
)

func partitionKey(stream string, p int32) string {
	return partitionPrefix + url.PathEscape(stream) + "/" + strconv.Itoa(int(p))
}

func partialsOf(stream string) string { return partialPrefix + url.PathEscape(stream) + "/" }

func partialKey(stream string, pt partial) string {
	return partialsOf(stream) + url.PathEscape(pt.model) + "/" + url.PathEscape(pt.version) + "/" +
		strconv.FormatInt(pt.start, 10) + "/" + strconv.Itoa(int(pt.partition))
}

// Record layouts, after a 4-byte magic and a version byte:
//
//	partition record "DMPR": flags (1 byte, 1 = idle) | closed-to varint | lost uvarint
//	                        | checkpoint (checkpoint.go)
//	partial          "DMPW": model | version | start varint | partition uvarint | profile
const (
	partitionMagic = "DMPR"
	partialMagic   = "DMPW"
	clusterVersion = 1
)

// partitionRecord is a partition record; checkpoint is still encoded. Its header
// carries what the leader reads of every partition on every pass, so that it need not
// decode the checkpoints.
type partitionRecord struct {
	idle     bool
	closedTo int64
	// lost is the partition's messages deleted before they were read, for the
	// leader's data-loss alert.
	lost       int64
	checkpoint []byte
}

func encodePartitionRecord(r partitionRecord) []byte {
	b := append([]byte(partitionMagic), clusterVersion, 0)
	if r.idle {
		b[len(b)-1] = 1
	}
	b = binary.AppendVarint(b, r.closedTo)
	b = binary.AppendUvarint(b, uint64(r.lost))
	return append(b, r.checkpoint...)
}

func decodePartitionRecord(b []byte) (partitionRecord, error) {
	if len(b) < 6 || string(b[:4]) != partitionMagic || b[4] != clusterVersion || b[5] > 1 {
		return partitionRecord{}, fmt.Errorf("not a version-%d partition record: %w", clusterVersion, engine.ErrCorruptCheckpoint)
	}
	d := wire.NewReader(b[6:])
	r := partitionRecord{idle: b[5] == 1, closedTo: d.Varint(), lost: d.Count()}
	if d.Err() != nil {
		return partitionRecord{}, fmt.Errorf("partition record: %w: %w", engine.ErrCorruptCheckpoint, d.Err())
	}
	r.checkpoint = d.B
	return r, nil
}

// partial is one partition's profile of one closed window.
type partial struct {
	model, version string
	start          int64
	partition      int32
	profile        []byte // sketch.Profile.MarshalBinary
}

func encodePartial(pt partial) []byte {
	b := append([]byte(partialMagic), clusterVersion)
	b = wire.AppendString(b, pt.model)
	b = wire.AppendString(b, pt.version)
	b = binary.AppendVarint(b, pt.start)
	b = binary.AppendUvarint(b, uint64(pt.partition))
	return append(b, pt.profile...)
}

func decodePartial(b []byte) (partial, error) {
	if len(b) < 5 || string(b[:4]) != partialMagic || b[4] != clusterVersion {
		return partial{}, fmt.Errorf("not a version-%d partial: %w", clusterVersion, engine.ErrCorruptCheckpoint)
	}
	d := wire.NewReader(b[5:])
	pt := partial{model: d.String(), version: d.String(), start: d.Varint(), partition: d.Partition()}
	if d.Err() != nil {
		return partial{}, fmt.Errorf("partial: %w: %w", engine.ErrCorruptCheckpoint, d.Err())
	}
	pt.profile = d.B
	return pt, nil
}

// part returns partition p's state; the source reads only assigned partitions.
func (c *clusterPart) part(p int32) *partState {
	pt := c.parts[p]
	if pt == nil {
		panic(fmt.Sprintf("BUG: a message of partition %d, which is not assigned", p))
	}
	return pt
}

// assignCluster makes partitions this process's share: each new one goes on from its
// record in the cluster topic (written by whoever read it before), or starts afresh.
// It returns where to read each partition that has a record.
func (s *stream) assignCluster(ctx context.Context, partitions []int) (map[int]int64, error) {
	// A previous owner wrote its last record before this assignment was made (a
	// rebalance waits for it, ingest.Revoker); Sync makes sure it has been read.
	if err := s.cl.log.Sync(ctx); err != nil {
		return nil, fmt.Errorf("cannot read the cluster topic: %w", err)
	}
	keep := map[int32]bool{}
	for _, p := range partitions {
		keep[int32(p)] = true
	}
	s.mu.Lock()
	for p := range s.cl.parts {
		if !keep[p] {
			delete(s.cl.parts, p)
			delete(s.pos.Next, int(p))
		}
	}
	s.mu.Unlock()
	// Partials a failed publish left of partitions now read elsewhere: their new
	// owner closes those windows again from the partitions' records.
	s.cl.out = slices.DeleteFunc(s.cl.out, func(pp pendingPartial) bool { return !keep[pp.partition] })
	next := map[int]int64{}
	for _, p := range partitions {
		p32 := int32(p)
		if pt, ok := s.cl.parts[p32]; ok {
			// Read without a break: what is in memory is what was published.
			next[p] = pt.pos.Next[p]
			continue
		}
		pt := &partState{engine: s.engine.ForPartition(), pos: engine.NewPosition(), dirty: true}
		if b, ok := s.cl.log.Get(partitionKey(s.cfg.Name, p32)); ok {
			rec, err := decodePartitionRecord(b)
			if err != nil {
				return nil, fmt.Errorf("stream %s partition %d: %w", s.cfg.Name, p, err)
			}
			cp, err := engine.DecodeCheckpoint(rec.checkpoint, pt.engine)
			if err != nil {
				return nil, fmt.Errorf("stream %s partition %d: %w", s.cfg.Name, p, err)
			}
			pt.engine.Restore(cp, true)
			pt.pos = cp.Pos
			if o, ok := cp.Pos.Next[p]; ok {
				next[p] = o
			}
		}
		pt.engine.Assign([]int32{p32})
		pt.late = pt.engine.Late()
		s.mu.Lock()
		s.cl.parts[p32] = pt
		if o, ok := next[p]; ok {
			s.pos.Next[p] = o
		}
		s.mu.Unlock()
	}
	s.dirty = true
	s.log.Info("reading partitions", "topic", s.cfg.Topic, "partitions", partitions, "from", next)
	return next, nil
}

// tickCluster lets the wall clock act on every partition (idle ones), and notes the
// partitions whose idleness the leader has not been told. Called with every batch.
func (s *stream) tickCluster() {
	for p, pt := range s.cl.parts {
		s.addPartials(p, pt.engine.Tick())
		if pt.engine.Clock().Idle() != pt.idle {
			pt.dirty, s.dirty = true, true
		}
	}
}

// addPartials keeps the windows that partition p closed, for the next publish.
func (s *stream) addPartials(p int32, results []engine.Result) {
	for _, r := range results {
		data, err := r.Profile.MarshalBinary()
		if err != nil {
			panic("BUG: a closed window's profile does not encode: " + err.Error())
		}
		pt := partial{model: r.Model, version: r.ModelVersion, start: r.Start.UnixNano(), partition: p, profile: data}
		s.cl.out = append(s.cl.out, pendingPartial{p, cluster.Record{Key: partialKey(s.cfg.Name, pt), Value: encodePartial(pt)}})
	}
}

// publish is checkpoint in a cluster: the closed windows, then every changed
// partition's record, in one ordered write to the cluster topic. A failed write (the
// broker away) is tried again at the next one due; until then nothing is committed
// to the group and the partitions' engines keep what they have.
func (s *stream) publish(force bool) error {
	due := s.unsaved >= s.every.CheckpointRecords || time.Since(s.saved) >= s.every.CheckpointInterval
	if !s.dirty || !(due || force) {
		return nil
	}
	recs := make([]cluster.Record, 0, len(s.cl.out)+len(s.cl.parts))
	for _, pp := range s.cl.out {
		recs = append(recs, pp.rec)
	}
	type written struct {
		p    int32
		data []byte
	}
	var done []written
	for _, p := range slices.Sorted(maps.Keys(s.cl.parts)) {
		pt := s.cl.parts[p]
		if !pt.dirty {
			continue
		}
		s.mu.Lock()
		data, err := engine.EncodeCheckpoint(pt.engine, pt.pos)
		lost := pt.pos.Lost
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("cannot checkpoint stream %s partition %d: %w", s.cfg.Name, p, err)
		}
		idle := pt.engine.Clock().Idle()
		recs = append(recs, cluster.Record{Key: partitionKey(s.cfg.Name, p),
			Value: encodePartitionRecord(partitionRecord{idle: idle, closedTo: pt.engine.Clock().ClosedTo(), lost: lost, checkpoint: data})})
		done = append(done, written{p, data})
		pt.idle = idle
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := s.cl.log.Put(ctx, recs...); err != nil {
		if errors.Is(err, cluster.ErrTooLarge) {
			return fmt.Errorf("cannot publish stream %s: %w", s.cfg.Name, err)
		}
		s.log.Warn("cannot publish partition state to the cluster topic; will retry", "err", err)
		s.saved = time.Now()
		return nil
	}
	for _, w := range done {
		pt := s.cl.parts[w.p]
		pt.dirty = false
		// Go on from exactly what a new owner would load, as checkpoint does.
		cp, err := engine.DecodeCheckpoint(w.data, pt.engine)
		if err != nil {
			panic("BUG: a checkpoint just written does not decode: " + err.Error())
		}
		pt.engine.Restore(cp, false)
	}
	s.cl.out = nil
	s.madeDurable()
	s.unsaved, s.dirty, s.saved = 0, false, time.Now()
	s.mu.Lock()
	s.checkpoints++
	s.mu.Unlock()
	return nil
}

// partitionCounter returns a function that says how many partitions the stream's
// topic has, asking the brokers (ingest.TopicPartitions, which creates no topic) at
// most every partitionsTTL: partitions may be added. Only the leader's goroutine
// calls it.
func partitionCounter(brokers []string, dialer *kafka.Dialer, topic string) func(context.Context) (int, error) {
	var n int
	var asked time.Time
	return func(ctx context.Context) (int, error) {
		if n > 0 && time.Since(asked) < partitionsTTL {
			return n, nil
		}
		got, err := ingest.TopicPartitions(ctx, brokers, dialer, topic)
		if err != nil {
			return 0, err
		}
		n, asked = got, time.Now()
		return n, nil
	}
}

// partitionsTTL is how long a topic's partition count is trusted.
const partitionsTTL = 30 * time.Second

// publishTimeout bounds one write to the cluster topic.
const publishTimeout = 30 * time.Second

// Revoke writes the partitions' last records before a rebalance gives them to another
// process (ingest.Revoker).
func (h sourceHandler) Revoke(context.Context) (map[int]int64, error) {
	s := h.s
	if s.cl == nil {
		return nil, nil
	}
	s.work.Lock()
	defer s.work.Unlock()
	return s.settle(true, &s.predSeen, &s.cpPreds)
}

// clusterStats adds up the counters of the partitions this process reads; the
// caller holds s.mu.
func (s *stream) clusterStats(st *Stats) {
	for _, pt := range s.cl.parts {
		st.Events += pt.pos.Events
		st.Lost += pt.pos.Lost
		st.Late += pt.late
		for r, n := range pt.pos.Rejected {
			st.Rejected[string(r)] += n
		}
	}
}

// stateKey and splitStateKey map a leader's state-file entry to its key in the cluster
// topic and back. Bucket names have no "/".
func stateKey(bucket, key string) string { return statePrefix + bucket + "/" + key }

func splitStateKey(k string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(k, statePrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// mergePartials merges one window's partials, in partition order (so the result does
// not depend on the order they arrived in), into a profile of the stream's fields.
func mergePartials(e *engine.Engine, parts []partial) (*sketch.Profile, error) {
	slices.SortFunc(parts, func(a, b partial) int { return int(a.partition) - int(b.partition) })
	var merged *sketch.Profile
	for _, pt := range parts {
		p := new(sketch.Profile)
		if err := p.UnmarshalBinary(pt.profile); err != nil {
			return nil, fmt.Errorf("partial of partition %d: %w", pt.partition, err)
		}
		if merged == nil {
			merged = p
			continue
		}
		if err := merged.Merge(p); err != nil {
			return nil, fmt.Errorf("partial of partition %d: %w", pt.partition, err)
		}
	}
	if merged == nil {
		return nil, errors.New("no partials")
	}
	if f := merged.Fields(); !slices.Equal(f, e.Fields()) {
		return nil, fmt.Errorf("partials have fields %v, the stream %v", f, e.Fields())
	}
	return merged, nil
}
