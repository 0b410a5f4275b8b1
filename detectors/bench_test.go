package detectors

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// BenchmarkEvaluate compares two profiles of 1,000 features (600
// continuous, 200 integer-valued, 200 categorical) of 5,000 rows each.
func BenchmarkEvaluate(b *testing.B) {
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
	ref := profileOf(b, gen(0), sketch.Options{}, 0)
	cur := profileOf(b, gen(0.1), sketch.Options{}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if fs := Evaluate(ref, cur, Options{}); len(fs) != 1000 {
			b.Fatal(len(fs))
		}
	}
}
