// Package monitor wires driftmon together: one Kafka source, decoder, window tracker and
// reference per stream, the detectors, and the notifiers. It is the one place that maps
// configuration to implementations.
//
// New checks everything and starts nothing; Run owns every goroutine and returns when
// its context is done. Each stream's sketches are owned by that stream's goroutine
// (influxdata/tdigest is not safe for concurrent use, and even reads mutate it).
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/outbox"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

// Options are what a Monitor needs besides its config.
type Options struct {
	// Logger receives the monitor's logs; nil discards them.
	Logger *slog.Logger
	// Silences mute drift alerts (the HTTP API adds and removes them); silenced
	// decisions are audited, not sent. The monitor saves them with the alert state
	// and restores them on start. nil: an empty set of the monitor's own.
	Silences *policy.Silences
	// OnWindow, when set, is called with each closed window's result, on the stream's
	// goroutine, before alerts are sent. It must not block for long, and must not keep
	// the result's profiles beyond the call: they belong to that goroutine.
	OnWindow func(Result)
	// OnPerformance, when set, is called like OnWindow with each performance result
	// of a stream that joins labels: provisional ones as labels arrive, then the final.
	OnPerformance func(PerformanceResult)
	// OnDelivery, when set, is called after each attempt to deliver a notification to
	// a route (from the outbox's goroutines), with its error (nil when delivered).
	OnDelivery func(route string, a alerting.Alert, err error)
}

// Result is what one closed window showed.
type Result struct {
	Stream, Model, ModelVersion string
	Start, End                  time.Time
	Rows                        int64
	// Reference describes what the window was compared with. Warmup is true when the
	// window became (part of) the reference instead of being compared.
	Reference string
	Warmup    bool
	Findings  []detectors.Finding
	// Quality are the window's data-quality checks against the reference: null, NaN
	// and type-error rates, out-of-range and new-category shares, distinct counts, and
	// (event-time windows with a warm-up reference) volume.
	Quality []detectors.QualityFinding
	// Missing are, in a cluster, the partitions that were idle and had not closed the
	// window when the leader judged it: their rows, should they come, count as late.
	Missing []int32
	// Profile and ReferenceProfile are the window's and the reference's sketches, for
	// OnWindow callbacks that draw distributions. They are valid only during the
	// callback; ReferenceProfile is nil for warm-up windows.
	Profile, ReferenceProfile *sketch.Profile
}

// Drifted is the names of the features that drifted, in feature order.
func (r Result) Drifted() []string {
	var names []string
	for _, f := range r.Findings {
		if f.Verdict == detectors.Drift {
			names = append(names, f.Feature)
		}
	}
	return names
}

// Violations is the summaries of the data-quality checks the window failed.
func (r Result) Violations() []string {
	var out []string
	for _, q := range r.Quality {
		if q.Verdict == detectors.Violation {
			out = append(out, q.Summary())
		}
	}
	return out
}

// Monitor is a configured driftmon.
type Monitor struct {
	cfg     *config.Config
	log     *slog.Logger
	streams []*stream
	alerter *alerter
	onWin   func(Result)
	onPerf  func(PerformanceResult)

	// Set while Run runs (in a cluster, while this process leads), for the API.
	mu       sync.Mutex
	running  *outbox.Outbox
	obStore  *state.Store
	election *cluster.Election
}

