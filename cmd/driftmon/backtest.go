package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/backtest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/monitor"
)

const backtestUsage = `Usage:
  driftmon backtest -c driftmon.yaml [--stream NAME] --input prod.parquet [--time-column ts]
  driftmon backtest --reference ref.csv --input prod.csv --window-rows 5000 [--exclude a,b]
  driftmon backtest -c driftmon.yaml [--stream NAME] --topic-range [--from TIME | --from-offset N] [--to TIME | --to-offset N]

Replays a data file (Parquet, CSV or JSON lines) through the same engine as "run" and
prints every window's verdicts. With -c the stream's features, windows, reference and
detectors come from the config (flags below override them). Without -c every column of
--reference (a data file or a .profile) is monitored: numbers as numeric, strings and
booleans as categorical.

With --topic-range it replays the stream's Kafka topic instead (brokers from -c): every
partition from --from (RFC 3339, by message timestamp) or --from-offset (default: its
first offset) to before --to or --to-offset (default: its end when the backtest starts).
It joins no consumer group and commits nothing, so a live monitor's offsets stay put.
Partitions are read concurrently: event-time windows do not depend on the interleaving,
count windows over several partitions do.
`

func runBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, backtestUsage, envConfig, envAWS)
	cfgPath := fs.String("c", "", "config file; without it the features are inferred from --reference")
	streamName := fs.String("stream", "", "with -c: the stream to replay (default: the config's only stream)")
	input := fs.String("input", "", "data file to replay: .parquet, .csv or .jsonl (required)")
	reference := fs.String("reference", "", "reference: data file or .profile (required without -c; with -c it replaces reference.baseline)")
	timeCol := fs.String("time-column", "", "column of event times: window bounds, and needed by --window-size (with -c default: the stream's event_time, if the file has it)")
	windowRows := fs.Int("window-rows", 0, "count windows of this many rows")
	windowSize := fs.Duration("window-size", 0, "tumbling event-time windows of this length, e.g. 24h (needs --time-column)")
	exclude := fs.String("exclude", "", "without -c: comma-separated columns not to monitor (targets, identifiers)")
	format := fs.String("format", backtest.FormatTable, "output: table, jsonl (one object per window) or csv (one row per window and feature)")
	fdr := fs.Float64("fdr", 0, "override: false discovery rate of the Benjamini–Hochberg correction (default 0.05)")
	minRows := fs.Int64("min-rows", 0, "override: fewest values for a verdict (default 100)")
	ksMin := fs.Float64("ks-min", 0, "override: smallest KS D that counts as drift (default 0.1)")
	wMin := fs.Float64("wasserstein-min", 0, "override: smallest move in reference standard deviations that counts as drift, numeric (default 0.08)")
	psiMin := fs.Float64("psi-min", 0, "override: smallest PSI that counts as drift, categorical (default 0.1)")
	psiBins := fs.Int("psi-bins", 0, "override: PSI bins (default 10)")
	topicRange := fs.Bool("topic-range", false, "with -c: replay the stream's Kafka topic instead of --input")
	from := fs.String("from", "", "with --topic-range: start at the first message stamped at or after this RFC 3339 time")
	fromOffset := fs.Int64("from-offset", 0, "with --topic-range: start every partition at this offset (default: its first)")
	to := fs.String("to", "", "with --topic-range: stop before the first message stamped at or after this RFC 3339 time")
	toOffset := fs.Int64("to-offset", 0, "with --topic-range: stop every partition before this offset (default: its end at start)")
	if err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{} // flags given, so that only those override the config
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	usageErr := func(format string, args ...any) error {
		fmt.Fprintf(stderr, format+"\n", args...)
		return errUsage
	}
	var topicOpts backtest.TopicOptions
	if *topicRange {
		if err := topicRangeFlags(&topicOpts, set, *from, *to, *fromOffset, *toOffset); err != nil {
			return usageErr("%v", err)
		}
		if *cfgPath == "" || *input != "" {
			return usageErr("--topic-range needs -c (the brokers and the stream's topic) and no --input")
		}
	} else if set["from"] || set["to"] || set["from-offset"] || set["to-offset"] {
		return usageErr("--from, --to, --from-offset and --to-offset need --topic-range")
	}
	switch {
	case *input == "" && !*topicRange:
		return usageErr("--input is required")
	case *cfgPath == "" && *reference == "":
		return usageErr("give -c driftmon.yaml, or --reference with the data (or .profile) to compare with")
	case *windowRows < 0 || *windowSize < 0:
		return usageErr("--window-rows and --window-size must be positive")
	case *windowRows > 0 && *windowSize > 0:
		return usageErr("set --window-rows or --window-size, not both")
	case *cfgPath == "" && *windowRows == 0 && *windowSize == 0:
		return usageErr("set --window-rows N (count windows) or --window-size D with --time-column (event-time windows)")
	case *cfgPath != "" && *exclude != "":
		return usageErr("--exclude only applies without -c: the config lists the features")
	case *cfgPath == "" && *windowSize > 0 && *timeCol == "":
		return usageErr("--window-size needs --time-column")
	case set["fdr"] && !(*fdr > 0 && *fdr < 1):
		return usageErr("--fdr must be between 0 and 1, got %g", *fdr)
	case set["min-rows"] && *minRows < 2:
		return usageErr("--min-rows must be at least 2, got %d", *minRows)
	case set["ks-min"] && !(*ksMin > 0 && *ksMin <= 1):
		return usageErr("--ks-min must be in (0, 1], got %g", *ksMin)
	case set["wasserstein-min"] && !(*wMin > 0):
		return usageErr("--wasserstein-min must be positive, got %g", *wMin)
	case set["psi-min"] && !(*psiMin > 0):
		return usageErr("--psi-min must be positive, got %g", *psiMin)
	case set["psi-bins"] && (*psiBins < 2 || *psiBins > 100):
		return usageErr("--psi-bins must be between 2 and 100, got %d", *psiBins)
	}
	w, err := backtest.NewWriter(*format, stdout)
	if err != nil {
		return usageErr("--format: %v", err)
	}
	override := func(d *config.Detectors) {
		if set["fdr"] {
			d.FDR = *fdr
		}
		if set["min-rows"] {
			d.MinRows = *minRows
		}
		if set["ks-min"] {
			d.KS.Min = *ksMin
		}
		if set["wasserstein-min"] {
			d.Wasserstein.Min = *wMin
		}
		if set["psi-min"] {
			d.PSI.Min = *psiMin
		}
		if set["psi-bins"] {
			d.PSI.Bins = *psiBins
		}
	}
	var window config.Window
	if *windowRows > 0 || *windowSize > 0 {
		window = config.Window{Rows: *windowRows, Size: *windowSize}
	}
	progressFor := func(path string) *backtest.Progress {
		if !isTerminal(stderr) {
			return nil // a nil bar draws nothing
		}
		return backtest.ProgressFor(stderr, path)
	}

	var (
		eng    *engine.Engine
		sc     *config.Stream
		inOpts = backtest.InputOptions{TimeColumn: *timeCol}
	)
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return fmt.Errorf("%s is not valid:\n%w", *cfgPath, err)
		}
		if sc, err = pickStream(cfg, *streamName); err != nil {
			return err
		}
		if window != (config.Window{}) {
			sc.Window = window
		}
		if *reference != "" {
			sc.Reference = config.Reference{Baseline: *reference}
		}
		override(&sc.Detectors)
		if *topicRange {
			eng, err := engine.New(sc, nil)
			if err != nil {
				return fmt.Errorf("stream %s: %w", sc.Name, err)
			}
			dialer, err := monitor.KafkaDialer(cfg.Kafka)
			if err != nil {
				return err
			}
			topicOpts.Brokers, topicOpts.Topic, topicOpts.Dialer = cfg.Kafka.Brokers, sc.Topic, dialer
			topicOpts.OnWindow = w.Write
			sum, err := backtest.RunTopic(ctx, eng, topicOpts)
			if err != nil {
				return err
			}
			reportTopic(stderr, sum)
			return w.Close(sum.Summary)
		}
		if inOpts.TimeColumn == "" && sc.EventTime != "" {
			if cols, err := backtest.FileColumns(*input); err == nil && cols.HasField(sc.EventTime) {
				inOpts.TimeColumn = sc.EventTime
			}
		}
		if inOpts.TimeColumn == "" && sc.Window.Size > 0 {
			return usageErr("event-time windows (window.size %s) need --time-column: the stream's event_time %q is not a column of %s", sc.Window.Size, sc.EventTime, *input)
		}
		inOpts.ModelColumn, inOpts.VersionColumn = sc.Model, sc.ModelVersion
		if eng, err = engine.New(sc, nil); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	} else {
		opts := backtest.InferOptions{TimeColumn: *timeCol, Window: window, Exclude: splitList(*exclude)}
		override(&opts.Detectors)
		bar := progressFor(*reference)
		opts.Progress = bar.Update
		inf, err := backtest.Infer(ctx, *reference, opts)
		bar.Done()
		if err != nil {
			return err
		}
		for _, s := range inf.Skipped {
			fmt.Fprintf(stderr, "not monitored: %s: %s\n", alerting.Printable(s.Column), alerting.Printable(s.Reason))
		}
		sc = inf.Stream
		if eng, err = engine.NewWithReference(sc, inf.Reference, inf.ReferenceName, nil); err != nil {
			return err
		}
	}

	in, err := backtest.Open(*input, sc, inOpts)
	if err != nil {
		return err
	}
	defer in.Close()
	bar := progressFor(*input)
	sharedTerminal := isTerminal(stdout)
	sum, err := backtest.Run(ctx, eng, in, backtest.Options{
		CountWindows: sc.Window.Rows > 0,
		Progress:     bar.Update,
		OnWindow: func(win backtest.Window) error {
			if sharedTerminal {
				bar.Clear() // jsonl and csv print as windows close
			}
			return w.Write(win)
		},
	})
	bar.Done()
	if err != nil {
		return err
	}
	return w.Close(sum)
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// topicRangeFlags checks the --topic-range bounds and sets them in opts.
func topicRangeFlags(opts *backtest.TopicOptions, set map[string]bool, from, to string, fromOffset, toOffset int64) error {
	var err error
	switch {
	case set["from"] && set["from-offset"]:
		return errors.New("set --from or --from-offset, not both")
	case set["to"] && set["to-offset"]:
		return errors.New("set --to or --to-offset, not both")
	case fromOffset < 0 || set["to-offset"] && toOffset <= 0:
		return errors.New("--from-offset must not be negative, --to-offset must be positive")
	}
	if set["from"] {
		if opts.From, err = time.Parse(time.RFC3339, from); err != nil {
			return fmt.Errorf("--from: want an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", from)
		}
	}
	if set["to"] {
		if opts.To, err = time.Parse(time.RFC3339, to); err != nil {
			return fmt.Errorf("--to: want an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", to)
		}
	}
	opts.FromOffset, opts.ToOffset = fromOffset, toOffset
	switch {
	case set["from"] && set["to"] && !opts.From.Before(opts.To):
		return fmt.Errorf("--from %s is not before --to %s", from, to)
	case set["to-offset"] && fromOffset >= toOffset:
		return fmt.Errorf("--from-offset %d is not before --to-offset %d", fromOffset, toOffset)
	}
	return nil
}

// reportTopic prints what a topic backtest read, and what it could not decode, to w.
func reportTopic(w io.Writer, sum backtest.TopicSummary) {
	for _, r := range sum.Ranges {
		fmt.Fprintf(w, "partition %d: offsets %d to %d (%d messages)\n", r.Partition, r.From, r.To, r.To-r.From)
		if at, ok := sum.Gaps[r.Partition]; ok {
			fmt.Fprintf(w, "partition %d: no message from offset %d to the end of the range (compaction or transaction markers)\n", r.Partition, at)
		}
	}
	reasons := make([]string, 0, len(sum.Rejected))
	for reason, n := range sum.Rejected {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(w, "rejected: %s\n", strings.Join(reasons, ", "))
	}
	if sum.Late > 0 {
		fmt.Fprintf(w, "late events (after their window closed, not counted): %d\n", sum.Late)
	}
}
