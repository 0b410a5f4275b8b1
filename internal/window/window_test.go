package window

import (
	"math"
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

// feed drives a tracker and a clock the way the monitor's engine does: row by row,
// adding the rows seen so far and closing windows whenever the watermark passes a
// window's end. parts nil means every row is from partition 0.
func feed(tr *Tracker, c *Clock, rec arrow.Record, times []int64, parts []int32) []*Window {
	var pending []int
	var out []*Window
	for i := range times {
		pending = append(pending, i)
		var p int32
		if parts != nil {
			p = parts[i]
		}
		if c.Observe(p, times[i]) {
			out = append(out, tr.Add(rec, times, pending, nil)...)
			pending = nil
			out = append(out, tr.Close(c.ClosedTo())...)
		}
	}
	return append(out, tr.Add(rec, times, pending, nil)...)
}

func TestCountWindowsSplitABatchAtTheBoundary(t *testing.T) {
	tr := NewTracker(Spec{Rows: 4}, newProfile, math.MinInt64)
	rec := record(t, 10)
	defer rec.Release()
	times := secs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	closed := tr.Add(rec, times, all(10), nil)
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
	spec := Spec{Size: 10 * time.Second, Lateness: 2 * time.Second}
	tr, c := NewTracker(spec, newProfile, math.MinInt64), NewClock(spec)
	rec := record(t, 6)
	defer rec.Release()

	// Events at 1s..9s: window [0,10) stays open.
	if closed := feed(tr, c, rec, secs(1, 3, 5, 7, 9, 9), nil); len(closed) != 0 {
		t.Fatalf("closed %d windows before the watermark passed", len(closed))
	}
	// 11s: watermark 9s, still inside the allowed lateness; [0,10) stays open and takes
	// the out-of-order event at 8s.
	if closed := feed(tr, c, rec, secs(11, 8, 11, 11, 11, 11), nil); len(closed) != 0 {
		t.Fatalf("closed a window within the allowed lateness")
	}
	// 25s: watermark 23s closes [0,10) and [10,20).
	closed := feed(tr, c, rec, secs(25, 25, 25, 25, 25, 25), nil)
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
	if closed := feed(tr, c, rec, secs(5, 26, 26, 26, 26, 26), nil); len(closed) != 0 {
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

// TestWindowsDoNotDependOnBatching feeds the same out-of-order events in one batch and
// one by one: the same windows close with the same rows, and the same events are late.
func TestWindowsDoNotDependOnBatching(t *testing.T) {
	spec := Spec{Size: 10 * time.Second}
	times := secs(1, 2, 12, 3, 14, 25, 11, 26, 9, 35)
	rec := record(t, len(times))
	defer rec.Release()
	run := func(split int) (rows []int64, late int64) {
		tr, c := NewTracker(spec, newProfile, math.MinInt64), NewClock(spec)
		var closed []*Window
		for lo := 0; lo < len(times); lo += split {
			hi := min(lo+split, len(times))
			sub := rec.NewSlice(int64(lo), int64(hi))
			closed = append(closed, feed(tr, c, sub, times[lo:hi], nil)...)
			sub.Release()
		}
		for _, w := range closed {
			rows = append(rows, w.Profile.Rows)
		}
		return rows, tr.Late()
	}
	wantRows, wantLate := run(len(times))
	// [0,10) closes at 12s with 1, 2; 3 is late; [10,20) closes at 25s with 12, 14;
	// 11 and 9 are late; [20,30) closes at 35s with 25, 26.
	if len(wantRows) != 3 || wantRows[0] != 2 || wantRows[1] != 2 || wantRows[2] != 2 || wantLate != 3 {
		t.Fatalf("one batch: windows %v, late %d; want [2 2 2], 3", wantRows, wantLate)
	}
	for _, split := range []int{1, 2, 3} {
		rows, late := run(split)
		if len(rows) != len(wantRows) || late != wantLate {
			t.Errorf("batches of %d: windows %v, late %d; want %v, %d", split, rows, late, wantRows, wantLate)
		}
	}
}

func TestWatermarkIsTheSlowestPartition(t *testing.T) {
	spec := Spec{Size: 10 * time.Second}
	tr, c := NewTracker(spec, newProfile, math.MinInt64), NewClock(spec)
	now := time.Unix(1000, 0)
	c.Assign([]int32{0, 1}, now)
	rec := record(t, 4)
	defer rec.Release()

	// Partition 0 is far ahead, partition 1 has not spoken: nothing closes.
	if closed := feed(tr, c, rec, secs(1, 15, 25, 35), []int32{0, 0, 0, 0}); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1 had no event", len(closed))
	}
	// Partition 1 reaches 12s: [0,10) closes, and partition 1's next event, at 5s, is
	// late.
	closed := feed(tr, c, rec, secs(2, 12, 5, 13), []int32{1, 1, 1, 1})
	if len(closed) != 1 || closed[0].Profile.Rows != 2 {
		t.Fatalf("closed %v, want [0,10) with the events at 1s and 2s", closed)
	}
	if tr.Late() != 1 {
		t.Errorf("late = %d, want 1", tr.Late())
	}
	if got, want := c.Watermark(), secs(13)[0]; got != want {
		t.Errorf("watermark %v, want %v (partition 1's newest)", time.Duration(got), time.Duration(want))
	}
}

func TestIdlePartitionStopsHoldingTheWatermark(t *testing.T) {
	spec := Spec{Size: 10 * time.Second, Idle: 30 * time.Second}
	tr, c := NewTracker(spec, newProfile, math.MinInt64), NewClock(spec)
	start := time.Unix(1000, 0)
	c.Assign([]int32{0, 1}, start)
	rec := record(t, 3)
	defer rec.Release()
	c.Tick(start.Add(time.Second))
	if closed := feed(tr, c, rec, secs(1, 12, 25), nil); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1 was not idle yet", len(closed))
	}
	// 31 s later partition 0 is still talking, partition 1 has been silent since its
	// assignment: it no longer holds the watermark.
	if !c.Tick(start.Add(31 * time.Second)) {
		t.Fatal("idle partition did not let the watermark move")
	}
	closed := tr.Close(c.ClosedTo())
	if len(closed) != 2 {
		t.Fatalf("closed %d windows, want [0,10) and [10,20)", len(closed))
	}
	// Partition 1 wakes up with an old event: late, and it holds the watermark again.
	closed = feed(tr, c, rec, secs(3, 26, 27), []int32{1, 0, 0})
	if len(closed) != 0 || tr.Late() != 1 {
		t.Errorf("closed %d, late %d; want 0, 1", len(closed), tr.Late())
	}
	if got := c.Watermark(); got != secs(25)[0] {
		t.Errorf("watermark %v moved back or on, want 25s", time.Duration(got))
	}
}

func TestStateRoundTrip(t *testing.T) {
	spec := Spec{Size: 10 * time.Second}
	tr, c := NewTracker(spec, newProfile, math.MinInt64), NewClock(spec)
	c.Assign([]int32{0, 2}, time.Unix(0, 0))
	rec := record(t, 6)
	defer rec.Release()
	// Partition 2 lags at 4s: every window stays open.
	feed(tr, c, rec, secs(1, 11, 21, 2, 3, 4), []int32{0, 0, 0, 2, 2, 2})

	ts, cs := tr.State(), c.State()
	if len(ts.Open) != 3 || ts.Late != 0 || cs.ClosedTo != 0 || len(cs.Partitions) != 2 {
		t.Fatalf("state: %d open, late %d, closed to %d, %d partitions", len(ts.Open), ts.Late, cs.ClosedTo, len(cs.Partitions))
	}
	tr2, c2 := RestoreTracker(spec, newProfile, ts), RestoreClock(spec, cs, time.Unix(0, 0))
	a := feed(tr, c, rec, secs(31, 32), []int32{0, 2})
	b := feed(tr2, c2, rec, secs(31, 32), []int32{0, 2})
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("closed %d and %d windows, want 3 each", len(a), len(b))
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || !sketch.Equal(a[i].Profile, b[i].Profile) {
			t.Errorf("window %d differs after restore", i)
		}
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