// New checks cfg, loads the baselines it names and builds every part. It starts
// nothing and connects to nothing.
func New(cfg *config.Config, opts Options) (*Monitor, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: log, onWin: opts.OnWindow, onPerf: opts.OnPerformance}
	var errs []error
	for i := range cfg.Streams {
		s, err := newStream(cfg, &cfg.Streams[i], log.With("stream", cfg.Streams[i].Name))
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
	al, err := newAlerter(cfg, log, silences, opts.OnDelivery)
	if err != nil {
		errs = append(errs, err)
	}
	m.alerter = al
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Stats returns each stream's counters, by stream name. It is safe to call while Run
// runs.
func (m *Monitor) Stats() map[string]Stats {
	out := make(map[string]Stats, len(m.streams))
	for _, s := range m.streams {
		out[s.cfg.Name] = s.stats()
	}
	return out
}

// LabelStats returns the label join's counters of each stream that joins labels, by
// stream name, as of its latest batch. Safe to call while Run runs.
func (m *Monitor) LabelStats() map[string]LabelStats {
	out := map[string]LabelStats{}
	for _, s := range m.streams {
		if s.perf == nil {
			continue
		}
		if st := s.perf.published.Load(); st != nil {
			out[s.cfg.Name] = *st
		} else {
			out[s.cfg.Name] = LabelStats{Rejected: map[string]int64{}}
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
		if s.labelSrc != nil {
			if err := s.labelSrc.Ready(); err != nil {
				errs = append(errs, fmt.Errorf("stream %s labels: %w", s.cfg.Name, err))
			}
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
		scratch, drop, err := scratchStore()
		if err != nil {
			return err
		}
		defer drop()
		obStore = scratch
	}
	al := m.alerter
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
		if err := al.restore(obStore, s); err != nil {
			return err
		}
		if st != nil {
			s.onCheckpoint(func(tx *state.Tx) error { return al.record(tx, s) })
			s.onCommit(func() { s.decided = nil; al.wake() })
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("consuming", "stream", s.cfg.Name, "topic", s.cfg.Topic)
			err := s.run(ctx, st, func(ctx context.Context, batch []ingest.Message) error {
				m.handOut(s, s.handle(batch))
				for _, r := range s.takePerformance() {
					if m.onPerf != nil {
						m.onPerf(r)
					}
					// Every batch revises the open windows: only the result the policy
					// judges, and the final one, are worth a line at info.
					level := slog.LevelDebug
					if r.Decided || r.Final {
						level = slog.LevelInfo
					}
					m.log.Log(ctx, level, "performance", "stream", r.Stream, "model", r.Model, "version", r.ModelVersion,
						"start", r.Start, "status", r.Status(), "labelled", r.Labelled, "predictions", r.Predictions,
						"metric", r.Verdict.Metric, "value", r.Verdict.Value, "degraded", r.Verdict.Degraded)
					al.observePerformance(s, r)
				}
				if st == nil && len(s.decided) > 0 {
					// No checkpoints: record the decisions on their own.
					if err := obStore.Update(func(tx *state.Tx) error { return al.record(tx, s) }); err != nil {
						return err
					}
					s.decided = nil
					al.wake()
				}
				return nil
			})
			if err != nil {
				errc <- fmt.Errorf("stream %s: %w", s.cfg.Name, err)
			}
		}()
	}
	wg.Wait()
	time.AfterFunc(outboxGrace, stopOutbox)
	obErr := outboxDone()
	close(errc)
	errs := []error{obErr}
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// startOutbox opens the alerter's outbox on store, shows it to the API and delivers
// until ctx ends. done waits for that end, hides the outbox and returns the outbox's
// error.
func (m *Monitor) startOutbox(ctx context.Context, store *state.Store) (done func() error, err error) {
	al := m.alerter
	if err := al.start(store); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.running, m.obStore = al.outbox, store
	m.mu.Unlock()
	ran := make(chan error, 1)
	go func() { ran <- al.run(ctx) }()
	return func() error {
		err := <-ran
		m.mu.Lock()
		m.running, m.obStore = nil, nil
		m.mu.Unlock()
		return err
	}, nil
}

// handOut gives closed windows' results to OnWindow, the log and the alert policy.
func (m *Monitor) handOut(s *stream, results []Result) {
	for _, r := range results {
		if m.onWin != nil {
			m.onWin(r)
		}
		args := []any{"stream", r.Stream, "model", r.Model, "version", r.ModelVersion,
			"start", r.Start, "end", r.End, "rows", r.Rows, "warmup", r.Warmup, "drifted", r.Drifted(),
			"quality_violations", r.Violations()}
		if len(r.Missing) > 0 {
			args = append(args, "missing_partitions", r.Missing)
		}
		m.log.Info("window closed", args...)
		m.alerter.observe(s, r)
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

// runCluster is Run in a cluster: every stream reads its share of the partitions and
// publishes their windows, while the election makes one process the leader.
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
	el := cluster.NewElection(opts, m.cfg.Kafka.GroupID+"-leader")
	m.mu.Lock()
	m.election = el
	m.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(m.streams)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := el.Run(ctx, func(ctx context.Context) error { return m.lead(ctx, lg) }); err != nil {
			errc <- fmt.Errorf("leader election: %w", err)
			cancel()
		}
	}()
	for _, s := range m.streams {
		s.cl.log = lg
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("consuming a share of the partitions", "stream", s.cfg.Name, "topic", s.cfg.Topic)
			err := s.run(ctx, nil, func(_ context.Context, batch []ingest.Message) error {
				s.handle(batch) // what closes here are partials, published at checkpoints
				return nil
			})
			if err != nil {
				errc <- fmt.Errorf("stream %s: %w", s.cfg.Name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// defaultClusterSession is cluster.session_timeout's default.
const defaultClusterSession = 10 * time.Second

// outboxGrace is how long deliveries go on after the streams have stopped.
const outboxGrace = 3 * time.Second
