package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The churn model's inputs: x, segment and (through x) the score move when traffic
// shifts; age and channel never do.
var (
	shiftedFeatures = []string{"x", "segment", "score"}
	stableFeatures  = []string{"age", "channel"}
)

// traffic makes a churn model's inference events from seeded random numbers, so every
// run sends the same bytes.
type traffic struct {
	rng *rand.Rand
	seq int
	ts  time.Time
}

func newTraffic(seed uint64) *traffic {
	return &traffic{rng: rand.New(rand.NewPCG(seed, 0x64726966746d6f6e)), ts: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

type event struct {
	EventID      string     `json:"event_id"`
	TS           string     `json:"ts"`
	Model        string     `json:"model"`
	ModelVersion string     `json:"model_version"`
	Features     features   `json:"features"`
	Prediction   prediction `json:"prediction"`
}

type features struct {
	X       float64 `json:"x"`
	Age     float64 `json:"age"`
	Segment string  `json:"segment"`
	Channel string  `json:"channel"`
}

type prediction struct {
	Score float64 `json:"score"`
}

// events returns n JSON events, one per line-free message; shifted moves x by one
// standard deviation and turns the segment mix around.
func (g *traffic) events(t *testing.T, n int, shifted bool) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	for range n {
		g.seq++
		g.ts = g.ts.Add(100 * time.Millisecond)
		x := g.rng.NormFloat64()
		segments := [3]float64{0.5, 0.3, 0.2}
		if shifted {
			x++
			segments = [3]float64{0.2, 0.3, 0.5}
		}
		ev := event{
			EventID:      fmt.Sprintf("e%d", g.seq),
			TS:           g.ts.Format(time.RFC3339Nano),
			Model:        "churn",
			ModelVersion: "7",
			Features: features{
				X:       x,
				Age:     math.Round(40 + 10*g.rng.NormFloat64()),
				Segment: g.pick([]string{"a", "b", "c"}, segments[:]),
				Channel: g.pick([]string{"web", "app", "store"}, []float64{0.6, 0.3, 0.1}),
			},
			Prediction: prediction{Score: 1 / (1 + math.Exp(-(x + 0.5*g.rng.NormFloat64())))},
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (g *traffic) pick(names []string, weights []float64) string {
	u := g.rng.Float64()
	for i, w := range weights {
		if u < w {
			return names[i]
		}
		u -= w
	}
	return names[len(names)-1]
}
