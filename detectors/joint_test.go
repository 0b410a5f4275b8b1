package detectors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// pairStream names a generated joint distribution of x1 and x2 (plus noise
// features) before (after=false) and after a change that moves no marginal.
type pairStream int

const (
	// radialSwap: four clusters at (±1.5, ±1.5), a quarter of the rows each, tight
	// (σ 0.3) at (+,+) and (−,−) and wide (σ 1) at (+,−) and (−,+); after the
	// change the tight and wide clusters interchange their centres. Each marginal
	// is the same mixture before and after, and every correlation is 0 in both.
	radialSwap pairStream = iota
	// xorFlip: x1 and x2 standard normal with sign(x1·x2) = +1, then −1.
	xorFlip
	// corrFlip: correlation +0.8, then −0.8.
	corrFlip
	// rotation: two classes y (half each) with clusters at (+1, +1) and (−1, −1)
	// in (x1, x2), then at (+1, −1) and (−1, +1).
	rotation
)

func (s pairStream) String() string {
	return [...]string{"radial clusters swap", "xor flip", "correlation flip", "class rotation"}[s]
}

// pairColumns generates n rows of x1, x2, y (a 0/1 class), and noise features
// n1…nk (standard normal, independent).
func pairColumns(r *rand.Rand, n, noise int, s pairStream, after bool) []column {
	x1, x2, y := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		switch s {
		case radialSwap:
			c := r.IntN(4)
			sx, sy := float64(1-2*(c&1)), float64(1-2*(c>>1))
			sigma := 1.0
			if tight := sx == sy; tight != after {
				sigma = 0.3
			}
			x1[i], x2[i] = 1.5*sx+sigma*r.NormFloat64(), 1.5*sy+sigma*r.NormFloat64()
			y[i] = float64(r.IntN(2))
		case xorFlip:
			a, b := r.NormFloat64(), math.Abs(r.NormFloat64())
			sign := 1.0
			if after {
				sign = -1
			}
			x1[i], x2[i] = a, sign*math.Copysign(b, a)
			y[i] = float64(r.IntN(2))
		case corrFlip:
			rho := 0.8
			if after {
				rho = -0.8
			}
			a := r.NormFloat64()
			x1[i], x2[i] = a, rho*a+math.Sqrt(1-rho*rho)*r.NormFloat64()
			y[i] = float64(r.IntN(2))
		case rotation:
			c := float64(r.IntN(2))
			sgn := 1 - 2*c
			x1[i] = sgn + r.NormFloat64()
			if after {
				sgn = -sgn
			}
			x2[i] = sgn + r.NormFloat64()
			y[i] = c
		}
	}
	cols := []column{{name: "x1", num: x1}, {name: "x2", num: x2}, {name: "y", num: y}}
	for k := range noise {
		cols = append(cols, column{name: fmt.Sprintf("n%02d", k+1), num: normals(r, n, 0, 1)})
	}
	return cols
}

