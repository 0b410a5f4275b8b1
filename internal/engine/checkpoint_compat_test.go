package engine

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/driftmon/driftmon/config"
)

// checkpointSample is a checkpoint written by the engine as it was before trailing and
// seasonal references (commit 9f2f0e6), after compatRows' first compatSplit rows:
// models a and b warmed up, model c still warming up, each with an open window. It
// stands for the checkpoints already in users' state files: do not regenerate it.
const (
	checkpointSample = "testdata/checkpoint-9f2f0e6.bin"
	compatSplit      = 800
	compatTotal      = 1600
)

// compatStream is the stream the sample was written for.
func compatStream(t testing.TB) *config.Stream {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: events
    event_time: ts
    model: model
    features: {x: {type: numeric}, n: {type: numeric}, c: {type: categorical}}
    window: {size: 1m}
    reference: {warmup_windows: 2, min_rows: 50}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Streams[0]
}

// compatRows is compatTotal seeded rows, one every 500 ms from 2026-11-25 10:00 UTC:
// models a and b alternating, and from row 600 on every third row is model c.
func compatRows() arrow.Record {
	return seededRecord(compatTotal, rand.NewPCG(7, 3), 500*time.Millisecond, func(i int) string {
		if i >= 600 && i%3 == 2 {
			return "c"
		}
		return string(rune('a' + i%2))
	})
}

// compatNow is the wall clock of the sample's engines: just after its last event, so
// that no event time counts as future.
var compatNow = func() time.Time { return time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC) }

// TestWriteCheckpointSample wrote checkpointSample with the code of commit 9f2f0e6. It
// runs only when DRIFTMON_WRITE_CHECKPOINT_SAMPLE names the file to write, to show how
// the sample was made; the committed sample must stay the old code's.
func TestWriteCheckpointSample(t *testing.T) {
	path := os.Getenv("DRIFTMON_WRITE_CHECKPOINT_SAMPLE")
	if path == "" {
		t.Skip("set DRIFTMON_WRITE_CHECKPOINT_SAMPLE to a file name to write a sample")
	}
	e, err := New(compatStream(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.now = compatNow
	rec := compatRows()
	defer rec.Release()
	head := rec.NewSlice(0, compatSplit)
	defer head.Release()
	e.Process(head)
	pos := NewPosition()
	pos.Next[0] = compatSplit
	pos.Events = compatSplit
	data, err := EncodeCheckpoint(e, pos)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Clean(path), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOldCheckpointDecodes: a checkpoint written before trailing and seasonal
// references existed still restores, and the engine goes on to judge the rest of the
// input exactly as an engine that never stopped.
func TestOldCheckpointDecodes(t *testing.T) {
	data, err := os.ReadFile(checkpointSample)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := New(compatStream(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	restored.now = compatNow
	cp, err := DecodeCheckpoint(data, restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Models() != 3 || cp.OpenWindows() == 0 || cp.Pos.Next[0] != compatSplit || cp.Pos.Events != compatSplit {
		t.Fatalf("decoded %d models, %d open windows, position %v / %d events", cp.Models(), cp.OpenWindows(), cp.Pos.Next, cp.Pos.Events)
	}
	kinds := map[string]byte{}
	for _, m := range cp.models {
		kinds[m.key.model] = m.refKind
	}
	if kinds["a"] != refWarmedUp || kinds["b"] != refWarmedUp || kinds["c"] != refWarmingUp {
		t.Fatalf("reference kinds %v: want a and b warmed up (%d), c warming up (%d)", kinds, refWarmedUp, refWarmingUp)
	}
	restored.Restore(cp, true)

	uninterrupted, err := New(compatStream(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	uninterrupted.now = compatNow
	rec := compatRows()
	defer rec.Release()
	head, tail := rec.NewSlice(0, compatSplit), rec.NewSlice(compatSplit, compatTotal)
	defer head.Release()
	defer tail.Release()
	uninterrupted.Process(head)

	want := append(uninterrupted.Process(tail), uninterrupted.Flush()...)
	got := append(restored.Process(tail), restored.Flush()...)
	if len(got) != len(want) || len(want) < 10 {
		t.Fatalf("%d results after the restore, %d without one", len(got), len(want))
	}
	judged := 0
	for i := range want {
		g, w := got[i], want[i]
		if g.Model != w.Model || !g.Start.Equal(w.Start) || g.Rows != w.Rows || g.Warmup != w.Warmup ||
			g.Reference != w.Reference || !slices.Equal(g.Drifted(), w.Drifted()) {
			t.Errorf("window %d: restored %s %v %d rows warm-up %v %q %v, uninterrupted %s %v %d rows warm-up %v %q %v", i,
				g.Model, g.Start, g.Rows, g.Warmup, g.Reference, g.Drifted(), w.Model, w.Start, w.Rows, w.Warmup, w.Reference, w.Drifted())
		}
		if !w.Warmup {
			judged++
		}
	}
	if judged == 0 {
		t.Error("no window after the restore was judged against a reference")
	}
}
