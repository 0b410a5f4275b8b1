package engine

// Trailing and seasonal references (config.Trailing, config.Seasonal): a window is
// compared with a merge of the model's earlier windows instead of a fixed profile.
//
// Each model keeps a bounded history of its judged windows: at most trailing.windows
// of them, or cycles per phase of a seasonal period (period / window.size × cycles).
// Windows that drifted or failed a data-quality check are left out when skip_drifting
// (the default), so that a drift is not absorbed as it happens; the history then stays
// the last windows that did neither, however old. The history holds each window's
// profile encoded (sketch.Profile.MarshalBinary), which is what a checkpoint stores
// anyway and a fraction of a live profile's heap (bench/README.md, "Trailing and
// seasonal references"); the reference of a window is decoded and merged, oldest
// first, when the window closes, and dropped after it is judged.
//
// What a window is judged against before enough history is in:
//   - A model's first event-time window is never judged nor kept: traffic almost always
//     starts within it (engine.warmUp says why).
//   - Trailing: from the model's next window on, against the windows kept so far, once
//     they hold reference.min_rows rows; before that the window is a warm-up window
//     that only joins the history ("trailing: building the reference").
//   - Seasonal: against the windows at the same phase of the period, once one is in
//     and they hold reference.min_rows rows. Until then (the first period, mostly),
//     with fallback_windows N, against the last N windows kept, of any phase; with 0
//     (the default), the window is not judged, only kept, and its Reference says so.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/sketch"
)

// rolling is a stream's trailing or seasonal reference rule. Exactly one of trailing
// and period is set.
type rolling struct {
	// trailing is how many windows a trailing reference merges.
	trailing int
	// period and size (ns) are a seasonal reference's period and window size, cycles
	// how many windows of each phase it merges, fallback how many recent windows a
	// window of a phase without any is judged against (0: none).
	period, size int64
	cycles       int
	fallback     int
	// skip leaves windows that drifted or failed a quality check out of the history.
	skip bool
}

// newRolling is the stream's rolling reference rule, nil when it has none.
func newRolling(r config.Reference, size time.Duration) *rolling {
	switch {
	case r.Trailing != nil:
		return &rolling{trailing: r.Trailing.Windows, skip: r.Trailing.SkipDrifting == nil || *r.Trailing.SkipDrifting}
	case r.Seasonal != nil:
		z := r.Seasonal
		return &rolling{period: int64(z.Period), size: int64(size), cycles: z.Cycles, fallback: z.FallbackWindows,
			skip: z.SkipDrifting == nil || *z.SkipDrifting}
	}
	return nil
}

// phase is the index of the window starting at start (Unix ns) within the period.
func (r *rolling) phase(start int64) int64 {
	return (start%r.period + r.period) % r.period / r.size
}

// history is one model's kept windows, oldest first.
type history struct {
	windows []pastWindow
	// leftOut counts the windows left out since the newest kept one (drifting).
	leftOut int
}

// pastWindow is a kept window: its bounds, its encoded profile and that encoding's
// SHA-256 (its key in the state, KeptWindow), and how many windows were left out
// between the kept window before it and it.
type pastWindow struct {
	start, end int64 // Unix ns
	leftOut    int
	data       []byte
	digest     [sha256.Size]byte
}

// KeptWindow is a kept window's encoded profile under its key, the hex SHA-256 of the
// encoding. A checkpoint names kept windows by key (EncodeCheckpoint); their bytes are
// stored beside it, once: a window is kept for days but written when it is kept, not
// with every checkpoint, and a checkpoint stays small whatever the history holds.
type KeptWindow struct {
	Key  string
	Data []byte
}

// Kept returns the windows every model keeps for its trailing or seasonal reference:
// what the state must hold beside e's checkpoint for it to decode.
func (e *Engine) Kept() []KeptWindow {
	var out []KeptWindow
	for _, m := range e.order {
		if m.history == nil {
			continue
		}
		for _, w := range m.history.windows {
			out = append(out, KeptWindow{Key: hex.EncodeToString(w.digest[:]), Data: w.data})
		}
	}
	return out
}

