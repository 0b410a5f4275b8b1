package detectors

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/driftmon/driftmon/sketch"
)

// Joint drift of pairs of features: the pair-grid finding, from the profiles'
// pair grids (sketch.Grid).
//
// For each pair of numeric features (x, y) the grids cover, the reference's and
// the window's counts are cut into a k×k table at the reference's quantiles of x
// and of y (k = JointGrid, 8 by default, fewer when a side is too small for 5
// expected rows a cell), along the grids' bucket edges, so both sides' counts
// are exact. The test asks whether x and y are associated differently in the
// window than in the reference, whatever each one's own distribution does: the
// log-linear model of no three-way interaction (sample × x-bin × y-bin: each
// side keeps its own margins, both share the odds ratios of the reference's
// and window's pooled cells), fitted by iterative proportional fitting, and
// Pearson's X² of the fit with (k−1)² degrees of freedom (less one per cell
// empty on both sides). A marginal shift alone moves each side's margins, which
// the model absorbs; it is the per-feature tests' to report. (A large shift of
// one feature of a strongly dependent pair also moves the odds ratios at the
// reference's cut points, and so can flag the pair beside the feature.)
//
// Why this and not PCA error alone: the PCA finding (multivariate.go) sees
// changes of the correlation matrix, but a change that keeps every correlation
// (clusters of different spreads that swap places, a dependence that turns from
// a ring into a cross) moves no component; a grid sees any change of the joint
// distribution of the pair that the k×k cells resolve. PCA still sees what no
// pair sees: a change spread thinly over many features at once. Both are kept
// (bench/README.md, "Joint drift").
//
// The pairs' p-values join the model's Benjamini–Hochberg family as one
// hypothesis, the finding "(joint)", whose p-value is the Simes combination of
// its pairs' (K·p₍ᵢ₎/i, minimised; valid under the positive dependence pairs
// sharing a feature have). Putting 120 pair p-values into the family one by one
// would make every per-feature test 12× stricter. The pairs the finding names
// are those whose Benjamini–Hochberg adjusted p-value among the pairs is within
// FDR and whose effect reaches MinJoint.
//
// The effect size is a total variation distance: the share of the window's rows
// of the pair that sit in other cells than the reference's association (with
// the window's own margins) would put them, ½Σ|n − μ̂|/n over the window's cells.
// Its lower bound is the estimate minus ½√(χ²₁₋α(df)/n): under no change, by
// Cauchy–Schwarz, the distance is at most ½√(X²_window/n) ≤ ½√(X²/n), and X² is
// χ²(df). The floor, 0.1 (DefaultMinJoint), keeps a small change of
// association out of even a million-row window, while a correlation that flips
// sign misplaces half the rows.

// FeatureJoint is the Feature of the pair-grid finding, KindJoint its Kind.
const (
	FeatureJoint = "(joint)"
	KindJoint    = "joint"
	// DetectorPairGrid names the pair-grid detector.
	DetectorPairGrid = "pair_grid"
	// DetectorPairTVD names its effect size: the total variation distance of
	// the window's cells from the reference's association.
	DetectorPairTVD = "pair_tvd"
	// DefaultJointGrid is the number of quantile bins of each feature of a pair.
	DefaultJointGrid = 8
	// DefaultMinJoint is the smallest share of a pair's rows that must sit in
	// other cells for joint drift: one in ten. The generated joint changes
	// misplace 37–80% (lower bounds 0.25–0.67 at 1,000 rows); the car-loan
	// shift, which moves marginals (loan_length's median 16 → 19), misplaces at
	// most 10% of a pair's rows at the reference's cut points, with lower bounds
	// up to 0.059, which a floor of 0.05 flagged (TestCarLoan).
	DefaultMinJoint = 0.1
)

// PairShift is one pair of features in the pair-grid finding: the test, its
// effect, the k×k grid on each side and the cells that moved most.
type PairShift struct {
	X, Y string
	// XEdges and YEdges are the inner cut points of the bins (the reference's
	// quantiles, on bucket edges): bin i of x holds XEdges[i−1] ≤ x < XEdges[i].
	XEdges, YEdges []float64
	// Ref and Cur are the shares of the pair's rows in each cell [x bin][y bin].
	Ref, Cur [][]float64
	// RefRows and CurRows are the rows with both values finite on each side.
	RefRows, CurRows int64
	// Statistic is Pearson's X² of the no-change fit, DF its degrees of freedom,
	// PValue its p-value and AdjustedP its Benjamini–Hochberg adjusted p-value
	// among the finding's pairs.
	Statistic, DF, PValue, AdjustedP float64
	// Effect is the total variation distance from the reference's association,
	// with its lower bound and minimum.
	Effect Effect
	// Top are (up to 3) cells whose shares moved most.
	Top []BinShift
}

