package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/alerter"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// dataset is a seeded inference log: a numeric feature x that shifts by shift
// standard deviations at event shiftAt, a low-cardinality numeric n and a categorical c
// that shifts too, for models alternating between "a" and "b".
type dataset struct {
	seed      uint64
	n, parts  int
	step      time.Duration // event time between consecutive events
	shiftAt   int
	shift     float64
	models    int     // 1 or 2
	lateShare float64 // share of events sent 90 s behind their time (1 partition only)
	start     time.Time
	badShare  float64 // share of malformed messages
}

func (d dataset) messages() []ingest.Message {
	r := rand.New(rand.NewPCG(d.seed, 1))
	start := d.start
	if start.IsZero() {
		start = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	}
	models := max(d.models, 1)
	out := make([]ingest.Message, d.n)
	next := make([]int64, max(d.parts, 1))
	for i := range out {
		ts := start.Add(time.Duration(i) * d.step)
		if d.lateShare > 0 && r.Float64() < d.lateShare {
			ts = ts.Add(-90 * time.Second)
		}
		x := r.NormFloat64()
		cats := []string{"a", "b", "c", "d"}
		c := cats[r.IntN(4)]
		if i >= d.shiftAt {
			x += d.shift
			if r.Float64() < 0.3 {
				c = "d"
			}
		}
		model := string(rune('a' + i%models))
		value := fmt.Sprintf(`{"ts":%q,"model":%q,"model_version":"1","features":{"x":%.6f,"n":%d,"c":%q}}`,
			ts.Format(time.RFC3339Nano), model, x, r.IntN(10), c)
		if d.badShare > 0 && r.Float64() < d.badShare {
			value = `{"ts":` // malformed
		}
		p := i % max(d.parts, 1)
		out[i] = ingest.Message{Value: []byte(value), Time: ts, Topic: "events", Partition: p, Offset: next[p]}
		next[p]++
	}
	return out
}

// datasetStream is the YAML of one stream "s" of the dataset's fields on topic, with
// the YAML window.
func datasetStream(topic, window string) string {
	return fmt.Sprintf(`streams:
  - name: s
    topic: %s
    event_time: ts
    model: model
    model_version: model_version
    features:
      x: {type: numeric}
      n: {type: numeric}
      c: {type: categorical}
    window: %s
    reference: {warmup_windows: 2}
    objectives: # both breached after the shift only, far from their bounds before and after
      - {field: x, quantile: 0.9, max: 1.7}  # a t-digest quantile: 1.28 before, 2.08 after
      - {field: c, category: d, max: 0.4}    # exact counts: 25%% before, 47.5%% after
`, topic, window)
}

// segmentedStream is datasetStream judged per value of c too (segments), for the kill
// -9, restart and cluster tests, which hold the segments to the same contract as the
// whole traffic; reference.min_rows lets the two-window warm-up judge them (a segment
// holds a quarter of a model's rows).
func segmentedStream(topic, window string) string {
	return strings.Replace(datasetStream(topic, window), "reference: {warmup_windows: 2}\n",
		"reference: {warmup_windows: 2, min_rows: 200}\n    segments: [{by: c, top: 4}]\n", 1)
}

