package detectors

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/driftmon/driftmon/sketch"
)

// Metrics are a window's model-performance figures, computed from a
// sketch.Performance; a figure is NaN where it is undefined (ROC AUC with
// one class, precision with no predicted positives, MAPE with every label 0,
// anything with no pairs).
type Metrics struct {
	Kind sketch.PerformanceKind
	N    int64
	// Classification: accuracy, precision, recall and F1 at the
	// accumulator's threshold; ROC AUC and the mean log loss over all
	// scores.
	Accuracy, Precision, Recall, F1, ROCAUC, LogLoss float64
	// ROCAUCError is the most the binned ROC AUC can be off the exact rank
	// AUC (see sketch.PerformanceBins).
	ROCAUCError    float64
	TP, FP, TN, FN int64
	// PositiveRate is the share of labels that are positive.
	PositiveRate float64
	// Regression: mean absolute error, root mean squared error and mean
	// absolute percentage error as a fraction (0.12 is 12%), over the
	// labels that are not 0.
	MAE, RMSE, MAPE float64
	// LabelMean and LabelSD describe the labels (regression), to read MAE
	// and RMSE against.
	LabelMean, LabelSD float64
}

// ComputeMetrics turns an accumulator into its metrics.
func ComputeMetrics(p *sketch.Performance) Metrics {
	nan := math.NaN()
	m := Metrics{
		Kind: p.Kind, N: p.N, TP: p.TP, FP: p.FP, TN: p.TN, FN: p.FN,
		Accuracy: nan, Precision: nan, Recall: nan, F1: nan, ROCAUC: nan, LogLoss: nan, ROCAUCError: nan,
		PositiveRate: nan, MAE: nan, RMSE: nan, MAPE: nan, LabelMean: nan, LabelSD: nan,
	}
	n := float64(p.N)
	switch p.Kind {
	case sketch.Classification:
		m.Accuracy = ratio(p.TP+p.TN, p.N)
		m.Precision = ratio(p.TP, p.TP+p.FP)
		m.Recall = ratio(p.TP, p.TP+p.FN)
		m.F1 = ratio(2*p.TP, 2*p.TP+p.FP+p.FN)
		m.PositiveRate = ratio(p.Positives(), p.N)
		m.ROCAUC, m.ROCAUCError = p.AUC()
		if p.N > 0 {
			m.LogLoss = p.LogLossSum / n
		}
	case sketch.Regression:
		if p.N > 0 {
			m.MAE = p.AbsErrSum / n
			m.RMSE = math.Sqrt(p.SqErrSum / n)
			m.LabelMean = p.LabelMean
		}
		if p.N > 1 {
			m.LabelSD = math.Sqrt(p.LabelM2 / (n - 1))
		}
		if p.PctN > 0 {
			m.MAPE = p.AbsPctErrSum / float64(p.PctN)
		}
	}
	return m
}

// ratio is a/b, NaN when b is 0.
func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// The performance metric names of configuration, rules and verdicts.
const (
	MetricAccuracy  = "accuracy"
	MetricPrecision = "precision"
	MetricRecall    = "recall"
	MetricF1        = "f1"
	MetricROCAUC    = "roc_auc"
	MetricLogLoss   = "log_loss"
	MetricMAE       = "mae"
	MetricRMSE      = "rmse"
	MetricMAPE      = "mape"
)

// performanceMetrics are the metrics of each kind, in display order, each with
// where Metrics keeps it and whether higher is better.
var performanceMetrics = map[sketch.PerformanceKind][]struct {
	name   string
	value  func(Metrics) float64
	higher bool
}{
	sketch.Classification: {
		{MetricAccuracy, func(m Metrics) float64 { return m.Accuracy }, true},
		{MetricPrecision, func(m Metrics) float64 { return m.Precision }, true},
		{MetricRecall, func(m Metrics) float64 { return m.Recall }, true},
		{MetricF1, func(m Metrics) float64 { return m.F1 }, true},
		{MetricROCAUC, func(m Metrics) float64 { return m.ROCAUC }, true},
		{MetricLogLoss, func(m Metrics) float64 { return m.LogLoss }, false},
	},
	sketch.Regression: {
		{MetricMAE, func(m Metrics) float64 { return m.MAE }, false},
		{MetricRMSE, func(m Metrics) float64 { return m.RMSE }, false},
		{MetricMAPE, func(m Metrics) float64 { return m.MAPE }, false},
	},
}

// PerformanceMetricNames lists the names valid for a kind, in display order
// (nil for an unknown kind).
func PerformanceMetricNames(kind sketch.PerformanceKind) []string {
	var names []string
	for _, d := range performanceMetrics[kind] {
		names = append(names, d.name)
	}
	return names
}

