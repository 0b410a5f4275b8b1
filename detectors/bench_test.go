package detectors

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftmon/driftmon/sketch"
)

// benchProfiles returns a reference and a current profile of 1,000
// features (600 continuous, 200 integer-valued, 200 categorical) of 5,000
// rows each; the continuous features of the current one are shifted 0.1σ.
func benchProfiles(b *testing.B) (ref, cur *sketch.Profile) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 1))
	gen := func(shift float64) []column {
		var cols []column
		for i := 0; i < 600; i++ {
			cols = append(cols, column{name: fmt.Sprintf("n%d", i), num: normals(r, 5000, shift, 1)})
		}
		for i := 0; i < 200; i++ {
			cols = append(cols, column{name: fmt.Sprintf("i%d", i), num: ints(r, 5000, 6)})
		}
		for i := 0; i < 200; i++ {
			cols = append(cols, column{name: fmt.Sprintf("c%d", i), cat: cats(r, 5000, []float64{5, 3, 1, 1})})
		}
		return cols
	}
	return profileOf(b, gen(0), sketch.Options{}, 0), profileOf(b, gen(0.1), sketch.Options{}, 0)
}

// BenchmarkEvaluate compares two profiles of 1,000 features.
func BenchmarkEvaluate(b *testing.B) {
	ref, cur := benchProfiles(b)
	b.ReportAllocs()
	for b.Loop() {
		if fs := Evaluate(ref, cur, Options{}); len(fs) != 1000 {
			b.Fatal(len(fs))
		}
	}
}

// BenchmarkEvaluateQuality runs every data-quality check on the same
// 1,000 features (4 checks each, plus volume and freshness).
func BenchmarkEvaluateQuality(b *testing.B) {
	ref, cur := benchProfiles(b)
	cur.End = time.Now()
	opts := QualityOptions{ExpectedRows: 5000, Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if qs := EvaluateQuality(ref, cur, opts); len(qs) != 4002 {
			b.Fatal(len(qs))
		}
	}
}