// TestPairGridSeesJointDrift: on each generated stream no marginal drifts, the
// pair-grid finding flags the window after the change (naming x1 & x2 and the
// cells that moved) and not a window of the same distribution as the
// reference. The PCA finding, beside it, is blind to the radial swap (every
// correlation stays 0).
func TestPairGridSeesJointDrift(t *testing.T) {
	for _, s := range []pairStream{radialSwap, xorFlip, corrFlip, rotation} {
		for _, n := range []int{1000, 5000} {
			for _, after := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s, n=%d, after=%v", s, n, after), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(s)+1, uint64(n)))
					ref := profileOf(t, pairColumns(r, 50000, 3, s, false), sketch.Options{}, 5000)
					cur := profileOf(t, pairColumns(r, n, 3, s, after), sketch.Options{}, 1000)
					fs := Evaluate(ref, cur, Options{})
					var jf, mv Finding
					for _, f := range fs {
						switch f.Kind {
						case KindJoint:
							jf = f
						case KindMultivariate:
							mv = f
						default:
							if f.Verdict != Stable {
								t.Errorf("marginal %s: %s (%s)", f.Feature, f.Verdict, f.Rule)
							}
						}
					}
					t.Logf("joint %s: %s; %s | PCA %s: %s", jf.Verdict, jf.Rule, jf.Summary(), mv.Verdict, mv.Rule)
					if (jf.Verdict == Drift) != after {
						t.Fatalf("joint verdict %s, want drift=%v", jf.Verdict, after)
					}
					if !after {
						return
					}
					if p := jf.Explanation.Pairs[0]; p.Name() != "x1 & x2" && !(s == rotation && (p.Name() == "x1 & y" || p.Name() == "x2 & y")) {
						t.Errorf("named pair %q", p.Name())
					}
					if sum := jf.Summary(); !strings.Contains(sum, "x1 ") || !strings.Contains(sum, "%") || !strings.HasPrefix(jf.Rule, jf.Explanation.Pairs[0].Name()+": cells moved") {
						t.Errorf("rule %q, summary %q", jf.Rule, sum)
					}
					if s == radialSwap && mv.Verdict == Drift {
						t.Errorf("PCA flags the radial swap, whose correlations stay 0: %s", mv.Rule)
					}
				})
			}
		}
	}
}

// TestPairGridExact: the pair test from the sketches equals the same test on
// the raw rows binned at the same cut points, and agrees with the test on the
// raw rows binned at their exact quantiles.
func TestPairGridExact(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	refCols, curCols := pairColumns(r, 20000, 0, radialSwap, false), pairColumns(r, 3000, 0, radialSwap, true)
	ref := profileOf(t, refCols, sketch.Options{}, 700)
	cur := profileOf(t, curCols, sketch.Options{}, 450)
	opts := Options{}.withDefaults()
	pc, ok := sketch.ComparePair(ref.Grid, cur.Grid, "x1", "x2")
	if !ok {
		t.Fatal("x1 & x2 not in the grids")
	}
	got, why := testPair(pc, opts)
	if why != "" {
		t.Fatal(why)
	}
	// The raw rows, binned at the sketch's cut points.
	binAt := func(edges []float64, x float64) int {
		return sort.Search(len(edges), func(i int) bool { return edges[i] > x })
	}
	table := func(cols []column, xe, ye []float64) [][]float64 {
		t := make([][]float64, len(xe)+1)
		for i := range t {
			t[i] = make([]float64, len(ye)+1)
		}
		for i := range cols[0].num {
			t[binAt(xe, cols[0].num[i])][binAt(ye, cols[1].num[i])]++
		}
		return t
	}
	test := func(xe, ye []float64) (x2, tvd float64) {
		rt, ct := table(refCols, xe, ye), table(curCols, xe, ye)
		fit, _ := noInteractionFit(rt, ct)
		for s, obs := range [2][][]float64{rt, ct} {
			for a := range obs {
				for b := range obs[a] {
					if mu := fit[s][a][b]; mu > 0 {
						x2 += (obs[a][b] - mu) * (obs[a][b] - mu) / mu
						if s == 1 {
							tvd += math.Abs(obs[a][b]-mu) / 2 / float64(len(curCols[0].num))
						}
					}
				}
			}
		}
		return x2, tvd
	}
	x2, tvd := test(got.XEdges, got.YEdges)
	if math.Abs(x2-got.Statistic) > 1e-6*x2 || math.Abs(tvd-got.Effect.Value) > 1e-9 {
		t.Errorf("sketch: X² %.6f, TVD %.6f; raw rows at the same cuts: X² %.6f, TVD %.6f", got.Statistic, got.Effect.Value, x2, tvd)
	}
	// Exact reference octiles.
	quantiles := func(v []float64) []float64 {
		s := sorted(v)
		var q []float64
		for j := 1; j < len(got.XEdges)+1; j++ {
			q = append(q, s[j*len(s)/(len(got.XEdges)+1)])
		}
		return q
	}
	ex2, etvd := test(quantiles(refCols[0].num), quantiles(refCols[1].num))
	t.Logf("X² %.1f (exact quantiles %.1f), cells moved %.3f (%.3f), df %g, cuts x1 %v", got.Statistic, ex2, got.Effect.Value, etvd, got.DF, got.XEdges)
	// The lattice's cuts are near, not at, the octiles, so the statistics differ
	// somewhat; both see the change as clearly.
	if math.Abs(got.Effect.Value-etvd) > 0.06 || ChiSquareSF(ex2, got.DF) > 1e-6 || got.PValue > 1e-6 {
		t.Errorf("on the lattice's cuts: X² %.1f, TVD %.3f; at exact quantiles: X² %.1f, TVD %.3f", got.Statistic, got.Effect.Value, ex2, etvd)
	}
	// The null: a window like the reference.
	same := profileOf(t, pairColumns(r, 3000, 0, radialSwap, false), sketch.Options{}, 450)
	pc, _ = sketch.ComparePair(ref.Grid, same.Grid, "x1", "x2")
	null, _ := testPair(pc, opts)
	if null.PValue < 0.001 || null.Effect.Lower > 0 {
		t.Errorf("no change: p %.3g, cells moved %.3f (lower bound %.3f)", null.PValue, null.Effect.Value, null.Effect.Lower)
	}
}

