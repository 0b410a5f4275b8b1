package report

import (
	"time"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/sketch"
)

// StatusFinal is the Status of a window no label can change any more
// (labels.Result.Status); until then it is "provisional".
const StatusFinal = "final"

// PerformanceWindow is a performance result of one window of one model version:
// what the labels joined so far say. The model version is not in it: the API lists
// windows under their model, the results file line adds it.
type PerformanceWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Status is "provisional" while late labels may still revise the window, then
	// "final" (StatusFinal).
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

// NewPerformanceWindow is what r says of its window.
func NewPerformanceWindow(r labels.Result) PerformanceWindow {
	v, ls := r.Verdict, r.LabelShift
	w := PerformanceWindow{
		Start: r.Start, End: r.End, Status: r.Status(),
		Predictions: r.Predictions, Labelled: r.Labelled, Coverage: num(r.Coverage()),
		Revision: r.Revision, Metrics: newMetrics(r.Metrics),
		Verdict: PerformanceVerdict{
			Metric: v.Metric, Value: num(v.Value), SE: num(v.SE),
			Reference: num(v.Reference), ReferenceSD: num(v.ReferenceSD), Bound: num(v.Bound),
			PValue: num(v.PValue), Degraded: v.Degraded, Rule: v.Rule,
		},
		Reference: r.Reference,
		LabelShift: LabelShift{Statistic: ls.Statistic, Reference: num(ls.Reference),
			Current: num(ls.Current), PValue: num(ls.PValue), Effect: num(ls.Effect.Value),
			EffectLower: num(ls.Effect.Lower), EffectMin: num(ls.Effect.Min),
			Drifted: ls.Drifted, Rule: ls.Rule},
	}
	if e := r.Estimated; r.Metrics.Kind == sketch.Classification {
		w.Estimated = &Estimate{N: e.N, Calibrated: e.Calibrated, Accuracy: num(e.Accuracy), Precision: num(e.Precision),
			Recall: num(e.Recall), F1: num(e.F1), ROCAUC: num(e.ROCAUC)}
	}
	return w
}

func newMetrics(m detectors.Metrics) Metrics {
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
