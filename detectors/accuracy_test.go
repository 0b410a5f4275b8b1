package detectors

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// TestKSMatchesExact checks KS from sketches against the exact two-sample
// statistic on the raw data.
func TestKSMatchesExact(t *testing.T) {
	type gen func(r *rand.Rand, n int, shift float64) []float64
	normal := func(r *rand.Rand, n int, s float64) []float64 { return normals(r, n, s, 1) }
	lognormal := func(r *rand.Rand, n int, s float64) []float64 { return lognormals(r, n, s, 1) }
	tests := []struct {
		name  string
		n     int
		gen   gen
		shift float64
		tol   float64
	}{
		{"normal 1e4 same", 1e4, normal, 0, 0.005},
		{"normal 1e4 shift", 1e4, normal, 0.3, 0.005},
		{"lognormal 1e4 same", 1e4, lognormal, 0, 0.005},
		{"lognormal 1e4 shift", 1e4, lognormal, 0.2, 0.005},
		{"normal 1e5 same", 1e5, normal, 0, 0.005},
		{"normal 1e5 shift", 1e5, normal, 0.1, 0.005},
		{"lognormal 1e5 same", 1e5, lognormal, 0, 0.005},
		{"lognormal 1e5 shift", 1e5, lognormal, 0.5, 0.005},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.n > 1e4 {
				t.Skip("large sample")
			}
			r := rand.New(rand.NewPCG(uint64(i), 1))
			a, b := tt.gen(r, tt.n, 0), tt.gen(r, tt.n, tt.shift)
			pa, pb := numProfile(t, a), numProfile(t, b)
			got := KS(pa.Features[0].Num, pb.Features[0].Num)
			want := exactKS(a, b)
			t.Logf("KS sketch %.5f exact %.5f", got, want)
			if math.Abs(got-want) > tt.tol {
				t.Errorf("KS = %.5f, exact %.5f (diff %.5f > %.3f)", got, want, math.Abs(got-want), tt.tol)
			}
		})
	}
}

// TestKSExactCounts: on low-cardinality data the sketch keeps exact counts
// and KS is the exact statistic.
func TestKSExactCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, k := range []int{2, 6, 200} {
		a, b := ints(r, 5000, k), ints(r, 7000, k)
		for i := range b[:700] {
			b[i] = 0 // a little extra mass at 0
		}
		pa, pb := numProfile(t, a), numProfile(t, b)
		if !pa.Features[0].Num.IsExact() {
			t.Fatalf("k=%d: not exact", k)
		}
		got, want := KS(pa.Features[0].Num, pb.Features[0].Num), exactKS(a, b)
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("k=%d: KS = %v, exact %v", k, got, want)
		}
		same := KS(pa.Features[0].Num, numProfile(t, a).Features[0].Num)
		if same != 0 {
			t.Errorf("k=%d: KS of identical data = %v", k, same)
		}
	}
}

// TestPSIMatchesExact checks numeric PSI from sketches against PSI on the
// raw data with bins at the exact reference deciles.
func TestPSIMatchesExact(t *testing.T) {
	tests := []struct {
		name string
		ref  func(r *rand.Rand) []float64
		cur  func(r *rand.Rand) []float64
	}{
		{"normal same", func(r *rand.Rand) []float64 { return normals(r, 1e4, 0, 1) }, func(r *rand.Rand) []float64 { return normals(r, 1e4, 0, 1) }},
		{"normal shift", func(r *rand.Rand) []float64 { return normals(r, 1e4, 0, 1) }, func(r *rand.Rand) []float64 { return normals(r, 1e4, 0.5, 1.2) }},
		{"lognormal shift", func(r *rand.Rand) []float64 { return lognormals(r, 1e4, 0, 1) }, func(r *rand.Rand) []float64 { return lognormals(r, 2e4, 0.3, 1) }},
		{"integers 0..50", func(r *rand.Rand) []float64 { return ints(r, 1e4, 51) }, func(r *rand.Rand) []float64 { return ints(r, 1e4, 40) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 2))
			a, b := tt.ref(r), tt.cur(r)
			bins := NumericBins(numProfile(t, a).Features[0].Num, numProfile(t, b).Features[0].Num, 10)
			got, _ := bins.PSI()
			want := exactPSI(a, b, 10)
			t.Logf("PSI sketch %.5f exact %.5f", got, want)
			if math.Abs(got-want) > 0.01 {
				t.Errorf("PSI = %.4f, exact %.4f", got, want)
			}
		})
	}
}

// TestMergeLosesNothing merges 100 partial profiles and compares with the
// profile of the whole data.
func TestMergeLosesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const parts, per = 100, 1000
	var all, all2 []float64
	var allCats []string
	ps := make([]*sketch.Profile, parts)
	for i := range ps {
		x := lognormals(r, per, 0, 1)
		y := ints(r, per, 5)
		c := cats(r, per, []float64{5, 3, 1, 1})
		all = append(all, x...)
		all2 = append(all2, y...)
		allCats = append(allCats, c...)
		ps[i] = profileOf(t, []column{{name: "x", num: x}, {name: "y", num: y}, {name: "c", cat: c}}, sketch.Options{}, 0)
	}
	whole := profileOf(t, []column{{name: "x", num: all}, {name: "y", num: all2}, {name: "c", cat: allCats}}, sketch.Options{}, 0)

	seq := ps[0].Clone()
	for _, p := range ps[1:] {
		if err := seq.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	canon, err := sketch.MergeAll(ps...)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*sketch.Profile{"sequential": seq, "MergeAll": canon} {
		if m.Rows != whole.Rows {
			t.Errorf("%s: rows %d, want %d", name, m.Rows, whole.Rows)
		}
		for i, f := range m.Features {
			w := whole.Features[i]
			if f.Total() != w.Total() {
				t.Errorf("%s %s: total %d, want %d", name, f.Name, f.Total(), w.Total())
			}
			if f.Num != nil {
				if got := sumWeights(f.Num); math.Abs(got-float64(w.Num.Count())) > 1e-6 {
					t.Errorf("%s %s: digest weight %v, want %d", name, f.Name, got, w.Num.Count())
				}
				d := KS(f.Num, w.Num)
				t.Logf("%s %s: KS vs whole %.5f", name, f.Name, d)
				if d > 0.002 {
					t.Errorf("%s %s: KS vs whole = %.4f", name, f.Name, d)
				}
				if f.Num.Min() != w.Num.Min() || f.Num.Max() != w.Num.Max() {
					t.Errorf("%s %s: min/max differ", name, f.Name)
				}
				if math.Abs(f.Num.Mean()-w.Num.Mean()) > 1e-9*math.Abs(w.Num.Mean()) ||
					math.Abs(f.Num.Variance()-w.Num.Variance()) > 1e-9*w.Num.Variance() {
					t.Errorf("%s %s: moments differ", name, f.Name)
				}
			} else {
				for _, c := range w.Cat.Counts() {
					if got := f.Cat.CountOf(c.Value); got != c.Count {
						t.Errorf("%s %s: count of %q = %d, want %d", name, f.Name, c.Value, got, c.Count)
					}
				}
			}
		}
	}
}

func sumWeights(n *sketch.Numeric) float64 {
	if _, counts, ok := n.Exact(); ok {
		var s int64
		for _, c := range counts {
			s += c
		}
		return float64(s)
	}
	var s float64
	for _, c := range n.Centroids() {
		s += c.Weight
	}
	return s
}
