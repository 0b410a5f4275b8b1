package engine

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/driftmon/driftmon/config"
)

func limitsStream(t *testing.T, extra string) *config.Stream {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: events
    event_time: ts
    model: model
    features: {x: {type: numeric}}
    window: {size: 1m}
`+extra), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Streams[0]
}

// rows is a record of x = i, one row per time, each of model models[i].
func rows(times []time.Time, models []string) arrow.Record {
	xs := make([]float64, len(times))
	for i := range xs {
		xs[i] = float64(i)
	}
	return rowsOf(times, models, xs)
}

// TestModelsPastTheLimitAreCountedNotKept: a new model value per event (a request id
// in the model field) must not grow the engine without bound; the rows past
// limits.max_models are counted for the caller to report, and the first models keep
// their windows.
func TestModelsPastTheLimitAreCountedNotKept(t *testing.T) {
	e, err := New(limitsStream(t, "    limits: {max_models: 3}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	var models []string
	for i := range 1000 {
		times = append(times, start.Add(time.Duration(i)*time.Millisecond))
		models = append(models, "m"+strconv.Itoa(i%250)) // 250 models, 4 rows each
	}
	rec := rows(times, models)
	defer rec.Release()
	e.ProcessPartitions(rec, nil)
	if len(e.models) != 3 {
		t.Errorf("%d models kept, want 3", len(e.models))
	}
	refused := e.Refused()
	if len(refused) != 1000-3*4 {
		t.Errorf("%d rows past the limit, want %d", len(refused), 1000-3*4)
	}
	for _, f := range refused {
		if f.Reason != ReasonTooManyModels || models[f.Row] == "m0" || models[f.Row] == "m1" || models[f.Row] == "m2" {
			t.Fatalf("refused row %d of model %s as %s", f.Row, models[f.Row], f.Reason)
		}
	}
	for _, m := range e.order {
		if m.key.model != "m0" && m.key.model != "m1" && m.key.model != "m2" {
			t.Errorf("model %q kept, want the first three", m.key.model)
		}
	}
}

// TestRestoreBringsAFutureClockBack: a checkpoint written after one event stamped
// 2100-01-01 had moved the clock (before event times were bounded) held every window
// shut for good: after a restore, events of now are late, and a restart did not help.
// Restoring brings the clock back to the current window, and windows close again.
func TestRestoreBringsAFutureClockBack(t *testing.T) {
	sc := limitsStream(t, "")
	now := time.Date(2026, 12, 5, 12, 0, 30, 0, time.UTC)
	clock := func() time.Time { return now }
	e, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.now = clock
	rec := rows([]time.Time{now.Add(-time.Minute), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"a", "a"})
	e.ProcessPartitions(rec, []int32{0, 0})
	rec.Release()
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}

	restored, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	restored.now = clock
	cp, err := DecodeCheckpoint(data, restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	restored.Restore(cp, true)
	// Two minutes of events from now on, one a second: the first minute's window closes.
	var times []time.Time
	var models []string
	for i := range 120 {
		times = append(times, now.Add(time.Duration(i)*time.Second))
		models = append(models, "a")
	}
	rec = rows(times, models)
	defer rec.Release()
	results := restored.ProcessPartitions(rec, make([]int32, len(times)))
	if late := restored.Late(); late != 0 {
		t.Errorf("%d events of now counted late after the restore, want 0", late)
	}
	if len(results) == 0 {
		t.Fatal("no window closed after the restore")
	}
	if got, want := results[0].Start, now.Truncate(time.Minute); !got.Equal(want) {
		t.Errorf("first window closed after the restore starts %v, want %v", got, want)
	}
	if wm := restored.Watermark(); wm.Year() > 2026 {
		t.Errorf("watermark %v after the restore", wm)
	}
}

// TestEventTimesOutOfBoundsMoveNoClock: a live engine refuses rows stamped more than
// limits.max_future ahead of the wall clock (or max_past behind it), each with its
// reason, and they move no clock: the rows of now still land in their windows, and
// the window closes when now's events pass it, not when a placeholder date does.
func TestEventTimesOutOfBoundsMoveNoClock(t *testing.T) {
	e, err := New(limitsStream(t, "    limits: {max_future: 10m, max_past: 24h}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 12, 0, 30, 0, time.UTC)
	e.now = func() time.Time { return now }
	e.BoundEventTimes()
	times := []time.Time{
		now,
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), // a placeholder date
		now.Add(11 * time.Minute),                   // a clock 11 minutes fast
		now.Add(10 * time.Second),
		now.Add(-48 * time.Hour), // older than max_past
		now.Add(9 * time.Minute), // within max_future
	}
	rec := rows(times, []string{"a", "a", "a", "a", "a", "a"})
	defer rec.Release()
	results := e.ProcessPartitions(rec, make([]int32, len(times)))
	want := []Refusal{{1, ReasonFutureTime}, {2, ReasonFutureTime}, {4, ReasonPastTime}}
	if got := e.Refused(); !slices.Equal(got, want) {
		t.Errorf("refused %v, want %v", got, want)
	}
	// Only the row 9 minutes ahead moved the clock: now's window closed, with its two
	// rows, and nothing counts as late.
	if len(results) != 1 || results[0].Rows != 2 || !results[0].Start.Equal(now.Truncate(time.Minute)) {
		t.Errorf("results %+v, want now's window with 2 rows", results)
	}
	if wm := e.Watermark(); !wm.Equal(now.Add(9 * time.Minute)) {
		t.Errorf("watermark %v, want %v", wm, now.Add(9*time.Minute))
	}

	// A backtest replays history: without BoundEventTimes every time is taken.
	replay, err := New(limitsStream(t, "    limits: {max_future: 10m, max_past: 24h}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	replay.now = e.now
	replay.ProcessPartitions(rec, make([]int32, len(times)))
	if got := replay.Refused(); len(got) != 0 {
		t.Errorf("a backtest refused %v", got)
	}
}