// testConfig is a config of one stream "s" on topic with the dataset's fields; window
// is the YAML of its window ("{rows: 500}", "{size: 1m}").
func testConfig(t *testing.T, brokers, topic, window, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q], group_id: "${DRIFTMON_TEST_GROUP}"}
%s%s`, brokers, datasetStream(topic, window), extra)), config.ParseOptions{LookupEnv: func(string) (string, bool) { return "g", true }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// engineRun feeds messages to an engine through the JSON decoder, batch by batch.
type engineRun struct {
	t   *testing.T
	e   *engine.Engine
	dec *ingest.JSONDecoder
}

func newEngineRun(t *testing.T, sc *config.Stream) *engineRun {
	t.Helper()
	e, err := engine.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ingest.NewJSONDecoder(e.DecoderSpec(), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Release)
	return &engineRun{t: t, e: e, dec: dec}
}

// feed processes msgs in batches of the sizes sizes cycles through and returns the
// results, each formatted by describe.
func (r *engineRun) feed(msgs []ingest.Message, sizes ...int) []string {
	var out []string
	for i, k := 0, 0; i < len(msgs); k++ {
		n := min(sizes[k%len(sizes)], len(msgs)-i)
		batch := msgs[i : i+n]
		// As stream.step does: each run of one partition's messages on its own.
		bd := &batchDecoder{decs: []messageDecoder{r.dec}, log: slog.New(slog.DiscardHandler)}
		for _, d := range bd.decode(batch) {
			for _, res := range r.e.ProcessPartitions(d.rec, bd.partitions(d)) {
				out = append(out, describe(res))
			}
			d.rec.Release()
		}
		i += n
	}
	return out
}

// describe formats everything a result says, floats to the last bit.
func describe(r engine.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s/%s [%s, %s) rows=%d warmup=%v ref=%q", r.Stream, r.Model, r.ModelVersion,
		r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), r.Rows, r.Warmup, r.Reference)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, " %s:%s:%b:%b:%b", f.Feature, f.Verdict, f.Score, f.AdjustedP, f.PSI)
	}
	for _, o := range r.Objectives {
		fmt.Fprintf(&b, " %s:%s:%b:%b:%b", o.Name, o.Verdict, o.Value, o.Low, o.High)
	}
	return b.String()
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// verdictsOf is describe without the scores: what must not depend on where checkpoints
// fell.
func verdictsOf(r string) string {
	var keep []string
	for i, field := range strings.Fields(r) {
		if i > 0 && strings.Count(field, ":") == 4 {
			parts := strings.Split(field, ":")
			field = parts[0] + ":" + parts[1]
		}
		keep = append(keep, field)
	}
	return strings.Join(keep, " ")
}

func TestCheckpointRestoresAnEngineMidWindow(t *testing.T) {
	tests := []struct {
		name     string
		window   string
		data     dataset
		wantLate bool
	}{
		{"count windows, two models", "{rows: 700}",
			dataset{seed: 1, n: 12000, parts: 1, step: 100 * time.Millisecond, shiftAt: 7000, shift: 1, models: 2, lateShare: 0.01}, false},
		{"event-time windows, one partition, late events", "{size: 1m}",
			dataset{seed: 2, n: 12000, parts: 1, step: 50 * time.Millisecond, shiftAt: 7000, shift: 1, lateShare: 0.02}, true},
		{"event-time windows, three partitions", "{size: 1m}",
			dataset{seed: 3, n: 12000, parts: 3, step: 50 * time.Millisecond, shiftAt: 7000, shift: 1, models: 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &testConfig(t, "127.0.0.1:1", "events", tt.window, "").Streams[0]
			msgs := tt.data.messages()
			// Cut mid-window, after the warm-up has finished for one model and not the
			// other, with windows of every model open.
			cut := 5555

			// An engine that is checkpointed at the cut and goes on, as a running monitor
			// does, and one restored from that checkpoint, as after a crash.
			live := newEngineRun(t, sc)
			before := live.feed(msgs[:cut], 97, 400, 13)
			pos := engine.NewPosition()
			pos.Next[0], pos.Events = int64(cut), int64(cut)
			data, err := engine.EncodeCheckpoint(live.e, pos)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := engine.DecodeCheckpoint(data, live.e, nil)
			if err != nil {
				t.Fatal(err)
			}
			live.e.Restore(cp, false)

			restored := newEngineRun(t, sc)
			cp, err = engine.DecodeCheckpoint(data, restored.e, nil)
			if err != nil {
				t.Fatal(err)
			}
			restored.e.Restore(cp, true)
			if cp.Pos.Next[0] != int64(cut) || cp.Pos.Events != int64(cut) {
				t.Errorf("position %+v, want offset and events %d", cp.Pos, cut)
			}
			if got, want := restored.e.Late(), live.e.Late(); got != want || (want > 0) != tt.wantLate {
				t.Errorf("restored late count %d, live %d; want equal, and > 0: %v", got, want, tt.wantLate)
			}

			// The rest of the input, cut into other batches for each. (Windows of two
			// models that close in one batch come in model order: compare sorted.)
			after := sorted(live.feed(msgs[cut:], 50, 333))
			again := sorted(restored.feed(msgs[cut:], 1000))
			if len(before) == 0 || len(after) < 5 {
				t.Fatalf("%d windows before the cut, %d after: the test data is too small", len(before), len(after))
			}
			if len(again) != len(after) {
				t.Fatalf("restored engine closed %d windows, the live one %d", len(again), len(after))
			}
			for i := range after {
				if again[i] != after[i] {
					t.Errorf("window %d differs after restore:\n live     %s\n restored %s", i, after[i], again[i])
				}
			}
			if live.e.Late() != restored.e.Late() {
				t.Errorf("late %d after restore, %d live", restored.e.Late(), live.e.Late())
			}

			// An engine never checkpointed sees the same windows and verdicts; only
			// digest-mode scores may differ, within the sketch's error.
			plain := newEngineRun(t, sc)
			all := sorted(plain.feed(msgs, 1000))
			want := sorted(append(append([]string{}, before...), after...))
			if len(all) != len(want) {
				t.Fatalf("uninterrupted engine closed %d windows, checkpointed %d", len(all), len(want))
			}
			drifted := 0
			for i := range all {
				if verdictsOf(all[i]) != verdictsOf(want[i]) {
					t.Errorf("window %d differs from an engine never checkpointed:\n plain        %s\n checkpointed %s", i, all[i], want[i])
				}
				drifted += strings.Count(all[i], ":drift")
			}
			if drifted == 0 {
				t.Error("no window drifted: the test data does not exercise the detectors")
			}
		})
	}
}

func TestCheckpointErrorsAreClear(t *testing.T) {
	sc := &testConfig(t, "127.0.0.1:1", "events", "{size: 1m}", "").Streams[0]
	run := newEngineRun(t, sc)
	run.feed(dataset{seed: 4, n: 3000, parts: 2, step: 50 * time.Millisecond, shiftAt: 3000}.messages(), 500)
	pos := engine.NewPosition()
	pos.Next[0], pos.Next[1] = 1500, 1500
	data, err := engine.EncodeCheckpoint(run.e, pos)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(window string, features string) *engine.Engine {
		cfg := testConfig(t, "127.0.0.1:1", "events", window, "")
		if features != "" {
			cfg.Streams[0].Features = map[string]config.Field{features: {Type: "numeric", Path: "features." + features}}
		}
		e, err := engine.New(&cfg.Streams[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	flip := func(i int) []byte {
		b := append([]byte{}, data...)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name   string
		data   []byte
		engine *engine.Engine
		is     error
		want   string
	}{
		{"empty", nil, fresh("{size: 1m}", ""), engine.ErrCorruptCheckpoint, "bad magic"},
		{"truncated", data[:len(data)/2], fresh("{size: 1m}", ""), engine.ErrCorruptCheckpoint, "checksum mismatch"},
		{"bit flip", flip(len(data) - 10), fresh("{size: 1m}", ""), engine.ErrCorruptCheckpoint, "checksum mismatch"},
		{"newer version", flip(len("DMCK")), fresh("{size: 1m}", ""), engine.ErrCorruptCheckpoint, "unsupported version"},
		{"other window", data, fresh("{size: 5m}", ""), engine.ErrIncompatibleCheckpoint, "its windows are 1m0s"},
		{"other fields", data, fresh("{size: 1m}", "y"), engine.ErrIncompatibleCheckpoint, "its fields are [c (categorical) n (numeric) x (numeric)]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.DecodeCheckpoint(tt.data, tt.engine, nil)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %v containing %q", err, tt.is, tt.want)
			}
		})
	}
	if _, err := engine.DecodeCheckpoint(data, fresh("{size: 1m}", ""), nil); err != nil {
		t.Errorf("the intact checkpoint does not decode: %v", err)
	}
}

// storedStream is cfg's first stream on the state file st, alerting through al,
// restored from what st holds, as the monitor opens it.
func storedStream(t *testing.T, cfg *config.Config, st *state.Store, al *alerter.Alerter) *stream {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	s, err := newStream(cfg, &cfg.Streams[0], discard, &sink{log: discard, alerter: al})
	if err != nil {
		t.Fatal(err)
	}
	s.store, s.alertStore = st, st
	if err := s.restore(); err != nil {
		t.Fatal(err)
	}
	if s.verdicts, err = al.Restore(st, cfg.Streams[0].Name); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckpointSharesTheTransaction checks that what the monitor adds to a checkpoint
// (alert state, the outbox) is written with the windows and offsets, or not at all,
// and that a new stream on the same state file starts where the checkpoint is.
func TestCheckpointSharesTheTransaction(t *testing.T) {
	path := t.TempDir() + "/state.db"
	cfg := testConfig(t, "127.0.0.1:1", "events", "{size: 1m}", "state: {path: "+path+"}")
	st, err := openState(cfg.State)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	al, err := alerter.New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	open := func() *stream { return storedStream(t, cfg, st, al) }
	s := open()
	// The alert state's lost-message count stands for what the alerts write.
	s.verdicts.LossSeen = 2000
	msgs := dataset{seed: 6, n: 3000, parts: 2, step: 100 * time.Millisecond, shiftAt: 3000}.messages()
	if err := s.step(msgs[:2000], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.record(true); err != nil {
		t.Fatal(err)
	}
	durable := s.preds.take()
	if durable[0] != 1000 || durable[1] != 1000 {
		t.Errorf("durable offsets %v, want 1000 for each partition", durable)
	}

	// A decision for a webhook that does not exist cannot be recorded: the whole
	// checkpoint fails.
	s.verdicts.LossSeen = 3000
	if err := s.step(msgs[2000:], nil); err != nil {
		t.Fatal(err)
	}
	s.verdicts.Decided = append(s.verdicts.Decided, alerting.Decision{Step: alerting.StepRetrain, Trigger: "gone"})
	if err := s.record(true); err == nil || !strings.Contains(err.Error(), `no webhook for trigger "gone"`) {
		t.Fatalf("checkpoint with a decision that cannot be recorded: %v, want the alerter's error", err)
	}
	v, err := al.Restore(st, cfg.Streams[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if seen := strconv.FormatInt(v.LossSeen, 10); seen != "2000" {
		t.Errorf("alert state's value %q, want the one of the first checkpoint", seen)
	}

	again := open()
	if got := again.pos.Next; got[0] != 1000 || got[1] != 1000 || again.stats().Events != 2000 {
		t.Errorf("restored offsets %v and %d events, want the first checkpoint's", got, again.stats().Events)
	}
}

// TestIdleStreamSavesANewSilence: a silence made while the stream reads nothing reaches
// the state file within a checkpoint interval, so a restart keeps it. An idle stream
// checkpoints only when something changed, and a silence did not count: a restart in a
// quiet hour lost it.
func TestIdleStreamSavesANewSilence(t *testing.T) {
	path := t.TempDir() + "/state.db"
	cfg := testConfig(t, "127.0.0.1:1", "events", "{size: 1m}", "state: {path: "+path+", checkpoint_interval: 1ms}")
	st, err := openState(cfg.State)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	discard := slog.New(slog.DiscardHandler)
	silences := &policy.Silences{}
	al, err := alerter.New(cfg, discard, silences, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := storedStream(t, cfg, st, al)
	msgs := dataset{seed: 7, n: 1000, parts: 2, step: 100 * time.Millisecond, shiftAt: 1000}.messages()
	if err := s.step(msgs, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.record(true); err != nil {
		t.Fatal(err)
	}
	idle := func() int64 {
		t.Helper()
		time.Sleep(2 * time.Millisecond) // past the checkpoint interval
		if err := s.step(nil, nil); err != nil {
			t.Fatal(err)
		}
		return s.stats().Checkpoints
	}
	quiet := idle()
	sl := silences.Add(policy.Silence{Stream: cfg.Streams[0].Name, ExpiresAt: time.Now().Add(time.Hour)})
	if n := idle(); n != quiet+1 {
		t.Errorf("%d checkpoints after an idle step with a new silence, want %d", n, quiet+1)
	}
	if n := idle(); n != quiet+1 {
		t.Errorf("%d checkpoints after a further idle step, want still %d", n, quiet+1)
	}
	restarted := &policy.Silences{}
	al2, err := alerter.New(cfg, discard, restarted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := al2.Restore(st, cfg.Streams[0].Name); err != nil {
		t.Fatal(err)
	}
	if got := restarted.Active(time.Now()); len(got) != 1 || got[0].ID != sl.ID {
		t.Errorf("silences after a restart: %v, want %s", got, sl.ID)
	}
}
