package report

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

// The features of the test model: "income" moves in the shifted windows, the others
// never do. "segment" is categorical and "tier" a low-cardinality numeric (exact
// counts).
var testFields = []sketch.Field{
	{Name: "age", Kind: sketch.KindNumeric},
	{Name: "income", Kind: sketch.KindNumeric},
	{Name: "segment", Kind: sketch.KindCategorical},
	{Name: "tier", Kind: sketch.KindNumeric},
}

const (
	stableFeature  = "age"
	shiftedFeature = "income"
	windowRows     = 2000
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// window builds one window's profile from seeded data through an Arrow record, the
// way the monitor feeds it. shifted moves income's mean by one and a half standard
// deviations.
func window(t testing.TB, seed uint64, start time.Time, shifted bool) *sketch.Profile {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "age", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "income", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "segment", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tier", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	segments := []string{"retail", "retail", "retail", "smb", "smb", "corporate"}
	for range windowRows {
		b.Field(0).(*array.Float64Builder).Append(40 + 12*rng.NormFloat64())
		income := 52000 + 9000*rng.NormFloat64()
		if shifted {
			income += 13500
		}
		b.Field(1).(*array.Float64Builder).Append(income)
		if rng.IntN(50) == 0 {
			b.Field(2).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(segments[rng.IntN(len(segments))])
		}
		b.Field(3).(*array.Float64Builder).Append(float64(rng.IntN(5)))
	}
	rec := b.NewRecord()
	defer rec.Release()
	p := sketch.NewProfile(testFields, sketch.Options{})
	p.Update(rec, nil)
	p.Start, p.End = start, start.Add(10*time.Minute)
	return p
}

// results returns what a stream would report for model "car-loan" 3.2.0: two
// warm-up windows that become the reference, then shifted ones, each compared by the
// real detectors.
func results(t testing.TB, shifted int) []engine.Result {
	t.Helper()
	var out []engine.Result
	ref := sketch.NewProfile(testFields, sketch.Options{})
	for i := range 2 + shifted {
		start := t0.Add(time.Duration(i) * 10 * time.Minute)
		p := window(t, uint64(i+1), start, i >= 2)
		r := engine.Result{
			Stream: "credit", Model: "car-loan", ModelVersion: "3.2.0",
			Start: start, End: start.Add(10 * time.Minute), Rows: p.Rows, Profile: p,
		}
		if i < 2 {
			r.Warmup, r.Reference = true, "warm-up"
			if err := ref.Merge(p); err != nil {
				t.Fatal(err)
			}
		} else {
			r.Reference, r.ReferenceProfile = "first 2 window(s) after start", ref
			r.Findings = detectors.Evaluate(ref, p, detectors.Options{})
		}
		out = append(out, r)
	}
	return out
}