// TestPairGridNullFalseAlarms: reference and window from the same distribution
// (independent normals, and the correlated and clustered streams before their
// change, plus noise features, so 2 to 32 numeric features), windows of 500
// to 50,000 rows: the share of windows in which the pair-grid finding flags
// stays within the FDR, and its p-value (Simes over the pairs) is below 0.05
// in about 5% of windows or fewer. 500 trials per row (DRIFTMON_TRIALS to
// change; 40 with -short or the race detector).
func TestPairGridNullFalseAlarms(t *testing.T) {
	trials := 500
	if testing.Short() || raceEnabled {
		trials = 40
	}
	if s := os.Getenv("DRIFTMON_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		trials = n
	}
	for _, c := range []struct {
		stream   pairStream
		features int // numeric features, x1, x2 and y included
		n, m     int // window and reference rows
	}{
		{corrFlip, 2, 500, 5000},
		{radialSwap, 8, 1000, 10000},
		{corrFlip, 16, 5000, 5000},
		{radialSwap, 32, 2000, 20000},
		{corrFlip, 4, 50000, 50000},
	} {
		t.Run(fmt.Sprintf("%s, %d features, n=%d, m=%d", c.stream, c.features, c.n, c.m), func(t *testing.T) {
			tr := trials
			if c.n >= 50000 {
				tr = max(20, trials/5) // a tenth of the time per trial would be the rest
			}
			r := rand.New(rand.NewPCG(uint64(c.features), uint64(c.n)))
			gen := func(n int) []column {
				cols := pairColumns(r, n, max(0, c.features-3), c.stream, false)
				if c.features == 2 {
					cols = cols[:2]
				}
				return cols
			}
			var flagged, below, pairs int
			for range tr {
				ref := profileOf(t, gen(c.m), sketch.Options{}, 5000)
				cur := profileOf(t, gen(c.n), sketch.Options{}, 1000)
				for _, f := range Evaluate(ref, cur, Options{}) {
					if f.Kind != KindJoint {
						continue
					}
					pairs = int(f.Scores["pairs_tested"])
					if f.Verdict == Drift {
						flagged++
					}
					if f.PValue < 0.05 {
						below++
					}
				}
			}
			share, pShare := float64(flagged)/float64(tr), float64(below)/float64(tr)
			t.Logf("%d trials, %d pairs: joint flagged %.3f, its p < 0.05 in %.3f", tr, pairs, share, pShare)
			if tr >= 100 && (share > DefaultFDR || pShare > 0.08) {
				t.Errorf("flagged %.3f (want ≤ %g), p < 0.05 in %.3f", share, DefaultFDR, pShare)
			}
			if tr < 100 && flagged > tr/5 {
				t.Errorf("flagged in %d of %d trials", flagged, tr)
			}
		})
	}
}

