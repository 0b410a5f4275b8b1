package monitor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
)

// worker is one configured stream in a cluster: its Kafka source reads this process's
// share of the partitions, whose windows cluster.Worker publishes for the leader to
// judge (internal/cluster says how).
type worker struct {
	cfg     *config.Stream
	log     *slog.Logger
	src     source
	dec     *batchDecoder
	proto   *engine.Engine // the stream's engine, which each partition's is made from
	parts   *cluster.Worker
	every   schedule
	durable offsets
	// topicParts counts the topic's partitions, for the leader.
	topicParts func(context.Context) (int, error)
	// work is held by the source's goroutine while it works on the stream.
	work sync.Mutex

	// Counters read by Stats: lost messages of partitions this process does not read
	// (any more), checkpoints published, and, while this process leads, the stream's
	// rows that came after the leader had judged their window and whether it is blind.
	mu          sync.Mutex
	lostAway    int64
	checkpoints int64
	judgedLate  atomic.Int64
	judgedBlind atomic.Bool // while this process leads: the stream is blind
}

func newWorker(cfg *config.Config, sc *config.Stream, log *slog.Logger) (*worker, error) {
	eng, dialer, dec, err := newReading(cfg, sc, log)
	if err != nil {
		return nil, err
	}
	w := &worker{cfg: sc, log: log, dec: dec, proto: eng, every: newSchedule(cfg.State),
		topicParts: partitionCounter(cfg.Kafka.Brokers, dialer, sc.Topic)}
	if w.src, err = newSource(cfg, sc.Topic, cfg.Kafka.GroupID, dialer, log, w.countLoss); err != nil {
		return nil, err
	}
	return w, nil
}

// run reads the stream's share of partitions into lg until ctx is done.
func (w *worker) run(ctx context.Context, lg *cluster.Log) error {
	w.parts = cluster.NewWorker(w.cfg.Name, w.proto, lg)
	defer w.dec.close()
	return w.src.Run(ctx, w)
}

// Assign makes partitions this process's share; each goes on from its record in the
// cluster topic.
func (w *worker) Assign(ctx context.Context, partitions []int) (map[int]int64, error) {
	w.work.Lock()
	defer w.work.Unlock()
	next, err := w.parts.Assign(ctx, partitions)
	if err != nil {
		return nil, err
	}
	w.every.dirty = true
	w.log.Info("reading partitions", "topic", w.cfg.Topic, "partitions", partitions, "from", next)
	return next, nil
}

// Handle is a worker's pipeline: decode the batch, feed each partition's rows to its
// engine, tick every partition's clock, and publish the windows that closed and the
// partitions' records when due; what a publish made durable is committed to the group.
func (w *worker) Handle(ctx context.Context, batch []ingest.Message) (map[int]int64, error) {
	w.work.Lock()
	defer w.work.Unlock()
	if len(batch) > 0 {
		for _, d := range w.dec.decode(batch) {
			refused := w.parts.Feed(d.partition, d.rec, w.dec.partitions(d), d.run[len(d.run)-1].Offset+1, d.rejected)
			w.dec.setAside(d, refused)
			d.rec.Release()
		}
		w.dec.done()
		w.every.add(len(batch))
	}
	// Each partition has its own clock: one that gets no messages while others do
	// must still go idle.
	if w.parts.Tick() {
		w.every.dirty = true
	}
	if err := w.publish(false); err != nil {
		return nil, err
	}
	return w.durable.take(), nil
}

// Revoke writes the partitions' last records before a rebalance gives them to another
// process (ingest.Revoker).
func (w *worker) Revoke(context.Context) (map[int]int64, error) {
	return w.settle()
}

// Close writes the last records.
func (w *worker) Close(context.Context) (map[int]int64, error) {
	return w.settle()
}

func (w *worker) settle() (map[int]int64, error) {
	w.work.Lock()
	defer w.work.Unlock()
	if err := w.publish(true); err != nil {
		return nil, err
	}
	return w.durable.take(), nil
}

// publish is a worker's checkpoint, when one is due (or when force, if anything
// changed). A failed write (the broker away) is tried again at the next one due; until
// then nothing is committed to the group and the partitions' engines keep what they
// have.
func (w *worker) publish(force bool) error {
	if !w.every.due(force, false) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := w.parts.Publish(ctx); err != nil {
		if errors.Is(err, cluster.ErrTooLarge) {
			return err
		}
		w.log.Warn("cannot publish partition state to the cluster topic; will retry", "err", err)
		w.every.saved = time.Now()
		return nil
	}
	w.durable.set(w.parts.Next())
	w.every.done()
	w.mu.Lock()
	w.checkpoints++
	w.mu.Unlock()
	return nil
}

// countLoss counts messages deleted before they were read; any goroutine.
func (w *worker) countLoss(l ingest.DataLoss) {
	if w.parts != nil && w.parts.AddLoss(int32(l.Partition), l.To-l.From) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lostAway += l.To - l.From
}

func (w *worker) stats() Stats {
	st := Stats{Rejected: map[string]int64{}}
	if w.parts != nil {
		events, lost, late, rejected := w.parts.Stats()
		st.Events, st.Lost, st.Late = events, lost, late
		for r, n := range rejected {
			st.Rejected[string(r)] = n
		}
	}
	w.mu.Lock()
	st.Lost += w.lostAway
	st.Checkpoints = w.checkpoints
	w.mu.Unlock()
	st.Late += w.judgedLate.Load()
	st.Blind = w.judgedBlind.Load()
	return st
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

// clusterSession is cluster.session_timeout, or 0 (the source's default) outside a
// cluster.
func clusterSession(cfg *config.Config) time.Duration {
	if cfg.Cluster == nil {
		return 0
	}
	if cfg.Cluster.SessionTimeout > 0 {
		return cfg.Cluster.SessionTimeout
	}
	return defaultClusterSession
}

// defaultClusterSession is cluster.session_timeout's default.
const defaultClusterSession = 10 * time.Second

var _ ingest.Revoker = (*worker)(nil)
