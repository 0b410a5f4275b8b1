package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftmon/driftmon/internal/alerter"
	"github.com/driftmon/driftmon/internal/resultfile"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/references"
	"github.com/driftmon/driftmon/internal/state"
)

// stream is one configured stream in a single process: its Kafka source, its decoders,
// its engine, its label join, its alert state and its checkpoints. step is its whole
// pipeline, in order.
//
// Checkpoints give exactly-once window results (DESIGN §6). One bbolt transaction per
// checkpoint holds everything that must agree: the engine's open windows, warm-up
// references and clock, each partition's next offset and the counters
// (engine.EncodeCheckpoint), the label join's pending entries, the alert state, and the
// audit entries and outbox items of the decisions made since the last one. Offsets are
// committed to Kafka only afterwards, for lag tools; on start the stream restores its
// checkpoint and the source reads each partition from the offset stored with it, so
// every event is in the windows exactly once. After a kill -9 the windows closed
// between the last checkpoint and the crash close again after the restart — the same
// windows with the same rows — and are reported a second time; alert ids are stable
// (alerting.AlertID), so Slack updates and webhook receivers deduplicate them.
type stream struct {
	cfg     *config.Stream
	log     *slog.Logger
	src     source
	dec     *batchDecoder
	engine  *engine.Engine
	sink    *sink
	results *resultfile.Log
	// store is the state file; nil: nothing survives a restart, and delivery is at
	// least once. alertStore is where alert decisions and handed-over references are
	// recorded: store, or without one the outbox's scratch file.
	store, alertStore *state.Store
	// handoversChanged says that the API changed the references handed over for the
	// stream's versions: the next step gives them to the engine (syncHandovers).
	handoversChanged atomic.Bool
	verdicts         *alerter.Verdicts
	progress
	every schedule
	stash []engine.Result // results of windows closed by a rebalance, not yet reported
	// preds is what the latest checkpoint made durable of the predictions' source.
	preds  offsets
	labels *labelSide // nil without labels
	sight  *sight

	// work is held by whichever source's goroutine works on the stream: the
	// predictions' or the labels'. Everything above is owned by its holder, but
	// progress is read by other goroutines too.
	work sync.Mutex
}

// progress is how far a stream has read (pos) and what it counted on the way. The
// counters are guarded by mu, for Stats, the sight and the loss counter on other
// goroutines; pos.Next is the stream.work holder's.
type progress struct {
	mu          sync.Mutex
	pos         *engine.Position
	late        int64
	checkpoints int64
}

// labelSide is a stream's late labels: the join, their source, and what the latest
// checkpoint made durable of it.
type labelSide struct {
	join     *labels.Join
	src      source
	scoreCol string
	minRows  int64
	durable  offsets
	skip     []int // scratch: the rows of a run the engine refused, which the join skips
}

func newStream(cfg *config.Config, sc *config.Stream, log *slog.Logger, out *sink) (*stream, error) {
	eng, dialer, dec, err := newReading(cfg, sc, log)
	if err != nil {
		return nil, err
	}
	s := &stream{cfg: sc, log: log, dec: dec, engine: eng, sink: out, every: newSchedule(cfg.State), progress: progress{pos: engine.NewPosition()},
		sight: newSight(sc)}
	if s.src, err = newSource(cfg, sc.Topic, cfg.Kafka.GroupID, dialer, log, s.countLoss); err != nil {
		return nil, err
	}
	if sc.Labels != nil {
		ls := &labelSide{scoreCol: sc.Labels.Prediction, minRows: sc.Labels.MinRows}
		if ls.join, err = labels.New(sc, eng.DetectorOptions()); err != nil {
			return nil, err
		}
		// A group of its own: the labels' partitions are assigned apart from the
		// predictions', and a rebalance of one does not stop the other.
		ls.src, err = newSource(cfg, sc.Labels.Topic, cfg.Kafka.GroupID+"-labels", dialer, log.With("topic", sc.Labels.Topic),
			func(l ingest.DataLoss) { ls.join.AddLost(l.To - l.From) })
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		s.labels = ls
	}
	return s, nil
}

