package engine

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/sketch"
)

// sameVerdicts reports every window whose reference, verdicts or rows differ between
// two runs of the same input.
func sameVerdicts(t *testing.T, got, want []Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || g.Rows != w.Rows || g.Warmup != w.Warmup || g.Reference != w.Reference ||
			!slices.Equal(g.Drifted(), w.Drifted()) || !slices.Equal(g.Violations(), w.Violations()) {
			t.Errorf("window %v: got %d rows, warm-up %v, %q, drifted %v; want %d rows, warm-up %v, %q, drifted %v",
				w.Start, g.Rows, g.Warmup, g.Reference, g.Drifted(), w.Rows, w.Warmup, w.Reference, w.Drifted())
		}
	}
}

// reload does what the monitor does after each checkpoint: the engine goes on from
// exactly what a restart would load (internal/monitor's saveCheckpoint).
func reload(t *testing.T, e *Engine) {
	t.Helper()
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := DecodeCheckpoint(data, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Restore(cp, false)
}

// bytes is what the history holds in profile encodings.
func (h *history) bytes() int {
	n := 0
	for _, w := range h.windows {
		n += len(w.data)
	}
	return n
}

// keptOf looks kept windows up among those e keeps, as the state file would.
func keptOf(e *Engine) KeptLookup {
	m := map[string][]byte{}
	for _, k := range e.Kept() {
		m[k.Key] = k.Data
	}
	return func(key string) []byte { return m[key] }
}

// restart is a new engine for sc restored from e's checkpoint, as after kill -9.
func restart(t *testing.T, e *Engine) *Engine {
	t.Helper()
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.now = e.now
	cp, err := DecodeCheckpoint(data, n, keptOf(e))
	if err != nil {
		t.Fatal(err)
	}
	n.Restore(cp, true)
	return n
}

// TestRollingReferenceSurvivesRestart: the history is in the checkpoint, so an engine
// restarted from it (and one reloaded after every checkpoint, as the monitor does)
// judges every later window as the engine that never stopped: same references, same
// verdicts, drifting windows still left out.
func TestRollingReferenceSurvivesRestart(t *testing.T) {
	for _, ref := range []string{"{seasonal: {period: 24h, cycles: 3}}", "{trailing: {windows: 12}}"} {
		t.Run(ref, func(t *testing.T) {
			tr := traffic{seed: 4, hours: 5 * 24, daily: 0.35, shift: 1.3, shiftAt: 3*24 + 10}
			sc := rhythmStream(t, ref)
			want := tr.run(t, sc, nil)
			restarts := 0
			got := tr.run(t, sc, func(h int, e *Engine) *Engine {
				reload(t, e)
				if h%37 == 36 {
					restarts++
					return restart(t, e)
				}
				return e
			})
			sameVerdicts(t, got, want)
			c := count(want, hour(tr.shiftAt), hour(tr.hours))
			if restarts < 3 || c.drifting == 0 {
				t.Errorf("%d restarts, %d drifting windows after the shift: the test does not test", restarts, c.drifting)
			}
		})
	}
}

// TestCheckpointReusesHistory: the monitor decodes each checkpoint it writes; the kept
// windows it holds already are not decoded and copied again.
func TestCheckpointReusesHistory(t *testing.T) {
	tr := traffic{seed: 5, hours: 30, daily: 0.35}
	var e *Engine
	tr.run(t, rhythmStream(t, "{seasonal: {period: 24h, cycles: 7}}"), func(_ int, last *Engine) *Engine { e = last; return last })
	m := e.order[0]
	before := slices.Clone(m.history.windows)
	if len(before) < 24 {
		t.Fatalf("%d windows kept", len(before))
	}
	reload(t, e)
	after := e.order[0].history.windows
	if len(after) != len(before) {
		t.Fatalf("%d windows kept after the reload, %d before", len(after), len(before))
	}
	for i := range before {
		if unsafe.SliceData(after[i].data) != unsafe.SliceData(before[i].data) {
			t.Fatalf("kept window %d was decoded again", i)
		}
	}
	// A new engine has nothing to reuse: it decodes, and keeps copies, not slices of
	// the checkpoint.
	n := restart(t, e)
	if unsafe.SliceData(n.order[0].history.windows[0].data) == unsafe.SliceData(before[0].data) {
		t.Fatal("a restarted engine shares the old one's bytes")
	}
}

// TestLeaderJudgesLikeOneProcess: a cluster's leader judges windows merged from the
// partitions' partial profiles with Evaluate; with a seasonal reference it judges them
// as one process does, and a leader that takes over from the last one's checkpoint
// goes on the same.
func TestLeaderJudgesLikeOneProcess(t *testing.T) {
	tr := traffic{seed: 6, hours: 5 * 24, daily: 0.35, shift: 1.3, shiftAt: 4*24 + 3}
	sc := rhythmStream(t, "{seasonal: {period: 24h, cycles: 3}}")
	want := tr.run(t, sc, nil)

	leader, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := leader.ForPartition()
	var got []Result
	judge := func(partials []Result) {
		for _, p := range partials {
			w := &window.Window{Start: p.Start, End: p.End, Profile: p.Profile}
			got = append(got, leader.Evaluate(p.Model, p.ModelVersion, w))
		}
	}
	for h, rec := range tr.records() {
		judge(worker.Process(rec))
		if h == 3*24+7 {
			leader = restart(t, leader) // failover: the next leader reads the state
		}
	}
	judge(worker.Flush())
	sameVerdicts(t, got, want)
}

// TestHistoryBounds: a trailing history keeps its last N windows, a seasonal one the
// last cycles windows of each phase; a restart under smaller settings trims it.
func TestHistoryBounds(t *testing.T) {
	tr := traffic{seed: 7, hours: 36}
	var e *Engine
	keep := func(_ int, last *Engine) *Engine { e = last; return last }

	tr.run(t, rhythmStream(t, "{trailing: {windows: 12}}"), keep)
	if h := e.order[0].history; len(h.windows) != 12 || h.windows[11].start != hour(tr.hours-1).UnixNano() {
		t.Errorf("trailing: %d windows kept, newest %v", len(h.windows), time.Unix(0, h.windows[len(h.windows)-1].start).UTC())
	}

	tr.run(t, rhythmStream(t, "{seasonal: {period: 6h, cycles: 2}}"), keep)
	h := e.order[0].history
	if len(h.windows) != 12 {
		t.Errorf("seasonal 6h × 2: %d windows kept, want 12", len(h.windows))
	}
	for i, w := range h.windows {
		// Flush closed the last window, so the newest 12 hours are kept.
		if want := hour(tr.hours - 12 + i).UnixNano(); w.start != want {
			t.Errorf("kept window %d starts %v, want %v", i, time.Unix(0, w.start).UTC(), time.Unix(0, want).UTC())
		}
	}
	want := hour(tr.hours - 6).UnixNano()
	e.cfg = rhythmStream(t, "{seasonal: {period: 6h, cycles: 1}}")
	e.refs.rolling = newRolling(e.cfg.Reference, e.window.Size)
	reload(t, e)
	if h := e.order[0].history; len(h.windows) != 6 || h.windows[0].start != want {
		t.Errorf("after cycles 2 → 1: %d windows kept", len(h.windows))
	}
}

// TestSeasonalDescribesGaps: a phase whose windows were left out says how many of the
// cycles its reference holds, and a week's phase is "of week".
func TestSeasonalDescribesGaps(t *testing.T) {
	r := &rolling{period: int64(24 * time.Hour), size: int64(time.Hour), cycles: 7}
	h := &history{}
	for _, day := range []int{1, 2, 5} {
		h.windows = append(h.windows, pastWindow{start: hour(day*24 + 3).UnixNano()})
	}
	s := h.selectFor(r, hour(6*24+3).UnixNano())
	if got := s.describe(300); got != "same hour of day, 3 of the last 5 days: 300 rows" {
		t.Errorf("gaps: %q", got)
	}
	week := &rolling{period: int64(7 * 24 * time.Hour), size: int64(30 * time.Minute), cycles: 4}
	h = &history{windows: []pastWindow{{start: hour(3).UnixNano()}}}
	if got := h.selectFor(week, hour(7*24+3).UnixNano()).describe(10); got != "same time of week, last 1 week (of 4): 10 rows" {
		t.Errorf("week: %q", got)
	}
	twelve := &rolling{period: int64(12 * time.Hour), size: int64(time.Hour), cycles: 2, fallback: 2}
	h = &history{windows: []pastWindow{{start: hour(1).UnixNano()}, {start: hour(2).UnixNano(), leftOut: 1}}}
	s = h.selectFor(twelve, hour(3).UnixNano())
	if got := s.describe(10); !s.fallback || !strings.HasPrefix(got, "no earlier window at the same hour of each 12h yet; last 2 windows (1 drifting left out)") {
		t.Errorf("fallback: %q", got)
	}
}

// heapAlloc is the Go heap in use after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// historyOf runs the rhythm stream (daily: its rhythm) for hours with reference ref
// and returns the engine.
func historyOf(t testing.TB, ref string, hours int, daily float64) *Engine {
	var e *Engine
	traffic{seed: 9, hours: hours, daily: daily}.run(t, rhythmStream(t, ref), func(_ int, last *Engine) *Engine { e = last; return last })
	return e
}

// heapOf is the Go heap that what make allocates holds: the largest of three tries,
// as garbage of earlier work collected during a try can only make it look smaller.
func heapOf(make func() any) int64 {
	most := int64(0)
	for range 3 {
		before := heapAlloc()
		v := make()
		most = max(most, heapAlloc()-before)
		runtime.KeepAlive(v)
	}
	return most
}

// TestHistoryMemory measures what a model's history holds once full: its windows'
// encoded profiles (what it keeps), their Go heap, and the heap the same windows
// would take decoded, for the 4-feature stream of the measured tests (3 numeric, one
// of them small integers, and a 5-category feature; 2,400 rows an hour on average).
// The bounds are regression guards, about 1.5× what was measured.
func TestHistoryMemory(t *testing.T) {
	t.Logf("| reference | windows kept | encoded bytes per model | their heap | heap if kept decoded | checkpoint bytes |")
	t.Logf("|---|---:|---:|---:|---:|---:|")
	for _, tt := range []struct {
		ref      string
		hours    int
		daily    float64
		windows  int
		maxBytes int
	}{
		{"{trailing: {windows: 24}}", 30, 0, 24, 24 * 14 << 10},
		{"{seasonal: {period: 24h, cycles: 7}}", 8 * 24, 0.35, 168, 168 * 14 << 10},
	} {
		e := historyOf(t, tt.ref, tt.hours, tt.daily)
		kept := e.order[0].history.windows
		encoded := e.order[0].history.bytes()
		data, err := EncodeCheckpoint(e, NewPosition())
		if err != nil {
			t.Fatal(err)
		}
		heap := heapOf(func() any {
			c := make([]pastWindow, len(kept))
			for i, w := range kept {
				c[i] = w
				c[i].data = bytes.Clone(w.data)
			}
			return c
		})
		decoded := heapOf(func() any {
			ps := make([]*sketch.Profile, len(kept))
			for i, w := range kept {
				ps[i], _ = e.decodeProfile(w.data)
			}
			return ps
		})
		t.Logf("| `%s` | %d | %d | %d | %d | %d |", tt.ref, len(kept), encoded, heap, decoded, len(data))
		if len(kept) != tt.windows || encoded > tt.maxBytes || heap > int64(tt.maxBytes) {
			t.Errorf("%s: %d windows, %d encoded bytes, %d heap bytes; want %d windows, at most %d bytes", tt.ref, len(kept), encoded, heap, tt.windows, tt.maxBytes)
		}
	}
}

// BenchmarkRollingReference is the work a window's close adds for its reference:
// decode and merge the kept windows it needs.
func BenchmarkRollingReference(b *testing.B) {
	for _, tt := range []struct {
		name, ref string
		hours     int
	}{
		{"seasonal-24hx7", "{seasonal: {period: 24h, cycles: 7}}", 8 * 24},
		{"trailing-24", "{trailing: {windows: 24}}", 30},
		{"trailing-168", "{trailing: {windows: 168}}", 170},
	} {
		e := historyOf(b, tt.ref, tt.hours, 0)
		m := e.order[0]
		next := hour(tt.hours).UnixNano()
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.history.selectFor(e.refs.rolling, next).merge(e)
			}
		})
	}
}

