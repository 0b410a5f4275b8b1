package engine

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/sketch"
)

var handoverStart = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

// handoverStream is a stream of x by model and version in 1-minute windows, warming up
// over 3 windows, with extra YAML under its reference.
func handoverStream(t *testing.T, reference string) *config.Stream {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: events
    event_time: ts
    model: model
    model_version: version
    features: {x: {type: numeric}}
    window: {size: 1m}
    reference: {min_rows: 100`+reference+`}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Streams[0]
}

// versionRows is a record of n rows of model "m" version, one every 100 ms from
// minute on, x ~ N(mu, 1).
func versionRows(seed uint64, version string, minute, n int, mu float64) arrow.Record {
	r := rand.New(rand.NewPCG(seed, uint64(minute)))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ingest.ColEventTime, Type: arrow.PrimitiveTypes.Int64},
		{Name: ingest.ColModel, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ingest.ColModelVersion, Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	at := handoverStart.Add(time.Duration(minute) * time.Minute)
	for i := range n {
		b.Field(0).(*array.Float64Builder).Append(mu + r.NormFloat64())
		b.Field(1).(*array.Int64Builder).Append(at.Add(time.Duration(i) * 60 * time.Second / time.Duration(n)).UnixNano())
		b.Field(2).(*array.StringBuilder).Append("m")
		b.Field(3).(*array.StringBuilder).Append(version)
	}
	return b.NewRecord()
}

// trainingProfile is the bytes of a profile of n rows of x ~ N(mu, 1): what `driftmon
// baseline` writes for a version's training data.
func trainingProfile(t *testing.T, n int, mu float64) []byte {
	t.Helper()
	rec := versionRows(99, "train", 0, n, mu)
	defer rec.Release()
	p := sketch.NewProfile([]sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}, sketch.Options{})
	p.Update(rec, nil)
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// feedMinutes feeds minutes [from, to) of version, 600 rows each with x ~ N(mu, 1), and
// returns the results of the version's windows that closed.
func feedMinutes(e *Engine, version string, from, to int, mu float64) []Result {
	var out []Result
	for m := from; m < to; m++ {
		rec := versionRows(7, version, m, 600, mu)
		for _, r := range e.Process(rec) {
			if r.ModelVersion == version {
				out = append(out, r)
			}
		}
		rec.Release()
	}
	return out
}

func handOver(t *testing.T, e *Engine, version string, at time.Time, profile []byte) *Handover {
	t.Helper()
	h, err := NewHandover("m", version, ViaAPI, at, profile, e.Fields())
	if err != nil {
		t.Fatal(err)
	}
	e.HandOver(h)
	return h
}

