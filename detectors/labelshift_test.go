package detectors

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// classLabels returns an accumulator of n labels, positive with probability rate.
func classLabels(rng *rand.Rand, n int, rate float64) (*sketch.Performance, int) {
	p := sketch.NewPerformance(sketch.Classification, 0.5)
	pos := 0
	for range n {
		y := rng.Float64() < rate
		if y {
			pos++
		}
		p.AddClassification(rng.Float64(), y)
	}
	return p, pos
}

// TestLabelShiftPositiveRate checks the classification test against Pearson's
// chi-square computed from the raw counts, and its behaviour on null data and on a
// real move of the positive rate.
func TestLabelShiftPositiveRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref1, pos1 := classLabels(rng, 1500, 0.3)
	ref2, pos2 := classLabels(rng, 1500, 0.3)
	cur, posC := classLabels(rng, 1000, 0.45)
	ls := EvaluateLabelShift(NewPerformanceReference([]*sketch.Performance{ref1, ref2}), cur, Options{})

	// Pearson's chi-square of the 2×2 table, from the raw counts.
	a, b := float64(pos1+pos2), float64(3000-pos1-pos2)
	c, d := float64(posC), float64(1000-posC)
	n := a + b + c + d
	chi2 := n * math.Pow(a*d-b*c, 2) / ((a + b) * (c + d) * (a + c) * (b + d))
	if want := ChiSquareSF(chi2, 1); math.Abs(ls.PValue-want) > 1e-12*max(1, want) {
		t.Errorf("p %g, Pearson from raw counts %g", ls.PValue, want)
	}
	if math.Abs(ls.Reference-a/3000) > 1e-15 || math.Abs(ls.Current-c/1000) > 1e-15 {
		t.Errorf("rates %g → %g, want %g → %g", ls.Reference, ls.Current, a/3000, c/1000)
	}
	if !ls.Drifted {
		t.Errorf("0.30 → 0.45 in 1,000 labels not flagged: %s", ls.Rule)
	}

	// Null: the same rate on both sides; 0.02 points (lower bound < 0.05) never.
	alarms := 0
	const trials = 400
	for range trials {
		ref, _ := classLabels(rng, 2000, 0.3)
		cur, _ := classLabels(rng, 1000, 0.3)
		if EvaluateLabelShift(NewPerformanceReference([]*sketch.Performance{ref}), cur, Options{}).Drifted {
			alarms++
		}
	}
	if rate := float64(alarms) / trials; rate > 0.02 {
		t.Errorf("null data flagged in %.3f of windows", rate)
	}
	small, _ := classLabels(rng, 200000, 0.32)
	big, _ := classLabels(rng, 200000, 0.30)
	if ls := EvaluateLabelShift(NewPerformanceReference([]*sketch.Performance{big}), small, Options{}); ls.Drifted {
		t.Errorf("a 2-point move flagged: %s", ls.Rule)
	}
}

// TestLabelShiftMean checks the regression test against Welch's t computed from the
// raw labels.
func TestLabelShiftMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen := func(n int, mean, sd float64) (*sketch.Performance, []float64) {
		p := sketch.NewPerformance(sketch.Regression, 0)
		var ys []float64
		for range n {
			y := mean + sd*rng.NormFloat64()
			ys = append(ys, y)
			p.AddRegression(y+rng.NormFloat64(), y)
		}
		return p, ys
	}
	ref, ry := gen(3000, 10, 2)
	cur, cy := gen(800, 10.5, 2.5)
	ls := EvaluateLabelShift(NewPerformanceReference([]*sketch.Performance{ref}), cur, Options{})
	stats := func(ys []float64) (mean, v float64) {
		for _, y := range ys {
			mean += y
		}
		mean /= float64(len(ys))
		for _, y := range ys {
			v += (y - mean) * (y - mean)
		}
		return mean, v / float64(len(ys)-1)
	}
	mr, vr := stats(ry)
	mc, vc := stats(cy)
	nr, nc := float64(len(ry)), float64(len(cy))
	se2 := vr/nr + vc/nc
	df := se2 * se2 / (vr*vr/(nr*nr*(nr-1)) + vc*vc/(nc*nc*(nc-1)))
	want := StudentTTwoSided(math.Abs(mc-mr)/math.Sqrt(se2), df)
	if math.Abs(ls.PValue-want) > 1e-9*max(want, 1e-300) {
		t.Errorf("p %g, Welch from raw labels %g", ls.PValue, want)
	}
	if math.Abs(ls.Current-mc) > 1e-9 || math.Abs(ls.Reference-mr) > 1e-9 {
		t.Errorf("means %g → %g, want %g → %g", ls.Reference, ls.Current, mr, mc)
	}
	if !ls.Drifted {
		t.Errorf("a 0.25σ mean shift in 800 labels not flagged: %s", ls.Rule)
	}
	same, _ := gen(800, 10, 2)
	if ls := EvaluateLabelShift(NewPerformanceReference([]*sketch.Performance{ref}), same, Options{}); ls.Drifted {
		t.Errorf("same distribution flagged: %s", ls.Rule)
	}
	if ls := EvaluateLabelShift(nil, same, Options{}); ls.Drifted || !math.IsNaN(ls.PValue) {
		t.Errorf("no reference: %+v", ls)
	}
}
