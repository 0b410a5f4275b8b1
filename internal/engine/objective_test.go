package engine

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
)

// TestObjectivesJudgedOnEveryWholeWindow: objectives are judged on each closed window
// from its own profile, warm-up windows included (they need no reference), except
// the row rate of a model's first event-time window, which may hold only part of its
// traffic; the latency panel's figures come with them.
func TestObjectivesJudgedOnEveryWholeWindow(t *testing.T) {
	e, err := New(limitsStream(t, `    latency_field: x
    objectives:
      - {field: x, quantile: 0.99, max: 500, unit: ms}
      - {stat: rows_per_minute, min: 500}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	var models []string
	var xs []float64
	// Four minutes of 1,000 rows each, x in 0..99 except in the second minute, whose
	// x is 1,000 + 0..99: its p99 breaches, the others' do not.
	for i := range 4000 {
		times = append(times, start.Add(time.Duration(i)*60*time.Millisecond))
		models = append(models, "m")
		x := float64(i % 100)
		if i/1000 == 1 {
			x += 1000
		}
		xs = append(xs, x)
	}
	rec := rowsOf(times, models, xs)
	defer rec.Release()
	res := e.ProcessPartitions(rec, nil)
	res = append(res, e.Flush()...)
	if len(res) != 4 {
		t.Fatalf("%d windows closed, want 4", len(res))
	}
	first := res[0]
	if !first.Warmup || len(first.Objectives) != 2 {
		t.Fatalf("first window: warm-up %v, %d objectives", first.Warmup, len(first.Objectives))
	}
	if v := first.Objectives[1].Verdict; v != detectors.InsufficientData {
		t.Errorf("first window's row rate: %s, want insufficient_data", v)
	}
	for i, r := range res {
		p99 := r.Objectives[0]
		want := detectors.Met
		if i == 1 {
			want = detectors.Breached
		}
		if p99.Verdict != want {
			t.Errorf("window %d: %s, want %s", i, p99.Rule, want)
		}
		if i > 0 && r.Objectives[1].Verdict != detectors.Met {
			t.Errorf("window %d: %d rows, rate %s: %s", i, r.Rows, r.Objectives[1].Verdict, r.Objectives[1].Rule)
		}
		if r.Latency == nil || r.Latency.Field != "x" || math.Abs(r.Latency.P99-p99.Value) > 1e-9 || r.Latency.RowsPerMinute != float64(r.Rows) {
			t.Errorf("window %d: latency %+v, p99 objective %g, rows %d", i, r.Latency, p99.Value, r.Rows)
		}
	}
	if r := res[1].Objectives[0].Rule; r != "objective breached: x p99 1.1k ms > 500 ms" {
		t.Errorf("rule %q", r)
	}
	if got := res[1].Breached(); len(got) != 1 || got[0] != "x p99" {
		t.Errorf("second window breached %v (p99 %s), want [x p99]", got, res[1].Objectives[0].Rule)
	}
}

// rowsOf is a record of x = xs[i], one row per time, each of model models[i].
func rowsOf(times []time.Time, models []string, xs []float64) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ingest.ColEventTime, Type: arrow.PrimitiveTypes.Int64},
		{Name: ingest.ColModel, Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, ts := range times {
		b.Field(0).(*array.Float64Builder).Append(xs[i])
		b.Field(1).(*array.Int64Builder).Append(ts.UnixNano())
		b.Field(2).(*array.StringBuilder).Append(models[i])
	}
	return b.NewRecord()
}
