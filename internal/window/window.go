// Package window groups one model's events into windows — tumbling on event time, or a
// fixed number of rows — and says when a window has closed.
//
// Event-time windows close on a watermark that a Clock derives from the event times of
// each partition of the input (see Clock). A stream has one Clock and one Tracker per
// model; both belong to one goroutine: the monitor loop that owns the sketches.
//
// It imports only sketch (an open window holds a Profile): never ingest, detectors,
// alerting or the monitor.
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
	// Lateness is how far event time may run ahead of an event's window before the
	// window closes: windows close when the watermark — the slowest partition's newest
	// event time minus Lateness, see Clock — passes their end.
	Lateness time.Duration
	// Idle is how long a partition may go without a message before it stops holding the
	// watermark back. 0 means DefaultIdle.
	Idle time.Duration
}

// DefaultIdle is Spec.Idle's default: a partition that has had no message for 30
// seconds no longer holds the watermark back, so one quiet partition does not keep every
// window of the stream open.
const DefaultIdle = 30 * time.Second

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
	open     map[int64]*Window
	closedTo int64 // every window starting before this has closed
	groups   map[int64][]int

	late int64
}

// NewTracker returns a tracker that makes each new window's profile with newProfile.
// Its event-time windows start closed up to closedTo: the ClosedTo of the stream's
// Clock when the model first shows up (math.MinInt64 for none).
func NewTracker(spec Spec, newProfile func() *sketch.Profile, closedTo int64) *Tracker {
	return &Tracker{
		spec:       spec,
		newProfile: newProfile,
		open:       map[int64]*Window{},
		groups:     map[int64][]int{},
		closedTo:   closedTo,
	}
}

// Late is how many events arrived for windows that had already closed. They are counted
// here and not merged into any window.
func (t *Tracker) Late() int64 { return t.late }

// Counted reports whether the tracker makes count windows (Spec.Rows > 0).
func (t *Tracker) Counted() bool { return t.spec.Rows > 0 }

// Add puts rows of rec (indices, in arrival order) into their windows; times[i] is row
// i's event time in Unix nanoseconds, sources[i] its partition (nil: all 0; see
// sketch.Profile.UpdateFrom). Count windows close here and are returned, oldest
// first. Event-time windows only close in Close; a row whose window has already closed
// is counted as late.
func (t *Tracker) Add(rec arrow.Record, times []int64, rows []int, sources []int32) []*Window {
	if t.spec.Rows > 0 {
		return t.addCount(rec, times, rows, sources)
	}
	t.addTime(rec, times, rows, sources)
	return nil
}

func (t *Tracker) addCount(rec arrow.Record, times []int64, rows []int, sources []int32) []*Window {
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
		t.cur.Profile.UpdateFrom(rec, part, sources)
		if int(t.cur.Profile.Rows) >= t.spec.Rows {
			t.cur.Start, t.cur.End = time.Unix(0, t.curMin).UTC(), time.Unix(0, t.curMax).UTC()
			t.cur.Profile.Start, t.cur.Profile.End = t.cur.Start, t.cur.End
			closed = append(closed, t.cur)
			t.cur = nil
		}
	}
	return closed
}

func (t *Tracker) addTime(rec arrow.Record, times []int64, rows []int, sources []int32) {
	size := int64(t.spec.Size)
	clear(t.groups)
	for _, r := range rows {
		start := StartOf(times[r], size)
		if start < t.closedTo {
			t.late++
			continue
		}
		t.groups[start] = append(t.groups[start], r)
	}
	for start, part := range t.groups {
		t.window(start).Profile.UpdateFrom(rec, part, sources)
	}
}

// window returns the open window that starts at start, opening it if needed.
func (t *Tracker) window(start int64) *Window {
	w := t.open[start]
	if w == nil {
		size := int64(t.spec.Size)
		w = &Window{Start: time.Unix(0, start).UTC(), End: time.Unix(0, start+size).UTC(), Profile: t.newProfile()}
		w.Profile.Start, w.Profile.End = w.Start, w.End
		t.open[start] = w
	}
	return w
}

// ClosedTo is where the tracker's event-time windows have closed up to: every window
// starting before it has closed.
func (t *Tracker) ClosedTo() int64 { return t.closedTo }

// CountLate adds n events that arrived for windows that had closed elsewhere: a cluster
// leader counts so the rows of a partition's window that came after it had been judged.
func (t *Tracker) CountLate(n int64) { t.late += n }

// Close closes every event-time window that starts before closedTo (a Clock's
// ClosedTo) and returns them, oldest first. Rows added later for those windows are late.
func (t *Tracker) Close(closedTo int64) []*Window {
	if closedTo <= t.closedTo {
		return nil
	}
	t.closedTo = closedTo
	var closed []*Window
	for start, w := range t.open {
		if start < closedTo {
			closed = append(closed, w)
			delete(t.open, start)
		}
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i].Start.Before(closed[j].Start) })
	return closed
}

// StartOf is the start of the tumbling window of size (ns) that holds event time t
// (Unix ns): windows align to the Unix epoch, also before it.
func StartOf(t, size int64) int64 { return floorDiv(t, size) * size }

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

// TrackerState is what a checkpoint keeps of a Tracker. Its profiles are the tracker's
// own, not copies: encode them before the tracker sees more rows.
type TrackerState struct {
	// Late is the late-event count.
	Late int64
	// ClosedTo is where event-time windows have closed up to.
	ClosedTo int64
	// Current is the count window being filled (nil when none), and CurrentMin and
	// CurrentMax the oldest and newest event time in it.
	Current                *sketch.Profile
	CurrentMin, CurrentMax int64
	// Open are the open event-time windows' profiles, oldest first; each profile's Start
	// is its window's start.
	Open []*sketch.Profile
}

// State returns the tracker's state for a checkpoint.
func (t *Tracker) State() TrackerState {
	s := TrackerState{Late: t.late, ClosedTo: t.closedTo}
	if t.cur != nil {
		s.Current, s.CurrentMin, s.CurrentMax = t.cur.Profile, t.curMin, t.curMax
	}
	starts := make([]int64, 0, len(t.open))
	for start := range t.open {
		starts = append(starts, start)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, start := range starts {
		s.Open = append(s.Open, t.open[start].Profile)
	}
	return s
}

// RestoreTracker rebuilds a tracker from a checkpointed state. It takes ownership of the
// state's profiles.
func RestoreTracker(spec Spec, newProfile func() *sketch.Profile, s TrackerState) *Tracker {
	t := NewTracker(spec, newProfile, s.ClosedTo)
	t.late = s.Late
	if s.Current != nil {
		t.cur = &Window{Profile: s.Current}
		t.curMin, t.curMax = s.CurrentMin, s.CurrentMax
	}
	for _, p := range s.Open {
		start := p.Start.UnixNano()
		t.open[start] = &Window{Start: p.Start, End: p.End, Profile: p}
	}
	return t
}