// run restores the stream's checkpoint from store (nil: none, nothing is kept) and its
// alert state from alertStore, and consumes until ctx is done.
func (s *stream) run(ctx context.Context, store, alertStore *state.Store) error {
	s.store, s.alertStore = store, alertStore
	if err := s.restore(); err != nil {
		return err
	}
	v, err := s.sink.alerter.Restore(alertStore, s.cfg.Name)
	if err != nil {
		return err
	}
	s.verdicts = v
	s.sight.start(s.seen())
	if s.results, err = resultfile.Open(); err != nil {
		return err
	}
	defer s.results.Close()
	defer s.dec.close()
	if s.labels == nil {
		return s.src.Run(ctx, predictions{s})
	}
	// Both sources run until ctx is done or one fails, which stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	labelsDone := make(chan error, 1)
	go func() {
		err := s.labels.src.Run(ctx, labelSource{s})
		cancel()
		labelsDone <- err
	}()
	err = s.src.Run(ctx, predictions{s})
	cancel()
	return errors.Join(err, <-labelsDone)
}

// restore loads the references handed over for the stream's versions, then the
// stream's checkpoint, if the store has one.
func (s *stream) restore() error {
	if err := s.syncHandovers(); err != nil {
		return err
	}
	if s.store == nil {
		return nil
	}
	s.every.saved = time.Now()
	cp, err := loadCheckpoint(s.store, s.cfg.Name, s.engine, s.log)
	if err != nil || cp == nil {
		return err
	}
	if s.labels != nil {
		if err := s.labels.join.Restore(s.store, time.Now()); err != nil {
			return err
		}
	}
	// Checkpoint again soon, so that the group (perhaps a new one) learns the
	// offsets: lag tools read them there.
	s.every.dirty = true
	s.mu.Lock()
	s.pos = cp.Pos
	s.late = s.engine.Late()
	s.mu.Unlock()
	return nil
}

// step is one turn of the stream's pipeline, on the goroutine of whichever source
// delivered (holding work), in this order:
//
//  1. read: preds (predictions) or labs (labels) from the Kafka sources; an empty
//     batch only lets the wall clock act (idle partitions); references handed over
//     since the last step reach the engine first (syncHandovers);
//  2. decode: each partition's run of preds into an Arrow record (batchDecoder);
//     what does not decode is counted and set aside;
//  3. feed: the rows to the engine and to the label join; references the engine read
//     from reference.per_version files for new versions are stored;
//  4. close and judge: the engine closes the windows the watermark has passed and
//     compares each with its reference; the join judges the windows labels revised;
//  5. report: results file, OnWindow, log, alert policy. Before recording: a window
//     judged but not yet recorded when the process dies is judged again after the
//     restart with the same result (and reported twice), never lost;
//  6. record: when a checkpoint is due, one transaction (record);
//  7. hand out: once it has committed, the outbox delivers the decisions (record),
//     and the source commits to Kafka the offsets the handler returns.
func (s *stream) step(preds, labs []ingest.Message) error {
	if s.handoversChanged.Swap(false) {
		if err := s.syncHandovers(); err != nil {
			return err
		}
	}
	results := s.stash
	s.stash = nil
	if len(preds) == 0 {
		results = append(results, s.engine.Tick()...)
	} else {
		// Runs decode in parallel; their rows reach the engine in the batch's order, so
		// the windows, and everything after them, are what one decoder would give.
		for _, d := range s.dec.decode(preds) {
			results = append(results, s.feed(d)...)
		}
		s.dec.done()
		for _, m := range preds {
			s.pos.Next[m.Partition] = m.Offset + 1
		}
		s.every.add(len(preds))
	}
	// A version handed over by the API meanwhile keeps the API's, at the next sync.
	handedOver, err := references.StoreRead(s.alertStore, s.cfg.Name, s.engine.NewlyRead())
	if err != nil {
		return err
	}
	if handedOver {
		s.handoversChanged.Store(true)
	}
	var perf []labels.Result
	if s.labels != nil {
		if len(labs) > 0 {
			s.labels.join.AddLabels(labs)
			s.every.add(len(labs))
		}
		perf = s.labels.join.Advance(s.engine.Clock().Watermark(), time.Now())
	}
	if len(results) > 0 || len(perf) > 0 || s.sink.alerter.SilencesChanged(s.verdicts) {
		s.every.dirty = true
	}
	blind := false
	if total, bad := s.seen(); len(results) > 0 {
		blind = s.sight.closed(total, bad)
	} else if s.sight.stalled(total) {
		s.stalled()
	}
	s.sink.windows(s.results, s.verdicts, results, s.lost(), blind)
	if s.labels != nil {
		s.sink.performance(s.results, s.verdicts, perf, s.labels.minRows)
	}
	return s.record(false)
}

