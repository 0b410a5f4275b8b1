package detectors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// trialsFor returns the number of trials of a statistical test: full
// without the race detector, a tenth under it (no rate assertions then), 20
// with -short; DRIFTMON_TRIALS overrides.
func trialsFor(t *testing.T, full int) (trials int, assert bool) {
	trials, assert = full, true
	switch {
	case testing.Short():
		trials, assert = 20, false
	case raceEnabled:
		trials, assert = full/10, false
	}
	if s := os.Getenv("DRIFTMON_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("DRIFTMON_TRIALS: %v", err)
		}
		trials, assert = n, n >= 100
	}
	return trials, assert
}

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// TestEffectBoundsCover: each effect's lower bound lies below the exact
// effect of a known shift in at least 95% of samples (at α = FDR = 0.05),
// and is not so loose as to be useless (it is above half the true value in
// two thirds of the samples). The exact effects: a δσ mean shift of a normal has
// KS D = 2Φ(δ/2) − 1 and W1/σ = δ; shares p → q over categories have
// PSI = Σ(q−p)·ln(q/p).
func TestEffectBoundsCover(t *testing.T) {
	trials, assert := trialsFor(t, 400)
	type sample func(r *rand.Rand, n int, shifted bool) column
	numeric := func(delta float64) sample {
		return func(r *rand.Rand, n int, shifted bool) column {
			mu := 0.0
			if shifted {
				mu = delta
			}
			return column{name: "x", num: normals(r, n, mu, 1)}
		}
	}
	before, after := []float64{0.3, 0.5, 0.2}, []float64{0.45, 0.4, 0.15}
	var psiTrue float64
	for i := range before {
		psiTrue += (after[i] - before[i]) * math.Log(after[i]/before[i])
	}
	categorical := func(r *rand.Rand, n int, shifted bool) column {
		w := before
		if shifted {
			w = after
		}
		return column{name: "x", cat: cats(r, n, w)}
	}
	tests := []struct {
		name      string
		statistic string
		n, m      int
		gen       sample
		exact     float64
	}{
		{"KS D, 0.3σ, n=1,000 m=2,000", DetectorKS, 1000, 2000, numeric(0.3), 2*normalCDF(0.15) - 1},
		{"KS D, 0.5σ, n=m=5,000", DetectorKS, 5000, 5000, numeric(0.5), 2*normalCDF(0.25) - 1},
		{"W1, 0.3σ, n=1,000 m=2,000", DetectorWasserstein, 1000, 2000, numeric(0.3), 0.3},
		{"W1, 0.2σ, n=m=5,000", DetectorWasserstein, 5000, 5000, numeric(0.2), 0.2},
		{"PSI, 30/50/20 → 45/40/15, n=1,000 m=2,000", DetectorPSI, 1000, 2000, categorical, psiTrue},
		{"PSI, 30/50/20 → 45/40/15, n=m=5,000", DetectorPSI, 5000, 5000, categorical, psiTrue},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(77, uint64(i)))
			var covered, useful int
			for trial := 0; trial < trials; trial++ {
				ref := profileOf(t, []column{tt.gen(r, tt.m, false)}, sketch.Options{}, 0)
				cur := profileOf(t, []column{tt.gen(r, tt.n, true)}, sketch.Options{}, 0)
				f := Evaluate(ref, cur, Options{})[0]
				e, ok := effectOf(f, tt.statistic)
				if !ok {
					t.Fatalf("no %s effect in %+v", tt.statistic, f)
				}
				covered += b2i(e.Lower <= tt.exact)
				useful += b2i(e.Lower >= tt.exact/2)
			}
			cov, use := float64(covered)/float64(trials), float64(useful)/float64(trials)
			t.Logf("exact %.4f: lower bound ≤ exact in %.3f of %d trials, ≥ exact/2 in %.3f", tt.exact, cov, trials, use)
			if assert && cov < 0.93 {
				t.Errorf("coverage %.3f < 0.93: the lower bound is above the exact effect too often", cov)
			}
			if assert && use < 2.0/3 {
				t.Errorf("the lower bound is below half the exact effect in %.3f of trials: too loose", 1-use)
			}
		})
	}
}

func effectOf(f Finding, statistic string) (Effect, bool) {
	for _, e := range f.Effects {
		if e.Statistic == statistic {
			return e, true
		}
	}
	return Effect{}, false
}

