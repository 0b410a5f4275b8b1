// Package detectors compares two profiles (a reference and a current window)
// feature by feature and decides which features drifted.
//
// Numeric features are tested with the two-sample Kolmogorov–Smirnov test
// (primary), categorical features with a chi-square homogeneity test whose
// effect size is PSI (primary). The decision rule is DESIGN.md §5: a feature
// drifts when its p-value survives Benjamini–Hochberg correction across all
// features at Options.FDR and its effect size reaches the configured minimum
// (KS D ≥ MinKS, PSI ≥ MinPSI). The first part stops noise in small windows,
// the second stops trivial but "significant" shifts in huge ones. Every
// effect size is judged by its lower confidence bound (see Effect), not its
// point estimate, so the floor holds in small windows too. Features with
// fewer than MinRows non-null values in the window, or fewer than
// MinReferenceRows in the reference, get no verdict.
//
// EvaluateQuality runs the data-quality checks (null, NaN/Inf and
// type-error rates, values out of range, new categories, distinct counts,
// rows per window and freshness), decided the same way: a test that
// survives Benjamini–Hochberg and a minimum effect.
//
// Everything here is a pure function of the two profiles (and, for volume
// and freshness, of inputs a profile does not hold). It imports only sketch:
// never ingest, alerting or anything under internal/, and alerting does not
// import it either (the monitor turns findings into alerts).
package detectors

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/driftmon/driftmon/sketch"
)

// Default option values.
const (
	// DefaultPSIBins is the conventional 10 quantile bins.
	DefaultPSIBins = 10
	// DefaultFDR is the false discovery rate across the features of one
	// comparison.
	DefaultFDR = 0.05
	// DefaultMinRows is the smallest number of non-null values on each side
	// for a verdict. At 100 rows the KS test already has power ≥ 0.9 against
	// D = 0.25.
	DefaultMinRows = 100
	// DefaultMinPSI is the conventional "moderate shift" PSI cut.
	DefaultMinPSI = 0.1
	// DefaultMinKS means at least 10% of the mass moved across some value.
	DefaultMinKS = 0.1
	// DefaultMinWasserstein is the other way a numeric feature's effect is
	// large enough: its distribution moved by at least 0.08 reference standard
	// deviations (Wasserstein-1 / σ_ref). A 0.1σ mean shift (D ≈ 0.04, far
	// below MinKS) is then drift once a window is large enough to show it
	// (n = m = 1e5), while a 0.01σ one, "significant" at n = m = 1e6, is not.
	// Lowering MinKS to 0.03 instead would also pass the 0.1σ shift, but it
	// flags a stable car-loan feature (driver_tenure, D 0.032, W 0.044)
	// against a 10,000-row warm-up reference; measured in
	// TestShiftAtScale and the car-loan tests.
	DefaultMinWasserstein = 0.08
	// DefaultMinTVD is the other effect-size minimum of categorical features:
	// one value in twenty changed category (total variation distance). PSI
	// alone misses share moves among few categories that a person calls
	// drift: 30/50/20% → 45/40/15% has PSI 0.098, 70/30% → 59/41% PSI 0.05.
	// At 0.05 the second flags in 5,000-row windows (its lower bound is
	// 0.08–0.09 there; at 0.1 it would need 50,000 rows), a one-point move
	// never does (bound 0.009 at n = m = 1e6), and neither the car-loan data's
	// stable categorical features nor null data flag (TestCategoricalShareShifts,
	// TestCarLoan, TestNoDriftFalseAlarms*; bench/README.md).
	DefaultMinTVD = 0.05
	// DefaultMinReferenceRows is the fewest non-null reference values for a
	// verdict. The reference's own noise is part of every effect's bound: a
	// 0.3σ shift in a 1,000-row window is flagged in 0.99 of the windows
	// against 1,000 reference rows, 0.91 against 500 and 0.69 against 250
	// (TestReferenceSizePower, bench/README.md).
	DefaultMinReferenceRows = 1000
)