// keep adds a judged window's profile to the history and drops what the rule no
// longer needs: the oldest window beyond trailing.windows, or the oldest window of the
// same phase beyond cycles.
func (h *history) keep(r *rolling, w *window.Window) {
	data, err := w.Profile.MarshalBinary()
	if err != nil {
		panic("BUG: a window's profile does not encode: " + err.Error())
	}
	h.windows = append(h.windows, pastWindow{start: w.Start.UnixNano(), end: w.End.UnixNano(), leftOut: h.leftOut,
		data: data, digest: sha256.Sum256(data)})
	h.leftOut = 0
	h.trim(r)
}

// trim drops the oldest windows beyond what r keeps (after keep, or when a restart
// brings a history kept under other settings).
func (h *history) trim(r *rolling) {
	out := h.windows[:0]
	if r.trailing > 0 {
		out = append(out, h.windows[max(0, len(h.windows)-r.trailing):]...)
	} else {
		// The newest cycles windows of each phase, in order.
		kept := make([]bool, len(h.windows))
		perPhase := map[int64]int{}
		for i := len(h.windows) - 1; i >= 0; i-- {
			if p := r.phase(h.windows[i].start); perPhase[p] < r.cycles {
				perPhase[p]++
				kept[i] = true
			}
		}
		for i, w := range h.windows {
			if kept[i] {
				out = append(out, w)
			}
		}
	}
	clear(h.windows[len(out):]) // let the dropped encodings go
	h.windows = out
}

// selection is the windows a reference merges and how to describe them.
type selection struct {
	windows []pastWindow
	// describe names the reference given its rows ("last 12 windows: 60,000 rows").
	describe func(rows int64) string
	// waiting says why there is no reference yet, when windows is empty.
	waiting string
	// fallback marks a seasonal reference's fallback: the window is judged against
	// other phases, so its verdict does not keep it out of the history.
	fallback bool
}

// selectFor picks the windows the reference of the window starting at start merges.
func (h *history) selectFor(r *rolling, start int64) selection {
	if r.trailing > 0 {
		return h.trailingSelection(r.trailing, "")
	}
	var same []pastWindow
	for _, w := range h.windows {
		if r.phase(w.start) == r.phase(start) {
			same = append(same, w)
		}
	}
	phase := r.phaseName()
	if len(same) == 0 {
		if r.fallback > 0 && len(h.windows) > 0 {
			s := h.trailingSelection(r.fallback, fmt.Sprintf("no earlier window at the %s yet; ", phase))
			s.fallback = true
			return s
		}
		return selection{waiting: fmt.Sprintf("seasonal: no earlier window at the %s yet: this one starts its reference", phase)}
	}
	// Cycles between the oldest window and this one; the kept windows are fewer when
	// some were left out (drifting) or had no traffic.
	span := int((start - same[0].start + r.period - 1) / r.period)
	return selection{windows: same, describe: func(rows int64) string {
		n := len(same)
		switch {
		case n < span:
			return fmt.Sprintf("%s, %d of the last %s: %s rows", phase, n, r.cyclesName(span), alerting.FormatCount(rows))
		case n < r.cycles:
			return fmt.Sprintf("%s, last %s (of %d): %s rows", phase, r.cyclesName(n), r.cycles, alerting.FormatCount(rows))
		}
		return fmt.Sprintf("%s, last %s: %s rows", phase, r.cyclesName(n), alerting.FormatCount(rows))
	}}
}

// trailingSelection is the last n kept windows, described after prefix.
func (h *history) trailingSelection(n int, prefix string) selection {
	if len(h.windows) == 0 {
		return selection{waiting: fmt.Sprintf("trailing: building the reference, 0 of %d windows in", n)}
	}
	ws := h.windows[max(0, len(h.windows)-n):]
	left := h.leftOut
	for _, w := range ws[1:] {
		left += w.leftOut
	}
	return selection{windows: ws, describe: func(rows int64) string {
		s := prefix + fmt.Sprintf("last %d windows", len(ws))
		if len(ws) < n {
			s = prefix + fmt.Sprintf("last %d of %d windows", len(ws), n)
		}
		if len(ws) == 1 {
			s = prefix + "last window"
		}
		if left > 0 {
			s += fmt.Sprintf(" (%d drifting left out)", left)
		}
		return s + ": " + alerting.FormatCount(rows) + " rows"
	}}
}