// Name reads like "x1 & x2".
func (p PairShift) Name() string { return p.X + " & " + p.Y }

// jointTest is the pairs of the finding before the decision: every tested pair.
type jointTest struct {
	pairs []PairShift
}

// joint compares the pair grids of ref and cur; ok is false when cur has none
// or the detector is off.
func joint(ref, cur *sketch.Profile, opts Options) (f Finding, ok bool) {
	if opts.MinJoint < 0 || cur == nil || cur.Grid == nil {
		return Finding{}, false
	}
	f = Finding{Feature: FeatureJoint, Kind: KindJoint, Detector: DetectorPairGrid,
		Threshold: opts.MinJoint, PValue: 1, AdjustedP: 1}
	if ref == nil || ref.Grid == nil {
		f.Verdict, f.Note = InsufficientData, "the reference has no pair grids (made before driftmon kept them: rebuild it)"
		return f, true
	}
	var tested []PairShift
	var note string
	for _, pair := range cur.Grid.Pairs() {
		pc, ok := sketch.ComparePair(ref.Grid, cur.Grid, pair[0], pair[1])
		if !ok {
			continue
		}
		p, why := testPair(pc, opts)
		if why != "" {
			if note == "" {
				note = fmt.Sprintf("%s & %s: %s", pair[0], pair[1], why)
			}
			continue
		}
		tested = append(tested, p)
	}
	if len(tested) == 0 {
		f.Verdict, f.Note = InsufficientData, "no pair of features to compare"
		if note != "" {
			f.Note = note
		}
		return f, true
	}
	ps := make([]float64, len(tested))
	for i, p := range tested {
		ps[i] = p.PValue
	}
	adj := BenjaminiHochberg(ps)
	for i := range tested {
		tested[i].AdjustedP = adj[i]
	}
	f.PValue = simes(ps)
	// The pairs named: within FDR among the pairs and with their effect, the
	// surest first; else the pair with the smallest p-value.
	var named []PairShift
	for _, p := range tested {
		if p.AdjustedP <= opts.FDR && p.Effect.Reached() {
			named = append(named, p)
		}
	}
	sort.SliceStable(named, func(a, b int) bool { return named[a].Effect.Lower > named[b].Effect.Lower })
	if len(named) == 0 {
		best := 0
		for i, p := range tested {
			if p.PValue < tested[best].PValue || p.PValue == tested[best].PValue && p.Effect.Value > tested[best].Effect.Value {
				best = i
			}
		}
		named = []PairShift{tested[best]}
	}
	top := named[0]
	f.Score = top.Effect.Value
	f.Effects = []Effect{top.Effect}
	f.RefRows, f.CurRows = top.RefRows, top.CurRows
	f.Scores = map[string]float64{
		DetectorPairTVD:    top.Effect.Value,
		DetectorChi2:       top.Statistic,
		"pairs_tested":     float64(len(tested)),
		"pairs_drifted":    float64(countReached(tested, opts.FDR)),
		"pair_p":           top.PValue,
		"pair_adjusted_p":  top.AdjustedP,
		"pair_grid_df":     top.DF,
		"pair_grid_bins_x": float64(len(top.XEdges) + 1),
		"pair_grid_bins_y": float64(len(top.YEdges) + 1),
	}
	f.Explanation.Pairs = named[:min(3, len(named))]
	return f, true
}

func countReached(ps []PairShift, fdr float64) int {
	n := 0
	for _, p := range ps {
		if p.AdjustedP <= fdr && p.Effect.Reached() {
			n++
		}
	}
	return n
}

// simes is the Simes combination of p-values: min over i of K·p₍ᵢ₎/i.
func simes(ps []float64) float64 {
	s := append([]float64(nil), ps...)
	sort.Float64s(s)
	best := 1.0
	for i, p := range s {
		best = min(best, p*float64(len(s))/float64(i+1))
	}
	return best
}

