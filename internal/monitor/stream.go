package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/state"
)

// source delivers batches of messages to a handler until ctx is done, and says
// whether it can.
type source interface {
	Run(ctx context.Context, h ingest.Handler) error
	Ready() error
}

// stream is one configured stream: its Kafka source, its decoder and its engine, all
// owned by the stream's goroutine, and its checkpoints (checkpoint.go).
type stream struct {
	cfg *config.Stream
	log *slog.Logger
	src source
	// decs are the decoders, one per worker that decodes a batch's partition runs
	// in parallel (see handle); the first also serves batches of one run.
	decs   []messageDecoder
	dead   *ingest.DeadLetter // nil: rejected messages are only counted
	engine *engine.Engine
	// every says when to checkpoint: after CheckpointRecords messages or
	// CheckpointInterval, whichever comes first.
	every config.State

	// Owned by the stream's goroutine.
	store   *state.Store // nil: nothing survives a restart (at-least-once)
	hooks   []func(tx *state.Tx) error
	commits []func()
	// Alerting: the policy state and the decisions not yet committed.
	alerts    *policy.State
	decided   []policy.Decision
	lossSeen  int64            // Stats().Lost when the policy last looked
	pos       *engine.Position // next offsets; its counters are guarded by mu
	unsaved   int              // messages handled since the last checkpoint
	dirty     bool             // something changed since the last checkpoint
	saved     time.Time        // when the last checkpoint was written
	stash     []engine.Result  // results of windows closed by a rebalance, not yet handed out
	rowParts  []int32          // scratch: each decoded row's partition
	runs      []decoded        // scratch: a batch's decoded partition runs
	results   *resultLog
	lastLog   time.Time
	handlerFn func(ctx context.Context, batch []ingest.Message) error

	// Labels (nil without): the join of late labels with the predictions, its own
	// source, and the performance results not yet handed out.
	perf     *labels.Join
	labelSrc source
	perfOut  []labels.Result
	scoreCol string

	// Cluster mode (nil otherwise): this process reads a share of the partitions and
	// publishes their windows for the leader (cluster.go); topicParts counts the
	// topic's partitions for the leader.
	cl         *clusterPart
	topicParts func(context.Context) (int, error)
	// judgedLate is, while this process leads, the stream's rows that came after the
	// leader had judged their window (their partition was idle then); read by stats.
	judgedLate atomic.Int64
	// worker is, for a leader's stream, the stream whose partitions this process reads.
	worker *stream

	// What the last checkpoint made durable, for each source to commit to its group
	// (whichever source's batch wrote it), and the checkpoint each source last
	// committed.
	cpSeq                int64
	cpPreds, cpLabels    map[int]int64
	predSeen, labelsSeen int64

	// work is held by whichever source's goroutine works on the stream: the
	// predictions' or the labels'. Everything "owned by the stream's goroutine" is
	// owned by its holder.
	work sync.Mutex

	// Counters read by Stats; pos's counters too.
	mu          sync.Mutex
	late        int64
	checkpoints int64
}

