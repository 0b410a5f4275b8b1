package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/backtest"
	"github.com/driftmon/driftmon/internal/engine"
)

const baselineUsage = `Usage: driftmon baseline -c driftmon.yaml --input train.parquet [-o reference.profile] [--stream NAME]

Summarises a data file (Parquet, CSV or JSON lines; columns named like the stream's
features and predictions, or by their paths) with the sketches live windows use, and
writes the reference profile. Point the stream's reference.baseline at the .profile file.
`

func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, baselineUsage, envConfig)
	cfgPath := fs.String("c", "driftmon.yaml", "config file")
	input := fs.String("input", "", "training data: .parquet, .csv or .jsonl (required)")
	out := fs.String("o", "reference.profile", "profile file to write; must end in "+engine.ProfileExt)
	streamName := fs.String("stream", "", "stream whose fields to summarise (default: the config's only stream)")
	timeCol := fs.String("time-column", "", "column of event times, for the profile's time bounds (default: the stream's event_time, if the file has it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *input == "" {
		fmt.Fprintln(stderr, "--input is required")
		return errUsage
	}
	if !engine.IsProfilePath(*out) {
		fmt.Fprintf(stderr, "-o %s: the file name must end in %s, which tells reference.baseline it is a profile\n", *out, engine.ProfileExt)
		return errUsage
	}
	if same(*out, *input) {
		return fmt.Errorf("-o %s would overwrite the input", *out)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *cfgPath, err)
	}
	sc, err := pickStream(cfg, *streamName)
	if err != nil {
		return err
	}
	if *timeCol == "" && sc.EventTime != "" {
		if cols, err := backtest.FileColumns(*input); err == nil && cols.HasField(sc.EventTime) {
			*timeCol = sc.EventTime
		}
	}
	in, err := backtest.Open(*input, sc, backtest.InputOptions{TimeColumn: *timeCol})
	if err != nil {
		return err
	}
	defer in.Close()
	var bar *backtest.Progress // nil draws nothing
	if isTerminal(stderr) {
		bar = backtest.ProgressFor(stderr, *input)
	}
	fields := engine.StreamFields(sc)
	p, err := backtest.BuildProfile(ctx, in, fields, engine.SegmentKeys(sc), bar.Update)
	bar.Done()
	if err != nil {
		return err
	}
	if err := engine.WriteProfile(*out, p); err != nil {
		return err
	}
	bounds := ""
	if !p.Start.IsZero() {
		bounds = fmt.Sprintf(", %s → %s", p.Start.Format(timeLayout), p.End.Format(timeLayout))
	}
	fmt.Fprintf(stdout, "wrote %s: stream %s, %d features, %s rows%s\n", *out, sc.Name, len(fields), alerting.FormatCount(p.Rows), bounds)
	return nil
}

// pickStream returns the stream called name, or the config's only stream when name is
// empty.
func pickStream(cfg *config.Config, name string) (*config.Stream, error) {
	var names []string
	for i := range cfg.Streams {
		if cfg.Streams[i].Name == name || name == "" && len(cfg.Streams) == 1 {
			return &cfg.Streams[i], nil
		}
		names = append(names, cfg.Streams[i].Name)
	}
	if name == "" {
		return nil, fmt.Errorf("the config has %d streams (%s): choose one with --stream", len(names), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("no stream %q in the config (streams: %s)", name, strings.Join(names, ", "))
}

// isTerminal reports whether w is a terminal, where progress bars belong.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// same reports whether two paths name the same file.
func same(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(sa, sb)
}

const timeLayout = "2006-01-02 15:04:05"