// TestNoDriftFalseAlarmsSmallWindows: TestNoDriftFalseAlarms at the window
// sizes where point estimates of the effect sizes are noisiest, n = m = 500,
// 1,000 and 2,500, against warm-up references: each reference is two
// half-windows merged, as the monitor merges its warm-up windows. The
// minimum reference size is lifted so that the verdicts, not "insufficient
// reference", are what is checked. The share of trials with any feature
// flagged must stay at most the FDR (+0.02 for the trials' own noise); the
// old rule, effect floors on point estimates, is logged beside it.
func TestNoDriftFalseAlarmsSmallWindows(t *testing.T) {
	trials, assert := trialsFor(t, 500)
	for _, n := range []int{500, 1000, 2500} {
		for fi, fam := range []struct {
			name string
			gen  func(r *rand.Rand, n int) []column
		}{
			{"continuous", func(r *rand.Rand, n int) []column { return syntheticColumns(r, n, 0) }},
			{"integer", integerColumns},
		} {
			t.Run(fmt.Sprintf("%s n=%d", fam.name, n), func(t *testing.T) {
				r := rand.New(rand.NewPCG(31, uint64(n*10+fi)))
				opts := Options{MinReferenceRows: -1}
				var flagged, flaggedPoint int
				for trial := 0; trial < trials; trial++ {
					ref := profileOf(t, fam.gen(r, n/2), sketch.Options{}, 0)
					if err := ref.Merge(profileOf(t, fam.gen(r, n-n/2), sketch.Options{}, 0)); err != nil {
						t.Fatal(err)
					}
					cur := profileOf(t, fam.gen(r, n), sketch.Options{}, 0)
					anyFlag, anyPoint := false, false
					for _, f := range Evaluate(ref, cur, opts) {
						if f.Verdict == Drift {
							anyFlag = true
							t.Logf("trial %d: false alarm %s: %s", trial, f.Feature, f.Rule)
						}
						anyPoint = anyPoint || f.Verdict != InsufficientData && f.AdjustedP <= DefaultFDR && pointReached(f.Effects)
					}
					flagged += b2i(anyFlag)
					flaggedPoint += b2i(anyPoint)
				}
				fr, pr := float64(flagged)/float64(trials), float64(flaggedPoint)/float64(trials)
				t.Logf("n=m=%d %s, %d trials: any flagged %.3f (on point estimates it would be %.3f)", n, fam.name, trials, fr, pr)
				if assert && fr > DefaultFDR+0.02 {
					t.Errorf("false alarm rate %.3f > %.3f", fr, DefaultFDR+0.02)
				}
			})
		}
	}
}

// pointReached is the old effect rule: a point estimate at its minimum.
func pointReached(es []Effect) bool {
	for _, e := range es {
		if e.Value >= e.Min {
			return true
		}
	}
	return false
}

