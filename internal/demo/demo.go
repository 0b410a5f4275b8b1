// Package demo runs all of driftmon in one process with nothing to install: an embedded
// Kafka-protocol broker (kfake), a traffic generator imitating a credit model's
// inference log that shifts some features after a delay, the monitor, a Slack-compatible
// sink that prints what a person would read, and a retraining-webhook receiver that
// verifies signatures.
//
// It wires the real monitor and HTTP server to those fakes. Only cmd/driftmon imports
// it; it never imports internal/backtest.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/httpapi"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/monitor"
)

// Options shape a demo run.
type Options struct {
	// Rate is events per second. Default 500.
	Rate int
	// ShiftAfter is how long the traffic stays like the reference before some
	// features shift. Default 30s.
	ShiftAfter time.Duration
	// Window is the event-time window size. Default 10s.
	Window time.Duration
	// SlowAfter is how long until the model's inference slows down (its latency
	// doubles, breaching the p99 objective) for SlowFor. Defaults: ShiftAfter plus
	// two windows, for two windows. Negative: never.
	SlowAfter, SlowFor time.Duration
	// ExitAfterAlert ends the run once the first alert has reached both the Slack sink
	// and the webhook receiver, and WindowsAfterAlert more windows have closed: those
	// show the episode going on without another retraining call.
	ExitAfterAlert    bool
	WindowsAfterAlert int
	// Out receives what a person watching the demo reads; Logger the monitor's logs.
	Out    io.Writer
	Logger *slog.Logger
	// Seed makes the traffic reproducible.
	Seed uint64
	// HTTPAddr is where the dashboard, /api/v1 and /metrics are served. Default
	// "127.0.0.1:8080"; "127.0.0.1:0" picks a free port.
	HTTPAddr string
	// APIToken lets API clients create and delete silences; empty: read-only.
	APIToken string
}

const (
	topic        = "credit-inferences"
	labelsTopic  = "credit-outcomes"
	slackToken   = "xoxb-driftmon-demo"
	slackChan    = "#ml-alerts"
	retrainPath  = "/retrain"
	rollbackPath = "/rollback"
)

// slowDown says when the generator's latency doubles.
func slowDown(g *generator) string {
	if g.slowAt.IsZero() {
		return "never"
	}
	return "from " + g.slowAt.Format("15:04:05") + " to " + g.slowUntil.Format("15:04:05")
}