// Options tunes Evaluate. Zero fields mean defaults; a negative MinPSI or
// MinKS disables that effect-size gate.
type Options struct {
	// PSIBins is the number of quantile bins of numeric PSI (default 10).
	PSIBins int
	// FDR is the Benjamini–Hochberg false discovery rate (default 0.05).
	FDR float64
	// MinRows is the minimum number of non-null values in both profiles
	// for a verdict (default 100).
	MinRows int64
	// MinReferenceRows is the minimum number of non-null values in the
	// reference for a verdict (default 1,000); fewer gives
	// insufficient_data with an "insufficient reference" note. A negative
	// value leaves only MinRows.
	MinReferenceRows int64
	// MinMultivariate is the effect-size minimum of the multivariate finding:
	// the relative change of the mean PCA reconstruction error (default 0.2).
	// Negative: no multivariate finding.
	MinMultivariate float64
	// MultivariateVariance is the share of the reference's variance the kept
	// principal components explain (default 0.65).
	MultivariateVariance float64
	// MinJoint is the effect-size minimum of the pair-grid finding: the share of
	// a pair's rows in other cells than the reference's association puts them
	// (default 0.1). Negative: no pair-grid finding.
	MinJoint float64
	// JointGrid is the number of quantile bins of each feature of a pair
	// (default 8; at most sketch.GridBuckets/2).
	JointGrid int
	// MinPSI is the effect-size minimum of categorical features (default 0.1).
	MinPSI float64
	// MinKS is the effect-size minimum (KS D) of numeric features (default 0.1).
	MinKS float64
	// MinTVD is the alternative effect-size minimum of categorical features
	// (default 0.1): a categorical feature's effect is large enough when PSI ≥
	// MinPSI or its total variation distance ≥ this, each judged on its lower
	// bound. Negative: PSI alone.
	MinTVD float64
	// MinWasserstein is the alternative effect-size minimum of numeric
	// features, in reference standard deviations (default 0.08): a numeric
	// feature's effect is large enough when D ≥ MinKS or W1/σ ≥ this.
	MinWasserstein float64
	// KSSketchError subtracts the sketches' own CDF error from the KS
	// statistic before the p-value and the effect-size gate:
	// D = max(0, D − ε_ref − ε_cur), where ε is sketch.Numeric.CDFError
	// (0 for exact value counts, max centroid weight / 2n for a digest,
	// about 0.004 per side at the default compression). It makes the test
	// conservative where sketch error rivals sampling error: windows of
	// ≥ 1e7 values, or a MinKS below 0.01. The price is power: a feature
	// whose D is within ε of MinKS no longer passes the gate. The amount
	// is in Finding.Scores["ks_sketch_error"].
	KSSketchError bool
	// Segments are the keys whose per-value profiles (sketch.Segments) are judged
	// too, in the same Benjamini–Hochberg family (see Segment).
	Segments []Segment
}

func (o Options) withDefaults() Options {
	if o.PSIBins < 2 {
		o.PSIBins = DefaultPSIBins
	}
	if !(o.FDR > 0 && o.FDR < 1) {
		o.FDR = DefaultFDR
	}
	if o.MinRows <= 0 {
		o.MinRows = DefaultMinRows
	}
	if o.MinMultivariate == 0 || math.IsNaN(o.MinMultivariate) {
		o.MinMultivariate = DefaultMinMultivariate
	}
	if !(o.MultivariateVariance > 0 && o.MultivariateVariance < 1) {
		o.MultivariateVariance = DefaultMultivariateVariance
	}
	if o.MinReferenceRows == 0 {
		o.MinReferenceRows = DefaultMinReferenceRows
	}
	if o.MinJoint == 0 || math.IsNaN(o.MinJoint) {
		o.MinJoint = DefaultMinJoint
	}
	if o.JointGrid < 2 || o.JointGrid > sketch.GridBuckets/2 {
		o.JointGrid = DefaultJointGrid
	}
	if o.MinPSI == 0 || math.IsNaN(o.MinPSI) {
		o.MinPSI = DefaultMinPSI
	}
	if o.MinTVD == 0 || math.IsNaN(o.MinTVD) {
		o.MinTVD = DefaultMinTVD
	}
	if o.MinWasserstein == 0 || math.IsNaN(o.MinWasserstein) {
		o.MinWasserstein = DefaultMinWasserstein
	}
	if o.MinKS == 0 || math.IsNaN(o.MinKS) {
		o.MinKS = DefaultMinKS
	}
	return o
}

// Verdict is the outcome for one feature.
type Verdict string

// The possible verdicts.
const (
	Drift            Verdict = "drift"
	Stable           Verdict = "stable"
	InsufficientData Verdict = "insufficient_data"
)

// Names of the detectors and scores that appear in findings.
const (
	DetectorKS          = "ks"
	DetectorPSI         = "psi"
	DetectorChi2        = "chi2"
	DetectorWasserstein = "wasserstein"
	DetectorJS          = "jensen_shannon"
	DetectorHellinger   = "hellinger"
	DetectorTVD         = "tvd"
	// ScoreKSSketchError is the CDF error bound subtracted from KS D when
	// Options.KSSketchError is set.
	ScoreKSSketchError = "ks_sketch_error"
)

