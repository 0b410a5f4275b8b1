// Command driftmon watches machine-learning models in production: it reads their
// inference logs from Kafka, compares every window of features and predictions with a
// reference, and tells Slack and retraining pipelines when they drift.
//
//	driftmon demo                      everything in one process, nothing to install
//	driftmon check -c driftmon.yaml    validate a config, every problem at once
//	driftmon run   -c driftmon.yaml    monitor the streams the config names
//
// It is thin: flags, subcommands and a signal-cancelled context. The wiring of the
// pipeline is internal/monitor's, the HTTP API internal/httpapi's, backtests
// internal/backtest's; nothing imports a command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/demo"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/httpapi"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/version"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `driftmon watches ML models in production for drift.

Usage:
  driftmon demo  [flags]             run everything in one process (embedded Kafka, fake Slack)
  driftmon check -c driftmon.yaml    validate a config and report every problem at once
  driftmon run   -c driftmon.yaml    monitor the streams in the config
  driftmon baseline -c driftmon.yaml --input train.parquet [-o reference.profile]
                                     summarise training data into a reference profile
  driftmon profile show reference.profile
                                     print what a reference profile holds
  driftmon backtest -c driftmon.yaml --input prod.parquet
  driftmon backtest --reference ref.csv --input prod.csv --window-rows 5000
                                     replay a file and print every window's verdicts
  driftmon version                   print the version, commit, build date and Go version

Run "driftmon <command> -h" for a command's flags and the environment variables it reads.
`

// run is main without the exit, so tests can drive the real command line.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "check":
		err = runCheck(args[1:], stdout, stderr)
	case "run":
		err = runMonitor(ctx, args[1:], stderr)
	case "baseline":
		err = runBaseline(ctx, args[1:], stdout, stderr)
	case "backtest":
		err = runBacktest(ctx, args[1:], stdout, stderr)
	case "profile":
		err = runProfile(args[1:], stdout, stderr)
	case "version":
		err = runVersion(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "driftmon: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "driftmon %s: %s\n", args[0], printableLines(err.Error()))
		return 1
	}
}

// printableLines escapes the control characters of each line of s (alerting.Printable):
// an error may quote a value from the data, such as a column name.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = alerting.Printable(l)
	}
	return strings.Join(lines, "\n")
}

// errUsage means the flags were wrong; the flag package has already said how.
var errUsage = errors.New("usage")

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

const checkUsage = `Usage: driftmon check [-c driftmon.yaml]

Validates a config and reports every problem at once, each with its path in the file:
the schema, the secrets it names, the reference profiles and the notifiers' settings.
Connects to nothing.
`

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, checkUsage, envConfig, envAWS)
	path := fs.String("c", "driftmon.yaml", "config file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%v\n", *path, err)
		return errors.New("invalid config")
	}
	// Build the monitor too: it loads baselines and checks notifier settings that
	// the schema alone cannot. Its errors may quote a value of the config, which may be
	// a secret typed into the wrong field: they are redacted as the config's own are.
	if _, err := monitor.New(cfg, monitor.Options{}); err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%s\n", *path, cfg.Redact(err.Error()))
		return errors.New("invalid config")
	}
	fmt.Fprintf(stdout, "%s is valid: %d stream(s)\n", *path, len(cfg.Streams))
	return nil
}

const runUsage = `Usage: driftmon run [-c driftmon.yaml] [-http :8080] [-log-level info]

Monitors the streams the config names until interrupted (SIGINT, SIGTERM), serving the
dashboard at /, the JSON API under /api/v1, Prometheus metrics at /metrics and
/healthz and /readyz on -http. Logs are JSON lines on stderr.
`

func runMonitor(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, runUsage, envConfig, envAWS, envAPIToken, envResults)
	path := fs.String("c", "driftmon.yaml", "config file")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	httpAddr := fs.String("http", ":8080", "address of the dashboard, /api/v1 and /metrics")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	// The monitor reports to the HTTP server, which reads the monitor: the callbacks
	// close over api, which is set before Run calls them. The API manages the
	// silences the monitor applies and keeps in its state.
	var api *httpapi.Server
	silences := &policy.Silences{}
	mon, err := monitor.New(cfg, monitor.Options{
		Logger:        log,
		OnWindow:      func(r engine.Result) { api.Record(r) },
		OnPerformance: func(r labels.Result) { api.RecordPerformance(r) },
		OnDelivery:    func(route string, a alerting.Alert, err error) { api.RecordDelivery(route, a, err) },
		Silences:      silences,
	})
	if err != nil {
		return err
	}
	api = httpapi.New(httpapi.Options{
		Logger:     log.With("component", "http"),
		Token:      os.Getenv(apiTokenEnv), // empty: the API is read-only
		Source:     mon,
		Outbox:     mon.Deliveries(),
		Audit:      mon.Audit,
		References: mon,
		Silences:   silences,
		Limits:     cfg.HTTP,
	})
	ln, err := net.Listen("tcp", *httpAddr) // fail before consuming if the port is taken
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *httpAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() {
		err := api.Serve(ctx, ln)
		if err != nil {
			cancel() // a dead dashboard and /metrics stop the monitor too
		}
		httpDone <- err
	}()
	log.Info("driftmon started", "config", *path, "streams", len(cfg.Streams), "http", ln.Addr().String())
	err = mon.Run(ctx)
	cancel()
	err = errors.Join(err, <-httpDone)
	log.Info("driftmon stopped")
	return err
}

const demoUsage = `Usage: driftmon demo [flags]

Runs everything in one process: an embedded Kafka broker, traffic from a car-loan
model whose inputs shift after -shift-after, the monitor, a fake Slack that prints
the alerts as a person would read them and a webhook receiver that verifies them.
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, demoUsage, envAPIToken, envResults)
	rate := fs.Int("rate", 500, "events per second")
	shift := fs.Duration("shift-after", 30*time.Second, "how long before some features shift")
	window := fs.Duration("window", 10*time.Second, "event-time window size")
	slowAfter := fs.Duration("slow-after", 0, "how long before the model's latency doubles, breaching its p99 objective (default: shift-after plus two windows; negative: never)")
	slowFor := fs.Duration("slow-for", 0, "how long the slow-down lasts (default: two windows)")
	exit := fs.Bool("exit-after-alert", false, "exit 0 once the first alert has reached Slack and the webhook")
	seed := fs.Uint64("seed", 1, "seed of the traffic generator")
	level := fs.String("log-level", "warn", "monitor log level: debug, info, warn or error")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the dashboard, /api/v1 and /metrics")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rate <= 0 || *shift <= 0 || *window <= 0 {
		fmt.Fprintln(stderr, "-rate, -shift-after and -window must be positive")
		return errUsage
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{
		Rate: *rate, ShiftAfter: *shift, Window: *window, SlowAfter: *slowAfter, SlowFor: *slowFor, ExitAfterAlert: *exit,
		Out: stdout, Logger: log, Seed: *seed, HTTPAddr: *httpAddr,
		APIToken: os.Getenv(apiTokenEnv),
	})
}

const versionUsage = `Usage: driftmon version

Prints the version, the VCS commit and build date that "make build" stamps, and the Go
version and platform of the build; /metrics exports the same as driftmon_build_info.
`

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, versionUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprint(stdout, version.Read())
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
