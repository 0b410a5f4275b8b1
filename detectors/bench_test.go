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
		if fs := Evaluate(ref, cur, Options{}); len(fs) != 1001 { // and "(multivariate)"
			b.Fatal(len(fs))
		}
	}
}

// BenchmarkEvaluateMultivariate is the cost of the multivariate finding in one
// window: Evaluate of a 16-feature model (12 continuous, 4 integer-valued,
// 5,000 rows; the joint sketch covers all 16) with and without it.
func BenchmarkEvaluateMultivariate(b *testing.B) {
	benchmarkEvaluate(b, []evaluateCase{
		{"without", Options{MinMultivariate: -1, MinJoint: -1}, 16}, {"with", Options{MinJoint: -1}, 17}})
}

// BenchmarkEvaluateJoint is the cost of the pair-grid finding in one window:
// Evaluate of the 16-feature model of BenchmarkEvaluateMultivariate (120 pairs)
// with and without it.
func BenchmarkEvaluateJoint(b *testing.B) {
	benchmarkEvaluate(b, []evaluateCase{{"without", Options{MinJoint: -1}, 17}, {"with", Options{}, 18}})
}

// evaluateCase is one sub-benchmark of benchmarkEvaluate: its options and how many
// findings Evaluate gives with them.
type evaluateCase struct {
	name string
	opts Options
	want int
}

// benchmarkEvaluate runs Evaluate on two 5,000-row windows of 16 features (12
// continuous, 4 integer-valued) once per case.
func benchmarkEvaluate(b *testing.B, cases []evaluateCase) {
	r := rand.New(rand.NewPCG(2, 2))
	gen := func() []column {
		var cols []column
		for i := 0; i < 12; i++ {
			cols = append(cols, column{name: fmt.Sprintf("n%d", i), num: normals(r, 5000, 0, 1)})
		}
		for i := 0; i < 4; i++ {
			cols = append(cols, column{name: fmt.Sprintf("i%d", i), num: ints(r, 5000, 6)})
		}
		return cols
	}
	ref, cur := profileOf(b, gen(), sketch.Options{}, 0), profileOf(b, gen(), sketch.Options{}, 0)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if fs := Evaluate(ref, cur, c.opts); len(fs) != c.want {
					b.Fatal(len(fs))
				}
			}
		})
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

// BenchmarkEvaluateSegments is the cost of judging 20 segments in one window:
// Evaluate of segmentColumns' 6 fields (4 numeric, a categorical, the key),
// 4,000 rows against 30,000, without segments and with the 20 segments'
// 100 findings in the family.
func BenchmarkEvaluateSegments(b *testing.B) {
	r := rand.New(rand.NewPCG(23, 21))
	sopts := sketch.Options{GridPairs: -1, Segments: []sketch.SegmentKey{{By: "country", MaxValues: 256}}}
	ref := profileOf(b, segmentColumns(r, 30000), sopts, 5000)
	cur := profileOf(b, segmentColumns(r, 4000), sopts, 1000)
	for _, tt := range []struct {
		name string
		opts Options
		want int
	}{{"none", Options{}, 7}, {"20", Options{Segments: []Segment{{By: "country", Top: 20}}}, 107}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if fs := Evaluate(ref, cur, tt.opts); len(fs) != tt.want {
					b.Fatal(len(fs))
				}
			}
		})
	}
}
