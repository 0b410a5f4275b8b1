// Package window groups one model's events into windows — tumbling on event time, or a
// fixed number of rows — and says when a window has closed.
//
// A Tracker belongs to one goroutine: the monitor loop that owns the sketches.
package window

import (
	"math"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/driftmon/driftmon/sketch"
)

// Spec is how events are grouped. Exactly one of Size and Rows is positive.
type Spec struct {
	// Size is the length of tumbling event-time windows.
	Size time.Duration
	// Rows is the number of events per count window.
	Rows int
	// Lateness is how far behind the newest event time an event may arrive and still be
	// counted in its window. Windows close when the watermark (newest event time minus
	// Lateness) passes their end.
	Lateness time.Duration
}

// Window is one window's profile and bounds.
type Window struct {
	// Start and End bound the window: [Start, End) for event-time windows; the first and
	// last event time for count windows.
	Start, End time.Time
	Profile    *sketch.Profile
}

// Tracker assigns one model's rows to windows.
type Tracker struct {
	spec       Spec
	newProfile func() *sketch.Profile

	// count windows
	cur            *Window
	curMin, curMax int64

	// event-time windows
	open      map[int64]*Window
	watermark int64
	closedTo  int64 // every window starting before this has closed
	groups    map[int64][]int

	late int64
}

// NewTracker returns a tracker that makes each new window's profile with newProfile.
func NewTracker(spec Spec, newProfile func() *sketch.Profile) *Tracker {
	return &Tracker{
		spec:       spec,
		newProfile: newProfile,
		open:       map[int64]*Window{},
		groups:     map[int64][]int{},
		watermark:  math.MinInt64,
		closedTo:   math.MinInt64,
	}
}

// Late is how many events arrived for windows that had already closed. They are counted
// here and not merged into any window.
func (t *Tracker) Late() int64 { return t.late }

// Add puts rows of rec (indices, in arrival order) into their windows; times[i] is row
// i's event time in Unix nanoseconds. It returns the windows that closed, oldest first.
func (t *Tracker) Add(rec arrow.Record, times []int64, rows []int) []*Window {
	if t.spec.Rows > 0 {
		return t.addCount(rec, times, rows)
	}
	return t.addTime(rec, times, rows)
}

func (t *Tracker) addCount(rec arrow.Record, times []int64, rows []int) []*Window {
	var closed []*Window
	for len(rows) > 0 {
		if t.cur == nil {
			t.cur = &Window{Profile: t.newProfile()}
			t.curMin, t.curMax = math.MaxInt64, math.MinInt64
		}
		room := t.spec.Rows - int(t.cur.Profile.Rows)
		n := min(room, len(rows))
		part := rows[:n]
		rows = rows[n:]
		for _, r := range part {
			t.curMin = min(t.curMin, times[r])
			t.curMax = max(t.curMax, times[r])
		}
		t.cur.Profile.Update(rec, part)
		if int(t.cur.Profile.Rows) >= t.spec.Rows {
			t.cur.Start, t.cur.End = time.Unix(0, t.curMin).UTC(), time.Unix(0, t.curMax).UTC()
			t.cur.Profile.Start, t.cur.Profile.End = t.cur.Start, t.cur.End
			closed = append(closed, t.cur)
			t.cur = nil
		}
	}
	return closed
}

func (t *Tracker) addTime(rec arrow.Record, times []int64, rows []int) []*Window {
	size := int64(t.spec.Size)
	clear(t.groups)
	newest := t.watermark
	for _, r := range rows {
		ts := times[r]
		start := floorDiv(ts, size) * size
		if start < t.closedTo {
			t.late++
			continue
		}
		t.groups[start] = append(t.groups[start], r)
		newest = max(newest, ts-int64(t.spec.Lateness))
	}
	for start, part := range t.groups {
		w := t.open[start]
		if w == nil {
			w = &Window{Start: time.Unix(0, start).UTC(), End: time.Unix(0, start+size).UTC(), Profile: t.newProfile()}
			w.Profile.Start, w.Profile.End = w.Start, w.End
			t.open[start] = w
		}
		w.Profile.Update(rec, part)
	}
	t.watermark = newest
	var closed []*Window
	for start, w := range t.open {
		if start+size <= t.watermark {
			closed = append(closed, w)
			delete(t.open, start)
		}
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i].Start.Before(closed[j].Start) })
	if t.watermark != math.MinInt64 {
		t.closedTo = max(t.closedTo, floorDiv(t.watermark, size)*size)
	}
	return closed
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Flush closes every open window, however full, oldest first: the end of a finite
// input such as a backtest's file. Count windows get bounds from their events.
func (t *Tracker) Flush() []*Window {
	var closed []*Window
	if t.cur != nil && t.cur.Profile.Rows > 0 {
		t.cur.Start, t.cur.End = time.Unix(0, t.curMin).UTC(), time.Unix(0, t.curMax).UTC()
		t.cur.Profile.Start, t.cur.Profile.End = t.cur.Start, t.cur.End
		closed = append(closed, t.cur)
	}
	t.cur = nil
	for start, w := range t.open {
		closed = append(closed, w)
		delete(t.open, start)
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i].Start.Before(closed[j].Start) })
	return closed
}