// Finding is the comparison of one feature between the reference and the
// current profile: the primary detector's score and p-value, the decision,
// secondary scores and an explanation a person can act on.
type Finding struct {
	// Feature is the feature's name; Kind is "numeric" or "categorical".
	Feature, Kind string
	// Detector names the primary detector: "ks" for numeric features,
	// "psi" (tested with chi-square) for categorical ones.
	Detector string
	// Score is the primary effect size (KS D or PSI); Threshold is the
	// effect-size minimum it is compared with (MinKS or MinPSI).
	Score, Threshold float64
	// PValue is the primary test's p-value (KS or chi-square); AdjustedP
	// the Benjamini–Hochberg adjusted p-value across the features.
	PValue, AdjustedP float64
	// Verdict is drift, stable or insufficient_data.
	Verdict Verdict
	// PSI is always computed (numeric: quantile bins; categorical: one bin
	// per category), for explanation and dashboards.
	PSI float64
	// PSIThreshold is the calibrated no-drift PSI level
	// χ²₁₋α(K−1)·(1/n+1/m) for K bins and α = FDR: under no drift PSI
	// exceeds it with probability ≈ α. Useful to see whether a fixed PSI
	// cut is meaningful at these sample sizes.
	PSIThreshold float64
	// RefRows and CurRows are the non-null values compared on each side.
	RefRows, CurRows int64
	// Scores holds every score computed: "ks", "psi", "chi2",
	// "wasserstein" (W1 / reference std), "jensen_shannon" (base 2, in
	// [0,1]), "hellinger" (in [0,1]), and "ks_sketch_error" when
	// Options.KSSketchError is set.
	Scores map[string]float64
	// Effects are the effect sizes the decision's second half looked at,
	// each with its lower confidence bound and minimum: KS D and W1/σ for
	// numeric features, PSI and total variation distance for categorical
	// ones. Nil for insufficient_data.
	Effects []Effect
	// Rule says in words which rule decided the verdict: the effect whose
	// lower bound reached its minimum ("KS D 0.38, lower bound 0.34 ≥ min
	// 0.1; BH p<0.001 ≤ 0.05"), or why none did.
	Rule string
	// Note says why a finding is insufficient_data.
	Note string
	// Explanation travels with every finding.
	Explanation Explanation
	// Segment is, for a finding about one segment's rows (Options.Segments), the
	// segment as key=value ("country=DE"), and Feature is then
	// SegmentName(feature, Segment). Empty for the whole traffic.
	Segment string
	// SegmentShare is the segment's share of the window's rows.
	SegmentShare float64
	// SegmentOnly says that the segment drifted while the whole traffic's
	// finding of the same feature did not: drift the whole dilutes.
	SegmentOnly bool
}

// Explanation says how the distribution moved. Every finding whose feature
// has values on both sides carries one, insufficient_data included.
type Explanation struct {
	// Quantiles and means of the finite values (numeric features only).
	RefP5, RefP50, RefP95, CurP5, CurP50, CurP95, RefMean, CurMean float64
	// RefNullRate and CurNullRate are the shares of null (and, for
	// numeric features, NaN) values among all values.
	RefNullRate, CurNullRate float64
	// Components are, for the multivariate finding, the (up to 3) reference
	// principal components whose variance changed most (RefMean and CurMean
	// then hold the mean reconstruction errors).
	Components []Component
	// Top lists (up to 3) bins with their shares on each side: for numeric
	// features those contributing most to PSI, for categorical ones the
	// categories whose shares moved most.
	Top []BinShift
	// Pairs are, for the pair-grid finding, the (up to 3) pairs of features
	// whose association moved, surest first, each with its grid on both sides
	// and the cells that moved most; when none did, the pair with the smallest
	// p-value.
	Pairs []PairShift
}

// BinShift is one PSI bin: its label, the share of values in it on each
// side, and its contribution (q−p)·ln(q/p) to PSI (smoothed shares).
type BinShift struct {
	Label                            string
	RefShare, CurShare, Contribution float64
}

// Evaluate compares cur with ref feature by feature (in cur's order) and
// returns one finding per feature of cur, then, when cur has a joint sketch
// (two or more numeric fields), the multivariate finding (FeatureMultivariate,
// see multivariate.go), and when cur has pair grids, the pair-grid finding
// (FeatureJoint, see joint.go), then the findings of each judged segment
// (Options.Segments, see segmentFindings), with Benjamini–Hochberg applied
// across all findings that have enough data. A feature missing from ref or of a different kind
// gets insufficient_data.
func Evaluate(ref, cur *sketch.Profile, opts Options) []Finding {
	opts = opts.withDefaults()
	if cur == nil {
		return nil
	}
	out := make([]Finding, 0, len(cur.Features))
	for _, cf := range cur.Features {
		var rf *sketch.Feature
		if ref != nil {
			rf = ref.Feature(cf.Name)
		}
		out = append(out, evaluateFeature(rf, cf, opts))
	}
	if f, ok := multivariate(ref, cur, opts); ok {
		out = append(out, f)
	}
	if f, ok := joint(ref, cur, opts); ok {
		out = append(out, f)
	}
	out = append(out, segmentFindings(ref, cur, opts)...)
	decide(out, opts)
	markSegmentOnly(out)
	return out
}