// syncHandovers gives the stream's engine the references its store holds now; one that
// cannot be used is logged, and its version falls back.
func (s *stream) syncHandovers() error {
	recs, err := references.Records(s.alertStore, s.cfg.Name)
	if err != nil {
		return err
	}
	if err := s.engine.SyncHandovers(recs); err != nil {
		s.log.Error("a handed-over reference in the state cannot be used; its version falls back", "err", err)
	}
	return nil
}

// feed gives a decoded run's rows to the engine and the label join, counts them and
// its rejections, releases its record, and returns the results of the windows that
// closed.
func (s *stream) feed(d decoded) []engine.Result {
	defer d.rec.Release()
	results := s.engine.ProcessPartitions(d.rec, s.dec.partitions(d))
	refused := s.engine.Refused()
	s.dec.setAside(d, refused)
	if s.labels != nil {
		skip := s.labels.skip[:0]
		for _, f := range refused {
			skip = append(skip, f.Row)
		}
		s.labels.skip = skip
		s.labels.join.AddPredictions(d.rec, d.rec.Column(0).(*array.Int64).Int64Values(), s.labels.scoreCol, skip)
	}
	late := s.engine.Late()
	s.mu.Lock()
	s.pos.Count(d.rec.NumRows(), d.rejected, refused)
	s.late = late
	s.mu.Unlock()
	return results
}

// record writes a checkpoint when one is due (or when force, if anything changed):
// the engine's windows and offsets, the label join, the alert state and the audit
// entries and outbox items of the decisions since the last one, in one transaction.
// Then it hands out: the outbox is woken and every offset handled is durable (for the
// sources to commit). Without a state file, decisions are recorded on their own and
// every batch is "durable" once handled: offsets go to Kafka right away, delivery is
// at least once.
func (s *stream) record(force bool) error {
	al := s.sink.alerter
	if s.store == nil {
		if len(s.verdicts.Decided) > 0 {
			if err := s.alertStore.Update(func(tx *state.Tx) error { return al.Record(tx, s.verdicts) }); err != nil {
				return err
			}
			al.Recorded(s.verdicts)
		}
		s.every.unsaved, s.every.dirty = 0, false
		s.madeDurable()
		return nil
	}
	if !s.every.due(force, len(s.verdicts.Decided) > 0) {
		return nil
	}
	s.mu.Lock()
	data, err := engine.EncodeCheckpoint(s.engine, s.pos)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot checkpoint stream %s: %w", s.cfg.Name, err)
	}
	err = saveCheckpoint(s.store, s.cfg.Name, s.engine, data, func(tx *state.Tx) error {
		if s.labels != nil {
			if err := s.labels.join.Save(tx); err != nil {
				return err
			}
		}
		return al.Record(tx, s.verdicts)
	})
	if err != nil {
		return err
	}
	s.madeDurable()
	s.every.done()
	s.mu.Lock()
	s.checkpoints++
	s.mu.Unlock()
	al.Recorded(s.verdicts)
	return nil
}

// madeDurable notes what a checkpoint (or, without a store, a handled batch) made
// durable.
func (s *stream) madeDurable() {
	s.preds.set(s.pos.Next)
	if s.labels != nil {
		s.labels.durable.set(s.labels.join.Next())
		s.labels.join.Saved()
	}
}

// seen returns the messages the stream has read so far, and how many of them came late
// or were refused, for its sight.
func (s *stream) seen() (total, bad int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos.Seen(s.late)
}

// stalled raises the blind alert of a stream that reads events but has closed no
// window for limits.blind_windows window lengths.
func (s *stream) stalled() {
	total, bad := s.seen()
	s.log.Warn("events are read but no window has closed: the stream is blind",
		"for", s.sight.stall, "events", total, "late_or_refused", bad, "watermark", s.engine.Watermark())
	s.sink.alerter.ObserveStall(s.verdicts, s.engine)
	s.every.dirty = true
}