// Metric returns the named metric and whether higher is better; ok is false
// for an unknown name or one of the other kind.
func (m Metrics) Metric(name string) (value float64, higherIsBetter bool, ok bool) {
	for _, d := range performanceMetrics[m.Kind] {
		if d.name == name {
			return d.value(m), d.higher, true
		}
	}
	return math.NaN(), false, false
}

// MetricSE is the sampling standard error of the named metric of this
// window, as if its pairs were a random sample of the population the model
// serves; NaN when it cannot be computed (an undefined metric, too few
// pairs, an unknown name).
//
//   - accuracy, precision, recall: binomial, √(p(1−p)/n) over the pairs the
//     rate is a share of (all, the predicted positives, the positives);
//     precision and recall treat that denominator as fixed.
//   - f1: delta method on the multinomial confusion counts, which gives
//     4·TP·(FP+FN)·(TP+FP+FN)/(2TP+FP+FN)⁴ as the variance.
//   - roc_auc: Hanley & McNeil (1982), exact for exponential score
//     distributions and an approximation otherwise (within 15% of the
//     simulated SD on the tests' logistic scores); it ignores the binning
//     error (Metrics.ROCAUCError), which is far smaller.
//   - log_loss, mae, mape: the SD of the per-pair loss over √n, from the
//     accumulator's sums of squares (Σℓ², Σe², Σ(e/y)²).
//   - rmse: delta method, SE(MSE)/(2·RMSE) with SE(MSE) from Σe⁴.
//
// All of them rest on the central limit theorem, so they are approximate for
// small windows and for metrics near 0 or 1 (a window with no errors has
// SE 0).
func MetricSE(p *sketch.Performance, name string) float64 {
	m := ComputeMetrics(p)
	v, _, ok := m.Metric(name)
	if !ok || math.IsNaN(v) {
		return math.NaN()
	}
	binomial := func(rate float64, n int64) float64 {
		return math.Sqrt(rate * (1 - rate) / float64(n))
	}
	// meanSE is the standard error of a mean of n values with sums s and s2.
	meanSE := func(s, s2 float64, n int64) float64 {
		if n < 2 {
			return math.NaN()
		}
		k := float64(n)
		mean := s / k
		return math.Sqrt(max(0, s2/k-mean*mean) / (k - 1))
	}
	switch name {
	case MetricAccuracy:
		return binomial(v, p.N)
	case MetricPrecision:
		return binomial(v, p.TP+p.FP)
	case MetricRecall:
		return binomial(v, p.Positives())
	case MetricF1:
		tp, e := float64(p.TP), float64(p.FP+p.FN)
		d := 2*tp + e
		return math.Sqrt(4 * tp * e * (tp + e) / (d * d * d * d))
	case MetricROCAUC:
		return hanleyMcNeil(v, float64(p.Positives()), float64(p.Negatives()))
	case MetricLogLoss:
		return meanSE(p.LogLossSum, p.LogLossSqSum, p.N)
	case MetricMAE:
		return meanSE(p.AbsErrSum, p.SqErrSum, p.N)
	case MetricMAPE:
		return meanSE(p.AbsPctErrSum, p.AbsPctErrSqSum, p.PctN)
	case MetricRMSE:
		mseSE := meanSE(p.SqErrSum, p.SqErrSqSum, p.N)
		if v == 0 {
			return mseSE
		}
		return mseSE / (2 * v)
	}
	return math.NaN()
}

// hanleyMcNeil is the standard error of an AUC a of np positives and nn
// negatives by Hanley & McNeil (1982), equation 2.
func hanleyMcNeil(a, np, nn float64) float64 {
	q1 := a / (2 - a)
	q2 := 2 * a * a / (1 + a)
	v := (a*(1-a) + (np-1)*(q1-a*a) + (nn-1)*(q2-a*a)) / (np * nn)
	return math.Sqrt(max(v, 0))
}

// PerformanceRule is an alert rule on one metric.
type PerformanceRule struct {
	// Metric is one of PerformanceMetricNames.
	Metric string
	// Min and Max are an absolute floor and ceiling that the user chose
	// (roc_auc min 0.8; rmse max 3); NaN means none. 0, the zero value,
	// also means none: every metric is ≥ 0, so a floor of 0 never fires,
	// and a ceiling of 0 on an error would fire on any error at all.
	Min, Max float64
	// Relative flags a window that is worse than the reference by more than
	// the reference's own window-to-window variation plus the window's own
	// sampling error (see EvaluatePerformance).
	Relative bool
	// FDR is the one-sided level of the relative test (default DefaultFDR).
	FDR float64
}

