package httpapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/sketch"
)

// statusFinal is the Status of a window no label can change any more
// (labels.Result.Status).
const statusFinal = "final"

// PerformanceWindow is the latest performance result of one window of one model
// version as the API shows it: what the labels joined so far say.
type PerformanceWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Status is "provisional" while late labels may still revise the window, then
	// "final".
	Status string `json:"status"`
	// Predictions is how many of the window's predictions can be joined (an event
	// id and a score), Labelled how many have been, and Coverage their ratio (null
	// without predictions).
	Predictions int64 `json:"predictions"`
	Labelled    int64 `json:"labelled"`
	Coverage    num   `json:"coverage"`
	// Revision counts the earlier results of this window that this one replaced.
	Revision  int                `json:"revision"`
	Metrics   Metrics            `json:"metrics"`
	Verdict   PerformanceVerdict `json:"verdict"`
	Reference string             `json:"reference"`
	// LabelShift is the window's label drift against the reference windows' labels.
	LabelShift LabelShift `json:"label_shift"`
	// Estimated is the classification performance estimated from all the window's
	// scores, labelled or not (CBPE); absent for regression.
	Estimated *Estimate `json:"estimated,omitempty"`
}

// Estimate is detectors.Estimate with JSON names and non-finite numbers as null.
type Estimate struct {
	N          int64 `json:"n"`
	Calibrated bool  `json:"calibrated"`
	Accuracy   num   `json:"accuracy"`
	Precision  num   `json:"precision"`
	Recall     num   `json:"recall"`
	F1         num   `json:"f1"`
	ROCAUC     num   `json:"roc_auc"`
}

// LabelShift is detectors.LabelShift with JSON names and non-finite numbers as null.
type LabelShift struct {
	Statistic   string `json:"statistic"`
	Reference   num    `json:"reference"`
	Current     num    `json:"current"`
	PValue      num    `json:"p_value"`
	Effect      num    `json:"effect"`
	EffectLower num    `json:"effect_lower"`
	EffectMin   num    `json:"effect_min"`
	Drifted     bool   `json:"drifted"`
	Rule        string `json:"rule"`
}

// Metrics is detectors.Metrics with JSON names and non-finite numbers as null;
// only the fields of its kind are present.
type Metrics struct {
	Kind string `json:"kind"`
	// N is the number of labelled predictions the metrics are computed from.
	N int64 `json:"n"`
	*ClassificationMetrics
	*RegressionMetrics
}

// ClassificationMetrics are the metrics of a binary classifier.
type ClassificationMetrics struct {
	Accuracy  num `json:"accuracy"`
	Precision num `json:"precision"`
	Recall    num `json:"recall"`
	F1        num `json:"f1"`
	ROCAUC    num `json:"roc_auc"`
	// ROCAUCError is the most the binned ROC AUC can be off the exact one.
	ROCAUCError  num       `json:"roc_auc_error"`
	LogLoss      num       `json:"log_loss"`
	PositiveRate num       `json:"positive_rate"`
	Confusion    Confusion `json:"confusion"`
}

// Confusion is a classifier's confusion matrix at its threshold.
type Confusion struct {
	TP int64 `json:"tp"`
	FP int64 `json:"fp"`
	TN int64 `json:"tn"`
	FN int64 `json:"fn"`
}

// RegressionMetrics are the metrics of a regression model.
type RegressionMetrics struct {
	MAE  num `json:"mae"`
	RMSE num `json:"rmse"`
	// MAPE is a fraction (0.12 is 12%).
	MAPE      num `json:"mape"`
	LabelMean num `json:"label_mean"`
	LabelSD   num `json:"label_sd"`
}

// PerformanceVerdict is detectors.PerformanceVerdict with JSON names and
// non-finite numbers as null.
type PerformanceVerdict struct {
	Metric      string `json:"metric"`
	Value       num    `json:"value"`
	SE          num    `json:"se"`
	Reference   num    `json:"reference"`
	ReferenceSD num    `json:"reference_sd"`
	Bound       num    `json:"bound"`
	PValue      num    `json:"p_value"`
	Degraded    bool   `json:"degraded"`
	Rule        string `json:"rule"`
}