func newStream(cfg *config.Config, sc *config.Stream, log *slog.Logger) (*stream, error) {
	eng, err := engine.New(sc, log)
	if err != nil {
		return nil, err
	}
	// Decoders keep state (buffers, the JSON decoder's guess of the next key), so each
	// worker has its own. More workers than cores would only wait for each other.
	workers := min(runtime.GOMAXPROCS(0), maxDecodeWorkers)
	decs := make([]messageDecoder, workers)
	for i := range decs {
		if decs[i], err = newDecoder(sc, eng.DecoderSpec()); err != nil {
			return nil, err
		}
	}
	s := &stream{cfg: sc, log: log, decs: decs, engine: eng, every: cfg.State, pos: engine.NewPosition()}
	dialer, err := KafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if d := sc.DeadLetter; d != nil {
		dl, err := ingest.NewDeadLetter(ingest.DeadLetterOptions{Brokers: cfg.Kafka.Brokers, Topic: d.Topic,
			SampleEvery: d.SampleEvery, Dialer: dialer, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("dead_letter: %w", err)
		}
		s.dead = dl
	}
	if s.every.CheckpointRecords <= 0 {
		s.every.CheckpointRecords = config.DefaultCheckpointRecords
	}
	if s.every.CheckpointInterval <= 0 {
		s.every.CheckpointInterval = config.DefaultCheckpointInterval
	}
	src, err := ingest.NewKafka(ingest.KafkaOptions{
		Brokers:       cfg.Kafka.Brokers,
		Topic:         sc.Topic,
		GroupID:       cfg.Kafka.GroupID,
		StartAtLatest: cfg.Kafka.StartOffset == "latest",
		OnDataLoss:    s.countLoss,
		Dialer:        dialer,
		Logger:        log,
		// In a cluster, a dead process's partitions move after the cluster's timeout.
		SessionTimeout: clusterSession(cfg), RebalanceTimeout: clusterSession(cfg),
	})
	if err != nil {
		return nil, err
	}
	s.src = src
	if cfg.Cluster != nil {
		s.cl = &clusterPart{parts: map[int32]*partState{}}
		s.topicParts = partitionCounter(cfg.Kafka.Brokers, dialer, sc.Topic)
	}
	if sc.Labels != nil {
		if s.perf, err = labels.New(sc, eng.DetectorOptions()); err != nil {
			return nil, err
		}
		s.scoreCol = sc.Labels.Prediction
		// A group of its own: the labels' partitions are assigned apart from the
		// predictions', and a rebalance of one does not stop the other.
		s.labelSrc, err = ingest.NewKafka(ingest.KafkaOptions{
			Brokers:       cfg.Kafka.Brokers,
			Topic:         sc.Labels.Topic,
			GroupID:       cfg.Kafka.GroupID + "-labels",
			StartAtLatest: cfg.Kafka.StartOffset == "latest",
			OnDataLoss:    func(l ingest.DataLoss) { s.perf.AddLost(l.To - l.From) },
			Dialer:        dialer,
			Logger:        log.With("topic", sc.Labels.Topic),
		})
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
	}
	return s, nil
}

// onCheckpoint adds fn to every checkpoint transaction of the stream, after the
// stream's own writes: what fn writes becomes durable together with the windows and
// offsets, or not at all (a failing fn fails the checkpoint, and the stream stops). fn
// runs on the stream's goroutine, after the results of the batches it covers have been
// handed out. Register before Run.
func (s *stream) onCheckpoint(fn func(tx *state.Tx) error) { s.hooks = append(s.hooks, fn) }

// onCommit adds fn to run after every checkpoint that committed, on the stream's
// goroutine.
func (s *stream) onCommit(fn func()) { s.commits = append(s.commits, fn) }

// run restores the stream's checkpoint from st (nil: none, nothing is kept) and
// consumes until ctx is done. handle is called on the stream's goroutine with every
// batch, and with an empty one when nothing arrives for a while; it must pass the batch
// to s.handle and hand out the results. A checkpoint due after a batch is written when
// handle has returned.
func (s *stream) run(ctx context.Context, st *state.Store, handle func(ctx context.Context, batch []ingest.Message) error) error {
	s.store = st
	if err := s.restore(); err != nil {
		return err
	}
	rl, err := openResultLog()
	if err != nil {
		return err
	}
	s.results = rl
	defer s.results.close()
	s.handlerFn = handle
	if s.dead != nil {
		defer s.dead.Close()
	}
	if s.labelSrc == nil {
		return s.src.Run(ctx, sourceHandler{s})
	}
	// Both sources run until ctx is done or one fails, which stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	labelsDone := make(chan error, 1)
	go func() {
		err := s.labelSrc.Run(ctx, labelHandler{s})
		cancel()
		labelsDone <- err
	}()
	err = s.src.Run(ctx, sourceHandler{s})
	cancel()
	return errors.Join(err, <-labelsDone)
}

// restore loads the stream's checkpoint, if the store has one.
func (s *stream) restore() error {
	if s.store == nil {
		return nil
	}
	var data []byte
	err := s.store.View(func(tx *state.Tx) error {
		data = bytes.Clone(tx.Get(checkpointBucket, s.cfg.Name))
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot read checkpoint of stream %s: %w", s.cfg.Name, err)
	}
	s.saved = time.Now()
	if data == nil {
		s.log.Info("no checkpoint: starting afresh", "state", s.store.Path())
		return nil
	}
	cp, err := engine.DecodeCheckpoint(data, s.engine)
	if err != nil {
		return fmt.Errorf("cannot restore stream %s from %s: %w", s.cfg.Name, s.store.Path(), err)
	}
	s.engine.Restore(cp, true)
	if s.perf != nil {
		if err := s.perf.Restore(s.store, time.Now()); err != nil {
			return err
		}
	}
	// Checkpoint again soon, so that the group (perhaps a new one) learns the
	// offsets: lag tools read them there.
	s.dirty = true
	s.mu.Lock()
	s.pos = cp.Pos
	s.late = s.engine.Late()
	s.mu.Unlock()
	s.log.Info("restored checkpoint", "state", s.store.Path(), "offsets", cp.Pos.Next,
		"models", cp.Models(), "open_windows", cp.OpenWindows(), "watermark", s.engine.Watermark())
	return nil
}

// handle decodes one batch and returns the results of the windows it closed. An empty
// batch only lets the wall clock act (idle partitions).
func (s *stream) handle(batch []ingest.Message) []engine.Result {
	results := s.stash
	s.stash = nil
	switch {
	case len(batch) == 0 && s.cl != nil:
	case len(batch) == 0:
		results = append(results, s.engine.Tick()...)
	default:
		// Decode each run of one partition's messages on its own: a message may hold
		// many rows (Arrow IPC), and every row must carry its partition. Runs decode in
		// parallel; their rows reach the engine in the batch's order, so the windows,
		// and everything after them, are what one decoder would give.
		runs := s.decodeRuns(batch)
		for _, d := range runs {
			results = append(results, s.feed(d)...)
		}
		clear(runs) // released: keep no message or record alive until the next batch
		for _, m := range batch {
			s.pos.Next[m.Partition] = m.Offset + 1
		}
		s.unsaved += len(batch)
		s.dirty = true
	}
	if s.cl != nil {
		// Each partition has its own clock: one that gets no messages while others do
		// must still go idle.
		s.tickCluster()
	}
	if s.perf != nil {
		out := s.perf.Advance(s.engine.Clock().Watermark(), time.Now())
		if len(out) > 0 {
			s.dirty = true
			s.results.writePerformance(out)
			s.perfOut = append(s.perfOut, out...)
		}
	}
	if len(results) > 0 {
		s.dirty = true
		s.results.write(results)
	}
	return results
}

// takePerformance returns the performance results not yet handed out.
func (s *stream) takePerformance() []labels.Result {
	out := s.perfOut
	s.perfOut = nil
	return out
}

// eachPartitionRun calls fn with each run of consecutive messages of one partition.
func eachPartitionRun(batch []ingest.Message, fn func(run []ingest.Message)) {
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && batch[end].Partition == batch[start].Partition {
			end++
		}
		fn(batch[start:end])
		start = end
	}
}

// maxDecodeWorkers bounds the decoders of one stream.
const maxDecodeWorkers = 8

// decoded is one partition run of a batch, decoded.
type decoded struct {
	run      []ingest.Message
	rec      arrow.Record
	rejected []ingest.Rejected
}

// decodeRuns decodes the batch's partition runs, in parallel when there are several
// runs and several decoders, and returns them in the batch's order.
func (s *stream) decodeRuns(batch []ingest.Message) []decoded {
	out := s.runs[:0]
	eachPartitionRun(batch, func(run []ingest.Message) { out = append(out, decoded{run: run}) })
	s.runs = out
	workers := min(len(s.decs), len(out))
	if workers <= 1 {
		for i := range out {
			out[i].rec, out[i].rejected = s.decs[0].Decode(out[i].run)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, dec := range s.decs[:workers] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(out); i = int(next.Add(1) - 1) {
				out[i].rec, out[i].rejected = dec.Decode(out[i].run)
			}
		}()
	}
	wg.Wait()
	return out
}

// feed gives a decoded run's rows to the engine, its rejections to the dead-letter
// topic and the counters, and releases its record.
func (s *stream) feed(d decoded) []engine.Result {
	run, rec, rejected := d.run, d.rec, d.rejected
	defer rec.Release()
	if s.dead != nil && len(rejected) > 0 {
		// Best effort: the copies are for people to look at; the counts, kept with
		// the checkpoint, are what is exact. WriteAll logs its failures.
		_ = s.dead.WriteAll(context.Background(), run, rejected)
	}
	n := int(rec.NumRows())
	parts := s.rowParts[:0]
	for range n {
		parts = append(parts, int32(run[0].Partition))
	}
	s.rowParts = parts
	if s.cl != nil {
		// A cluster's windows are the leader's to judge: what closes here is a partial.
		p := int32(run[0].Partition)
		pt := s.cl.part(p)
		s.addPartials(p, pt.engine.ProcessPartitions(rec, parts))
		pt.pos.Next[int(p)] = run[len(run)-1].Offset + 1
		pt.dirty = true
		late := pt.engine.Late()
		s.count(pt.pos, s.late, rec.NumRows(), rejected)
		s.mu.Lock()
		pt.late = late
		s.mu.Unlock()
		return nil
	}
	results := s.engine.ProcessPartitions(rec, parts)
	if s.perf != nil {
		s.perf.AddPredictions(rec, rec.Column(0).(*array.Int64).Int64Values(), s.scoreCol)
	}
	s.count(s.pos, s.engine.Late(), rec.NumRows(), rejected)
	return results
}

// count adds a batch's decoded rows and rejected messages (per reason) to pos, the
// stream's counters (or, in a cluster, a partition's), notes the late events so far,
// and logs a sample of the rejections at most every ten seconds.
func (s *stream) count(pos *engine.Position, late, rows int64, rejected []ingest.Rejected) {
	s.mu.Lock()
	pos.Events += rows
	for _, r := range rejected {
		pos.Rejected[r.Reason]++
	}
	s.late = late
	s.mu.Unlock()
	if len(rejected) > 0 && time.Since(s.lastLog) > 10*time.Second {
		s.lastLog = time.Now()
		s.log.Warn("messages rejected", "sample", rejected[0].Err, "in_batch", len(rejected))
	}
}

// countLoss counts messages deleted before they were read; any goroutine.
func (s *stream) countLoss(l ingest.DataLoss) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		if pt := s.cl.parts[int32(l.Partition)]; pt != nil {
			pt.pos.Lost += l.To - l.From
			return
		}
	}
	s.pos.Lost += l.To - l.From
}