// PerformanceVerdict is the outcome of one rule for one window.
type PerformanceVerdict struct {
	Metric string
	// Value is the window's metric and SE its standard error (MetricSE).
	Value, SE float64
	// Reference and ReferenceSD are the mean and SD of the metric over the
	// reference windows (NaN without two of them; with fewer, Reference is
	// the pooled reference's metric and ReferenceSD stays NaN).
	Reference, ReferenceSD float64
	// Bound is the value the window's metric was compared with: Min, Max or
	// the relative rule's critical value; NaN when nothing was compared.
	Bound float64
	// PValue is the relative test's one-sided p-value (NaN without one).
	PValue float64
	// Degraded is true when the rule fired.
	Degraded bool
	// Rule says what was compared, in words, e.g. "ROC AUC 0.71 < min 0.8" or
	// "ROC AUC 0.71 is 0.09 below the reference 0.8 (±0.02 window to window,
	// ±0.015 this window): p<0.001".
	Rule string
}

// EvaluatePerformance judges the window cur against rule. ref holds the
// accumulators of the reference windows, one per window (it may be empty;
// windows of another kind or threshold are skipped). With fewer than
// minRows valid pairs in cur there is no verdict.
//
// Absolute bounds are plain: the window is degraded when its metric is
// below Min or above Max, whatever its sampling error, because the user
// chose the number.
//
// The relative test asks whether the window's metric v is worse than the
// reference by more than chance. With k ≥ 2 reference windows that hold
// minRows pairs and a defined metric, of mean μ and SD s, the drop
// d = μ − v (v − μ for lower-is-better metrics) is compared with its
// predictive variance
//
//	V = τ² + σ² + s²/k,  τ² = max(0, s² − mean of the windows' SE²)
//
// where σ is the window's own SE: τ² is the true window-to-window variation
// (s² less the sampling noise that is already in it), σ² the sampling noise
// of this window (which may hold fewer labels than the reference windows)
// and s²/k the uncertainty of μ. When all windows hold as many labels, V is
// about s²(1 + 1/k), the classical prediction interval for one more window,
// and it stays right even where the SE formula is biased (the bias cancels
// between τ² and σ²). s comes from only k windows, so d/√V is referred to a
// Student t whose degrees of freedom are Satterthwaite's, (k−1)·V²/E², E the
// estimated part of V (τ² + s²/k, or s²/k when τ² is 0): k−1 when the
// reference's variation dominates, growing to the normal when this window's
// own noise does. The floor on τ² keeps the test slightly conservative when
// the windows differ by sampling noise alone. The window is
// degraded when the one-sided p-value is below rule.FDR. With 0 or 1 usable
// reference windows, the pooled reference's metric and SE stand for μ and s
// (sampling noise only, normal): V = SE_ref² + σ².
func EvaluatePerformance(cur *sketch.Performance, ref []*sketch.Performance, rule PerformanceRule, minRows int64) PerformanceVerdict {
	nan := math.NaN()
	v := PerformanceVerdict{Metric: rule.Metric, Value: nan, SE: nan, Reference: nan, ReferenceSD: nan, Bound: nan, PValue: nan}
	label := metricLabel(rule.Metric)
	value, higher, ok := ComputeMetrics(cur).Metric(rule.Metric)
	if !ok {
		v.Rule = fmt.Sprintf("unknown %s metric %q", cur.Kind, rule.Metric)
		return v
	}
	v.Value, v.SE = value, MetricSE(cur, rule.Metric)
	if cur.N < minRows {
		v.Rule = fmt.Sprintf("too few labels (%d < %d)", cur.N, minRows)
		return v
	}
	if math.IsNaN(value) {
		v.Rule = label + " is undefined in this window"
		return v
	}
	var checks []string
	fire := func(bound float64, text string) {
		if !v.Degraded {
			v.Bound, v.Rule = bound, text
		}
		v.Degraded = true
	}
	if lo := rule.Min; !math.IsNaN(lo) && lo != 0 {
		v.Bound = lo
		if value < lo {
			fire(lo, label+" "+metricText(value)+" < min "+metricText(lo))
		} else {
			checks = append(checks, label+" "+metricText(value)+" ≥ min "+metricText(lo))
		}
	}
	if hi := rule.Max; !math.IsNaN(hi) && hi != 0 {
		v.Bound = hi
		if value > hi {
			fire(hi, label+" "+metricText(value)+" > max "+metricText(hi))
		} else {
			checks = append(checks, label+" "+metricText(value)+" ≤ max "+metricText(hi))
		}
	}
	if rule.Relative {
		fdr := rule.FDR
		if !(fdr > 0 && fdr < 1) {
			fdr = DefaultFDR
		}
		text, bound, p, fired := v.relative(cur, ref, rule.Metric, label, higher, fdr, minRows)
		v.PValue = p
		if fired {
			fire(bound, text)
		} else {
			v.Bound = bound
			checks = append(checks, text)
		}
	}
	switch {
	case v.Degraded:
	case len(checks) == 0:
		v.Rule = "no bound set for " + label
	default:
		v.Rule = strings.Join(checks, "; ")
	}
	return v
}