// TestRuleSaysWhatFired: a drift finding names the effect whose lower bound
// reached its minimum, with the numbers; a stable one says why not.
func TestRuleSaysWhatFired(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ref := profileOf(t, []column{{name: "x", num: normals(r, 5000, 0, 1)}, {name: "y", num: normals(r, 5000, 0, 1)}}, sketch.Options{}, 0)
	cur := profileOf(t, []column{{name: "x", num: normals(r, 5000, 1, 1)}, {name: "y", num: normals(r, 5000, 0, 1)}}, sketch.Options{}, 0)
	fs := Evaluate(ref, cur, Options{})
	x, y := fs[0], fs[1]
	if x.Verdict != Drift || !strings.HasPrefix(x.Rule, "KS D 0.") || !strings.Contains(x.Rule, "≥ min 0.1; BH p<0.001 ≤ 0.05") {
		t.Errorf("x: %s, rule %q", x.Verdict, x.Rule)
	}
	if y.Verdict != Stable || !strings.HasPrefix(y.Rule, "not significant: BH p=") {
		t.Errorf("y: %s, rule %q", y.Verdict, y.Rule)
	}

	// The demo's false alarm of issue 15, as the rule now words it.
	e := Effect{Statistic: DetectorWasserstein, Value: 0.0963, Lower: 0.031, Min: 0.08}
	if got, want := e.String(), "W1 0.096σ, lower bound 0.031σ < min 0.08σ"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	e = Effect{Statistic: DetectorKS, Value: 0.38, Lower: 0.36, Min: 0.1}
	if got, want := e.String(), "KS D 0.38, lower bound 0.36 ≥ min 0.1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestInsufficientReference: a reference below MinReferenceRows gives no
// verdict, whatever the window shows, and says so.
func TestInsufficientReference(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	ref := profileOf(t, []column{{name: "x", num: normals(r, 999, 0, 1)}, {name: "c", cat: cats(r, 999, []float64{1, 1})}}, sketch.Options{}, 0)
	cur := profileOf(t, []column{{name: "x", num: normals(r, 5000, 3, 1)}, {name: "c", cat: cats(r, 5000, []float64{1, 9})}}, sketch.Options{}, 0)
	for _, f := range Evaluate(ref, cur, Options{}) {
		if f.Verdict != InsufficientData || f.Note != "insufficient reference: 999 values, need 1000" {
			t.Errorf("%s: %s (%q), want insufficient reference", f.Feature, f.Verdict, f.Note)
		}
	}
	for _, f := range Evaluate(ref, cur, Options{MinReferenceRows: 500}) {
		if f.Verdict != Drift {
			t.Errorf("MinReferenceRows 500: %s %s (%s), want drift", f.Feature, f.Verdict, f.Rule)
		}
	}
}

// TestReferenceSizePower measures what the reference's size costs: the share of
// 1,000-row windows in which a mean shift of a normal feature, 0.2σ and 0.3σ, is
// flagged against references of 250 to 10,000 rows, with the minimum reference
// size lifted. It is where DefaultMinReferenceRows comes from: a 0.3σ shift is
// caught in 0.99 of the windows against 1,000 reference rows, 0.91 against 500
// and 0.69 against 250 (200 trials each).
func TestReferenceSizePower(t *testing.T) {
	trials, assert := trialsFor(t, 200)
	sizes := []int{250, 500, 1000, 2000, 5000, 10000}
	power := map[float64]map[int]float64{}
	for _, delta := range []float64{0.2, 0.3} {
		power[delta] = map[int]float64{}
		for i, m := range sizes {
			r := rand.New(rand.NewPCG(55, uint64(i)))
			var flagged int
			for trial := 0; trial < trials; trial++ {
				ref := profileOf(t, []column{{name: "x", num: normals(r, m, 0, 1)}}, sketch.Options{}, 0)
				cur := profileOf(t, []column{{name: "x", num: normals(r, 1000, delta, 1)}}, sketch.Options{}, 0)
				flagged += b2i(Evaluate(ref, cur, Options{MinReferenceRows: -1})[0].Verdict == Drift)
			}
			power[delta][m] = float64(flagged) / float64(trials)
			t.Logf("%.1fσ shift, window 1,000 rows, reference %5d rows: flagged in %.3f of %d trials", delta, m, power[delta][m], trials)
		}
	}
	if p := power[0.3]; assert && (p[1000] < 0.95 || p[250] >= p[1000]) {
		t.Errorf("0.3σ: power %v: want ≥ 0.95 from 1,000 reference rows on, less below", p)
	}
}

// TestCategoricalShareShifts: share moves that a person calls drift and PSI
// alone misses are flagged at the defaults, through total variation distance;
// a one-point move is not, however significant.
func TestCategoricalShareShifts(t *testing.T) {
	tests := []struct {
		name          string
		n             int
		before, after []float64
		drift         bool
	}{
		{"30/50/20 → 45/40/15 (PSI 0.098, TVD 0.15), n=m=1,000", 1000, []float64{30, 50, 20}, []float64{45, 40, 15}, true},
		{"30/50/20 → 45/40/15, n=m=5,000", 5000, []float64{30, 50, 20}, []float64{45, 40, 15}, true},
		{"70/30 → 59/41 (PSI 0.053, TVD 0.11), n=m=5,000", 5000, []float64{70, 30}, []float64{59, 41}, true},
		{"70/30 → 59/41, n=m=50,000", 50000, []float64{70, 30}, []float64{59, 41}, true},
		{"70/30 → 69/31 (TVD 0.01), n=m=1e6", 1e6, []float64{70, 30}, []float64{69, 31}, false},
		{"20/35/35/10 → 30/42/27/1 (the demo's salary_range), n=m=2,500", 2500, []float64{20, 35, 35, 10}, []float64{30, 42, 27, 1}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.n >= 1e6 && (raceEnabled || testing.Short()) && os.Getenv("DRIFTMON_LONG") != "1" {
				t.Skip("1e6 values: set DRIFTMON_LONG=1")
			}
			r := rand.New(rand.NewPCG(91, uint64(i)))
			ref := profileOf(t, []column{{name: "c", cat: cats(r, tt.n, tt.before)}}, sketch.Options{}, 0)
			cur := profileOf(t, []column{{name: "c", cat: cats(r, tt.n, tt.after)}}, sketch.Options{}, 0)
			f := Evaluate(ref, cur, Options{})[0]
			t.Logf("%s: %s; %s", f.Verdict, f.Rule, f.Summary())
			if (f.Verdict == Drift) != tt.drift {
				t.Errorf("verdict %s, want drift=%v", f.Verdict, tt.drift)
			}
			if tt.drift && !strings.HasPrefix(f.Rule, "TVD ") && !strings.HasPrefix(f.Rule, "PSI ") {
				t.Errorf("rule %q does not name the effect that fired", f.Rule)
			}
		})
	}
}
