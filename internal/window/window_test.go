package window

import (
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/sketch"
)

var fields = []sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}

func newProfile() *sketch.Profile { return sketch.NewProfile(fields, sketch.Options{}) }

// record makes a one-column record with n rows (values 0..n-1).
func record(t *testing.T, n int) arrow.Record {
	t.Helper()
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < n; i++ {
		b.Append(float64(i))
	}
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)
	return array.NewRecord(schema, []arrow.Array{col}, int64(n))
}

func all(n int) []int {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	return rows
}

func secs(s ...int64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = v * int64(time.Second)
	}
	return out
}

func TestCountWindowsSplitABatchAtTheBoundary(t *testing.T) {
	tr := NewTracker(Spec{Rows: 4}, newProfile)
	rec := record(t, 10)
	defer rec.Release()
	times := secs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	closed := tr.Add(rec, times, all(10))
	if len(closed) != 2 {
		t.Fatalf("closed %d windows, want 2", len(closed))
	}
	for i, w := range closed {
		if w.Profile.Rows != 4 {
			t.Errorf("window %d has %d rows", i, w.Profile.Rows)
		}
	}
	if got, want := closed[1].Start, time.Unix(4, 0).UTC(); !got.Equal(want) {
		t.Errorf("second window starts %v, want %v (its first event)", got, want)
	}
	if got, want := closed[1].Profile.Feature("x").Num.Min(), 4.0; got != want {
		t.Errorf("second window min %v, want %v", got, want)
	}
	rest := tr.Flush()
	if len(rest) != 1 || rest[0].Profile.Rows != 2 {
		t.Fatalf("flush gave %d windows, want the 2-row remainder", len(rest))
	}
}

func TestEventTimeWindowsCloseOnTheWatermarkAndCountLateEvents(t *testing.T) {
	tr := NewTracker(Spec{Size: 10 * time.Second, Lateness: 2 * time.Second}, newProfile)
	rec := record(t, 6)
	defer rec.Release()

	// Events at 1s..9s: window [0,10) stays open.
	if closed := tr.Add(rec, secs(1, 3, 5, 7, 9, 9), all(6)); len(closed) != 0 {
		t.Fatalf("closed %d windows before the watermark passed", len(closed))
	}
	// 11s: watermark 9s, still inside the allowed lateness; [0,10) stays open and takes
	// the out-of-order event at 8s.
	if closed := tr.Add(rec, secs(11, 8, 11, 11, 11, 11), all(6)); len(closed) != 0 {
		t.Fatalf("closed a window within the allowed lateness")
	}
	// 25s: watermark 23s closes [0,10) and [10,20).
	closed := tr.Add(rec, secs(25, 25, 25, 25, 25, 25), all(6))
	if len(closed) != 2 {
		t.Fatalf("closed %d windows, want 2", len(closed))
	}
	if closed[0].Profile.Rows != 7 || closed[1].Profile.Rows != 5 {
		t.Errorf("rows %d and %d, want 7 and 5", closed[0].Profile.Rows, closed[1].Profile.Rows)
	}
	if !closed[0].Start.Equal(time.Unix(0, 0).UTC()) || !closed[0].End.Equal(time.Unix(10, 0).UTC()) {
		t.Errorf("first window [%v, %v), want [0s, 10s)", closed[0].Start, closed[0].End)
	}
	// An event for a closed window is late: counted, merged nowhere.
	if closed := tr.Add(rec, secs(5, 26, 26, 26, 26, 26), all(6)); len(closed) != 0 {
		t.Fatalf("a late event reopened or closed a window")
	}
	if tr.Late() != 1 {
		t.Errorf("late = %d, want 1", tr.Late())
	}
	rest := tr.Flush()
	if len(rest) != 1 || rest[0].Profile.Rows != 11 {
		t.Fatalf("flush: %d windows; want [20s,30s) with 11 rows", len(rest))
	}
}

func TestNegativeEventTimesFloorToTheirWindow(t *testing.T) {
	if got := floorDiv(-1, 10); got != -1 {
		t.Errorf("floorDiv(-1, 10) = %d, want -1", got)
	}
	if got := floorDiv(-10, 10); got != -1 {
		t.Errorf("floorDiv(-10, 10) = %d, want -1", got)
	}
}