// sourceHandler is the stream as the Kafka source sees it.
type sourceHandler struct{ s *stream }

// Assign starts each partition where the stream's windows are: the checkpointed
// offsets after a restart, the in-memory ones after a rebalance. The stream keeps the
// offsets of partitions taken away from it: should one come back, it goes on from
// where its events in the windows end.
func (h sourceHandler) Assign(ctx context.Context, partitions []int) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	if s.cl != nil {
		return s.assignCluster(ctx, partitions)
	}
	parts, next := startFrom(partitions, s.pos.Next)
	// A partition no longer read may have been the one holding windows open.
	s.stash = append(s.stash, s.engine.Assign(parts)...)
	s.log.Info("reading partitions", "topic", s.cfg.Topic, "partitions", partitions, "from", next)
	return next, nil
}

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

// startFrom returns the assigned partitions as the clock numbers them, and where to
// read those of them that known has an offset for.
func startFrom(partitions []int, known map[int]int64) (parts []int32, next map[int]int64) {
	parts = make([]int32, len(partitions))
	next = make(map[int]int64, len(partitions))
	for i, p := range partitions {
		parts[i] = int32(p)
		if o, ok := known[p]; ok {
			next[p] = o
		}
	}
	return parts, next
}

// Handle passes the batch on and writes a checkpoint when one is due.
func (h sourceHandler) Handle(ctx context.Context, batch []ingest.Message) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.handlerFn(ctx, batch); err != nil {
		return nil, err
	}
	return s.settle(false, &s.predSeen, &s.cpPreds)
}