// Run runs the demo until ctx is done or, with ExitAfterAlert, until the first alert has
// arrived at both sinks.
func Run(ctx context.Context, opts Options) error {
	if opts.Rate <= 0 {
		opts.Rate = 500
	}
	if opts.ShiftAfter <= 0 {
		opts.ShiftAfter = 30 * time.Second
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Second
	}
	if opts.SlowAfter == 0 {
		opts.SlowAfter = opts.ShiftAfter + 2*opts.Window
	}
	if opts.SlowFor <= 0 {
		opts.SlowFor = 2 * opts.Window
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:8080"
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	out := &lockedWriter{w: opts.Out}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic, labelsTopic))
	if err != nil {
		return fmt.Errorf("cannot start the embedded broker: %w", err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	slackSink := slacktest.NewServer(slacktest.Options{Token: slackToken, Out: out, Logger: opts.Logger})
	defer slackSink.Close()

	secret, err := webhook.GenerateSecret()
	if err != nil {
		return err
	}
	retrained := make(chan struct{}, 1)
	receiver, err := webhook.NewReceiver(webhook.ReceiverOptions{
		Secret: secret,
		OnDelivery: func(d webhook.Delivery) {
			fmt.Fprint(out, retrainingCall(d))
			select {
			case retrained <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("BUG: %w", err)
	}
	rollback, err := webhook.NewReceiver(webhook.ReceiverOptions{
		Secret:     secret,
		OnDelivery: func(d webhook.Delivery) { fmt.Fprint(out, rollbackCall(d)) },
	})
	if err != nil {
		return fmt.Errorf("BUG: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(retrainPath, receiver)
	mux.Handle(rollbackPath, rollback)
	hooks := httptest.NewServer(mux)
	defer hooks.Close()

	// Listen first: the alerts link to the dashboard's real address.
	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot serve the dashboard: %w", err)
	}
	defer ln.Close() // Serve closes it too; this covers the early returns
	dashboard := "http://" + ln.Addr().String() + "/"

	cfg, err := config.Parse([]byte(configYAML(brokers, slackSink.URL(), hooks.URL, dashboard, opts.Window, opts.Rate)),
		config.ParseOptions{LookupEnv: func(name string) (string, bool) {
			switch name {
			case "SLACK_BOT_TOKEN":
				return slackToken, true
			case "RETRAIN_SECRET":
				return secret, true
			}
			return "", false
		}})
	if err != nil {
		return fmt.Errorf("BUG: the demo's own config is invalid: %w", err)
	}
	var api *httpapi.Server // set before mon.Run calls the callbacks
	silences := &policy.Silences{}
	judged := make(chan struct{}, 1024) // a compared window closed
	mon, err := monitor.New(cfg, monitor.Options{
		Logger: opts.Logger,
		OnWindow: func(r engine.Result) {
			printWindow(out, r)
			api.Record(r)
			if !r.Warmup {
				select {
				case judged <- struct{}{}:
				default:
				}
			}
		},
		OnPerformance: func(r labels.Result) {
			printPerformance(out, r)
			api.RecordPerformance(r)
		},
		OnDelivery: func(route string, a alerting.Alert, err error) { api.RecordDelivery(route, a, err) },
		Silences:   silences,
	})
	if err != nil {
		return err
	}
	api = httpapi.New(httpapi.Options{Logger: opts.Logger.With("component", "http"), Token: opts.APIToken, Source: mon,
		Outbox: mon.Deliveries(), Audit: mon.Audit, References: mon, Silences: silences})

	gen := &generator{
		w: &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
			BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireOne},
		rate: opts.Rate,
		// Shift on a window boundary, so that one window is all before and the next all
		// after: what a person sees is then the shift, not a blend.
		shiftAt: ceil(time.Now().Add(opts.ShiftAfter), opts.Window),
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		labels: &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: labelsTopic, Balancer: &kafka.Hash{},
			BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireOne},
		labelDelay: opts.Window / 2,
		lat:        rand.New(rand.NewPCG(opts.Seed, 0x1a7e)),
	}
	if opts.SlowAfter > 0 {
		gen.slowAt = ceil(time.Now().Add(opts.SlowAfter), opts.Window)
		gen.slowUntil = ceil(gen.slowAt.Add(opts.SlowFor), opts.Window)
	}
	defer gen.w.Close()
	defer gen.labels.Close()

	fmt.Fprintf(out, `driftmon demo
  broker        kafka://%s  topic %s (embedded, in-process)
  traffic       %d events/s from model car-loan 3.2.0; %s shift at %s (in %s), %s stay put
  latency       p99 objective 250 ms; the model slows down (p99 ≈ 360 ms) %s
  windows       %s of event time; the first two whole windows are the reference
  labels        each loan's outcome on topic %s %s–%s later; performance final %s after a window
  dashboard     %s  (API %sapi/v1, Prometheus %smetrics)
  slack sink    %s  (token-checked chat.postMessage; messages print below)
  webhook sink  %s  (Standard Webhooks signature verified; one retraining call per alert episode)
Ctrl-C stops.

`, strings.Join(brokers, ","), topic, opts.Rate, strings.Join(Shifted, ", "),
		gen.shiftAt.Format("15:04:05"), opts.ShiftAfter, strings.Join(Stable, ", "), slowDown(gen),
		opts.Window, labelsTopic, gen.labelDelay, 4*gen.labelDelay, 3*opts.Window,
		dashboard, dashboard, dashboard, slackSink.URL(), hooks.URL+retrainPath)

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- gen.run(ctx) }()
	go func() { defer wg.Done(); errc <- mon.Run(ctx) }()
	go func() { defer wg.Done(); errc <- api.Serve(ctx, ln) }()
	if opts.ExitAfterAlert {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-slackSink.Received():
			case <-ctx.Done():
				return
			}
			select {
			case <-retrained:
			case <-ctx.Done():
				return
			}
			for len(judged) > 0 {
				<-judged
			}
			for range opts.WindowsAfterAlert {
				select {
				case <-judged:
				case <-ctx.Done():
					return
				}
			}
			fmt.Fprintln(out, "\nThe alert reached Slack and the retraining webhook; exiting (--exit-after-alert).")
			cancel()
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	fmt.Fprintf(out, "stopped after %d events.\n", gen.sent.Load())
	return errors.Join(errs...)
}

// configYAML is the demo's config; hooks is the base URL of its webhook receivers.
func configYAML(brokers []string, slackAPI, hooks, dashboard string, window time.Duration, rate int) string {
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: driftmon-demo
streams:
  - name: credit
    topic: %s
    event_time: ts
    event_id: event_id
    model: model
    model_version: model_version
    features:
      car_value: {type: numeric}
      debt_to_income_ratio: {type: numeric}
      driver_tenure: {type: numeric}
      loan_length: {type: numeric}
      repaid_loan_on_prev_car: {type: categorical}
      salary_range: {type: categorical}
      latency_ms: {type: numeric, path: latency_ms}
    predictions:
      y_pred_proba: {type: numeric}
      y_pred: {type: categorical}
    window: {size: %s}
    reference: {warmup_windows: 2}
    objectives:
      - {field: latency_ms, quantile: 0.99, max: 250, unit: ms}
      - {stat: rows_per_minute, min: %d}  # a tenth of the generator's rate
    labels: {topic: %s, event_id: event_id, label: defaulted, event_time: ts, max_delay: %s,
             prediction: y_pred_proba, reference_windows: 2}
alerting:
  dashboard_url: %s
  slack:
    token: ${SLACK_BOT_TOKEN}
    channel: %q
    api_url: %s
  webhooks:
    - name: retrain
      url: %s
      secret: ${RETRAIN_SECRET}
      min_features: 2
    - name: rollback
      url: %s
      secret: ${RETRAIN_SECRET}
      objectives: [%q]
`, brokers[0], topic, window, rate*60/10, labelsTopic, 3*window, dashboard, slackChan, slackAPI,
		hooks+retrainPath, hooks+rollbackPath, LatencyObjective)
}

// ceil rounds t up to a multiple of d.
func ceil(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); !r.Equal(t) {
		return r.Add(d)
	}
	return t
}

func printWindow(w io.Writer, r engine.Result) {
	span := r.Start.Local().Format("15:04:05") + "–" + r.End.Local().Format("15:04:05")
	switch {
	case r.Warmup:
		fmt.Fprintf(w, "window %s  %6d rows  → reference (%s)\n", span, r.Rows, r.Reference)
	case len(r.Drifted()) == 0:
		fmt.Fprintf(w, "window %s  %6d rows  no drift\n", span, r.Rows)
	default:
		fmt.Fprintf(w, "window %s  %6d rows  DRIFT: %s\n", span, r.Rows, strings.Join(r.Drifted(), ", "))
	}
	for _, o := range r.Objectives {
		if o.Verdict == detectors.Breached {
			fmt.Fprintf(w, "       %s  %s\n", span, o.Rule)
		}
	}
}

// printPerformance prints a window's performance when the alert policy judges it (its
// first degraded result, or its final one): not every revision.
func printPerformance(w io.Writer, r labels.Result) {
	if !r.Decided {
		return
	}
	span := r.Start.Local().Format("15:04:05") + "–" + r.End.Local().Format("15:04:05")
	v := r.Verdict
	state := "ok"
	if v.Degraded {
		state = "DEGRADED: " + v.Rule
	}
	if ls := r.LabelShift; ls.Drifted {
		state += "; label drift: " + ls.Rule
	}
	fmt.Fprintf(w, "labels %s  %s %.3f (estimated from the scores %.3f), %s, %d of %d labelled  %s\n", span, v.Metric, v.Value,
		r.Estimated.ROCAUC, r.Status(), r.Labelled, r.Predictions, state)
}

// lockedWriter lets the sinks, the monitor callback and Run print without interleaving
// half lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// rollbackCall is what the demo's rollback receiver prints of a verified call: an
// objective breach, which asks for something else than retraining.
func rollbackCall(d webhook.Delivery) string {
	var p webhook.Payload
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return fmt.Sprintf("\n[rollback webhook] POST %s  webhook-id %s  signature verified ✓  (unreadable payload: %v)\n", rollbackPath, d.ID, err)
	}
	var rules []string
	for _, c := range p.Drifted {
		rules = append(rules, c.Rule)
	}
	return fmt.Sprintf("\n[rollback webhook] POST %s  webhook-id %s  signature verified ✓  type %s: %s\n\n",
		rollbackPath, d.ID, p.Type, strings.Join(rules, "; "))
}

// retrainingCall is what the demo's webhook receiver prints of a verified call: who
// called, for which episode, and that the episode's later windows make no other call.
func retrainingCall(d webhook.Delivery) string {
	var p webhook.Payload
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return fmt.Sprintf("\n[retraining webhook] POST %s  webhook-id %s  signature verified ✓  (unreadable payload: %v)\n", retrainPath, d.ID, err)
	}
	names := make([]string, len(p.Drifted))
	for i, c := range p.Drifted {
		names[i] = c.Feature
	}
	first := p.FirstWindow.Start.Local().Format("15:04:05") + "–" + p.FirstWindow.End.Local().Format("15:04:05")
	return fmt.Sprintf("\n[retraining webhook] POST %s  webhook-id %s  signature verified ✓  drifted: %s\n"+
		"  one call for alert episode %s of %s %s (drifting since the window %s, reference %s):\n"+
		"  the windows that drift on in this episode start no other run; the next episode's call waits out a day's cooldown\n\n",
		retrainPath, d.ID, strings.Join(names, ", "), p.EpisodeID, p.Model, p.ModelVersion, first, p.ReferenceID)
}