// TestHandedOverReferenceReplacesWarmUp: a version whose warm-up is in progress is
// judged against the reference handed over for it from the next window on, and the
// result says which; another version goes on warming up and says that it has no
// reference of its own.
func TestHandedOverReferenceReplacesWarmUp(t *testing.T) {
	e, err := New(handoverStream(t, ", warmup_windows: 3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// v2's traffic sits 0.8σ from what v1 looked like: judged against v1's warm-up, or
	// a warm-up of its own, it would look like v1 — but its training data is N(0.8, 1).
	res := feedMinutes(e, "v2", 0, 3, 0.8) // minutes 0 and 1 close: first window, 1 of 3
	if len(res) != 2 || !res[1].Warmup || res[1].Reference != "warm-up: 1 of 3 windows" {
		t.Fatalf("before the handover: %d results, last %q warm-up %v", len(res), res[len(res)-1].Reference, res[len(res)-1].Warmup)
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	handOver(t, e, "v2", at, trainingProfile(t, 50000, 0.8))
	res = feedMinutes(e, "v2", 3, 5, 0.8)
	want := "handed over for v2 by PUT at 2026-12-05T10:00Z: 50,000 rows"
	for _, r := range res {
		if r.Warmup || r.Reference != want || r.ReferenceProfile == nil || r.ReferenceProfile.Rows != 50000 {
			t.Errorf("window %v: warm-up %v, reference %q; want judged against %q", r.Start, r.Warmup, r.Reference, want)
		}
		if len(r.Findings) == 0 || len(r.Drifted()) > 0 {
			t.Errorf("window %v against its own training data: findings %v, drifted %v", r.Start, len(r.Findings), r.Drifted())
		}
	}
	// The same traffic against a reference of the old version's data drifts: the
	// handed-over reference is what judged it.
	handOver(t, e, "v2", at.Add(time.Hour), trainingProfile(t, 50000, 0))
	if res := feedMinutes(e, "v2", 5, 7, 0.8); len(res) != 2 || len(res[1].Drifted()) != 1 {
		t.Errorf("against a reference 0.8σ away: %d results, drifted %v", len(res), res[len(res)-1].Drifted())
	}

	// Another version, without one, warms up and says so.
	res = feedMinutes(e, "v1", 7, 10, 0)
	if len(res) < 2 || res[1].Reference != "no reference handed over for v1: warm-up: 1 of 3 windows" {
		t.Errorf("v1 without a handed-over reference: %q", res[len(res)-1].Reference)
	}

	// Withdrawn: v2 falls back to a warm-up that starts with its next window. With no
	// reference handed over in the stream any more, results read as before.
	e.Withdraw("m", "v2")
	res = feedMinutes(e, "v2", 10, 12, 0.8)
	if len(res) < 1 || res[len(res)-1].Reference != "warm-up: 1 of 3 windows" {
		t.Errorf("after the withdrawal: %q", res[len(res)-1].Reference)
	}
}

// TestReferenceHandedOverBeforeTheVersionAppears: a version handed over before its
// traffic starts is judged from its first window, partial or not: the reference does
// not come from it.
func TestReferenceHandedOverBeforeTheVersionAppears(t *testing.T) {
	for _, ref := range []string{"", ", baseline: BASELINE", ", trailing: {windows: 3}", ", seasonal: {period: 24h, cycles: 2}"} {
		t.Run(ref, func(t *testing.T) {
			if strings.Contains(ref, "BASELINE") {
				path := filepath.Join(t.TempDir(), "base.profile")
				if err := os.WriteFile(path, trainingProfile(t, 5000, 3), 0o600); err != nil {
					t.Fatal(err)
				}
				ref = strings.Replace(ref, "BASELINE", strconv.Quote(path), 1)
			}
			e, err := New(handoverStream(t, ref), nil)
			if err != nil {
				t.Fatal(err)
			}
			handOver(t, e, "v2", handoverStart, trainingProfile(t, 20000, 0))
			res := feedMinutes(e, "v2", 0, 3, 0)
			if len(res) != 2 {
				t.Fatalf("%d results, want 2", len(res))
			}
			for _, r := range res {
				if r.Warmup || !strings.HasPrefix(r.Reference, "handed over for v2 by PUT") || len(r.Drifted()) > 0 {
					t.Errorf("window %v: warm-up %v, %q, drifted %v", r.Start, r.Warmup, r.Reference, r.Drifted())
				}
			}
			// Falls back to the stream's reference when withdrawn, and says so.
			e.Withdraw("m", "v2")
			res = feedMinutes(e, "v2", 3, 5, 0)
			if r := res[len(res)-1]; strings.HasPrefix(r.Reference, "handed over") || r.ReferenceProfile != nil && r.ReferenceProfile.Rows == 20000 {
				t.Errorf("withdrawn: %q", r.Reference)
			}
		})
	}
}

// TestHandedOverReferenceSurvivesRestart: a checkpoint says which versions were judged
// against a handed-over reference, and the reference comes from where the caller
// stores it (SyncHandovers): the restarted engine judges as the one that never stopped,
// and a reference withdrawn while it was down makes the version fall back.
func TestHandedOverReferenceSurvivesRestart(t *testing.T) {
	sc := handoverStream(t, ", warmup_windows: 2")
	e, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	feedMinutes(e, "v1", 0, 4, 0)
	feedMinutes(e, "v2", 0, 2, 0.8) // warm-up in progress
	h := handOver(t, e, "v2", handoverStart, trainingProfile(t, 30000, 0.8))
	stored := [][]byte{h.Encode()}
	feedMinutes(e, "v2", 2, 3, 0.8)
	reload(t, e) // as the monitor does after each checkpoint
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		t.Fatal(err)
	}
	if data[len(checkpointMagic)] != 4 {
		t.Errorf("checkpoint version %d, want 4", data[len(checkpointMagic)])
	}
	if len(data) > 8<<10 {
		t.Errorf("the checkpoint is %d bytes: it holds the 30,000-row reference, which is stored once beside it", len(data))
	}
	restartWith := func(records [][]byte) *Engine {
		t.Helper()
		n, err := New(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.SyncHandovers(records); err != nil {
			t.Fatal(err)
		}
		cp, err := DecodeCheckpoint(data, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.Restore(cp, true)
		return n
	}
	restarted := restartWith(stored)
	want := feedMinutes(e, "v2", 3, 6, 0.8)
	got := feedMinutes(restarted, "v2", 3, 6, 0.8)
	sameVerdicts(t, got, want)
	for _, r := range got {
		if !strings.HasPrefix(r.Reference, "handed over for v2 by PUT") {
			t.Errorf("after the restart: %q", r.Reference)
		}
	}
	// Withdrawn while the engine was down: v2 warms up again, from its next window.
	res := feedMinutes(restartWith(nil), "v2", 3, 5, 0.8)
	if r := res[len(res)-1]; r.Reference != "warm-up: 1 of 2 windows" {
		t.Errorf("withdrawn while down: %q", r.Reference)
	}
	// A checkpoint with a handed-over model claims version 4: an older layout
	// cannot hold one.
	bad := append([]byte(nil), data...)
	bad[len(checkpointMagic)] = 3
	if _, err := DecodeCheckpoint(bad, restarted, nil); err == nil {
		t.Error("a version-3 checkpoint with a handed-over model decoded")
	}
}

// TestSyncHandovers: the stored records are what the engine judges with; an unchanged
// record is not decoded again, a bad one is reported and the others applied.
func TestSyncHandovers(t *testing.T) {
	e, err := New(handoverStream(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := NewHandover("m", "v2", ViaAPI, handoverStart, trainingProfile(t, 2000, 0), e.Fields())
	if err != nil {
		t.Fatal(err)
	}
	v3, err := NewHandover("m", "v3", ViaAPI, handoverStart, trainingProfile(t, 3000, 0), e.Fields())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SyncHandovers([][]byte{v2.Encode(), v3.Encode()}); err != nil {
		t.Fatal(err)
	}
	held := e.HandedOver("m", "v2")
	if held == nil || e.HandedOver("m", "v3") == nil {
		t.Fatal("synced references not held")
	}
	err = e.SyncHandovers([][]byte{v2.Encode(), []byte("DMHO\x01garbage")})
	if err == nil {
		t.Error("a damaged record was not reported")
	}
	if e.HandedOver("m", "v2") != held {
		t.Error("an unchanged record was decoded again")
	}
	if e.HandedOver("m", "v3") != nil {
		t.Error("v3's record is gone, its reference is still held")
	}
}

// TestNewHandoverChecksTheProfile: bytes that are not a profile, and a profile of other
// fields, are refused with errors a caller can tell apart.
func TestNewHandoverChecksTheProfile(t *testing.T) {
	fields := []sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}
	if _, err := NewHandover("m", "v", ViaAPI, handoverStart, []byte("x,y\n1,2\n"), fields); !errors.Is(err, ErrNotProfile) {
		t.Errorf("CSV: %v", err)
	}
	other := sketch.NewProfile([]sketch.Field{{Name: "x", Kind: sketch.KindCategorical}, {Name: "y", Kind: sketch.KindNumeric}}, sketch.Options{})
	data, err := other.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewHandover("m", "v", ViaAPI, handoverStart, data, fields)
	if !errors.Is(err, ErrProfileFields) || !strings.Contains(err.Error(), "x is categorical in the profile, numeric in the stream") ||
		!strings.Contains(err.Error(), "features the stream does not monitor: y") {
		t.Errorf("other fields: %v", err)
	}
}

// TestPerVersionFiles: reference.per_version is read when a version first appears; a
// version without a file falls back and says so; a version that is not a safe file
// name reads no file; what was read is handed to the caller to store, once.
func TestPerVersionFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m", "v2.profile"), trainingProfile(t, 4000, 0.8), 0o600); err != nil {
		t.Fatal(err)
	}
	// A profile one directory up, which a version "../v2" must not reach.
	if err := os.WriteFile(filepath.Join(dir, "v2.profile"), trainingProfile(t, 4000, 0.8), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := New(handoverStream(t, ", warmup_windows: 1, per_version: "+strconv.Quote(filepath.Join(dir, "{model}", "{version}.profile"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := feedMinutes(e, "v2", 0, 3, 0.8)
	for _, r := range res {
		if !strings.HasPrefix(r.Reference, "handed over for v2 in "+filepath.Join(dir, "m", "v2.profile")+" at ") || len(r.Drifted()) > 0 {
			t.Errorf("v2: %q, drifted %v", r.Reference, r.Drifted())
		}
	}
	read := e.NewlyRead()
	if len(read) != 1 || read[0].Version != "v2" || read[0].Profile.Rows != 4000 {
		t.Fatalf("newly read: %v", read)
	}
	if again := e.NewlyRead(); len(again) != 0 {
		t.Errorf("read again: %v", again)
	}
	for i, version := range []string{"v3", "../v2"} {
		res = feedMinutes(e, version, 3+2*i, 5+2*i, 0)
		if r := res[len(res)-1]; r.Reference != "no reference handed over for "+version+": first window: traffic may have started within it; not part of the reference" {
			t.Errorf("%s: %q", version, r.Reference)
		}
	}
	if read := e.NewlyRead(); len(read) != 0 {
		t.Errorf("read for versions without a file: %v", read)
	}
	// The stored record brings v2's reference back in another engine.
	n, err := New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SyncHandovers([][]byte{read0(e, "v2")}); err != nil {
		t.Fatal(err)
	}
	if h := n.HandedOver("m", "v2"); h == nil || h.Via != filepath.Join(dir, "m", "v2.profile") {
		t.Errorf("restored: %+v", h)
	}
}

func read0(e *Engine, version string) []byte { return e.HandedOver("m", version).Encode() }

// FuzzDecodeHandover: whatever a state file or the cluster topic holds under a
// reference's key, decoding it returns an error or a handover of the stream's fields,
// never a panic, and a record that decodes is stored as it came.
func FuzzDecodeHandover(f *testing.F) {
	fields := []sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}
	p := sketch.NewProfile(fields, sketch.Options{})
	rec := versionRows(1, "v", 0, 200, 0)
	p.Update(rec, nil)
	rec.Release()
	data, err := p.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	h, err := NewHandover("m", "v2", ViaAPI, handoverStart, data, fields)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h.Encode())
	f.Add([]byte("DMHO\x01"))
	f.Add([]byte("DMHO\x01\x01m\x02v2\x03PUT\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHandover(b, fields)
		if err != nil {
			return
		}
		if h.Profile == nil || CheckReference(h.Profile, fields) != nil || !bytes.Equal(h.Encode(), b) {
			t.Fatalf("decoded %+v from %x", h, b)
		}
		_ = h.Name()
	})
}
