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
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/sketch"
)

// Notifier delivers an alert to people or machines. Implementations retry what is worth
// retrying themselves and return the final error.
type Notifier interface {
	Notify(ctx context.Context, a alerting.Alert) error
}

// Route is a notifier with the policy that decides which alerts it gets.
type Route struct {
	// Name identifies the route in logs ("slack", "webhook retrain").
	Name     string
	Notifier Notifier
	// MinFeatures is how many features must drift in one window for this route to be
	// told. 0 or 1: any drift.
	MinFeatures int
}

// Options are what a Monitor needs besides its config.
type Options struct {
	// Logger receives the monitor's logs; nil discards them.
	Logger *slog.Logger
	// Routes replace the notifiers built from the config when non-nil (the demo wires
	// its local sinks this way).
	Routes []Route
	// OnWindow, when set, is called with each closed window's result, on the stream's
	// goroutine, before alerts are sent. It must not block for long, and must not keep
	// the result's profiles beyond the call: they belong to that goroutine.
	OnWindow func(Result)
	// OnDelivery, when set, is called after each attempt to deliver an alert to a
	// route, with the final error (nil when delivered).
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
	routes  []Route
	onWin   func(Result)
	onDel   func(string, alerting.Alert, error)
}

// New checks cfg, loads the baselines it names and builds every part. It starts
// nothing and connects to nothing.
func New(cfg *config.Config, opts Options) (*Monitor, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: log, onWin: opts.OnWindow, onDel: opts.OnDelivery}
	var errs []error
	for i := range cfg.Streams {
		s, err := newStream(cfg, &cfg.Streams[i], log.With("stream", cfg.Streams[i].Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("streams[%d]: %w", i, err))
			continue
		}
		m.streams = append(m.streams, s)
	}
	routes := opts.Routes
	if routes == nil {
		r, err := routesFromConfig(cfg.Alerting, log)
		if err != nil {
			errs = append(errs, err)
		}
		routes = r
	}
	m.routes = routes
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

// Ready reports why the monitor cannot consume yet (a broker down, a topic missing),
// or nil when every stream's source is reachable. Safe to call while Run runs.
func (m *Monitor) Ready() error {
	var errs []error
	for _, s := range m.streams {
		if err := s.src.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", s.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Run consumes every stream until ctx is done. Alerts still queued when ctx ends get a
// few seconds to be delivered.
func (m *Monitor) Run(ctx context.Context) error {
	st, err := openState(m.cfg.State)
	if err != nil {
		return err
	}
	defer closeState(st, m.log)
	alerts := make(chan alerting.Alert, 64)
	var dispatchDone sync.WaitGroup
	dispatchDone.Add(1)
	go func() {
		defer dispatchDone.Done()
		m.dispatch(ctx, alerts)
	}()

	errc := make(chan error, len(m.streams))
	var wg sync.WaitGroup
	for _, s := range m.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("consuming", "stream", s.cfg.Name, "topic", s.cfg.Topic)
			err := s.run(ctx, st, func(ctx context.Context, batch []ingest.Message) error {
				for _, r := range s.handle(batch) {
					if m.onWin != nil {
						m.onWin(r)
					}
					m.log.Info("window closed", "stream", r.Stream, "model", r.Model, "version", r.ModelVersion,
						"start", r.Start, "end", r.End, "rows", r.Rows, "warmup", r.Warmup, "drifted", r.Drifted(),
						"quality_violations", r.Violations())
					if a, ok := r.Alert(m.cfg.Alerting.DashboardURL); ok {
						select {
						case alerts <- a:
						case <-ctx.Done():
							return nil
						}
					}
				}
				return nil
			})
			if err != nil {
				errc <- fmt.Errorf("stream %s: %w", s.cfg.Name, err)
			}
		}()
	}
	wg.Wait()
	close(alerts)
	dispatchDone.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// dispatch sends each alert to every route that wants it. Sends in flight or queued
// when ctx ends get dispatchGrace to finish, so a shutdown does not cut a delivery that
// the receiver has already half taken.
func (m *Monitor) dispatch(ctx context.Context, alerts <-chan alerting.Alert) {
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(dispatchGrace, cancelSend) })
	defer stop()
	for a := range alerts {
		for _, r := range m.routes {
			if len(a.Drifted) < max(r.MinFeatures, 1) {
				continue
			}
			err := r.Notifier.Notify(sendCtx, a)
			if m.onDel != nil {
				m.onDel(r.Name, a, err)
			}
			if err != nil {
				m.log.Error("cannot deliver alert", "route", r.Name, "alert", a.ID, "err", err)
				continue
			}
			m.log.Info("alert delivered", "route", r.Name, "alert", a.ID, "model", a.Model, "drifted", len(a.Drifted))
		}
	}
}

// dispatchGrace is how long deliveries may go on after the monitor is told to stop.
const dispatchGrace = 5 * time.Second
