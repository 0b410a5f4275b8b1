package labels

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// joinerRig feeds a joiner predictions and labels as JSON messages, the way a stream
// does, with a predictions watermark the test sets.
type joinerRig struct {
	t    *testing.T
	sc   *config.Stream
	j    *Join
	dec  *ingest.JSONDecoder
	now  time.Time
	base time.Time
}

func newJoinerRig(t *testing.T) *joinerRig {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: s
    topic: preds
    event_time: ts
    event_id: id
    predictions: {y: {type: numeric}}
    window: {size: 1m}
    labels: {topic: labels, event_id: id, label: truth, event_time: ts, max_delay: 2m, kind: regression, min_rows: 5}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := &cfg.Streams[0]
	e, err := engine.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ingest.NewJSONDecoder(e.DecoderSpec(), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	r := &joinerRig{t: t, sc: sc, dec: dec, now: time.Now(), base: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	r.j = r.New()
	return r
}

func (r *joinerRig) New() *Join {
	j, err := New(r.sc, detectors.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	j.clock.Assign([]int32{0}, r.now)
	return j
}

// predict feeds one prediction at minute offset at (seconds), and advances the
// predictions' watermark to it.
func (r *joinerRig) predict(id string, sec int, y float64) []Result {
	ts := r.base.Add(time.Duration(sec) * time.Second)
	v, _ := json.Marshal(map[string]any{"id": id, "ts": ts.UnixMilli(), "prediction": map[string]any{"y": y}})
	rec, rej := r.dec.Decode([]ingest.Message{{Value: v}})
	defer rec.Release()
	if len(rej) > 0 {
		r.t.Fatal(rej[0].Err)
	}
	r.j.AddPredictions(rec, rec.Column(0).(*array.Int64).Int64Values(), "y")
	return r.j.Advance(ts.UnixNano(), r.now)
}

// label feeds one label at sec on labels partition 0.
func (r *joinerRig) label(id string, sec int, truth float64, predWM int) []Result {
	ts := r.base.Add(time.Duration(sec) * time.Second)
	v, _ := json.Marshal(map[string]any{"id": id, "ts": ts.UnixMilli(), "truth": truth})
	r.j.AddLabels([]ingest.Message{{Value: v}})
	return r.j.Advance(r.base.Add(time.Duration(predWM)*time.Second).UnixNano(), r.now)
}

// TestJoinerEdgeCases runs a regression join through every way a label or prediction
// can come: before its partner, after, twice, too late, never; and a save and restore
// in the middle. The final window's MAE and RMSE are those of the pairs that count,
// computed here.
func TestJoinerEdgeCases(t *testing.T) {
	r := newJoinerRig(t)
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Window [0, 60s): ten predictions.
	type pair struct{ pred, truth float64 }
	var counted []pair
	for i := range 10 {
		r.predict(fmt.Sprintf("p%d", i), i*5, float64(i))
	}
	// A label before its prediction (the labels topic read ahead): p10 in window 0.
	r.label("p10", 30, 4, 45)
	r.predict("p10", 50, 3.5)
	counted = append(counted, pair{3.5, 4})
	// Labels after their predictions, out of order; one of them twice.
	for _, i := range []int{7, 2, 9, 0, 5} {
		r.label(fmt.Sprintf("p%d", i), 70+i, float64(i)+1.5, 60)
		counted = append(counted, pair{float64(i), float64(i) + 1.5})
	}
	r.label("p2", 80, 100, 60) // a duplicate: the first counts
	// A label for an event never predicted, and one for p3 later than max_delay
	// after its window (60s + 2m = 180s).
	r.label("ghost", 90, 1, 60)

	// Save, restore into a fresh joiner, go on with it.
	if err := st.Update(r.j.Save); err != nil {
		t.Fatal(err)
	}
	r.j.Saved()
	r.j = r.New()
	if err := r.j.Restore(st, r.now); err != nil {
		t.Fatal(err)
	}
	// Kept: the 11 predictions of window 0 (6 matched), and the ghost's label.
	if len(r.j.preds) != 11 || len(r.j.orphans) != 1 {
		t.Errorf("after restore: %d predictions, %d pending labels; want 11 and 1", len(r.j.preds), len(r.j.orphans))
	}
	r.label("p3", 185, 3, 60) // too late: its window's labels were due by 180s

	// Both topics past 180s: window 0 is final.
	var final *Result
	out := r.predict("q0", 200, 1) // window [180s, 240s)
	for _, res := range append(out, r.label("x", 200, 0, 200)...) {
		if res.Start.Equal(r.base) && res.Final {
			final = &res
		}
	}
	if final == nil {
		t.Fatalf("window 0 not final with both topics at 200s; windows %v", r.j.windows)
	}
	var abs, sq float64
	for _, p := range counted {
		abs += math.Abs(p.pred - p.truth)
		sq += (p.pred - p.truth) * (p.pred - p.truth)
	}
	n := float64(len(counted))
	if final.Labelled != int64(len(counted)) || final.Predictions != 11 {
		t.Errorf("labelled %d of %d, want %d of 11", final.Labelled, final.Predictions, len(counted))
	}
	if m := final.Metrics; math.Abs(m.MAE-abs/n) > 1e-12 || math.Abs(m.RMSE-math.Sqrt(sq/n)) > 1e-12 {
		t.Errorf("MAE %g RMSE %g, want %g %g", m.MAE, m.RMSE, abs/n, math.Sqrt(sq/n))
	}
	s := r.j.Stats()
	want := Stats{Labels: 10, Matched: 6, Duplicates: 1, TooLate: 1, Unlabelled: 5}
	if s.Labels != want.Labels || s.Matched != want.Matched || s.Duplicates != want.Duplicates ||
		s.TooLate != want.TooLate || s.Unlabelled != want.Unlabelled {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	// A prediction for the final window is late; the ghost label expires once both
	// topics are max_delay past it.
	r.predict("late", 10, 1)
	r.label("y", 400, 0, 400)
	r.predict("q1", 400, 1)
	if s := r.j.Stats(); s.LatePredictions != 1 || s.Expired < 1 {
		t.Errorf("late predictions %d, expired labels %d; want 1 and ≥ 1", s.LatePredictions, s.Expired)
	}
}