func metricsOf(m detectors.Metrics) Metrics {
	out := Metrics{Kind: m.Kind.String(), N: m.N}
	switch m.Kind {
	case sketch.Classification:
		out.ClassificationMetrics = &ClassificationMetrics{
			Accuracy: num(m.Accuracy), Precision: num(m.Precision), Recall: num(m.Recall), F1: num(m.F1),
			ROCAUC: num(m.ROCAUC), ROCAUCError: num(m.ROCAUCError), LogLoss: num(m.LogLoss),
			PositiveRate: num(m.PositiveRate),
			Confusion:    Confusion{TP: m.TP, FP: m.FP, TN: m.TN, FN: m.FN},
		}
	case sketch.Regression:
		out.RegressionMetrics = &RegressionMetrics{
			MAE: num(m.MAE), RMSE: num(m.RMSE), MAPE: num(m.MAPE),
			LabelMean: num(m.LabelMean), LabelSD: num(m.LabelSD),
		}
	}
	return out
}

// perfWindow pairs the API's view of a window with the metrics it came from, which
// the Prometheus collector reads by name.
type perfWindow struct {
	PerformanceWindow
	metrics detectors.Metrics
}

// RecordPerformance keeps the latest performance result of each window: a revision
// replaces the window's earlier result. It is meant for
// monitor.Options.OnPerformance and keeps at most Options.History windows per model
// version, dropping the oldest by start.
func (s *Server) RecordPerformance(r labels.Result) {
	v := r.Verdict
	w := &perfWindow{
		PerformanceWindow: PerformanceWindow{
			Start: r.Start, End: r.End, Status: r.Status(),
			Predictions: r.Predictions, Labelled: r.Labelled, Coverage: num(r.Coverage()),
			Revision: r.Revision, Metrics: metricsOf(r.Metrics),
			Verdict: PerformanceVerdict{
				Metric: v.Metric, Value: num(v.Value), SE: num(v.SE),
				Reference: num(v.Reference), ReferenceSD: num(v.ReferenceSD), Bound: num(v.Bound),
				PValue: num(v.PValue), Degraded: v.Degraded, Rule: v.Rule,
			},
			Reference: r.Reference,
			LabelShift: LabelShift{Statistic: r.LabelShift.Statistic, Reference: num(r.LabelShift.Reference),
				Current: num(r.LabelShift.Current), PValue: num(r.LabelShift.PValue), Effect: num(r.LabelShift.Effect.Value),
				EffectLower: num(r.LabelShift.Effect.Lower), EffectMin: num(r.LabelShift.Effect.Min),
				Drifted: r.LabelShift.Drifted, Rule: r.LabelShift.Rule},
		},
		metrics: r.Metrics,
	}
	if e := r.Estimated; r.Metrics.Kind == sketch.Classification {
		w.Estimated = &Estimate{N: e.N, Calibrated: e.Calibrated, Accuracy: num(e.Accuracy), Precision: num(e.Precision),
			Recall: num(e.Recall), F1: num(e.F1), ROCAUC: num(e.ROCAUC)}
	}

	key := modelKey{r.Stream, r.Model, r.ModelVersion}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.modelOf(key)
	// Results come mostly for recent windows, so the search starts from the newest.
	i := len(m.perf)
	for i > 0 && m.perf[i-1].Start.After(w.Start) {
		i--
	}
	if i > 0 && m.perf[i-1].Start.Equal(w.Start) {
		m.perf[i-1] = w // a window is replaced, never changed: handlers read it unlocked
		return
	}
	m.perf = slices.Insert(m.perf, i, w)
	if n := len(m.perf) - s.history; n > 0 {
		clear(m.perf[:n])
		m.perf = slices.Delete(m.perf, 0, n)
	}
}

// modelPerformance is one model version's performance windows, newest first.
type modelPerformance struct {
	Stream  string               `json:"stream"`
	Model   string               `json:"model"`
	Version string               `json:"version"`
	Windows []*PerformanceWindow `json:"windows"`
}

// listPerformance answers the models' performance windows, newest first, at most
// limit per model. Models without any performance result are left out.
func (s *Server) listPerformance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(q, 50)
	if err != nil {
		writeErr(w, err)
		return
	}
	known, _ := s.sourceStreams()
	out := []modelPerformance{}
	s.mu.Lock()
	models, err := s.selectModels(selectorOf(q), known)
	for _, m := range models {
		if len(m.perf) == 0 {
			continue
		}
		mp := modelPerformance{Stream: m.key.stream, Model: m.key.model, Version: m.key.version}
		for i := len(m.perf) - 1; i >= 0 && len(mp.Windows) < limit; i-- {
			mp.Windows = append(mp.Windows, &m.perf[i].PerformanceWindow)
		}
		out = append(out, mp)
	}
	s.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}
