package monitor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/report"
)

// TestWindowsCarryDataQualityChecks: a feature that starts arriving empty is a
// data-quality violation of its window, whatever the drift tests say about the values
// that did arrive.
func TestWindowsCarryDataQualityChecks(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: s
    topic: t
    features: {x: {type: numeric}}
    window: {rows: 2000}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(&cfg.Streams[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	record := func(nullEvery int) arrow.Record {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		defer b.Release()
		for i := 0; i < 2000; i++ {
			if nullEvery > 0 && i%nullEvery == 0 {
				b.AppendNull()
				continue
			}
			b.Append(float64(i % 97))
		}
		col := b.NewArray()
		defer col.Release()
		schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
		return array.NewRecord(schema, []arrow.Array{col}, 2000)
	}
	var results []engine.Result
	for _, nullEvery := range []int{0, 0, 3} { // warm-up, clean, a third null
		rec := record(nullEvery)
		results = append(results, e.Process(rec)...)
		rec.Release()
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	if v := results[1].Violations(); len(v) != 0 {
		t.Errorf("clean window fails quality checks: %v", v)
	}
	v := results[2].Violations()
	if len(v) != 1 || !strings.Contains(v[0], "null rate") {
		t.Errorf("window with a third nulls: violations %v, want the null rate", v)
	}

	// The API, the results file and backtests show the failed check with the window.
	if q := report.NewWindow(results[1]).Quality; q != nil {
		t.Errorf("clean window's quality %+v, want none", q)
	}
	w := report.NewWindow(results[2])
	if len(w.Quality) != 1 {
		t.Fatalf("window with a third nulls: quality %+v, want the null rate", w.Quality)
	}
	q := w.Quality[0]
	if q.Feature != "x" || q.Check != detectors.CheckNullRate || q.Summary != v[0] || q.AdjustedP == nil ||
		float64(q.Cur) < 0.33 || float64(q.Cur) > 0.34 || q.Ref != 0 {
		t.Errorf("quality check %+v, want x's null rate 0 → a third, with its adjusted p-value", q)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"quality":[{"feature":"x","check":"null_rate","summary":"null rate 0.0% → 33.4%"`) {
		t.Errorf("window JSON lacks the failed check: %s", b)
	}
}