// testPair tests one pair; why says why it was not tested.
func testPair(pc sketch.PairCounts, opts Options) (PairShift, string) {
	p := PairShift{X: pc.X, Y: pc.Y}
	var n, m int64
	for i := range pc.Ref {
		for j := range pc.Ref[i] {
			m += pc.Ref[i][j]
			n += pc.Cur[i][j]
		}
	}
	p.RefRows, p.CurRows = m, n
	minRef := max(opts.MinRows, opts.MinReferenceRows)
	switch {
	case m < minRef:
		return p, fmt.Sprintf("insufficient reference: %d rows with both values, need %d", m, minRef)
	case n < opts.MinRows:
		return p, fmt.Sprintf("%d rows with both values, need %d", n, opts.MinRows)
	}
	// At most k bins a side, and at least 5 expected rows a cell on the smaller.
	k := min(opts.JointGrid, int(math.Sqrt(float64(min(n, m))/minExpected)))
	xbin, kx := quantileBins(pc.RefX, k)
	ybin, ky := quantileBins(pc.RefY, k)
	if kx < 2 || ky < 2 {
		return p, "a feature is constant in the reference"
	}
	ref, cur := binTable(pc.Ref, xbin, ybin, kx, ky), binTable(pc.Cur, xbin, ybin, kx, ky)
	fit, zeros := noInteractionFit(ref, cur)
	var x2, tvd float64
	for s, obs := range [2][][]float64{ref, cur} {
		for a := range kx {
			for b := range ky {
				if mu := fit[s][a][b]; mu > 0 {
					x2 += (obs[a][b] - mu) * (obs[a][b] - mu) / mu
					if s == 1 {
						tvd += math.Abs(obs[a][b]-mu) / 2
					}
				}
			}
		}
	}
	df := float64(max(1, (kx-1)*(ky-1)-zeros))
	tvd /= float64(n)
	p.Statistic, p.DF, p.PValue = x2, df, ChiSquareSF(x2, df)
	margin := math.Sqrt(ChiSquareQuantile(1-opts.FDR, df)/float64(n)) / 2
	p.Effect = Effect{Statistic: DetectorPairTVD, Value: tvd, Lower: max(0, tvd-margin), Min: opts.MinJoint}
	p.XEdges, p.YEdges = binEdges(pc.XLower, xbin, kx), binEdges(pc.YLower, ybin, ky)
	p.Ref, p.Cur = cellShares(ref, float64(m)), cellShares(cur, float64(n))
	p.Top = movedCells(p, 3)
	return p, ""
}

// quantileBins groups the buckets whose reference counts are given into at
// most k bins of nearly equal mass: each cut is the bucket edge closest to a
// multiple of 1/k of the mass, after a bucket the reference occupies, so every
// bin holds reference rows; a cut that coincides with the previous one is
// dropped, so a heavy bucket makes fewer bins rather than thin ones. It returns each bucket's bin and the bin count.
func quantileBins(counts []int64, k int) ([]int, int) {
	var total int64
	lastOccupied := -1
	for i, c := range counts {
		total += c
		if c > 0 {
			lastOccupied = i
		}
	}
	bin := make([]int, len(counts))
	if total == 0 || k < 2 {
		return bin, 1
	}
	var cuts []int // cut after bucket i
	prev := -1
	for j := 1; j < k; j++ {
		target := float64(total) * float64(j) / float64(k)
		best, bestDist := -1, math.Inf(1)
		var cum int64
		for i, c := range counts {
			cum += c
			if c == 0 || i >= lastOccupied {
				continue
			}
			if d := math.Abs(float64(cum) - target); d < bestDist {
				best, bestDist = i, d
			}
		}
		if best > prev {
			cuts = append(cuts, best)
			prev = best
		}
	}
	b := 0
	for i := range counts {
		bin[i] = b
		if b < len(cuts) && i == cuts[b] {
			b++
		}
	}
	return bin, len(cuts) + 1
}

// binTable adds up bucket counts into bins.
func binTable(cells [][]int64, xbin, ybin []int, kx, ky int) [][]float64 {
	t := make([][]float64, kx)
	for a := range t {
		t[a] = make([]float64, ky)
	}
	for i, row := range cells {
		for j, c := range row {
			t[xbin[i]][ybin[j]] += float64(c)
		}
	}
	return t
}

// rake scales each row of fit (each column when byColumn) to the sum of obs's, and
// returns the largest difference of sums it found: one step of iterative
// proportional fitting.
func rake(obs, fit [][]float64, byColumn bool) float64 {
	outer, inner := len(obs), len(obs[0])
	if byColumn {
		outer, inner = inner, outer
	}
	cell := func(i, j int) (int, int) {
		if byColumn {
			return j, i
		}
		return i, j
	}
	var worst float64
	for i := range outer {
		var want, got float64
		for j := range inner {
			a, b := cell(i, j)
			want += obs[a][b]
			got += fit[a][b]
		}
		worst = max(worst, math.Abs(want-got))
		if got > 0 {
			for j := range inner {
				a, b := cell(i, j)
				fit[a][b] *= want / got
			}
		}
	}
	return worst
}

