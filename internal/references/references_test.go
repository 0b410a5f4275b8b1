package references

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

// streams are two configured streams, s (at most two models) and t, each with a
// feature x and a warm-up fallback.
func streams(t *testing.T) []Stream {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: a
    model: model
    model_version: version
    features: {x: {type: numeric}}
    window: {size: 1m}
    limits: {max_models: 2}
  - name: t
    topic: b
    features: {x: {type: numeric}}
    window: {size: 1m}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []Stream
	for i := range cfg.Streams {
		e, err := engine.New(&cfg.Streams[i], slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Stream{Config: &cfg.Streams[i], Engine: e})
	}
	return out
}

// profile is the bytes of a profile file of fields.
func profile(t *testing.T, fields ...string) []byte {
	t.Helper()
	var fs []sketch.Field
	for _, f := range fields {
		fs = append(fs, sketch.Field{Name: f, Kind: sketch.KindNumeric})
	}
	data, err := sketch.NewProfile(fs, sketch.Options{}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func openState(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRegistryInState walks the API's calls on a state file: what each answers, what
// the state file holds after it, and which stream is told of a change.
func TestRegistryInState(t *testing.T) {
	ctx := context.Background()
	ss := streams(t)
	changed := map[string]int{}
	for i := range ss {
		name := ss[i].Config.Name
		ss[i].Changed = func() { changed[name]++ }
	}
	r := New(ss, slog.New(slog.DiscardHandler))
	x := profile(t, "x")

	// Not running: nowhere to keep one. A profile that is not one is refused first.
	if _, err := r.Reference("s", "model", "1"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Reference before Keep: %v, want ErrNotRunning", err)
	}
	if _, err := r.HandOver(ctx, "s", "model", "1", []byte("x\n1\n")); !errors.Is(err, engine.ErrNotProfile) {
		t.Errorf("HandOver of a CSV before Keep: %v, want ErrNotProfile", err)
	}
	if _, err := r.HandOver(ctx, "s", "model", "1", x); !errors.Is(err, ErrNotRunning) {
		t.Errorf("HandOver before Keep: %v, want ErrNotRunning", err)
	}

	st := openState(t)
	r.Keep(InState(st))
	if _, err := r.HandOver(ctx, "", "model", "1", x); !errors.Is(err, ErrStreamRequired) || !strings.Contains(err.Error(), "streams s, t") {
		t.Errorf("HandOver naming no stream of two: %v", err)
	}
	if _, err := r.Reference("u", "model", "1"); !errors.Is(err, ErrUnknownStream) || !strings.Contains(err.Error(), `"u"`) {
		t.Errorf("Reference of stream u: %v", err)
	}
	if _, err := r.HandOver(ctx, "s", "model", "1", profile(t, "x", "y")); !errors.Is(err, engine.ErrProfileFields) {
		t.Errorf("HandOver of a profile with a feature too many: %v", err)
	}
	got, err := r.Reference("s", "model", "1")
	if err != nil || got.Handover != nil || !strings.HasPrefix(got.Name, "no reference handed over for 1: ") {
		t.Errorf("Reference with none handed over: %+v, %v", got, err)
	}

	ref, err := r.HandOver(ctx, "s", "model", "1", x)
	if err != nil || ref.Handover == nil || ref.Handover.Via != engine.ViaAPI || ref.Name != ref.Handover.Name() {
		t.Fatalf("HandOver: %+v, %v", ref, err)
	}
	if changed["s"] != 1 || changed["t"] != 0 {
		t.Errorf("changes told: %v, want s once", changed)
	}
	if got, err := r.Reference("s", "model", "1"); err != nil || got.Name != ref.Name || got.Handover == nil {
		t.Errorf("Reference after HandOver: %+v, %v", got, err)
	}
	// The stream's engine gets the same record from the state file.
	recs, err := Records(st, "s")
	if err != nil || len(recs) != 1 || string(recs[0]) != string(ref.Handover.Encode()) {
		t.Errorf("Records of s: %d, %v; want the one handed over", len(recs), err)
	}
	if recs, err := Records(st, "t"); err != nil || len(recs) != 0 {
		t.Errorf("Records of t: %d, %v; want none", len(recs), err)
	}

	// limits.max_models bounds them; handing one over again for a version replaces it.
	if _, err := r.HandOver(ctx, "s", "model", "2", x); err != nil {
		t.Fatal(err)
	}
	if _, err := r.HandOver(ctx, "s", "model", "3", x); !errors.Is(err, ErrTooManyReferences) || !strings.Contains(err.Error(), "holds 2") {
		t.Errorf("a third version with max_models 2: %v", err)
	}
	if _, err := r.HandOver(ctx, "s", "model", "2", x); err != nil {
		t.Errorf("the second version again: %v", err)
	}

	fb, err := r.Withdraw(ctx, "s", "model", "1")
	if err != nil || fb.Handover != nil || fb.Name != got.Name {
		t.Errorf("Withdraw: %+v, %v; want the fallback %q", fb, err, got.Name)
	}
	if _, err := r.Withdraw(ctx, "s", "model", "1"); !errors.Is(err, ErrNoHandover) {
		t.Errorf("Withdraw again: %v, want ErrNoHandover", err)
	}
	if recs, err := Records(st, "s"); err != nil || len(recs) != 1 {
		t.Errorf("Records of s after a withdrawal: %d, %v; want version 2's", len(recs), err)
	}
	if changed["s"] != 4 {
		t.Errorf("s was told of %d changes, want 4 (three hand-overs and a withdrawal)", changed["s"])
	}

	r.Keep(nil)
	if _, err := r.Withdraw(ctx, "s", "model", "2"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Withdraw after Keep(nil): %v, want ErrNotRunning", err)
	}
}

// TestStoreRead: a reference read from a file is stored, unless the API handed one over
// for the version meanwhile, which is kept and reported.
func TestStoreRead(t *testing.T) {
	ss := streams(t)
	st := openState(t)
	r := New(ss, slog.New(slog.DiscardHandler))
	r.Keep(InState(st))
	api, err := r.HandOver(context.Background(), "s", "model", "1", profile(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	var read []*engine.Handover
	for _, v := range []string{"1", "2"} {
		h, err := engine.NewHandover("model", v, "refs/"+v+".profile", at, profile(t, "x"), ss[0].Engine.Fields())
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, h)
	}
	handedOver, err := StoreRead(st, "s", read)
	if err != nil || !handedOver {
		t.Fatalf("StoreRead: %v, %v; want true: version 1 was handed over by the API", handedOver, err)
	}
	for v, want := range map[string]string{"1": api.Handover.Via, "2": "refs/2.profile"} {
		if got, err := r.Reference("s", "model", v); err != nil || got.Handover == nil || got.Handover.Via != want {
			t.Errorf("version %s: %+v, %v; want the one via %s", v, got, err, want)
		}
	}
	if handedOver, err := StoreRead(st, "s", nil); err != nil || handedOver {
		t.Errorf("StoreRead of nothing: %v, %v", handedOver, err)
	}
}
