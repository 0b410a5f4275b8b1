package resultfile

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/sketch"
)

var start = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// logged runs write on a Log of a file of its own and returns the file's lines.
func logged(t *testing.T, write func(*Log)) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.jsonl")
	t.Setenv(Env, path)
	l, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	write(l)
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestWindowLine: a window's line is the window as the API shows it (the API's
// names, null for what has no value), with its missing partitions and without
// distributions; a window written again is written to the same bytes, however Go
// orders the finding's map of scores; and the line reads back as a Line.
func TestWindowLine(t *testing.T) {
	r := engine.Result{
		Stream: "s", Model: "m", ModelVersion: "7", Start: start, End: start.Add(time.Minute), Rows: 2000,
		Reference: "first 2 window(s) after start", Missing: []int32{3},
		Findings: []detectors.Finding{{
			Feature: "x", Kind: "numeric", Detector: detectors.DetectorKS, Verdict: detectors.Drift,
			Score: 0.31, Threshold: 0.1, PValue: 0.001, AdjustedP: 0.004, PSI: math.NaN(),
			Scores: map[string]float64{"ks": 0.31, "psi": math.NaN(), "wasserstein": 0.52, "hellinger": 0.2, "jensen_shannon": 0.05},
		}},
	}
	lines := logged(t, func(l *Log) { l.Write([]engine.Result{r, r, r, r}) })
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	for _, l := range lines[1:] {
		if l != lines[0] {
			t.Fatalf("the same window written differently:\n%s\n%s", lines[0], l)
		}
	}

	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &raw); err != nil {
		t.Fatal(err)
	}
	f := raw["findings"].([]any)[0].(map[string]any)
	if raw["version"] != "7" || raw["id"] != alerting.AlertID("s", "m", "7", start) ||
		f["p_value"] != 0.001 || f["adjusted_p_value"] != 0.004 || f["psi"] != nil || f["summary"] == nil {
		t.Errorf("not the API's window: %s", lines[0])
	}
	if _, ok := f["p"]; ok {
		t.Errorf("the old key p is still written: %s", lines[0])
	}
	if _, ok := raw["distributions"]; ok {
		t.Errorf("distributions written: %s", lines[0])
	}
	if m, _ := raw["missing_partitions"].([]any); len(m) != 1 || m[0] != 3.0 {
		t.Errorf("missing partitions %v, want [3]", raw["missing_partitions"])
	}

	var got Line
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	g := got.Findings[0]
	if got.Rows != 2000 || got.Reference != r.Reference || !slices.Equal(got.Missing, r.Missing) ||
		g.Verdict != "drift" || g.Score != 0.31 || !math.IsNaN(float64(g.PSI)) {
		t.Errorf("read back as %+v", got)
	}
}

// TestPerformanceLine: a performance result's line is the window's performance as
// the API shows it, with its model version and kind; PerformanceLine reads the
// figures the acceptance tests compare from it, equal for equal lines (a classifier
// has no MAE, which must not read as NaN, unequal to itself), and reads a window's
// line with no kind.
func TestPerformanceLine(t *testing.T) {
	r := labels.Result{
		Stream: "s", Model: "m", ModelVersion: "7", Start: start, End: start.Add(time.Minute), Final: true,
		Predictions: 100, Labelled: 80,
		Metrics: detectors.Metrics{Kind: sketch.Classification, N: 80, TP: 20, FP: 5, TN: 50, FN: 5,
			Accuracy: 0.875, ROCAUC: 0.91, MAE: math.NaN(), RMSE: math.NaN()},
		Verdict:    detectors.PerformanceVerdict{Metric: detectors.MetricROCAUC, Value: 0.91, Degraded: true, Rule: "roc_auc 0.91 < 0.95"},
		LabelShift: detectors.LabelShift{Statistic: "positive_rate", Drifted: true},
		Estimated:  detectors.Estimate{N: 100, ROCAUC: 0.9, Accuracy: 0.86},
	}
	lines := logged(t, func(l *Log) {
		l.Write([]engine.Result{{Stream: "s", Model: "m", ModelVersion: "7", Start: start, End: start.Add(time.Minute)}})
		l.WritePerformance([]labels.Result{r})
	})
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}

	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &raw); err != nil {
		t.Fatal(err)
	}
	m, _ := raw["metrics"].(map[string]any)
	c, _ := m["confusion"].(map[string]any)
	if raw["kind"] != "performance" || raw["version"] != "7" || raw["status"] != "final" ||
		m["kind"] != "classification" || c["tp"] != 20.0 || m["roc_auc"] != 0.91 ||
		raw["verdict"].(map[string]any)["degraded"] != true || raw["label_shift"].(map[string]any)["drifted"] != true {
		t.Errorf("not the API's performance window: %s", lines[1])
	}

	var got PerformanceLine
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	want := PerformanceLine{Kind: "performance", Stream: "s", Model: "m", Version: "7", Start: start, End: start.Add(time.Minute),
		Final: true, Predictions: 100, Labelled: 80, TP: 20, FP: 5, TN: 50, FN: 5, Accuracy: 0.875, ROCAUC: 0.91,
		Degraded: true, Rule: "roc_auc 0.91 < 0.95", LabelDrift: true, EstROCAUC: 0.9, EstAccuracy: 0.86}
	if got != want {
		t.Errorf("read as %+v\nwant       %+v", got, want)
	}
	var again PerformanceLine
	if err := json.Unmarshal([]byte(lines[1]), &again); err != nil || again != got {
		t.Errorf("the same line read twice compares unequal: %+v, then %+v", got, again)
	}

	var window PerformanceLine
	if err := json.Unmarshal([]byte(lines[0]), &window); err != nil || window.Kind != "" {
		t.Errorf("a window's line read as kind %q (%v), want none", window.Kind, err)
	}
}
