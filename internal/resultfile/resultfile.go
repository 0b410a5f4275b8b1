// Package resultfile is the results file: one JSON line per judged window (Line) and per
// performance result (PerformanceLine), appended where DRIFTMON_RESULTS_FILE says. The
// acceptance tests and the soak campaign read it to compare a monitor that was killed
// and restarted with one that was not; the real binary needs no flag for it.
//
// It imports the engine's and the label join's results and nothing that runs.
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
)

// Env names an environment variable that, when set, makes the monitor append
// one JSON line per closed window (Line) to that file. The acceptance tests use
// it to compare the windows of a monitor killed and restarted with those of an
// uninterrupted run; the real binary needs no flag for it. Lines are written when the
// results are handed out, so a window reported again after a crash (see internal/monitor/stream.go)
// appears twice, with the same content.
const Env = "DRIFTMON_RESULTS_FILE"

// Line is one line of the results file.
type Line struct {
	Stream    string    `json:"stream"`
	Model     string    `json:"model"`
	Version   string    `json:"version"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Rows      int64     `json:"rows"`
	Warmup    bool      `json:"warmup"`
	Reference string    `json:"reference"`
	Findings  []Finding `json:"findings"`
	// Missing are a cluster's partitions that were idle when the window was judged.
	Missing []int32 `json:"missing_partitions,omitempty"`
}

// Finding is one feature's finding in a Line.
type Finding struct {
	Feature string          `json:"feature"`
	Verdict string          `json:"verdict"`
	Score   alerting.Number `json:"score"`
	PValue  alerting.Number `json:"p"`
	PSI     alerting.Number `json:"psi"`
}

// NewLine is what the results file says about r.
func NewLine(r engine.Result) Line {
	line := Line{
		Stream: r.Stream, Model: r.Model, Version: r.ModelVersion, Start: r.Start, End: r.End,
		Rows: r.Rows, Warmup: r.Warmup, Reference: r.Reference, Findings: []Finding{}, Missing: r.Missing,
	}
	for _, f := range r.Findings {
		line.Findings = append(line.Findings, Finding{
			Feature: f.Feature, Verdict: string(f.Verdict),
			Score: alerting.Number(f.Score), PValue: alerting.Number(f.AdjustedP), PSI: alerting.Number(f.PSI),
		})
	}
	return line
}

// PerformanceLine is one line of the results file for a performance result; its
// Kind "performance" tells it from a Line.
type PerformanceLine struct {
	Kind        string          `json:"kind"`
	Stream      string          `json:"stream"`
	Model       string          `json:"model"`
	Version     string          `json:"version"`
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"end"`
	Final       bool            `json:"final"`
	Predictions int64           `json:"predictions"`
	Labelled    int64           `json:"labelled"`
	TP          int64           `json:"tp"`
	FP          int64           `json:"fp"`
	TN          int64           `json:"tn"`
	FN          int64           `json:"fn"`
	Accuracy    alerting.Number `json:"accuracy"`
	ROCAUC      alerting.Number `json:"roc_auc"`
	MAE         alerting.Number `json:"mae"`
	Degraded    bool            `json:"degraded"`
	Rule        string          `json:"rule"`
	LabelDrift  bool            `json:"label_drift"`
	EstROCAUC   alerting.Number `json:"est_roc_auc"`
	EstAccuracy alerting.Number `json:"est_accuracy"`
}

// NewPerformanceLine is what the results file says about r.
func NewPerformanceLine(r labels.Result) PerformanceLine {
	m := r.Metrics
	return PerformanceLine{Kind: "performance", Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		Start: r.Start, End: r.End, Final: r.Final, Predictions: r.Predictions, Labelled: r.Labelled,
		TP: m.TP, FP: m.FP, TN: m.TN, FN: m.FN, Accuracy: alerting.Number(m.Accuracy), ROCAUC: alerting.Number(m.ROCAUC),
		MAE: alerting.Number(m.MAE), Degraded: r.Verdict.Degraded, Rule: r.Verdict.Rule, LabelDrift: r.LabelShift.Drifted,
		EstROCAUC: alerting.Number(r.Estimated.ROCAUC), EstAccuracy: alerting.Number(r.Estimated.Accuracy)}
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
	writeLines(l, results, NewPerformanceLine)
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