// Close writes the last checkpoint.
func (h sourceHandler) Close(context.Context) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	return s.settle(true, &s.predSeen, &s.cpPreds)
}

// settle writes a checkpoint when one is due (or when force, if anything changed) and
// returns the offsets of one source that the latest checkpoint holds (*offsets), when
// that source has not had them yet (*seen is the checkpoint it last had): the batch of
// either source may write the checkpoint that makes the other's offsets durable.
func (s *stream) settle(force bool, seen *int64, offsets *map[int]int64) (map[int]int64, error) {
	if err := s.checkpoint(force); err != nil {
		return nil, err
	}
	if *seen == s.cpSeq {
		return nil, nil
	}
	*seen = s.cpSeq
	return *offsets, nil
}

// labelHandler is the stream as its labels' Kafka source sees it.
type labelHandler struct{ s *stream }

// Assign starts each labels partition where the checkpointed join left it.
func (h labelHandler) Assign(_ context.Context, partitions []int) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	parts, next := startFrom(partitions, s.perf.Next())
	s.perf.Assign(parts, time.Now())
	s.log.Info("reading label partitions", "topic", s.cfg.Labels.Topic, "partitions", partitions, "from", next)
	return next, nil
}

// Handle joins a batch of labels and hands out the windows they revised the way the
// predictions' windows are (an empty batch through handlerFn), then checkpoints.
func (h labelHandler) Handle(ctx context.Context, batch []ingest.Message) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	if len(batch) > 0 {
		s.perf.AddLabels(batch)
		s.unsaved += len(batch)
		s.dirty = true
	}
	if err := s.handlerFn(ctx, nil); err != nil {
		return nil, err
	}
	return s.settle(false, &s.labelsSeen, &s.cpLabels)
}

