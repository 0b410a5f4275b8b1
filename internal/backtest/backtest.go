// Package backtest replays data files through a stream's window engine
// (internal/engine), so thresholds and windows can be tuned on history before going
// live: it reads Parquet, CSV and JSON lines as the stream's fields (Input), infers a
// stream from a reference file when there is no config (Infer), builds reference
// profiles (BuildProfile), runs the engine (Run) and prints the per-window verdicts as
// a table, JSON lines or CSV (Writer), each made from the window as the API shows it
// (internal/report).
//
// It runs the same engine as the live monitor; it serves nothing and starts no broker,
// so it never imports internal/monitor, internal/httpapi or internal/demo. Only
// cmd/driftmon imports it.
package backtest

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

// Window is one closed window's result and where it lies in the input.
type Window struct {
	engine.Result
	// Index numbers the windows of the result's model from 1, in the order they closed.
	Index int
	// Timed says Start and End come from event times; without a time column they are
	// meaningless and FirstRow/LastRow say where the window lies.
	Timed bool
	// FirstRow and LastRow are the window's first and last rows in the input, from 1,
	// for count windows over a single model; 0 otherwise.
	FirstRow, LastRow int64
}

// Options tunes Run.
type Options struct {
	// OnWindow receives each window as it closes; an error stops the run.
	OnWindow func(Window) error
	// Progress, when set, is called after each record with the rows read so far.
	Progress func(rows int64)
	// CountWindows says the engine makes count windows, whose rows are consecutive in
	// the input when it holds one model: Run then sets Window.FirstRow and LastRow.
	CountWindows bool
}

// Summary is what a whole run showed.
type Summary struct {
	// Rows is the rows read; Windows the windows closed, Drifted those with at least one
	// drifting feature.
	Rows             int64
	Windows, Drifted int
}

// Run feeds every record of in to e, then flushes e so the last, partial window is
// reported too, and calls opts.OnWindow with each window in the order they closed. It
// stops early, with ctx's error, when ctx is done.
func Run(ctx context.Context, e *engine.Engine, in *Input, opts Options) (Summary, error) {
	var sum Summary
	count := opts.CountWindows && !in.Schema().HasField(ingest.ColModel)
	timed := in.Schema().HasField(ingest.ColEventTime)
	index := map[[2]string]int{}
	var nextRow int64 = 1
	emit := func(results []engine.Result) error {
		for _, r := range results {
			k := [2]string{r.Model, r.ModelVersion}
			index[k]++
			w := Window{Result: r, Index: index[k], Timed: timed}
			if count {
				w.FirstRow, w.LastRow = nextRow, nextRow+r.Rows-1
				nextRow += r.Rows
			}
			sum.Windows++
			if len(r.Drifted()) > 0 {
				sum.Drifted++
			}
			if opts.OnWindow != nil {
				if err := opts.OnWindow(w); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for in.Next() {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if err := emit(e.Process(in.Record())); err != nil {
			return sum, err
		}
		sum.Rows = in.Rows()
		if opts.Progress != nil {
			opts.Progress(sum.Rows)
		}
	}
	if err := in.Err(); err != nil {
		return sum, err
	}
	return sum, emit(e.Flush())
}

// BuildProfile summarises every row of in into one profile of fields, with the same
// sketches (default sketch options, and the segments of segments) that live windows
// use: a reference. When in has event times, the profile's Start and End are the first
// and last of them.
func BuildProfile(ctx context.Context, in *Input, fields []sketch.Field, segments []sketch.SegmentKey, progress func(rows int64)) (*sketch.Profile, error) {
	p := sketch.NewProfile(fields, sketch.Options{Segments: segments})
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for in.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := in.Record()
		p.Update(rec, nil)
		if idx := rec.Schema().FieldIndices(ingest.ColEventTime); len(idx) == 1 {
			for _, t := range rec.Column(idx[0]).(*array.Int64).Int64Values() {
				first, last = min(first, t), max(last, t)
			}
		}
		if progress != nil {
			progress(in.Rows())
		}
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	if p.Rows == 0 {
		return nil, fmt.Errorf("%s has no rows", in.Name())
	}
	if first <= last {
		p.Start, p.End = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	}
	return p, nil
}
