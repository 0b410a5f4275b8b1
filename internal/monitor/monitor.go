// Package monitor wires driftmon together and runs it: per stream a Kafka source, the
// decoders, a window engine (internal/engine), the label join (internal/labels), and the
// alerter (internal/alerter), which turns judged windows into recorded alerts. It is
// the one place that maps configuration to implementations.
//
// One process runs a stream (stream.go) whose step is the whole pipeline, in order:
// read, decode, feed, close and judge, report, record, hand out. In a cluster each
// process runs a worker per stream (worker.go), and the elected leader a judge per
// stream (leader.go); internal/cluster holds what they publish and how it is judged.
//
// New checks everything and starts nothing; Run owns every goroutine and returns when
// its context is done. Each stream's sketches are owned by that stream's goroutine
// (influxdata/tdigest is not safe for concurrent use, and even reads mutate it).
//
// It may import every driftmon package; none may import it but cmd, the HTTP API,
// the demo and tests.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/driftmon/driftmon/internal/alerter"
	"github.com/driftmon/driftmon/internal/resultfile"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/outbox"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/references"
	"github.com/driftmon/driftmon/internal/state"
)

// Options are what a Monitor needs besides its config.
type Options struct {
	// Logger receives the monitor's logs; nil discards them.
	Logger *slog.Logger
	// Silences mute alerts (drift, or the performance and objective alerts a silence
	// names; the HTTP API adds and removes them); silenced decisions are audited, not
	// sent. The monitor saves them with the alert state and restores them on start.
	// nil: an empty set of the monitor's own.
	Silences *policy.Silences
	// OnWindow, when set, is called with each closed window's result, on the stream's
	// goroutine, before alerts are sent. It must not block for long, and must not keep
	// the result's profiles beyond the call: they belong to that goroutine.
	OnWindow func(engine.Result)
	// OnPerformance, when set, is called like OnWindow with each performance result
	// of a stream that joins labels: provisional ones as labels arrive, then the final.
	OnPerformance func(labels.Result)
	// OnDelivery, when set, is called after each attempt to deliver a notification to
	// a route (from the outbox's goroutines), with its error (nil when delivered).
	OnDelivery func(route string, a alerting.Alert, err error)
}

// Monitor is a configured driftmon.
type Monitor struct {
	cfg *config.Config
	log *slog.Logger
	// streams are one process's streams; workers, in a cluster, the same streams as
	// this process's share of them. One of the two is empty.
	streams []*stream
	workers []*worker
	sink    sink

	// Set while Run runs (in a cluster, while this process leads), for the API.
	mu       sync.Mutex
	running  *outbox.Outbox
	obStore  *state.Store
	election *cluster.Election
	// refs answers the API's calls on the references handed over per version.
	refs *references.Registry
}

// New checks cfg, loads the baselines it names and builds every part. It starts
// nothing and connects to nothing.
func New(cfg *config.Config, opts Options) (*Monitor, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: log}
	m.sink = sink{onWin: opts.OnWindow, onPerf: opts.OnPerformance, log: log}
	var errs []error
	for i := range cfg.Streams {
		sc := &cfg.Streams[i]
		slog := log.With("stream", sc.Name)
		if cfg.Cluster != nil {
			w, err := newWorker(cfg, sc, slog)
			if err != nil {
				errs = append(errs, fmt.Errorf("streams[%d]: %w", i, err))
				continue
			}
			m.workers = append(m.workers, w)
			continue
		}
		s, err := newStream(cfg, sc, slog, &m.sink)
		if err != nil {
			errs = append(errs, fmt.Errorf("streams[%d]: %w", i, err))
			continue
		}
		m.streams = append(m.streams, s)
	}
	silences := opts.Silences
	if silences == nil {
		silences = &policy.Silences{}
	}
	al, err := alerter.New(cfg, log, silences, opts.OnDelivery)
	if err != nil {
		errs = append(errs, err)
	}
	m.sink.alerter = al
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.refs = references.New(m.referenceStreams(), log)
	return m, nil
}

// referenceStreams are the streams as the reference calls see them: in one process,
// each is told of a change at its next step.
func (m *Monitor) referenceStreams() []references.Stream {
	var out []references.Stream
	for _, s := range m.streams {
		out = append(out, references.Stream{Config: s.cfg, Engine: s.engine,
			Changed: func() { s.handoversChanged.Store(true) }})
	}
	for _, w := range m.workers {
		out = append(out, references.Stream{Config: w.cfg, Engine: w.proto})
	}
	return out
}