// lost is how many messages were deleted before they were read, so far.
func (s *stream) lost() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos.Lost
}

// countLoss counts messages deleted before they were read; any goroutine.
func (s *stream) countLoss(l ingest.DataLoss) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos.Lost += l.To - l.From
}

// predictions is the stream as its predictions' Kafka source sees it.
type predictions struct{ s *stream }

// Assign starts each partition where the stream's windows are: the checkpointed
// offsets after a restart, the in-memory ones after a rebalance. The stream keeps the
// offsets of partitions taken away from it: should one come back, it goes on from
// where its events in the windows end.
func (h predictions) Assign(_ context.Context, partitions []int) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	parts, next := startFrom(partitions, s.pos.Next)
	// A partition no longer read may have been the one holding windows open.
	s.stash = append(s.stash, s.engine.Assign(parts)...)
	s.log.Info("reading partitions", "topic", s.cfg.Topic, "partitions", partitions, "from", next)
	return next, nil
}

// Handle runs the pipeline on a batch and returns the offsets a checkpoint has made
// durable since the source last had them.
func (h predictions) Handle(_ context.Context, batch []ingest.Message) (map[int]int64, error) {
	return h.s.turn(&h.s.preds, func() error { return h.s.step(batch, nil) })
}

// Close writes the last checkpoint.
func (h predictions) Close(context.Context) (map[int]int64, error) {
	return h.s.turn(&h.s.preds, func() error { return h.s.record(true) })
}

// labelSource is the stream as its labels' Kafka source sees it.
type labelSource struct{ s *stream }

// Assign starts each labels partition where the checkpointed join left it.
func (h labelSource) Assign(_ context.Context, partitions []int) (map[int]int64, error) {
	s := h.s
	s.work.Lock()
	defer s.work.Unlock()
	parts, next := startFrom(partitions, s.labels.join.Next())
	s.labels.join.Assign(parts, time.Now())
	s.log.Info("reading label partitions", "topic", s.cfg.Labels.Topic, "partitions", partitions, "from", next)
	return next, nil
}

// Handle runs the pipeline on a batch of labels: it revises the windows they belong to
// and lets the wall clock act on the predictions' windows.
func (h labelSource) Handle(_ context.Context, batch []ingest.Message) (map[int]int64, error) {
	return h.s.turn(&h.s.labels.durable, func() error { return h.s.step(nil, batch) })
}

// Close writes the last checkpoint.
func (h labelSource) Close(context.Context) (map[int]int64, error) {
	return h.s.turn(&h.s.labels.durable, func() error { return h.s.record(true) })
}

// turn runs work (a step, or the last checkpoint) for one of the stream's sources,
// holding the stream, and returns what the latest checkpoint made durable of that
// source's offsets (durable) that it has not had yet.
func (s *stream) turn(durable *offsets, work func() error) (map[int]int64, error) {
	s.work.Lock()
	defer s.work.Unlock()
	if err := work(); err != nil {
		return nil, err
	}
	return durable.take(), nil
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

// newSource is the Kafka source of one topic of a stream.
func newSource(cfg *config.Config, topic, group string, dialer *kafka.Dialer, log *slog.Logger, onLoss func(ingest.DataLoss)) (source, error) {
	return ingest.NewKafka(ingest.KafkaOptions{
		Brokers:       cfg.Kafka.Brokers,
		Topic:         topic,
		GroupID:       group,
		StartAtLatest: cfg.Kafka.StartOffset == "latest",
		OnDataLoss:    onLoss,
		Dialer:        dialer,
		Logger:        log,
		// In a cluster, a dead process's partitions move after the cluster's timeout.
		SessionTimeout: clusterSession(cfg), RebalanceTimeout: clusterSession(cfg),
	})
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
	// Blind says that the stream reads events but cannot judge them: most of its
	// last windows' events came late or were refused, or no window closed for
	// limits.blind_windows window lengths (a blind alert fires).
	Blind bool
}

func (s *stream) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Events: s.pos.Events, Late: s.late, Lost: s.pos.Lost, Checkpoints: s.checkpoints, Blind: s.sight.blind.Load(),
		Rejected: make(map[string]int64, len(s.pos.Rejected)),
	}
	for r, n := range s.pos.Rejected {
		st.Rejected[string(r)] = n
	}
	return st
}
