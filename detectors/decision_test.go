package detectors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// syntheticColumns makes 20 features of n rows: 8 normal, 4 lognormal,
// 4 integer 0..5 and 4 categorical. shift moves the first normal feature's
// mean by shift standard deviations and the first categorical's weights.
func syntheticColumns(r *rand.Rand, n int, shift float64) []column {
	var cols []column
	for i := 0; i < 8; i++ {
		s := 0.0
		if i == 0 {
			s = shift
		}
		cols = append(cols, column{name: fmt.Sprintf("normal%d", i), num: normals(r, n, 10+s, 1)})
	}
	for i := 0; i < 4; i++ {
		cols = append(cols, column{name: fmt.Sprintf("lognormal%d", i), num: lognormals(r, n, 0, 1)})
	}
	for i := 0; i < 4; i++ {
		cols = append(cols, column{name: fmt.Sprintf("int%d", i), num: ints(r, n, 6)})
	}
	for i := 0; i < 4; i++ {
		w := []float64{5, 3, 1, 1}
		if i == 0 && shift != 0 {
			w = []float64{3, 3, 2, 2}
		}
		cols = append(cols, column{name: fmt.Sprintf("cat%d", i), cat: cats(r, n, w)})
	}
	return cols
}

// TestNoDriftFalseAlarms: identical distributions, 20 features, n=m=5000.
// The share of trials with any feature flagged must stay ≤ FDR+0.02, and so
// must the share with any BH-significant p-value (which checks that the
// p-values are calibrated, whatever the effect-size gate does).
// The acceptance run is 500 trials (about 10 s); under the race detector it
// is 100 (about 12 s), with -short 20. DRIFTMON_TRIALS overrides the count.
func TestNoDriftFalseAlarms(t *testing.T) {
	trials := 500
	switch {
	case testing.Short():
		trials = 20
	case raceEnabled:
		trials = 100
	}
	if s := os.Getenv("DRIFTMON_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("DRIFTMON_TRIALS: %v", err)
		}
		trials = n
	}
	const n = 5000
	r := rand.New(rand.NewPCG(11, 11))
	var flagged, significant int
	for trial := 0; trial < trials; trial++ {
		ref := profileOf(t, syntheticColumns(r, n, 0), sketch.Options{}, 1000)
		cur := profileOf(t, syntheticColumns(r, n, 0), sketch.Options{}, 1000)
		fs := Evaluate(ref, cur, Options{})
		anyFlag, anySig := false, false
		for _, f := range fs {
			if f.Verdict == Drift {
				anyFlag = true
				t.Logf("trial %d: false alarm %s: %s", trial, f.Feature, f.Summary())
			}
			if f.AdjustedP <= DefaultFDR {
				anySig = true
			}
		}
		if anyFlag {
			flagged++
		}
		if anySig {
			significant++
		}
	}
	fr, sr := float64(flagged)/float64(trials), float64(significant)/float64(trials)
	t.Logf("%d trials: flagged %.3f, BH-significant %.3f", trials, fr, sr)
	if fr > DefaultFDR+0.02 {
		t.Errorf("false alarm rate %.3f > %.3f", fr, DefaultFDR+0.02)
	}
	if sr > DefaultFDR+0.02 && trials >= 100 {
		t.Errorf("BH-significant rate %.3f > %.3f: p-values are not calibrated", sr, DefaultFDR+0.02)
	}
}

// TestShiftDetected: a half-sigma mean shift and a category-weight change
// are flagged, and nothing else is.
func TestShiftDetected(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	ref := profileOf(t, syntheticColumns(r, 5000, 0), sketch.Options{}, 0)
	cur := profileOf(t, syntheticColumns(r, 5000, 0.5), sketch.Options{}, 0)
	for _, f := range Evaluate(ref, cur, Options{}) {
		want := Stable
		if f.Feature == "normal0" || f.Feature == "cat0" {
			want = Drift
		}
		if f.Verdict != want {
			t.Errorf("%s: %s (score %.3f, p %.2g), want %s", f.Feature, f.Verdict, f.Score, f.AdjustedP, want)
		}
		if f.Verdict == Drift {
			t.Logf("%s: %s", f.Feature, f.Summary())
		}
	}
}

// TestInsufficientData: too few non-null rows on either side gives no
// verdict, and neither does a feature unknown to the reference.
func TestInsufficientData(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	ref := profileOf(t, []column{{name: "x", num: normals(r, 1000, 0, 1)}, {name: "c", cat: cats(r, 1000, []float64{1, 1})}}, sketch.Options{}, 0)
	small := profileOf(t, []column{{name: "x", num: normals(r, 99, 5, 1)}, {name: "c", cat: cats(r, 99, []float64{1, 9})}}, sketch.Options{}, 0)
	nulls := make([]string, 500)
	for i := range nulls {
		nulls[i] = "\x00null"
	}
	nan := make([]float64, 500)
	for i := range nan {
		nan[i] = math.NaN()
	}
	allNull := profileOf(t, []column{{name: "x", num: nan}, {name: "c", cat: nulls}}, sketch.Options{}, 0)
	other := profileOf(t, []column{{name: "y", num: normals(r, 1000, 0, 1)}}, sketch.Options{}, 0)

	for name, cur := range map[string]*sketch.Profile{"small": small, "all null": allNull, "unknown feature": other} {
		for _, f := range Evaluate(ref, cur, Options{}) {
			if f.Verdict != InsufficientData {
				t.Errorf("%s %s: verdict %s, want insufficient_data", name, f.Feature, f.Verdict)
			}
			if s := f.Summary(); s == "" {
				t.Errorf("%s %s: empty summary", name, f.Feature)
			}
		}
	}
	// The same data passes with MinRows lowered.
	for _, f := range Evaluate(ref, small, Options{MinRows: 50}) {
		if f.Verdict == InsufficientData {
			t.Errorf("MinRows 50: %s insufficient", f.Feature)
		}
	}
}
