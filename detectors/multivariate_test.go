package detectors

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// JointShift names a generated change of the joint distribution that leaves
// every marginal as it was.
type jointShift int

const (
	noShift jointShift = iota
	// correlationFlip: x1 and x2 standard normal with correlation +0.8, then
	// −0.8; x3 independent.
	correlationFlip
	// classRotation: two classes (y = 0/1, half each) with 2-D normal clusters
	// at (+1,+1) and (−1,−1), then rotated a quarter turn to (+1,−1) and
	// (−1,+1): x1, x2 and y keep their distributions.
	classRotation
)

// jointColumns generates n rows of the stream before (after=false) or after a
// joint shift, plus a categorical feature that never moves.
func jointColumns(r *rand.Rand, n int, shift jointShift, after bool) []column {
	x1, x2, x3, y := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	seg := make([]string, n)
	for i := range n {
		seg[i] = []string{"retail", "smb", "corporate"}[r.IntN(3)]
		x3[i] = r.NormFloat64()
		switch shift {
		case classRotation:
			c := float64(r.IntN(2))
			y[i] = c
			s := 1 - 2*c // +1 for class 0, −1 for class 1
			x1[i], x2[i] = s+r.NormFloat64(), s+r.NormFloat64()
			if after {
				x2[i] = -s + r.NormFloat64()
			}
		default:
			rho := 0.8
			if shift == correlationFlip && after {
				rho = -0.8
			}
			a := r.NormFloat64()
			x1[i], x2[i] = a, rho*a+math.Sqrt(1-rho*rho)*r.NormFloat64()
			y[i] = float64(r.IntN(2))
		}
	}
	return []column{{name: "x1", num: x1}, {name: "x2", num: x2}, {name: "x3", num: x3}, {name: "y", num: y}, {name: "segment", cat: seg}}
}

// TestMultivariateSeesJointDrift: a correlation that flips sign and class
// regions that rotate move no marginal (no feature drifts) and are flagged by
// the multivariate finding, which names the component that moved; the same
// joint distribution on both sides is not.
func TestMultivariateSeesJointDrift(t *testing.T) {
	tests := []struct {
		name      string
		shift     jointShift
		after     bool
		n         int
		drift     bool
		component []string // features the most-moved component loads on
	}{
		{"no shift, n=5,000", correlationFlip, false, 5000, false, nil},
		{"correlation +0.8 → −0.8, n=1,000", correlationFlip, true, 1000, true, []string{"x1", "x2"}},
		{"correlation +0.8 → −0.8, n=5,000", correlationFlip, true, 5000, true, []string{"x1", "x2"}},
		{"class regions rotated, n=5,000", classRotation, true, 5000, true, []string{"x2"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(17, uint64(i)))
			ref := profileOf(t, jointColumns(r, tt.n, tt.shift, false), sketch.Options{}, 0)
			cur := profileOf(t, jointColumns(r, tt.n, tt.shift, tt.after), sketch.Options{}, 0)
			fs := Evaluate(ref, cur, Options{MinJoint: -1})
			mv := fs[len(fs)-1]
			if mv.Feature != FeatureMultivariate {
				t.Fatalf("last finding %q, want the multivariate one", mv.Feature)
			}
			t.Logf("%s: %s; %s", mv.Verdict, mv.Rule, mv.Summary())
			for _, f := range fs[:len(fs)-1] {
				if f.Verdict != Stable {
					t.Errorf("marginal %s: %s (%s)", f.Feature, f.Verdict, f.Rule)
				}
			}
			if (mv.Verdict == Drift) != tt.drift {
				t.Fatalf("multivariate verdict %s, want drift=%v", mv.Verdict, tt.drift)
			}
			if !tt.drift {
				return
			}
			if !strings.HasPrefix(mv.Rule, "PCA error ") {
				t.Errorf("rule %q", mv.Rule)
			}
			c := mv.Explanation.Components[0]
			for _, want := range tt.component {
				if !slices.ContainsFunc(c.Loadings, func(l Loading) bool { return l.Feature == want }) {
					t.Errorf("the component that moved most, %s, does not load on %s", c.Label(), want)
				}
			}
		})
	}
}

// TestSymmetricEigen: A·v = λ·v for every pair, eigenvalues in descending
// order, on a random correlation-like matrix.
func TestSymmetricEigen(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	const n = 7
	b := make([][]float64, n)
	for i := range b {
		b[i] = make([]float64, n)
		for j := range b[i] {
			b[i][j] = r.NormFloat64()
		}
	}
	a := make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, n)
		for j := range a[i] {
			for k := range n {
				a[i][j] += b[i][k] * b[j][k]
			}
		}
	}
	vals, vecs := symmetricEigen(a)
	for i, v := range vecs {
		if i > 0 && vals[i] > vals[i-1] {
			t.Errorf("eigenvalues out of order: %v", vals)
		}
		var norm float64
		for row := range n {
			var av float64
			for k := range n {
				av += a[row][k] * v[k]
			}
			if math.Abs(av-vals[i]*v[row]) > 1e-9*max(1, vals[0]) {
				t.Errorf("pair %d: (A·v)[%d] = %g, λ·v = %g", i, row, av, vals[i]*v[row])
			}
			norm += v[row] * v[row]
		}
		if math.Abs(norm-1) > 1e-9 {
			t.Errorf("eigenvector %d has norm² %g", i, norm)
		}
	}
}
