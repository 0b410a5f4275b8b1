package demo

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// TestDemoNeverCriesWolf runs the demo's traffic generator into the demo's engine
// (its own config, JSON decoded as the monitor decodes it) in simulated time, with 20
// seeds, at the demo's defaults (500 events/s, 10 s windows, shift after 30 s) and at
// the settings of issue 15's report (5 s windows, shift after 20 s). The start falls
// at a random point within a window, as a real start does. In every compared window
// no stay-put feature drifts, and the first whole window after the shift flags every
// shifted feature.
func TestDemoNeverCriesWolf(t *testing.T) {
	for _, tc := range []struct {
		name              string
		window, shiftGap  time.Duration
		rate, seeds, tail int
	}{
		{"defaults", 10 * time.Second, 30 * time.Second, 500, 20, 3},
		{"issue 15 run", 5 * time.Second, 20 * time.Second, 500, 20, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(tc.seeds); seed++ {
				results := replayDemo(t, seed, tc.window, tc.shiftGap, tc.rate, tc.tail)
				checkDemoWindows(t, seed, results)
			}
		})
	}
}

// demoRun is what replayDemo returns: the window results and when the shift began.
type demoRun struct {
	results           []engine.Result
	shiftAt           time.Time
	slowAt, slowUntil time.Time
}

// replayDemo feeds the demo's generator, in ticks of 100 ms of simulated time, into
// an engine built from the demo's config until tail windows after the shift closed.
func replayDemo(t *testing.T, seed uint64, window, shiftAfter time.Duration, rate, tail int) demoRun {
	return replaySlowDemo(t, seed, window, shiftAfter, 0, 0, rate, tail)
}

// replaySlowDemo is replayDemo with a slow-down of the model's latency from slowAfter
// (rounded up to a window's start) for slowFor; slowAfter 0: none.
func replaySlowDemo(t *testing.T, seed uint64, window, shiftAfter, slowAfter, slowFor time.Duration, rate, tail int) demoRun {
	t.Helper()
	cfg, err := config.Parse([]byte(configYAML([]string{"127.0.0.1:9092"}, "http://127.0.0.1:1/", "http://127.0.0.1:1", "http://127.0.0.1:1/", window, rate)),
		config.ParseOptions{LookupEnv: func(name string) (string, bool) { return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(&cfg.Streams[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dec, err := ingest.NewJSONDecoder(e.DecoderSpec(), mem)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Release()

	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	start := base.Add(time.Duration(rng.Int64N(int64(window)))) // somewhere within a window
	g := &generator{rate: rate, shiftAt: ceil(start.Add(shiftAfter), window), rng: rng}
	end := g.shiftAt.Add(time.Duration(tail)*window + time.Second)
	if slowAfter > 0 {
		g.slowAt = ceil(start.Add(slowAfter), window)
		g.slowUntil = ceil(g.slowAt.Add(slowFor), window)
	}
	run := demoRun{shiftAt: g.shiftAt, slowAt: g.slowAt, slowUntil: g.slowUntil}
	const tick = 100 * time.Millisecond
	msgs := make([]ingest.Message, max(1, rate/10))
	for now := start; now.Before(end); now = now.Add(tick) {
		shifted := !now.Before(g.shiftAt)
		for i := range msgs {
			ev, _ := g.event(now, shifted)
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = ingest.Message{Value: b, Time: now}
		}
		rec, rejected := dec.Decode(msgs)
		if len(rejected) > 0 {
			t.Fatalf("the demo's own events were rejected: %+v", rejected[0])
		}
		run.results = append(run.results, e.Process(rec)...)
		rec.Release()
	}
	return run
}

func checkDemoWindows(t *testing.T, seed uint64, run demoRun) {
	t.Helper()
	var compared int
	firstAfter := true
	for _, r := range run.results {
		if r.Warmup {
			continue
		}
		compared++
		drifted := r.Drifted()
		for _, f := range Stable {
			if slices.Contains(drifted, f) {
				t.Errorf("seed %d, window %s (%d rows): stay-put feature %s drifted: %s", seed, r.Start.Format("15:04:05"), r.Rows, f, ruleOf(r, f))
			}
		}
		if r.Start.Before(run.shiftAt) {
			for _, f := range drifted {
				t.Errorf("seed %d, window %s before the shift: %s drifted: %s", seed, r.Start.Format("15:04:05"), f, ruleOf(r, f))
			}
			continue
		}
		if firstAfter {
			firstAfter = false
			for _, f := range Shifted {
				if !slices.Contains(drifted, f) {
					t.Errorf("seed %d: the first window after the shift (%s, %d rows) missed %s: %s", seed, r.Start.Format("15:04:05"), r.Rows, f, ruleOf(r, f))
				}
			}
		}
	}
	if compared == 0 || firstAfter {
		t.Errorf("seed %d: %d windows compared, none after the shift at %s", seed, compared, run.shiftAt.Format("15:04:05"))
	}
}

func ruleOf(r engine.Result, feature string) string {
	for _, f := range r.Findings {
		if f.Feature == feature {
			return strings.TrimSpace(string(f.Verdict) + " " + f.Rule + " " + f.Note)
		}
	}
	return "no finding"
}

// TestDemoSlowDownBreachesInItsFirstWindow replays the demo's traffic in simulated
// time with its latency slowing down for two windows after the shift: the p99
// objective is breached in exactly the slow windows, from the first, and met in every
// other window (warm-up included), with every seed; the row rate objective is always
// met but in the first window, whose rate is not judged.
func TestDemoSlowDownBreachesInItsFirstWindow(t *testing.T) {
	const window = 5 * time.Second
	var slowP99, fastP99 []float64
	for seed := uint64(1); seed <= 10; seed++ {
		run := replaySlowDemo(t, seed, window, 20*time.Second, 30*time.Second, 2*window, 500, 6)
		breached := 0
		for i, r := range run.results {
			slow := !r.Start.Before(run.slowAt) && r.Start.Before(run.slowUntil)
			var p99, rate detectors.ObjectiveFinding
			for _, o := range r.Objectives {
				switch o.Name {
				case LatencyObjective:
					p99 = o
				case "rows per minute":
					rate = o
				}
			}
			want := detectors.Met
			if slow {
				want = detectors.Breached
				slowP99 = append(slowP99, p99.Value)
			} else {
				fastP99 = append(fastP99, p99.Value)
			}
			if p99.Verdict != want {
				t.Errorf("seed %d, window %s (slow %v): %s", seed, r.Start.Format("15:04:05"), slow, p99.Rule)
			}
			if p99.Verdict == detectors.Breached {
				breached++
			}
			if wantRate := map[bool]detectors.Verdict{true: detectors.InsufficientData, false: detectors.Met}[i == 0]; rate.Verdict != wantRate {
				t.Errorf("seed %d, window %d %s: %s, want %s", seed, i, r.Start.Format("15:04:05"), rate.Rule, wantRate)
			}
		}
		if breached != 2 {
			t.Errorf("seed %d: %d windows breached, want the 2 slow ones", seed, breached)
		}
	}
	t.Logf("p99 latency: slow windows %.0f–%.0f ms, the others %.0f–%.0f ms (objective 250 ms)",
		slices.Min(slowP99), slices.Max(slowP99), slices.Min(fastP99), slices.Max(fastP99))
}