// Close writes the last checkpoint.
func (h labelHandler) Close(context.Context) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	return s.settle(true, &s.labelsSeen, &s.cpLabels)
}

// checkpoint writes a checkpoint when one is due (or when force, if anything
// changed); then every offset the stream has handled is durable (madeDurable). Without
// a store every batch is "durable" once handled: offsets go to Kafka right away,
// delivery is at least once.
func (s *stream) checkpoint(force bool) error {
	if s.cl != nil {
		return s.publish(force)
	}
	if s.store == nil {
		s.unsaved, s.dirty = 0, false
		s.madeDurable()
		return nil
	}
	// Pending alert decisions make a checkpoint due: they are sent only once committed.
	due := s.unsaved >= s.every.CheckpointRecords || time.Since(s.saved) >= s.every.CheckpointInterval || len(s.decided) > 0
	if !s.dirty || !(due || force) {
		return nil
	}
	s.mu.Lock()
	data, err := engine.EncodeCheckpoint(s.engine, s.pos)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot checkpoint stream %s: %w", s.cfg.Name, err)
	}
	err = s.store.Update(func(tx *state.Tx) error {
		if err := tx.Put(checkpointBucket, s.cfg.Name, data); err != nil {
			return err
		}
		if s.perf != nil {
			if err := s.perf.Save(tx); err != nil {
				return err
			}
		}
		for _, fn := range s.hooks {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot checkpoint stream %s: %w", s.cfg.Name, err)
	}
	s.madeDurable()
	// Go on from exactly what a restart would load (see checkpoint.go).
	cp, err := engine.DecodeCheckpoint(data, s.engine)
	if err != nil {
		panic("BUG: a checkpoint just written does not decode: " + err.Error())
	}
	s.engine.Restore(cp, false)
	s.unsaved, s.dirty, s.saved = 0, false, time.Now()
	s.mu.Lock()
	s.checkpoints++
	s.mu.Unlock()
	for _, fn := range s.commits {
		fn()
	}
	return nil
}

// madeDurable notes what a checkpoint (or, without a store, a handled batch) made
// durable.
func (s *stream) madeDurable() {
	s.cpSeq++
	s.cpPreds = maps.Clone(s.pos.Next)
	if s.perf != nil {
		s.cpLabels = maps.Clone(s.perf.Next())
		s.perf.Saved()
	}
}

// Stats are a stream's counters. With a state file they count since the state began
// (they are checkpointed with the windows); without one, since start.
type Stats struct {
	// Events is how many messages were decoded into rows.
	Events int64
	// Rejected counts the messages that could not be decoded, by reason.
	Rejected map[string]int64
	// Late is how many events arrived after their window had closed: counted here,
	// merged into no window.
	Late int64
	// Lost is how many messages were deleted from the topic (retention) before they
	// could be read: each loss is also logged as an error.
	Lost int64
	// Checkpoints is how many checkpoints this run has written.
	Checkpoints int64
}

func (s *stream) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Events: s.pos.Events, Late: s.late, Lost: s.pos.Lost, Checkpoints: s.checkpoints,
		Rejected: make(map[string]int64, len(s.pos.Rejected)),
	}
	for r, n := range s.pos.Rejected {
		st.Rejected[string(r)] = n
	}
	if s.cl != nil {
		s.clusterStats(&st)
		st.Late += s.judgedLate.Load()
	}
	return st
}