// phaseName is what one phase of the period is called: "same hour of day".
func (r *rolling) phaseName() string {
	unit := "time"
	if r.size == int64(time.Hour) {
		unit = "hour"
	}
	switch time.Duration(r.period) {
	case 24 * time.Hour:
		return "same " + unit + " of day"
	case 7 * 24 * time.Hour:
		return "same " + unit + " of week"
	}
	period := time.Duration(r.period).String()
	if r.period%int64(time.Hour) == 0 {
		period = fmt.Sprintf("%dh", r.period/int64(time.Hour))
	}
	return fmt.Sprintf("same %s of each %s", unit, period)
}

// cyclesName is n periods: "7 days", "1 week", "3 cycles".
func (r *rolling) cyclesName(n int) string {
	unit := "cycle"
	switch time.Duration(r.period) {
	case 24 * time.Hour:
		unit = "day"
	case 7 * 24 * time.Hour:
		unit = "week"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// merge decodes and merges the selected windows, oldest first, into a new profile.
func (s selection) merge(e *Engine) *sketch.Profile {
	var ref *sketch.Profile
	for _, w := range s.windows {
		p, err := e.decodeProfile(w.data)
		if err != nil {
			panic("BUG: a kept window's profile does not decode: " + err.Error())
		}
		if ref == nil {
			ref = p
		} else if err := ref.Merge(p); err != nil {
			panic("BUG: profiles of one stream have different fields: " + err.Error())
		}
	}
	return ref
}

// closeRolling judges a closed window against its trailing or seasonal reference and
// keeps it in the model's history (engine.close).
func (e *Engine) closeRolling(m *model, w *window.Window, r *Result) {
	if m.warmupLeft > 0 {
		// The model's first event-time window: see the package comment above.
		m.warmupLeft--
		r.Warmup = true
		r.Reference, r.firstWindow = firstWindowNote, true
		return
	}
	sel := m.history.selectFor(e.refs.rolling, w.Start.UnixNano())
	var ref *sketch.Profile
	if len(sel.windows) > 0 {
		ref = sel.merge(e)
	}
	switch {
	case ref == nil:
		r.Warmup, r.Reference = true, sel.waiting
	case ref.Rows < e.detOpts.MinReferenceRows:
		r.Warmup = true
		r.Reference = fmt.Sprintf("%s; fewer than the %s rows a reference needs (reference.min_rows)",
			sel.describe(ref.Rows), alerting.FormatCount(e.detOpts.MinReferenceRows))
	default:
		// The volume check expects the rows of an average window of the reference:
		// with a seasonal one, of the same hour on other days.
		e.judge(r, ref, sel.describe(ref.Rows), float64(ref.Rows)/float64(len(sel.windows)))
	}
	// A window judged against the fallback is kept whatever its verdict: other
	// phases of a rhythm can look like drift, and leaving it out would keep its
	// phase without a reference of its own for good (measured: 236 of 334 windows of
	// the seasonal null stream drifted so).
	if e.refs.rolling.skip && !sel.fallback && (len(r.Drifted()) > 0 || len(r.Violations()) > 0) {
		m.history.leftOut++
		return
	}
	m.history.keep(e.refs.rolling, w)
}

// held is the encoding h holds of the kept window with digest, for DecodeCheckpoint
// to reuse a history entry already checked instead of decoding it again; nil when h
// holds none.
func (h *history) held(digest [sha256.Size]byte) []byte {
	if h == nil {
		return nil
	}
	for _, w := range h.windows {
		if w.digest == digest {
			return w.data
		}
	}
	return nil
}
