package detectors

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/sketch"
)

// exactQuantile is the smallest sample value whose empirical CDF reaches q (the
// definition sketch.Numeric.Quantile follows in exact mode).
func exactQuantile(sorted []float64, q float64) float64 {
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(len(sorted)-1, k))]
}

// TestQuantileRankError checks the t-digest quantile's error band against the exact
// quantiles of the raw values: for every distribution, size, rank and way of building
// the digest (one pass, or merged from partitions in two orders as a cluster and a
// restart do), the exact quantile lies within [Quantile(q−ε), Quantile(q+ε)], and
// the estimate's exact rank is within ε of q. It logs how much of the allowance the
// worst case used.
func TestQuantileRankError(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 1))
	dists := map[string]func(n int) []float64{
		"normal":    func(n int) []float64 { return normals(r, n, 100, 15) },
		"lognormal": func(n int) []float64 { return lognormals(r, n, 4, 1) },
		"latency": func(n int) []float64 { // a body and a slow tail
			out := lognormals(r, n, math.Log(80), 0.3)
			for i := range out {
				if r.Float64() < 0.03 {
					out[i] = 300 + r.ExpFloat64()*200
				}
			}
			return out
		},
		"bimodal": func(n int) []float64 {
			out := normals(r, n, 0, 1)
			for i := range out {
				if i%3 == 0 {
					out[i] += 50
				}
			}
			return out
		},
	}
	qs := []float64{0.5, 0.9, 0.95, 0.99, 0.999}
	worst, moved := 0.0, 0.0
	checked := 0
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range dists {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, n := range []int{2000, 20000, 200000} {
			vals := dists[name](n)
			s := sorted(vals)
			// One pass, and 6 partitions merged in two orders.
			builds := map[string]*sketch.Profile{"one pass": numProfile(t, vals)}
			parts := make([]*sketch.Profile, 6)
			for p := range parts {
				var part []float64
				for i := p; i < n; i += len(parts) {
					part = append(part, vals[i])
				}
				parts[p] = profileOf(t, []column{{name: "x", num: part}}, sketch.Options{}, 500)
			}
			fwd, err := sketch.MergeAll(parts...)
			if err != nil {
				t.Fatal(err)
			}
			builds["merged"] = fwd
			rev := slices.Clone(parts)
			slices.Reverse(rev)
			acc := rev[0]
			for _, p := range rev[1:] {
				if err := acc.Merge(p); err != nil {
					t.Fatal(err)
				}
			}
			builds["merged in reverse, pairwise"] = acc
			// How far the build order moves the estimate, in ranks, against ε: what a
			// kill -9 or a cluster does to a window's digest.
			for _, q := range qs {
				one := builds["one pass"].Feature("x").Num
				eps := QuantileRankError(one, q)
				base := float64(sortSearch(s, one.Quantile(q))) / float64(n)
				for _, how := range []string{"merged", "merged in reverse, pairwise"} {
					r := float64(sortSearch(s, builds[how].Feature("x").Num.Quantile(q))) / float64(n)
					moved = max(moved, math.Abs(r-base)/eps)
				}
			}
			for how, p := range builds {
				num := p.Feature("x").Num
				if num.IsExact() {
					t.Fatalf("%s n=%d: still exact, the test wants a digest", name, n)
				}
				for _, q := range qs {
					eps := QuantileRankError(num, q)
					est := num.Quantile(q)
					lo, hi := num.Quantile(math.Max(0, q-eps)), num.Quantile(math.Min(1, q+eps))
					want := exactQuantile(s, q)
					if want < lo || want > hi {
						t.Errorf("%s n=%d %s q=%g: exact quantile %g outside the band [%g, %g] (ε %g)", name, n, how, q, want, lo, hi, eps)
					}
					// The estimate's exact rank: the share of values ≤ it.
					rank := float64(sortSearch(s, est)) / float64(n)
					used := math.Abs(rank-q) / eps
					if math.IsInf(used, 0) || math.IsNaN(used) {
						used = 0
					}
					if used > 1 {
						t.Errorf("%s n=%d %s q=%g: estimate %g has rank %g, more than ε %g from q", name, n, how, q, est, rank, eps)
					}
					worst = max(worst, used)
					checked++
				}
			}
		}
	}
	t.Logf("%d quantiles checked; the worst used %.0f%% of its rank error allowance; building the digest in another order moved an estimate by at most %.0f%% of it", checked, 100*worst, 100*moved)
}

// sortSearch is the number of values of sorted ≤ x.
func sortSearch(sorted []float64, x float64) int {
	i, _ := slices.BinarySearchFunc(sorted, x, func(a, b float64) int {
		if a <= b {
			return -1
		}
		return 1
	})
	return i
}