// messageDecoder turns a batch of messages into an Arrow record of the rows that decoded and
// the messages that did not, with their reasons.
type messageDecoder interface {
	Decode(batch []ingest.Message) (arrow.Record, []ingest.Rejected)
}

// newDecoder is the one switch from a stream's format to its decoder.
func newDecoder(sc *config.Stream, spec ingest.Spec) (messageDecoder, error) {
	spec.MaxMessageBytes = sc.MaxMessageBytes
	mem := memory.DefaultAllocator
	switch sc.Format {
	case "avro":
		r := sc.SchemaRegistry
		opts := []sr.ClientOpt{sr.URLs(r.URLs...)}
		if r.Username != "" {
			opts = append(opts, sr.BasicAuth(r.Username, r.Password))
		}
		client, err := sr.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("schema_registry: %w", err)
		}
		return ingest.NewAvroDecoder(spec, client, mem)
	case "arrow_ipc":
		return ingest.NewArrowIPCDecoder(spec, mem)
	default:
		return ingest.NewJSONDecoder(spec, mem)
	}
}

// KafkaDialer is how every connection to the brokers is made: with the configured TLS
// and SASL, or plainly.
func KafkaDialer(k config.Kafka) (*kafka.Dialer, error) {
	var sec ingest.Security
	if t := k.TLS; t != nil {
		tc, err := ingest.TLSConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		sec.TLS = tc
	}
	if a := k.SASL; a != nil {
		m, err := ingest.SASLMechanism(a.Mechanism, a.Username, a.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		sec.SASL = m
	}
	return ingest.Dialer(sec)
}
