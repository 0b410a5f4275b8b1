package monitor

import (
	"cmp"
	"sync/atomic"
	"time"

	"github.com/driftmon/driftmon/config"
)

// sight tells whether a stream can see: whether the events it reads reach windows that
// close and are judged. A stream that reads but cannot judge — every event late behind a
// wrong clock, most of them refused, or no window closing at all — is blind, and says so
// with an alert of its own (alerting.KindBlind) instead of going quiet. It is owned by the
// stream's goroutine, except blind, which Stats reads.
type sight struct {
	share float64       // limits.blind_share
	stall time.Duration // limits.blind_windows window lengths; 0 for count windows
	// total and bad are the stream's messages read and those late or refused, when
	// windows last closed; since is when that was (or the stream started, or a stall
	// was last observed).
	total, bad int64
	since      time.Time
	blind      atomic.Bool
	now        func() time.Time // the wall clock; tests replace it
}

// minBlindEvents is how many events must have arrived since the last close before
// their share may call the stream blind.
const minBlindEvents = 100

func newSight(sc *config.Stream) *sight {
	g := &sight{share: cmp.Or(sc.Limits.BlindShare, config.DefaultBlindShare), since: time.Now(), now: time.Now}
	if sc.Window.Size > 0 {
		g.stall = time.Duration(cmp.Or(sc.Limits.BlindWindows, config.DefaultBlindWindows)) * sc.Window.Size
	}
	return g
}

// start notes the stream's counters at its start.
func (g *sight) start(total, bad int64) { g.total, g.bad, g.since = total, bad, g.now() }

// closed judges what arrived since windows last closed, now that some have: the stream
// is blind when more than the share of it came late or was refused.
func (g *sight) closed(total, bad int64) bool {
	dt, db := total-g.total, bad-g.bad
	blind := dt >= minBlindEvents && float64(db) > g.share*float64(dt)
	g.total, g.bad, g.since = total, bad, g.now()
	g.blind.Store(blind)
	return blind
}

// stalled reports whether events were read but no window closed for the stall time;
// then it waits that long again before it reports the next.
func (g *sight) stalled(total int64) bool {
	if g.stall == 0 || total == g.total || g.now().Sub(g.since) < g.stall {
		return false
	}
	g.total, g.since = total, g.now()
	g.blind.Store(true)
	return true
}
