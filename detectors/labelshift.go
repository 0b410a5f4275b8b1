package detectors

import (
	"fmt"
	"math"

	"github.com/driftmon/driftmon/sketch"
)

// LabelShift is how a window's labels compare with the labels of the reference
// windows: label drift, which moves performance without any input drifting (more
// defaults in a recession) and which a model trained on old priors misjudges.
type LabelShift struct {
	// Statistic is "positive_rate" (classification) or "label_mean" (regression);
	// Reference and Current are its values.
	Statistic          string
	Reference, Current float64
	// PValue is the chi-square test of the 2×2 table of classes (classification) or
	// Welch's t-test of the means (regression); NaN without a verdict.
	PValue float64
	// Effect is the size of the move, judged on its lower bound like a feature's:
	// the total variation distance between the class shares (= the change of the
	// positive rate) against Options.MinTVD, or the mean's move in reference standard
	// deviations (for a shifted distribution, its Wasserstein-1 / σ) against
	// Options.MinWasserstein.
	Effect  Effect
	Drifted bool
	// Rule says why, as a feature's finding does.
	Rule string
}

// EvaluateLabelShift compares the labels of cur with those of the reference windows
// (ref's pooled accumulator; nil: none yet), at opts.FDR with opts' effect minimums.
// With no reference, or fewer than opts.MinRows labels on a side, there is no verdict.
func EvaluateLabelShift(ref *PerformanceReference, cur *sketch.Performance, opts Options) LabelShift {
	opts = opts.withDefaults()
	ls := LabelShift{Statistic: "positive_rate", PValue: math.NaN(), Reference: math.NaN()}
	if cur.Kind == sketch.Regression {
		ls.Statistic = "label_mean"
	}
	ls.Current = labelStatistic(cur)
	var pooled *sketch.Performance
	if ref != nil && ref.pooled != nil && ref.pooled.Kind == cur.Kind {
		pooled = ref.pooled
	}
	switch {
	case pooled == nil:
		ls.Rule = "no reference windows with labels yet"
		return ls
	case pooled.N < opts.MinRows || cur.N < opts.MinRows:
		ls.Reference = labelStatistic(pooled)
		ls.Rule = fmt.Sprintf("too few labels (%d and %d < %d)", pooled.N, cur.N, opts.MinRows)
		return ls
	}
	ls.Reference = labelStatistic(pooled)
	n, m := float64(cur.N), float64(pooled.N)
	alpha := opts.FDR
	if cur.Kind == sketch.Regression {
		varRef, varCur := pooled.LabelM2/(m-1), cur.LabelM2/(n-1)
		se2 := varRef/m + varCur/n
		diff := math.Abs(ls.Current - ls.Reference)
		sdRef := math.Sqrt(varRef)
		if !(se2 > 0) || !(sdRef > 0) {
			ls.Rule = "labels constant: no test"
			return ls
		}
		// Welch–Satterthwaite degrees of freedom.
		df := se2 * se2 / (varRef*varRef/(m*m*(m-1)) + varCur*varCur/(n*n*(n-1)))
		ls.PValue = StudentTTwoSided(diff/math.Sqrt(se2), df)
		ls.Effect = Effect{Statistic: DetectorWasserstein, Value: diff / sdRef, Min: opts.MinWasserstein,
			Lower: max(0, diff-normalQuantile(1-alpha)*math.Sqrt(se2)) / sdRef}
	} else {
		pr, pc := float64(pooled.Positives()), float64(cur.Positives())
		stat, dof := ChiSquareHomogeneity([]float64{pr, m - pr}, []float64{pc, n - pc})
		ls.PValue = ChiSquareSF(stat, dof)
		tvd := math.Abs(ls.Current - ls.Reference)
		ls.Effect = Effect{Statistic: DetectorTVD, Value: tvd, Min: opts.MinTVD,
			Lower: max(0, tvd-tvdMargin(2, n, m, alpha))}
	}
	significant := ls.PValue <= alpha
	ls.Drifted = significant && ls.Effect.Reached()
	what := fmt.Sprintf("%s %s → %s", ls.Statistic, sig2(ls.Reference), sig2(ls.Current))
	switch {
	case ls.Drifted:
		ls.Rule = fmt.Sprintf("%s; %s; %s ≤ %g", what, ls.Effect, pText(ls.PValue), alpha)
	case !significant:
		ls.Rule = fmt.Sprintf("not significant: %s; %s > %g", what, pText(ls.PValue), alpha)
	default:
		ls.Rule = fmt.Sprintf("effect too small: %s; %s", what, ls.Effect)
	}
	return ls
}

// labelStatistic is the positive rate (classification) or the label mean.
func labelStatistic(p *sketch.Performance) float64 {
	if p.N == 0 {
		return math.NaN()
	}
	if p.Kind == sketch.Regression {
		return p.LabelMean
	}
	return float64(p.Positives()) / float64(p.N)
}
