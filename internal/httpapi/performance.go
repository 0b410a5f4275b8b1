package httpapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/sketch"
)

// statusFinal is the Status of a window no label can change any more
// (monitor.PerformanceResult.Status).
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
	Predictions int64           `json:"predictions"`
	Labelled    int64           `json:"labelled"`
	Coverage    alerting.Number `json:"coverage"`
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
	N          int64           `json:"n"`
	Calibrated bool            `json:"calibrated"`
	Accuracy   alerting.Number `json:"accuracy"`
	Precision  alerting.Number `json:"precision"`
	Recall     alerting.Number `json:"recall"`
	F1         alerting.Number `json:"f1"`
	ROCAUC     alerting.Number `json:"roc_auc"`
}

// LabelShift is detectors.LabelShift with JSON names and non-finite numbers as null.
type LabelShift struct {
	Statistic   string          `json:"statistic"`
	Reference   alerting.Number `json:"reference"`
	Current     alerting.Number `json:"current"`
	PValue      alerting.Number `json:"p_value"`
	Effect      alerting.Number `json:"effect"`
	EffectLower alerting.Number `json:"effect_lower"`
	EffectMin   alerting.Number `json:"effect_min"`
	Drifted     bool            `json:"drifted"`
	Rule        string          `json:"rule"`
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
	Accuracy  alerting.Number `json:"accuracy"`
	Precision alerting.Number `json:"precision"`
	Recall    alerting.Number `json:"recall"`
	F1        alerting.Number `json:"f1"`
	ROCAUC    alerting.Number `json:"roc_auc"`
	// ROCAUCError is the most the binned ROC AUC can be off the exact one.
	ROCAUCError  alerting.Number `json:"roc_auc_error"`
	LogLoss      alerting.Number `json:"log_loss"`
	PositiveRate alerting.Number `json:"positive_rate"`
	Confusion    Confusion       `json:"confusion"`
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
	MAE  alerting.Number `json:"mae"`
	RMSE alerting.Number `json:"rmse"`
	// MAPE is a fraction (0.12 is 12%).
	MAPE      alerting.Number `json:"mape"`
	LabelMean alerting.Number `json:"label_mean"`
	LabelSD   alerting.Number `json:"label_sd"`
}

// PerformanceVerdict is detectors.PerformanceVerdict with JSON names and
// non-finite numbers as null.
type PerformanceVerdict struct {
	Metric      string          `json:"metric"`
	Value       alerting.Number `json:"value"`
	SE          alerting.Number `json:"se"`
	Reference   alerting.Number `json:"reference"`
	ReferenceSD alerting.Number `json:"reference_sd"`
	Bound       alerting.Number `json:"bound"`
	PValue      alerting.Number `json:"p_value"`
	Degraded    bool            `json:"degraded"`
	Rule        string          `json:"rule"`
}

func metricsOf(m detectors.Metrics) Metrics {
	out := Metrics{Kind: m.Kind.String(), N: m.N}
	switch m.Kind {
	case sketch.Classification:
		out.ClassificationMetrics = &ClassificationMetrics{
			Accuracy: alerting.Number(m.Accuracy), Precision: alerting.Number(m.Precision), Recall: alerting.Number(m.Recall), F1: alerting.Number(m.F1),
			ROCAUC: alerting.Number(m.ROCAUC), ROCAUCError: alerting.Number(m.ROCAUCError), LogLoss: alerting.Number(m.LogLoss),
			PositiveRate: alerting.Number(m.PositiveRate),
			Confusion:    Confusion{TP: m.TP, FP: m.FP, TN: m.TN, FN: m.FN},
		}
	case sketch.Regression:
		out.RegressionMetrics = &RegressionMetrics{
			MAE: alerting.Number(m.MAE), RMSE: alerting.Number(m.RMSE), MAPE: alerting.Number(m.MAPE),
			LabelMean: alerting.Number(m.LabelMean), LabelSD: alerting.Number(m.LabelSD),
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
func (s *Server) RecordPerformance(r monitor.PerformanceResult) {
	v := r.Verdict
	w := &perfWindow{
		PerformanceWindow: PerformanceWindow{
			Start: r.Start, End: r.End, Status: r.Status(),
			Predictions: r.Predictions, Labelled: r.Labelled, Coverage: alerting.Number(r.Coverage()),
			Revision: r.Revision, Metrics: metricsOf(r.Metrics),
			Verdict: PerformanceVerdict{
				Metric: v.Metric, Value: alerting.Number(v.Value), SE: alerting.Number(v.SE),
				Reference: alerting.Number(v.Reference), ReferenceSD: alerting.Number(v.ReferenceSD), Bound: alerting.Number(v.Bound),
				PValue: alerting.Number(v.PValue), Degraded: v.Degraded, Rule: v.Rule,
			},
			Reference: r.Reference,
			LabelShift: LabelShift{Statistic: r.LabelShift.Statistic, Reference: alerting.Number(r.LabelShift.Reference),
				Current: alerting.Number(r.LabelShift.Current), PValue: alerting.Number(r.LabelShift.PValue), Effect: alerting.Number(r.LabelShift.Effect.Value),
				EffectLower: alerting.Number(r.LabelShift.Effect.Lower), EffectMin: alerting.Number(r.LabelShift.Effect.Min),
				Drifted: r.LabelShift.Drifted, Rule: r.LabelShift.Rule},
		},
		metrics: r.Metrics,
	}
	if e := r.Estimated; r.Metrics.Kind == sketch.Classification {
		w.Estimated = &Estimate{N: e.N, Calibrated: e.Calibrated, Accuracy: alerting.Number(e.Accuracy), Precision: alerting.Number(e.Precision),
			Recall: alerting.Number(e.Recall), F1: alerting.Number(e.F1), ROCAUC: alerting.Number(e.ROCAUC)}
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