// relative runs the relative test (see EvaluatePerformance), filling in the
// reference figures of v; it returns the rule text, the critical value, the
// p-value and whether the window is degraded.
func (v *PerformanceVerdict) relative(cur *sketch.Performance, ref []*sketch.Performance, name, label string, higher bool, fdr float64, minRows int64) (text string, bound, p float64, fired bool) {
	var vals, ses []float64
	pooled := sketch.NewPerformance(cur.Kind, cur.Threshold)
	for _, r := range ref {
		if r == nil || pooled.Merge(r) != nil {
			continue
		}
		if x, _, _ := ComputeMetrics(r).Metric(name); r.N >= minRows && !math.IsNaN(x) {
			vals = append(vals, x)
			ses = append(ses, MetricSE(r, name))
		}
	}
	var mu, varD, df, spread float64
	var spreadText string
	if k := float64(len(vals)); k >= 2 {
		var sum, sumSE2 float64
		for i, x := range vals {
			sum += x
			if !math.IsNaN(ses[i]) {
				sumSE2 += ses[i] * ses[i]
			}
		}
		mu = sum / k
		var ss float64
		for _, x := range vals {
			ss += (x - mu) * (x - mu)
		}
		s2 := ss / (k - 1)
		tau2 := max(0, s2-sumSE2/k)
		sigma2 := v.SE * v.SE
		if math.IsNaN(sigma2) {
			sigma2 = 0
		}
		varD = tau2 + sigma2 + s2/k
		// The part of V estimated from the k windows: τ² + s²/k while
		// s² exceeds the sampling noise, s²/k alone once τ² is floored.
		est := s2 / k
		if tau2 > 0 {
			est += s2
		}
		df = math.Inf(1)
		if est > 0 {
			df = min((k-1)*varD*varD/(est*est), 1e4)
		}
		v.ReferenceSD = math.Sqrt(s2)
		spread, spreadText = v.ReferenceSD, " window to window"
	} else {
		x, _, _ := ComputeMetrics(pooled).Metric(name)
		se := MetricSE(pooled, name)
		if math.IsNaN(x) || pooled.N < minRows {
			return "no reference for " + label, math.NaN(), math.NaN(), false
		}
		mu, df = x, math.Inf(1)
		varD = se*se + v.SE*v.SE
		spread, spreadText = se, " reference sampling"
	}
	v.Reference = mu
	drop := mu - v.Value
	if !higher {
		drop = -drop
	}
	sd := math.Sqrt(varD)
	var crit float64
	if math.IsInf(df, 1) {
		crit = -normalQuantile(fdr)
	} else {
		crit = StudentTQuantile(1-fdr, df)
	}
	if higher {
		bound = mu - crit*sd
	} else {
		bound = mu + crit*sd
	}
	switch {
	case math.IsNaN(sd):
		return label + " has no standard error to test against", bound, math.NaN(), false
	case sd == 0:
		p = 0.5
		if drop > 0 {
			p = 0
		} else if drop < 0 {
			p = 1
		}
	default:
		p = upperTail(drop/sd, df)
	}
	dir := "below"
	if (drop > 0) != higher {
		dir = "above"
	}
	text = fmt.Sprintf("%s %s is %s %s the reference %s (±%s%s, ±%s this window): %s",
		label, metricText(v.Value), metricText(math.Abs(v.Value-mu)), dir, metricText(mu),
		metricText(spread), spreadText, metricText(v.SE), pText(p))
	return text, bound, p, p < fdr
}

// upperTail is P(T > t) for a Student t with df degrees of freedom (+Inf:
// normal).
func upperTail(t, df float64) float64 {
	if math.IsInf(df, 1) {
		return math.Erfc(t/math.Sqrt2) / 2
	}
	two := StudentTTwoSided(math.Abs(t), df) / 2
	if t > 0 {
		return two
	}
	return 1 - two
}

// metricLabel is a metric's name as people write it.
func metricLabel(name string) string {
	switch name {
	case MetricAccuracy:
		return "accuracy"
	case MetricPrecision:
		return "precision"
	case MetricRecall:
		return "recall"
	case MetricF1:
		return "F1"
	case MetricROCAUC:
		return "ROC AUC"
	case MetricLogLoss:
		return "log loss"
	case MetricMAE:
		return "MAE"
	case MetricRMSE:
		return "RMSE"
	case MetricMAPE:
		return "MAPE"
	}
	return name
}

// metricText formats a metric value with three significant digits (AUCs and
// accuracies differ in the third): 0.853, 0.8, 12.3, 0.0151.
func metricText(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
