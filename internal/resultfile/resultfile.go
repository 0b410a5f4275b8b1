// Package resultfile is the results file: one JSON line per judged window (Line) and per
// performance result, appended where DRIFTMON_RESULTS_FILE says; each line is the
// result as the API shows it (internal/report). The acceptance tests and the soak
// campaign read it to compare a monitor that was killed and restarted with one that
// was not; the real binary needs no flag for it.
//
// It imports the engine's and the label join's results, their projection, and
// nothing that runs.
package resultfile

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/report"
)

// Env names an environment variable that, when set, makes the monitor append
// one JSON line per closed window (Line) to that file. The acceptance tests use
// it to compare the windows of a monitor killed and restarted with those of an
// uninterrupted run; the real binary needs no flag for it. Lines are written when the
// results are handed out, so a window reported again after a crash (see internal/monitor/stream.go)
// appears twice, with the same content.
const Env = "DRIFTMON_RESULTS_FILE"

// Line is a judged window's line of the results file: the window as the API shows
// it (report.Window), with its missing partitions and without distributions.
type Line = report.Window

// NewLine is what the results file says about r.
func NewLine(r engine.Result) Line {
	return report.NewWindow(r)
}

// performanceLine is a performance result's line of the results file: the window's
// performance as the API shows it (report.PerformanceWindow), with the model version
// the API lists it under, and Kind "performance" to tell it from a Line.
type performanceLine struct {
	Kind    string `json:"kind"`
	Stream  string `json:"stream"`
	Model   string `json:"model"`
	Version string `json:"version"`
	report.PerformanceWindow
}

// kindPerformance is the Kind of a performance result's line.
const kindPerformance = "performance"

func newPerformanceLine(r labels.Result) performanceLine {
	return performanceLine{Kind: kindPerformance, Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		PerformanceWindow: report.NewPerformanceWindow(r)}
}

// PerformanceLine is what the acceptance tests compare of a performance result's
// line: a few of its figures, flat and comparable with ==, so that a window reported
// final twice can be checked for the same content. It decodes a line as the results
// file writes it; a Line decodes with an empty Kind. A metric the line does not have
// (the MAE of a classifier, the estimates of a regression) is 0, as encoding/json
// leaves an absent field; one it has as null is NaN.
type PerformanceLine struct {
	Kind                   string
	Stream, Model, Version string
	Start, End             time.Time
	Final                  bool
	Predictions, Labelled  int64
	TP, FP, TN, FN         int64
	Accuracy, ROCAUC, MAE  alerting.Number
	Degraded               bool
	Rule                   string
	LabelDrift             bool
	EstROCAUC, EstAccuracy alerting.Number
}

// UnmarshalJSON reads a line of the results file.
func (l *PerformanceLine) UnmarshalJSON(b []byte) error {
	var p performanceLine
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*l = PerformanceLine{Kind: p.Kind, Stream: p.Stream, Model: p.Model, Version: p.Version,
		Start: p.Start, End: p.End, Final: p.Status == report.StatusFinal,
		Predictions: p.Predictions, Labelled: p.Labelled,
		Degraded: p.Verdict.Degraded, Rule: p.Verdict.Rule, LabelDrift: p.LabelShift.Drifted}
	if c := p.Metrics.ClassificationMetrics; c != nil {
		l.TP, l.FP, l.TN, l.FN = c.Confusion.TP, c.Confusion.FP, c.Confusion.TN, c.Confusion.FN
		l.Accuracy, l.ROCAUC = c.Accuracy, c.ROCAUC
	}
	if r := p.Metrics.RegressionMetrics; r != nil {
		l.MAE = r.MAE
	}
	if e := p.Estimated; e != nil {
		l.EstROCAUC, l.EstAccuracy = e.ROCAUC, e.Accuracy
	}
	return nil
}

// Log appends results to the file Env names; a nil *Log does nothing.
type Log struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// Open opens the file Env names, or returns nil when it names none.
func Open() (*Log, error) {
	path := os.Getenv(Env)
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", Env, err)
	}
	return &Log{f: f}, nil
}

// Write appends one line per result, each in one write call so that lines of
// several streams do not interleave.
func (l *Log) Write(results []engine.Result) {
	writeLines(l, results, NewLine)
}

// WritePerformance appends one line per performance result.
func (l *Log) WritePerformance(results []labels.Result) {
	writeLines(l, results, newPerformanceLine)
}

// writeLines appends one JSON line per item, as line makes it.
func writeLines[T, L any](l *Log, items []T, line func(T) L) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range items {
		b, err := json.Marshal(line(it))
		if err != nil {
			panic("BUG: a results line does not encode: " + err.Error())
		}
		l.buf = append(append(l.buf[:0], b...), '\n')
		_, _ = l.f.Write(l.buf)
	}
}

// Close closes the file.
func (l *Log) Close() {
	if l != nil {
		l.f.Close()
	}
}