func evaluateFeature(rf, cf *sketch.Feature, opts Options) Finding {
	f := Finding{Feature: cf.Name, Kind: cf.Kind.String(), PValue: 1, AdjustedP: 1}
	switch {
	case rf == nil:
		f.Verdict, f.Note = InsufficientData, "feature not in reference"
		return f
	case rf.Kind != cf.Kind:
		f.Verdict, f.Note = InsufficientData, "reference has kind "+rf.Kind.String()
		return f
	case cf.Cat != nil:
		categorical(&f, rf.Cat, cf.Cat, opts)
	default:
		numeric(&f, rf.Num, cf.Num, opts)
	}
	return f
}

// decide applies Benjamini–Hochberg and the effect-size gates.
func decide(fs []Finding, opts Options) {
	idx := make([]int, 0, len(fs))
	for i := range fs {
		if fs[i].Verdict != InsufficientData {
			idx = append(idx, i)
		}
	}
	ps := make([]float64, len(idx))
	for k, i := range idx {
		ps[k] = fs[i].PValue
	}
	adj := BenjaminiHochberg(ps)
	for k, i := range idx {
		f := &fs[i]
		f.AdjustedP = adj[k]
		f.Verdict = Stable
		significant := f.AdjustedP <= opts.FDR
		bh := "BH " + pText(f.AdjustedP) + " > " + sig2(opts.FDR)
		if significant {
			bh = "BH " + pText(f.AdjustedP) + " ≤ " + sig2(opts.FDR)
		}
		fired := firstReached(f.Effects)
		switch {
		case significant && fired >= 0:
			f.Verdict = Drift
			f.Rule = f.Effects[fired].String() + "; " + bh
		case !significant:
			f.Rule = "not significant: " + bh
		default:
			parts := make([]string, len(f.Effects))
			for i, e := range f.Effects {
				parts[i] = e.String()
			}
			f.Rule = "effect too small: " + strings.Join(parts, "; ")
		}
		if f.Kind == KindJoint && len(f.Explanation.Pairs) > 0 {
			f.Rule = f.Explanation.Pairs[0].Name() + ": " + f.Rule
		}
	}
}

// firstReached returns the index of the first effect whose lower bound reaches
// its minimum, or -1.
func firstReached(es []Effect) int {
	for i, e := range es {
		if e.Reached() {
			return i
		}
	}
	return -1
}

// pText formats a p-value as "p<0.001" or "p=0.012".
func pText(p float64) string {
	if p < 0.001 {
		return "p<0.001"
	}
	return "p=" + strconv.FormatFloat(p, 'f', 3, 64)
}

// tooFew gives f no verdict when the reference or the window holds too few
// values, and says so; it reports whether it did.
func tooFew(f *Finding, refCount, curCount int64, opts Options) bool {
	switch {
	case opts.MinReferenceRows > 0 && refCount < opts.MinReferenceRows:
		f.Note = fmt.Sprintf("insufficient reference: %d values, need %d", refCount, opts.MinReferenceRows)
	case refCount < opts.MinRows || curCount < opts.MinRows:
		f.Note = fmt.Sprintf("%d reference and %d current values, need %d each", refCount, curCount, opts.MinRows)
	default:
		return false
	}
	f.Verdict = InsufficientData
	return true
}

// BenjaminiHochberg returns the Benjamini–Hochberg adjusted p-values of ps
// (in the same order): p₍ᵢ₎·m/i made monotone from the largest down and
// capped at 1. A hypothesis is rejected at FDR q when its adjusted p ≤ q.
func BenjaminiHochberg(ps []float64) []float64 {
	m := len(ps)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ps[order[a]] < ps[order[b]] })
	adj := make([]float64, m)
	running := 1.0
	for r := m - 1; r >= 0; r-- {
		i := order[r]
		p := ps[i]
		if math.IsNaN(p) {
			p = 1
		}
		v := p * float64(m) / float64(r+1)
		if v < running {
			running = v
		}
		adj[i] = running
	}
	return adj
}