// TestQuantileBins: cuts fall on the bucket edges nearest the target shares,
// after occupied buckets only, and never make an empty bin.
func TestQuantileBins(t *testing.T) {
	for _, tt := range []struct {
		counts []int64
		k      int
		want   []int
	}{
		{[]int64{10, 10, 10, 10}, 2, []int{0, 0, 1, 1}},
		{[]int64{10, 10, 10, 10}, 4, []int{0, 1, 2, 3}},
		{[]int64{0, 10, 0, 10, 0}, 2, []int{0, 0, 1, 1, 1}},
		{[]int64{90, 5, 5}, 4, []int{0, 1, 1}}, // one cut: after the heavy bucket
		{[]int64{40}, 8, []int{0}},
	} {
		got, k := quantileBins(tt.counts, tt.k)
		if !slices.Equal(got, tt.want) || k != tt.want[len(tt.want)-1]+1 {
			t.Errorf("quantileBins(%v, %d) = %v, %d; want %v", tt.counts, tt.k, got, k, tt.want)
		}
	}
}

// TestPairGridBesidePCA measures the share of windows each joint finding flags
// on changes weaker or wider than the generated streams', to say whether the
// PCA finding still earns its place beside the pair grids (bench/README.md; it
// does: it sees the first change in every window, the grids in none):
// a correlation of one pair weakening from 0.8 to 0.6, and a factor shared by
// 16 features whose loadings fall from 0.5 to 0.3 (every correlation 0.25 →
// 0.09: a change spread thinly over 120 pairs). 100 trials of 1,000-row
// windows against 10,000 reference rows (10 with -short or the race detector).
func TestPairGridBesidePCA(t *testing.T) {
	trials := 100
	if testing.Short() || raceEnabled {
		trials = 10
	}
	r := rand.New(rand.NewPCG(41, 42))
	weaker := func(n int, after bool) []column {
		rho := 0.8
		if after {
			rho = 0.6
		}
		x1, x2 := make([]float64, n), make([]float64, n)
		for i := range n {
			x1[i] = r.NormFloat64()
			x2[i] = rho*x1[i] + math.Sqrt(1-rho*rho)*r.NormFloat64()
		}
		return []column{{name: "x1", num: x1}, {name: "x2", num: x2}, {name: "x3", num: normals(r, n, 0, 1)}}
	}
	factor := func(n int, after bool) []column {
		l := 0.5
		if after {
			l = 0.3
		}
		cols := make([]column, 16)
		f := normals(r, n, 0, 1)
		for k := range cols {
			v := make([]float64, n)
			for i := range v {
				v[i] = l*f[i] + math.Sqrt(1-l*l)*r.NormFloat64()
			}
			cols[k] = column{name: fmt.Sprintf("f%02d", k), num: v}
		}
		return cols
	}
	for _, c := range []struct {
		name string
		gen  func(int, bool) []column
	}{{"one correlation 0.8 → 0.6", weaker}, {"16 loadings 0.5 → 0.3", factor}} {
		var joint, pca int
		for range trials {
			ref := profileOf(t, c.gen(10000, false), sketch.Options{}, 5000)
			cur := profileOf(t, c.gen(1000, true), sketch.Options{}, 1000)
			for _, f := range Evaluate(ref, cur, Options{}) {
				if f.Verdict != Drift {
					continue
				}
				switch f.Kind {
				case KindJoint:
					joint++
				case KindMultivariate:
					pca++
				}
			}
		}
		t.Logf("%s, %d trials: (joint) flags %.2f of the windows, (multivariate) %.2f", c.name, trials, float64(joint)/float64(trials), float64(pca)/float64(trials))
		// The PCA finding's place: a moderate change of one correlation, which
		// moves less than a tenth of the pair's rows between cells.
		if c.name == "one correlation 0.8 → 0.6" && (pca < trials*9/10 || joint > pca) {
			t.Errorf("%s: (multivariate) flags %d of %d windows, (joint) %d", c.name, pca, trials, joint)
		}
	}
}