// HandOver makes profile (a profile file's bytes) the reference of (model, version)
// of stream, durably (references.Registry.HandOver).
func (m *Monitor) HandOver(ctx context.Context, stream, model, version string, profile []byte) (references.Reference, error) {
	return m.refs.HandOver(ctx, stream, model, version, profile)
}

// Reference says what (model, version) of stream is judged against
// (references.Registry.Reference).
func (m *Monitor) Reference(stream, model, version string) (references.Reference, error) {
	return m.refs.Reference(stream, model, version)
}

// Withdraw deletes the reference handed over for (model, version) of stream
// (references.Registry.Withdraw).
func (m *Monitor) Withdraw(ctx context.Context, stream, model, version string) (references.Reference, error) {
	return m.refs.Withdraw(ctx, stream, model, version)
}

// Stats returns each stream's counters, by stream name. It is safe to call while Run
// runs.
func (m *Monitor) Stats() map[string]Stats {
	out := make(map[string]Stats, len(m.streams)+len(m.workers))
	for _, s := range m.streams {
		out[s.cfg.Name] = s.stats()
	}
	for _, w := range m.workers {
		out[w.cfg.Name] = w.stats()
	}
	return out
}

// LabelStats returns the label join's counters of each stream that joins labels, by
// stream name, as of its latest batch. Safe to call while Run runs.
func (m *Monitor) LabelStats() map[string]labels.Stats {
	out := map[string]labels.Stats{}
	for _, s := range m.streams {
		if s.labels != nil {
			out[s.cfg.Name] = s.labels.join.Published()
		}
	}
	return out
}

// Ready reports why the monitor cannot consume yet (a broker down, a topic missing),
// or nil when every stream's source is reachable. Safe to call while Run runs.
func (m *Monitor) Ready() error {
	var errs []error
	for _, s := range m.streams {
		if err := s.src.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", s.cfg.Name, err))
		}
		if s.labels != nil {
			if err := s.labels.src.Ready(); err != nil {
				errs = append(errs, fmt.Errorf("stream %s labels: %w", s.cfg.Name, err))
			}
		}
	}
	for _, w := range m.workers {
		if err := w.src.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", w.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Run consumes every stream until ctx is done. Alerts still queued when ctx ends get a
// few seconds to be delivered.
func (m *Monitor) Run(ctx context.Context) error {
	if m.cfg.Cluster != nil {
		return m.runCluster(ctx)
	}
	st, err := openState(m.cfg.State)
	if err != nil {
		return err
	}
	defer closeState(st, m.log)
	// The outbox lives in the state file; without one, in a scratch file that is
	// forgotten at exit.
	obStore := st
	if obStore == nil {
		scratch, drop, err := state.OpenScratch("driftmon-outbox-")
		if err != nil {
			return err
		}
		defer drop()
		obStore = scratch
	}
	m.refs.Keep(references.InState(obStore))
	defer m.refs.Keep(nil)
	// Deliveries go on for outboxGrace after the streams stop, so that what the last
	// windows decided is sent; what is still pending then waits in the state file.
	obCtx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOutbox()
	outboxDone, err := m.startOutbox(obCtx, obStore)
	if err != nil {
		return err
	}
	errc := make(chan error, len(m.streams))
	var wg sync.WaitGroup
	for _, s := range m.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("consuming", "stream", s.cfg.Name, "topic", s.cfg.Topic)
			if err := s.run(ctx, st, obStore); err != nil {
				errc <- fmt.Errorf("stream %s: %w", s.cfg.Name, err)
			}
		}()
	}
	wg.Wait()
	time.AfterFunc(outboxGrace, stopOutbox)
	obErr := outboxDone()
	return joinAll(errc, obErr)
}

// joinAll closes errc, whose senders are all done, and joins first with what they sent.
func joinAll(errc chan error, first ...error) error {
	close(errc)
	for err := range errc {
		first = append(first, err)
	}
	return errors.Join(first...)
}

// startOutbox opens the alerter's outbox on store, shows it to the API and delivers
// until ctx ends. done waits for that end, hides the outbox and returns the outbox's
// error.
func (m *Monitor) startOutbox(ctx context.Context, store *state.Store) (done func() error, err error) {
	al := m.sink.alerter
	if err := al.Start(store); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.running, m.obStore = al.Outbox(), store
	m.mu.Unlock()
	ran := make(chan error, 1)
	go func() { ran <- al.Run(ctx) }()
	return func() error {
		err := <-ran
		m.mu.Lock()
		m.running, m.obStore = nil, nil
		m.mu.Unlock()
		return err
	}, nil
}

