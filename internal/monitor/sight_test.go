package monitor

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/alerter"
	"github.com/driftmon/driftmon/internal/state"
)

// blindRig is one stream, offline: messages go straight to its pipeline, and its alert
// decisions into a real state file.
type blindRig struct {
	t     *testing.T
	s     *stream
	clock time.Time
	next  int64
}

func newBlindRig(t *testing.T) *blindRig {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: events
    event_time: ts
    features: {x: {type: numeric}}
    window: {size: 1m}
    reference: {warmup_windows: 1, min_rows: 10}
    limits: {blind_windows: 2}
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	al, err := alerter.New(cfg, slog.New(slog.DiscardHandler), &policy.Silences{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := newStream(cfg, &cfg.Streams[0], slog.New(slog.DiscardHandler), &sink{log: slog.New(slog.DiscardHandler), alerter: al})
	if err != nil {
		t.Fatal(err)
	}
	r := &blindRig{t: t, s: s, clock: time.Now()}
	s.alertStore = st
	if s.verdicts, err = al.Restore(st, "s"); err != nil {
		t.Fatal(err)
	}
	s.sight.now = func() time.Time { return r.clock }
	s.sight.start(s.seen())
	return r
}

// send runs the pipeline on n events at the given event times (one each).
func (r *blindRig) send(times ...time.Time) {
	r.t.Helper()
	batch := make([]ingest.Message, len(times))
	for i, ts := range times {
		batch[i] = ingest.Message{Offset: r.next, Value: []byte(fmt.Sprintf(`{"ts":%q,"features":{"x":%d}}`, ts.Format(time.RFC3339Nano), i%7))}
		r.next++
	}
	if err := r.s.step(batch, nil); err != nil {
		r.t.Fatal(err)
	}
}

// blind returns the blind episode firing for the stream, if any.
func (r *blindRig) blind() *policy.Episode {
	for _, ep := range r.s.verdicts.State.Episodes() {
		if ep.Kind == alerting.KindBlind {
			return &ep
		}
	}
	return nil
}

func spread(start time.Time, n int, step time.Duration) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i) * step)
	}
	return out
}

// TestStalledStreamSaysItIsBlind: events keep coming but no window closes (they all
// fall in one window, or are refused): after limits.blind_windows window lengths of
// wall-clock time the stream raises a blind alert and its metric, instead of going
// quiet; once windows close with good events again, it resolves.
func TestStalledStreamSaysItIsBlind(t *testing.T) {
	r := newBlindRig(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	r.send(spread(base, 200, 100*time.Millisecond)...)
	r.clock = r.clock.Add(90 * time.Second)
	r.send(spread(base.Add(20*time.Second), 200, 100*time.Millisecond)...)
	if ep := r.blind(); ep != nil || r.s.stats().Blind {
		t.Fatalf("blind after 1.5 window lengths: %+v", ep)
	}
	r.clock = r.clock.Add(time.Minute)
	r.send(spread(base.Add(40*time.Second), 10, time.Second)...)
	ep := r.blind()
	if ep == nil || !r.s.stats().Blind {
		t.Fatalf("no blind alert after 2.5 window lengths without a window closed; episodes %+v", r.s.verdicts.State.Episodes())
	}
	if ep.Stream != "s" || ep.Model != "" {
		t.Errorf("blind episode %+v, want one about the whole stream", ep)
	}
	// Nothing read since: no new observation, whatever the time.
	r.clock = r.clock.Add(time.Hour)
	decided := len(r.s.verdicts.State.Episodes())
	r.send()
	if got := len(r.s.verdicts.State.Episodes()); got != decided {
		t.Errorf("an idle stream changed the episodes: %d, want %d", got, decided)
	}
}

// TestLateEventsMakeAStreamBlind: a window whose events mostly came late (a producer's
// clock behind the others') is judged on what little arrived in time: the stream says
// it is blind, and says it no more once a window's events are on time again.
func TestLateEventsMakeAStreamBlind(t *testing.T) {
	r := newBlindRig(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// Warm-up: the first window (left out), the reference window, then compared ones.
	for w := range 3 {
		r.send(spread(base.Add(time.Duration(w)*time.Minute), 120, 500*time.Millisecond)...)
	}
	if ep := r.blind(); ep != nil {
		t.Fatalf("blind during a clean warm-up: %+v", ep)
	}
	// Window 3: 30 events in time, 300 of window 0 (late), then window 4 closes it.
	r.send(spread(base.Add(3*time.Minute), 30, 2*time.Second)...)
	r.send(spread(base, 300, 100*time.Millisecond)...)
	r.send(spread(base.Add(4*time.Minute), 120, 500*time.Millisecond)...)
	if r.s.stats().Late != 300 {
		t.Fatalf("%d late events, want 300", r.s.stats().Late)
	}
	if ep := r.blind(); ep == nil || !r.s.stats().Blind {
		t.Fatalf("no blind alert for a window whose events were 91%% late; episodes %+v", r.s.verdicts.State.Episodes())
	}
	// Windows 5 and 6 on time: not blind any more, and the alert resolves.
	r.send(spread(base.Add(5*time.Minute), 120, 500*time.Millisecond)...)
	r.send(spread(base.Add(6*time.Minute), 120, 500*time.Millisecond)...)
	if r.s.stats().Blind {
		t.Error("still blind after windows of events on time")
	}
	if ep := r.blind(); ep != nil {
		t.Errorf("blind episode still firing after windows of events on time: %+v", ep)
	}
}
