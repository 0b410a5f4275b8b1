package window

import (
	"math"
	"time"
)

// Clock is a stream's event time. It keeps the newest event time of each partition the
// stream owns and derives the watermark from them:
//
//	watermark = min over owned, non-idle partitions of (newest event time − Lateness)
//
// so that a partition that is behind (a slow producer, a reader catching up) holds
// every window open until its events have arrived, and an event is late only when it is
// older than what its own partition — and every other — has already passed. A partition
// with no message for longer than Spec.Idle stops holding the watermark back until its
// next message. The watermark never moves backwards.
//
// The idle rule uses the wall clock, so it is the one part of windowing that depends on
// timing rather than on the events alone: a partition that falls silent for longer than
// Idle and then delivers old events makes them late.
type Clock struct {
	size, lateness, idle int64
	parts                []partTime // by partition number
	watermark, closedTo  int64
	low                  int64 // min newest time over owned, non-idle partitions
	now                  int64 // wall clock of the current batch, Unix ns
}

type partTime struct {
	owned, idle bool
	newest      int64 // newest event time, math.MinInt64 before the first
	seen        int64 // wall clock of the latest message (or of the assignment)
}

// NewClock returns the clock of a stream windowed by spec, owning no partition yet.
func NewClock(spec Spec) *Clock {
	idle := spec.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	size := int64(spec.Size)
	if spec.Rows > 0 {
		size = 0
	}
	return &Clock{
		size: size, lateness: int64(spec.Lateness), idle: int64(idle),
		watermark: math.MinInt64, closedTo: math.MinInt64, low: math.MinInt64,
	}
}

// Watermark is the current watermark in Unix nanoseconds (math.MinInt64 before any
// event).
func (c *Clock) Watermark() int64 { return c.watermark }

// ClosedTo is where windows have closed up to: every event-time window that starts
// before it has closed, and its events are late. math.MinInt64 before any.
func (c *Clock) ClosedTo() int64 { return c.closedTo }

func (c *Clock) part(p int32) *partTime {
	if int(p) >= len(c.parts) {
		c.parts = append(c.parts, make([]partTime, int(p)+1-len(c.parts))...)
	}
	return &c.parts[p]
}

// Assign makes partitions the ones the stream owns, from now on: a partition it did
// not own starts with no event time (holding the watermark back until its first message
// or until it has been idle), one it keeps keeps its time, and the others stop counting.
// It reports whether windows may close (ClosedTo moved).
func (c *Clock) Assign(partitions []int32, now time.Time) bool {
	c.now = now.UnixNano()
	keep := make(map[int32]bool, len(partitions))
	for _, p := range partitions {
		keep[p] = true
	}
	for i := range c.parts {
		if !keep[int32(i)] {
			c.parts[i] = partTime{}
		}
	}
	for _, p := range partitions {
		pt := c.part(p)
		if !pt.owned {
			*pt = partTime{owned: true, newest: math.MinInt64}
		}
		pt.seen, pt.idle = c.now, false
	}
	return c.recompute()
}

// Idle reports whether the clock owns partitions and every one of them is idle.
func (c *Clock) Idle() bool {
	owned := false
	for _, pt := range c.parts {
		if pt.owned && !pt.idle {
			return false
		}
		owned = owned || pt.owned
	}
	return owned
}

// Owned returns the partitions the clock counts, ascending, with their newest event
// times.
func (c *Clock) Owned() []PartitionTime {
	var out []PartitionTime
	for i, pt := range c.parts {
		if pt.owned {
			out = append(out, PartitionTime{Partition: int32(i), Newest: pt.newest})
		}
	}
	return out
}

// Tick sets the wall clock for the events that follow and lets partitions that have
// been silent for longer than Spec.Idle stop holding the watermark back. It reports
// whether windows may close.
func (c *Clock) Tick(now time.Time) bool {
	c.now = now.UnixNano()
	changed := false
	for i := range c.parts {
		pt := &c.parts[i]
		if idle := pt.owned && c.now-pt.seen > c.idle; pt.owned && idle != pt.idle {
			pt.idle, changed = idle, true
		}
	}
	return changed && c.recompute()
}

// Observe records an event at time t (Unix ns) from partition p, which the stream
// owns from now on if it did not. It reports whether windows may close (ClosedTo moved).
func (c *Clock) Observe(p int32, t int64) bool {
	pt := c.part(p)
	changed := false
	if !pt.owned {
		*pt = partTime{owned: true, newest: math.MinInt64}
		changed = true
	}
	pt.seen = c.now
	if pt.idle {
		pt.idle, changed = false, true
	}
	if t > pt.newest {
		// Only the partition furthest behind moves the watermark.
		changed = changed || pt.newest <= c.low
		pt.newest = t
	}
	return changed && c.recompute()
}

// recompute derives the watermark and ClosedTo from the partitions and reports whether
// ClosedTo moved.
func (c *Clock) recompute() bool {
	low, any := int64(math.MaxInt64), false
	for _, pt := range c.parts {
		if pt.owned && !pt.idle {
			low, any = min(low, pt.newest), true
		}
	}
	if !any {
		// Every partition is idle: nothing says how far event time has got.
		c.low = math.MinInt64
		return false
	}
	c.low = low
	if low == math.MinInt64 {
		return false
	}
	wm := low - c.lateness
	if c.lateness > 0 && wm > low { // overflow
		wm = math.MinInt64
	}
	if wm <= c.watermark {
		return false
	}
	c.watermark = wm
	if c.size <= 0 {
		return false
	}
	if ct := StartOf(wm, c.size); ct > c.closedTo {
		c.closedTo = ct
		return true
	}
	return false
}

// PartitionTime is one partition's newest event time.
type PartitionTime struct {
	Partition int32
	// Newest is the newest event time seen, Unix ns; math.MinInt64 for none.
	Newest int64
}

// ClockState is what a checkpoint keeps of a Clock. The idle state is not kept: after a
// restore every partition has a fresh Spec.Idle before it counts as idle.
type ClockState struct {
	Watermark, ClosedTo int64
	Partitions          []PartitionTime
}

// State returns the clock's state for a checkpoint.
func (c *Clock) State() ClockState {
	return ClockState{Watermark: c.watermark, ClosedTo: c.closedTo, Partitions: c.Owned()}
}

// RestoreClock rebuilds a clock from a checkpointed state; now starts every
// partition's idle timer.
func RestoreClock(spec Spec, s ClockState, now time.Time) *Clock {
	c := NewClock(spec)
	c.watermark, c.closedTo, c.now = s.Watermark, s.ClosedTo, now.UnixNano()
	for _, p := range s.Partitions {
		pt := c.part(p.Partition)
		*pt = partTime{owned: true, newest: p.Newest, seen: c.now}
	}
	// The stored watermark already reflects these times: this only sets low.
	c.recompute()
	return c
}
