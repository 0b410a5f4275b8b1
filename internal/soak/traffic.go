package soak

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// The churn model the campaign's traffic imitates. Every numeric feature has fewer
// distinct values than the sketches keep exact counts for (x in steps of 0.1 within
// ±5, age in whole years, score in hundredths), so a window's sketches, and so its
// findings, do not depend on where checkpoints fell: a killed and restarted monitor
// must give bit-identical window results, not merely close ones.
const (
	// WindowRows is the count window of the campaign's stream. Count windows on a
	// one-partition topic are exactly reproducible after a restart.
	WindowRows = 2000
	// cycleWindows and shiftedWindows make the drift episodes: in every cycle of
	// cycleWindows windows the last shiftedWindows carry shifted traffic.
	cycleWindows   = 12
	shiftedWindows = 4
)

// traffic0 is the first event's time, and the Kafka timestamp of the messages: three
// days before the day the campaign runs, at midnight UTC. A real broker deletes
// messages a week older than their timestamps (retention.ms) and, from Kafka 3.6,
// refuses timestamps more than an hour ahead (message.timestamp.after.max.ms): a
// fixed date would sooner or later be one or the other, and the campaign would see
// data loss that is no fault of driftmon's.
var traffic0 = time.Now().UTC().Truncate(24 * time.Hour).Add(-3 * 24 * time.Hour)

// fastClock is the time a producer whose clock is hours to a day fast stamps: 6–31 h
// ahead of the wall clock while the campaign runs (traffic0 is midnight three days
// ago), beyond limits.max_future (an hour) even at the end of a long campaign.
func fastClock(r *rand.Rand) time.Time {
	return traffic0.Add(4*24*time.Hour + 6*time.Hour + time.Duration(r.Int64N(int64(time.Hour))))
}

// slowClock is the time a producer whose clock is a month slow stamps: beyond maxPast.
func slowClock(r *rand.Rand) time.Time {
	return traffic0.Add(-30*24*time.Hour - time.Duration(r.Int64N(int64(24*time.Hour))))
}

// event is the JSON shape of one inference event.
type event struct {
	EventID      string         `json:"event_id"`
	TS           string         `json:"ts"`
	Model        string         `json:"model"`
	ModelVersion string         `json:"model_version"`
	Features     map[string]any `json:"features"`
	Prediction   map[string]any `json:"prediction"`
}

// goodEvent is the n-th valid event (n from 0) of the campaign with this seed: the
// same bytes on every call, so the reference run reads exactly what the faulted run
// read. Its event time is n×10 ms after traffic0.
func goodEvent(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	x, segments := drawX(r, n, WindowRows)
	age := math.Round(math.Max(18, math.Min(80, 40+10*r.NormFloat64())))
	score := drawScore(r, x)
	ev := event{
		EventID:      fmt.Sprintf("e%d", n),
		TS:           traffic0.Add(time.Duration(n) * 10 * time.Millisecond).Format(time.RFC3339Nano),
		Model:        "churn",
		ModelVersion: "7",
		Features: map[string]any{
			"x":       x,
			"age":     age,
			"segment": pick(r, []string{"a", "b", "c"}, segments),
			"channel": pick(r, []string{"web", "app", "store"}, []float64{0.6, 0.3, 0.1}),
		},
		Prediction: map[string]any{"score": score},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic("BUG: an event does not encode: " + err.Error())
	}
	return b
}

// drawX draws the feature x of the n-th event of a stream whose windows have windowRows
// rows, and the shares of the segments a, b and c: both shifted in the last
// shiftedWindows windows of every cycle.
func drawX(r *rand.Rand, n, windowRows int64) (x float64, segments []float64) {
	shifted := (n/windowRows)%cycleWindows >= cycleWindows-shiftedWindows
	x = r.NormFloat64()
	segments = []float64{0.5, 0.3, 0.2}
	if shifted {
		x++
		segments = []float64{0.2, 0.3, 0.5}
	}
	return math.Round(math.Max(-5, math.Min(5, x))*10) / 10, segments
}

// drawScore draws the model's score for an event with feature x, in hundredths.
func drawScore(r *rand.Rand, x float64) float64 {
	return math.Round(100/(1+math.Exp(-(x+0.5*r.NormFloat64())))) / 100
}

func pick(r *rand.Rand, names []string, weights []float64) string {
	u := r.Float64()
	for i, w := range weights {
		if u < w {
			return names[i]
		}
		u -= w
	}
	return names[len(names)-1]
}

// streamYAML is the campaign's stream; %[1]s is its topic.
const streamYAML = `
  - name: churn
    topic: %[1]s
    event_time: ts
    model: model
    model_version: model_version
    max_message_bytes: %[2]d
    features:
      x: {type: numeric}
      age: {type: numeric}
      segment: {type: categorical}
      channel: {type: categorical}
    predictions:
      score: {type: numeric}
    window: {rows: %[3]d}
    reference: {warmup_windows: 2}
    limits: {max_past: %[4]s, max_models: 1}
`

// maxMessageBytes is the stream's max_message_bytes; the corpus's huge messages
// are larger.
const maxMessageBytes = 65536

// maxPast is every stream's limits.max_past: ten days, so that the valid events (from
// midnight three days ago, for at most an hour) are within it and the bad messages of
// a slow clock (a month) or of 1999 are not. The JSON stream's limits.max_models is 1:
// the churn model's (model, version) pair, so that every row of a flood of model names
// is refused (too_many_models) in the faulted run and the reference alike.
const maxPast = 240 * time.Hour

func streamConfig(topic string) string {
	return fmt.Sprintf(streamYAML, topic, maxMessageBytes, WindowRows, maxPast)
}