// TestObjectiveVerdicts checks each statistic against the raw values it summarises,
// and that a bound inside a t-digest quantile's error band is within sketch error,
// never a breach.
func TestObjectiveVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const n = 50000
	latency := lognormals(r, n, math.Log(100), 0.5)
	age := ints(r, n, 60) // exact counts: 0..59
	valid := make([]bool, n)
	country := cats(r, n, []float64{0.5, 0.3, 0.2})
	for i := range valid {
		valid[i] = i%100 != 0 // 1% nulls
	}
	p := profileOf(t, []column{
		{name: "latency_ms", num: latency},
		{name: "age", num: age, valid: valid},
		{name: "country", cat: country},
	}, sketch.Options{}, 5000)
	s := sorted(latency)
	p99 := exactQuantile(s, 0.99)
	lat := p.Feature("latency_ms").Num
	eps := QuantileRankError(lat, 0.99)
	lo, hi := lat.Quantile(0.99-eps), lat.Quantile(0.99+eps)
	t.Logf("latency p99: exact %.2f, sketch %.2f, band %.2f–%.2f (rank ±%.4f)", p99, lat.Quantile(0.99), lo, hi, eps)
	inf := math.Inf(1)
	tests := []struct {
		o    Objective
		want Verdict
		rule string
	}{
		{Objective{Name: "latency_ms p99", Field: "latency_ms", Stat: StatQuantile, Quantile: 0.99, Min: -inf, Max: lo * 0.9, Unit: "ms"}, Breached, "objective breached: latency_ms p99 "},
		{Objective{Name: "latency_ms p99", Field: "latency_ms", Stat: StatQuantile, Quantile: 0.99, Min: -inf, Max: hi * 1.1, Unit: "ms"}, Met, "objective met: latency_ms p99 "},
		{Objective{Name: "latency_ms p99", Field: "latency_ms", Stat: StatQuantile, Quantile: 0.99, Min: -inf, Max: (lo + hi) / 2, Unit: "ms"}, WithinError, "within sketch error: latency_ms p99 "},
		{Objective{Name: "age value", Field: "age", Stat: StatValue, Min: 0, Max: inf}, Met, "objective met: age value 0 within ≥ 0 (values 0 to 59)"},
		{Objective{Name: "age value", Field: "age", Stat: StatValue, Min: 1, Max: inf}, Breached, "objective breached: age value 0 < 1 (values 0 to 59)"},
		{Objective{Name: "age value", Field: "age", Stat: StatValue, Min: -inf, Max: 58}, Breached, "objective breached: age value 59 > 58 (values 0 to 59)"},
		// Exact counts: the quantile is exact and has no band.
		{Objective{Name: "age p50", Field: "age", Stat: StatQuantile, Quantile: 0.5, Min: -inf, Max: exactQuantile(sorted(age), 0.5) - 1}, Breached, "objective breached: age p50 29 > 28"},
		{Objective{Name: "age null share", Field: "age", Stat: StatNullShare, Min: -inf, Max: 0.005}, Breached, "objective breached: age null share 1.0% > 0.5%"},
		{Objective{Name: "age null share", Field: "age", Stat: StatNullShare, Min: -inf, Max: 0.01}, Met, "objective met: age null share 1.0% within ≤ 1.0%"},
		{Objective{Name: "country share of a", Field: "country", Stat: StatShare, Category: "a", Min: -inf, Max: 0.4}, Breached, "objective breached: country share of a " + Percent(share(country, "a")) + " > 40.0%"},
		{Objective{Name: "country distinct", Field: "country", Stat: StatDistinct, Min: -inf, Max: 2}, Breached, "objective breached: country distinct 3 > 2"},
		{Objective{Name: "rows", Stat: StatRows, Min: n + 1, Max: inf}, Breached, "objective breached: rows 50k < 50k"},
		{Objective{Name: "rows per minute", Stat: StatRowsPerMinute, Min: 1000, Max: inf}, Met, "objective met: rows per minute 5k within ≥ 1k"},
		{Objective{Name: "latency_ms mean", Field: "latency_ms", Stat: StatMean, Min: -inf, Max: 100, Unit: "ms"}, Breached, "objective breached: latency_ms mean 11"},
	}
	for _, tt := range tests {
		got := EvaluateObjectives(p, []Objective{tt.o}, 10*time.Minute, false)[0]
		if got.Verdict != tt.want || !strings.HasPrefix(got.Rule, tt.rule) {
			t.Errorf("%s max %g min %g: %s %q, want %s %q…", tt.o.Name, tt.o.Max, tt.o.Min, got.Verdict, got.Rule, tt.want, tt.rule)
		}
	}
	// The exact values the shares and the mean were judged on.
	var sum float64
	for _, v := range latency {
		sum += v
	}
	if got := EvaluateObjectives(p, []Objective{{Name: "m", Field: "latency_ms", Stat: StatMean, Min: -inf, Max: inf}}, 0, false)[0]; math.Abs(got.Value-sum/n) > 1e-9*sum/n {
		t.Errorf("mean %g, exact %g", got.Value, sum/n)
	}
	// Row statistics are not judged on count windows' rate or a first window.
	for _, tt := range []struct {
		stat    string
		window  time.Duration
		partial bool
	}{{StatRowsPerMinute, 0, false}, {StatRows, time.Minute, true}} {
		if got := EvaluateObjectives(p, []Objective{{Name: "r", Stat: tt.stat, Min: 1, Max: inf}}, tt.window, tt.partial)[0]; got.Verdict != InsufficientData {
			t.Errorf("%s window %s partial %v: %s, want insufficient_data", tt.stat, tt.window, tt.partial, got.Verdict)
		}
	}
}

// share is the exact share of v among cats.
func share(cats []string, v string) float64 {
	k := 0
	for _, c := range cats {
		if c == v {
			k++
		}
	}
	return float64(k) / float64(len(cats))
}