// noInteractionFit fits the log-linear model of no three-way interaction to the
// 2×kx×ky table (ref, cur) by iterative proportional fitting: the fitted
// counts keep each side's x and y margins and the pooled cells. It returns the
// fit and the number of cells empty on both sides (structural zeros).
func noInteractionFit(ref, cur [][]float64) ([2][][]float64, int) {
	obs := [2][][]float64{ref, cur}
	kx, ky := len(ref), len(ref[0])
	var fit [2][][]float64
	zeros := 0
	for s := range fit {
		fit[s] = make([][]float64, kx)
		for a := range kx {
			fit[s][a] = make([]float64, ky)
			for b := range ky {
				if ref[a][b]+cur[a][b] > 0 {
					fit[s][a][b] = 1
				} else if s == 0 {
					zeros++
				}
			}
		}
	}
	for iter := 0; iter < 500; iter++ {
		var worst float64
		for s := range 2 { // the x margins, then the y margins, of each side
			worst = max(worst, rake(obs[s], fit[s], false), rake(obs[s], fit[s], true))
		}
		for a := range kx { // the pooled cells
			for b := range ky {
				want, got := ref[a][b]+cur[a][b], fit[0][a][b]+fit[1][a][b]
				worst = max(worst, math.Abs(want-got))
				if got > 0 {
					fit[0][a][b] *= want / got
					fit[1][a][b] *= want / got
				}
			}
		}
		if worst < 1e-7 {
			break
		}
	}
	return fit, zeros
}

// binEdges returns the lower edges of bins 1..k−1 (the inner cut points).
func binEdges(lower []float64, bin []int, k int) []float64 {
	edges := make([]float64, 0, k-1)
	for i := 1; i < len(bin); i++ {
		if bin[i] != bin[i-1] {
			edges = append(edges, lower[i])
		}
	}
	return edges
}

func cellShares(t [][]float64, n float64) [][]float64 {
	out := make([][]float64, len(t))
	for a, row := range t {
		out[a] = make([]float64, len(row))
		if n > 0 {
			for b, c := range row {
				out[a][b] = c / n
			}
		}
	}
	return out
}

// movedCells returns the (up to k) cells whose shares moved most, labelled
// like "x1 high (≥ 1.2) & x2 low (< −1.1)", with their contribution to PSI.
func movedCells(p PairShift, k int) []BinShift {
	type cell struct{ a, b int }
	var cells []cell
	for a := range p.Ref {
		for b := range p.Ref[a] {
			cells = append(cells, cell{a, b})
		}
	}
	moved := func(c cell) float64 { return math.Abs(p.Cur[c.a][c.b] - p.Ref[c.a][c.b]) }
	sort.SliceStable(cells, func(i, j int) bool { return moved(cells[i]) > moved(cells[j]) })
	out := make([]BinShift, 0, k)
	for _, c := range cells[:min(k, len(cells))] {
		r, q := p.Ref[c.a][c.b], p.Cur[c.a][c.b]
		out = append(out, BinShift{Label: pairBinLabel(p.X, p.XEdges, c.a) + " & " + pairBinLabel(p.Y, p.YEdges, c.b),
			RefShare: r, CurShare: q, Contribution: (q - r) * math.Log(max(q, 1e-4)/max(r, 1e-4))})
	}
	return out
}

// pairBinLabel names bin i of a feature cut at edges: "x low (< 1.2)",
// "x high (≥ 3)", or "x in [1.2, 3)".
func pairBinLabel(name string, edges []float64, i int) string {
	switch {
	case len(edges) == 0:
		return name
	case i == 0:
		return name + " low (< " + Compact(edges[0]) + ")"
	case i == len(edges):
		return name + " high (≥ " + Compact(edges[i-1]) + ")"
	}
	return name + " in [" + Compact(edges[i-1]) + ", " + Compact(edges[i]) + ")"
}

// jointSummary names the pairs whose association moved and the cells that
// moved most, e.g. "x1 & x2: x1 high (≥ 1.2) & x2 low (< −1.1) 0.4% → 11.2%,
// x1 low (< −1.2) & x2 high (≥ 1.1) 0.5% → 10.9%; also x3 & y".
func jointSummary(e Explanation) string {
	if len(e.Pairs) == 0 {
		return ""
	}
	p := e.Pairs[0]
	var cells []string
	for i, c := range p.Top {
		if i == 2 {
			break
		}
		cells = append(cells, fmt.Sprintf("%s %s → %s", c.Label, Percent(c.RefShare), Percent(c.CurShare)))
	}
	s := p.Name() + ": " + strings.Join(cells, ", ")
	if len(e.Pairs) > 1 {
		names := make([]string, 0, len(e.Pairs)-1)
		for _, q := range e.Pairs[1:] {
			names = append(names, q.Name())
		}
		s += "; also " + strings.Join(names, ", ")
	}
	return s
}