// sink is where judged windows go, in this order: the results file, OnWindow (the
// API, the demo), the log, and the alert policy, whose decisions wait in the stream's
// verdicts until they are recorded.
type sink struct {
	onWin   func(engine.Result)
	onPerf  func(labels.Result)
	log     *slog.Logger
	alerter *alerter.Alerter
}

// windows reports closed windows' results; lost is the stream's messages deleted
// before they were read, so far, for the data-loss alert, and blind says that most of
// their events came late or were refused, for the blind alert.
func (k *sink) windows(rl *resultfile.Log, v *alerter.Verdicts, results []engine.Result, lost int64, blind bool) {
	rl.Write(results)
	for _, r := range results {
		if k.onWin != nil {
			k.onWin(r)
		}
		args := []any{"stream", r.Stream, "model", r.Model, "version", r.ModelVersion,
			"start", r.Start, "end", r.End, "rows", r.Rows, "warmup", r.Warmup, "drifted", r.Drifted(),
			"quality_violations", r.Violations()}
		if len(r.Missing) > 0 {
			args = append(args, "missing_partitions", r.Missing)
		}
		if b := r.Breached(); len(b) > 0 {
			args = append(args, "objectives_breached", b)
		}
		k.log.Info("window closed", args...)
		k.alerter.Observe(v, r, lost, blind)
	}
}

// performance reports the performance windows that labels revised; minRows is
// labels.min_rows.
func (k *sink) performance(rl *resultfile.Log, v *alerter.Verdicts, results []labels.Result, minRows int64) {
	rl.WritePerformance(results)
	for _, r := range results {
		if k.onPerf != nil {
			k.onPerf(r)
		}
		// Every batch revises the open windows: only the result the policy judges,
		// and the final one, are worth a line at info.
		level := slog.LevelDebug
		if r.Decided || r.Final {
			level = slog.LevelInfo
		}
		k.log.Log(context.Background(), level, "performance", "stream", r.Stream, "model", r.Model, "version", r.ModelVersion,
			"start", r.Start, "status", r.Status(), "labelled", r.Labelled, "predictions", r.Predictions,
			"metric", r.Verdict.Metric, "value", r.Verdict.Value, "degraded", r.Verdict.Degraded)
		k.alerter.ObservePerformance(v, r, minRows)
	}
}

// Role is what this process does: "single" (one process reads everything), or in a
// cluster "leader" (it also judges windows and alerts) or "follower". Safe to call
// while Run runs.
func (m *Monitor) Role() string {
	m.mu.Lock()
	el := m.election
	m.mu.Unlock()
	switch {
	case m.cfg.Cluster == nil:
		return "single"
	case el != nil && el.Leader():
		return "leader"
	default:
		return "follower"
	}
}

// runCluster is Run in a cluster: every stream's worker reads its share of the
// partitions and publishes their windows, while the election makes one process the
// leader.
func (m *Monitor) runCluster(ctx context.Context) error {
	cc := m.cfg.Cluster
	dialer, err := KafkaDialer(m.cfg.Kafka)
	if err != nil {
		return err
	}
	timeout := clusterSession(m.cfg)
	opts := cluster.Options{Brokers: m.cfg.Kafka.Brokers, Topic: cc.PartialsTopic, Dialer: dialer,
		Logger: m.log.With("component", "cluster"), ReplicationFactor: cc.ReplicationFactor,
		SessionTimeout: timeout, RebalanceTimeout: timeout}
	lg, err := cluster.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("cluster.partials_topic: %w", err)
	}
	defer lg.Close()
	m.refs.Keep(references.InCluster(lg))
	defer m.refs.Keep(nil)
	el := cluster.NewElection(opts, m.cfg.Kafka.GroupID+"-leader")
	m.mu.Lock()
	m.election = el
	m.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(m.workers)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := el.Run(ctx, func(ctx context.Context) error { return m.lead(ctx, lg) }); err != nil {
			errc <- fmt.Errorf("leader election: %w", err)
			cancel()
		}
	}()
	for _, w := range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("consuming a share of the partitions", "stream", w.cfg.Name, "topic", w.cfg.Topic)
			if err := w.run(ctx, lg); err != nil {
				errc <- fmt.Errorf("stream %s: %w", w.cfg.Name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	return joinAll(errc)
}

// outboxGrace is how long deliveries go on after the streams have stopped.
const outboxGrace = 3 * time.Second