// BenchmarkCheckpointHistory is a checkpoint of one model with 168 kept windows:
// written and read back by the engine that holds them (what the monitor does after
// every checkpoint), and read by a new engine (a restart).
func BenchmarkCheckpointHistory(b *testing.B) {
	e := historyOf(b, "{seasonal: {period: 24h, cycles: 7}}", 8*24, 0.35)
	b.Run("reload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := EncodeCheckpoint(e, NewPosition())
			if err != nil {
				b.Fatal(err)
			}
			cp, err := DecodeCheckpoint(data, e, nil)
			if err != nil {
				b.Fatal(err)
			}
			e.Restore(cp, false)
		}
	})
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		b.Fatal(err)
	}
	kept := keptOf(e)
	b.Run("restart", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, _ := New(e.cfg, nil)
			if _, err := DecodeCheckpoint(data, n, kept); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTrailingCountWindows: count windows without event times all start at the same
// instant; a trailing reference of them still checkpoints, restores and judges.
func TestTrailingCountWindows(t *testing.T) {
	sc := &config.Stream{Name: "s", Features: map[string]config.Field{"x": {Type: "numeric"}}, Window: config.Window{Rows: 500},
		Reference: config.Reference{Trailing: &config.Trailing{Windows: 3}, MinRows: 500}}
	e, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(10, 1))
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	var refs []string
	for i := range 8 {
		for range 500 {
			b.Append(r.NormFloat64())
		}
		col := b.NewArray()
		rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil), []arrow.Array{col}, 500)
		for _, res := range e.Process(rec) {
			refs = append(refs, res.Reference)
			if len(res.Drifted()) > 0 {
				t.Errorf("window %d drifted", i)
			}
		}
		rec.Release()
		col.Release()
		reload(t, e)
		if i == 4 {
			e = restart(t, e)
		}
	}
	want := []string{"trailing: building the reference, 0 of 3 windows in", "last window: 500 rows", "last 2 of 3 windows: 1,000 rows",
		"last 3 windows: 1,500 rows", "last 3 windows: 1,500 rows", "last 3 windows: 1,500 rows", "last 3 windows: 1,500 rows", "last 3 windows: 1,500 rows"}
	if !slices.Equal(refs, want) {
		t.Errorf("references:\n%q\nwant\n%q", refs, want)
	}
}

// TestCheckpointNamesKeptWindows: a checkpoint names kept windows by their digest, so it
// stays small however many a reference keeps (the monitor writes one every few
// seconds, and a cluster's leader replicates each to Kafka); it decodes only with the
// kept windows' bytes, which must be the ones named.
func TestCheckpointNamesKeptWindows(t *testing.T) {
	e := historyOf(t, "{seasonal: {period: 24h, cycles: 7}}", 4*24, 0)
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}
	kept := e.Kept()
	held := 0
	for _, k := range kept {
		held += len(k.Data)
	}
	// 32 bytes of digest and a few of bounds a window, against ~9 KB of profile.
	if len(kept) < 48 || len(data) > 64*len(kept)+64<<10 {
		t.Fatalf("checkpoint of %d bytes for %d kept windows (%d bytes of profiles)", len(data), len(kept), held)
	}
	t.Logf("checkpoint %d bytes, %d kept windows of %d bytes beside it", len(data), len(kept), held)

	fresh := func() *Engine {
		n, err := New(e.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := DecodeCheckpoint(data, fresh(), nil); err == nil || !strings.Contains(err.Error(), "missing from the state, or damaged") {
		t.Fatalf("decoded without its kept windows: %v", err)
	}
	damaged := keptOf(e)
	if _, err := DecodeCheckpoint(data, fresh(), func(key string) []byte {
		b := bytes.Clone(damaged(key))
		b[len(b)/2] ^= 1
		return b
	}); err == nil || !strings.Contains(err.Error(), "missing from the state, or damaged") {
		t.Fatalf("decoded with a damaged kept window: %v", err)
	}
	n := fresh()
	cp, err := DecodeCheckpoint(data, n, keptOf(e))
	if err != nil {
		t.Fatal(err)
	}
	n.Restore(cp, true)
	if got := n.Kept(); !slices.EqualFunc(got, kept, func(a, b KeptWindow) bool { return a.Key == b.Key && bytes.Equal(a.Data, b.Data) }) {
		t.Fatalf("restored %d kept windows, want the %d written", len(got), len(kept))
	}
}

// TestCheckpointWithoutHistoryIsVersion1: a stream without a trailing or seasonal
// reference writes the layout builds before them read, so that the processes of a
// cluster can be upgraded one at a time.
func TestCheckpointWithoutHistoryIsVersion1(t *testing.T) {
	e := historyOf(t, "{warmup_windows: 2}", 6, 0)
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}
	if v := data[len(checkpointMagic)]; v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
	if _, err := DecodeCheckpoint(data, e, nil); err != nil {
		t.Fatal(err)
	}
}
