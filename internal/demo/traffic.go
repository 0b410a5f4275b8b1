package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// salaryRanges are the categories of the demo's salary_range feature, with their shares
// before and after the shift.
var (
	salaryRanges = []string{"0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €"}
	salaryBefore = []float64{0.20, 0.35, 0.35, 0.10}
	salaryAfter  = []float64{0.30, 0.42, 0.27, 0.01}
)

// Shifted and Stable name the demo's features by what the shift does to them. The
// prediction y_pred_proba depends on car_value and loan_length, so it moves too.
var (
	Shifted = []string{"car_value", "loan_length", "salary_range"}
	Stable  = []string{"debt_to_income_ratio", "driver_tenure", "repaid_loan_on_prev_car"}
)

// generator writes inference events of a car-loan credit model to Kafka at a steady
// rate, with the inputs of Shifted changing their distribution from shiftAt on.
type generator struct {
	w       *kafka.Writer
	rate    int
	shiftAt time.Time
	rng     *rand.Rand
	sent    atomic.Int64

	// The model's inference latency: a log-normal of median 80 ms (p99 ≈ 180 ms),
	// twice as slow from slowAt until slowUntil (p99 ≈ 360 ms). It has a random
	// source of its own, so that adding it changed none of the features' draws.
	slowAt, slowUntil time.Time
	lat               *rand.Rand
	buf               []kafka.Message

	// Labels: each event's outcome is sent to its own topic labelDelay to
	// 4·labelDelay later (wall time), as loan outcomes come in after the decision.
	labels     *kafka.Writer
	labelDelay time.Duration
	due        []dueLabel // in the order they were drawn, not the order they are due
	lbuf       []kafka.Message
}

// dueLabel is an outcome waiting to be sent.
type dueLabel struct {
	at  time.Time
	msg kafka.Message
}

// outcome is the JSON shape of one label.
type outcome struct {
	EventID   string    `json:"event_id"`
	TS        time.Time `json:"ts"`
	Defaulted int       `json:"defaulted"`
}

// event is the JSON shape of one inference log record.
type event struct {
	EventID      string         `json:"event_id"`
	TS           time.Time      `json:"ts"`
	Model        string         `json:"model"`
	ModelVersion string         `json:"model_version"`
	Features     map[string]any `json:"features"`
	Prediction   map[string]any `json:"prediction"`
	LatencyMS    float64        `json:"latency_ms"`
}

// LatencyObjective is the demo's objective on its latency: p99 at most 250 ms.
const LatencyObjective = "latency_ms p99"

// latency draws one inference's latency in milliseconds at now.
func (g *generator) latency(now time.Time) float64 {
	if g.lat == nil {
		g.lat = rand.New(rand.NewPCG(1, 0x1a7e))
	}
	median := 80.0
	if !now.Before(g.slowAt) && now.Before(g.slowUntil) {
		median = 160
	}
	return math.Round(10*median*math.Exp(0.35*g.lat.NormFloat64())) / 10
}

// event draws one inference event and whether the loan defaults. Before the shift the
// outcome follows the model's own scorecard (sharpened), so its score ranks well; after
// it dearer cars no longer default more and an unobserved factor weighs in: the model
// ranks worse, and its ROC AUC drops.
func (g *generator) event(now time.Time, shifted bool) (event, bool) {
	r := g.rng
	carValue := math.Exp(10.2 + 0.45*r.NormFloat64()) // median ≈ 27k
	loanLength := 12 + 6*r.IntN(9)                    // 12..60 months
	salary := salaryRanges[pick(r, salaryBefore)]
	if shifted {
		carValue = math.Exp(10.65 + 0.45*r.NormFloat64()) // median ≈ 42k
		loanLength = 36 + 6*r.IntN(7)                     // 36..72 months
		salary = salaryRanges[pick(r, salaryAfter)]
	}
	dti := r.Float64() * 0.9
	tenure := r.ExpFloat64() * 4
	repaidPrev := r.Float64() < 0.5
	// A plausible scorecard: dearer cars and longer loans default more.
	z := -1.5 + 0.00004*carValue + 0.02*float64(loanLength) + 1.2*dti - 0.1*tenure + 0.3*r.NormFloat64()
	if repaidPrev {
		z -= 0.5
	}
	proba := 1 / (1 + math.Exp(-z))
	truth := 3 * (z - 0.3)
	if shifted {
		truth = 3*(z-0.00004*carValue+0.8) + 2.5*r.NormFloat64()
	}
	defaulted := r.Float64() < 1/(1+math.Exp(-truth))
	pred := 0
	if proba >= 0.5 {
		pred = 1
	}
	return event{
		EventID:      strconv.FormatUint(r.Uint64(), 36),
		TS:           now.UTC(),
		Model:        "car-loan",
		ModelVersion: "3.2.0",
		Features: map[string]any{
			"car_value":               math.Round(carValue),
			"salary_range":            salary,
			"debt_to_income_ratio":    dti,
			"loan_length":             loanLength,
			"repaid_loan_on_prev_car": repaidPrev,
			"driver_tenure":           tenure,
		},
		Prediction: map[string]any{"y_pred_proba": math.Round(proba*100) / 100, "y_pred": pred},
		LatencyMS:  g.latency(now),
	}, defaulted
}

func pick(r *rand.Rand, shares []float64) int {
	u := r.Float64()
	for i, s := range shares {
		if u < s {
			return i
		}
		u -= s
	}
	return len(shares) - 1
}

// run sends rate events per second in ten small bursts a second until ctx is done.
func (g *generator) run(ctx context.Context) error {
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	perTick := max(1, g.rate/10)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			g.buf = g.buf[:0]
			shifted := !now.Before(g.shiftAt)
			for i := 0; i < perTick; i++ {
				ev, defaulted := g.event(now, shifted)
				b, err := json.Marshal(ev)
				if err != nil {
					return fmt.Errorf("cannot encode event: %w", err)
				}
				g.buf = append(g.buf, kafka.Message{Value: b})
				if g.labels != nil {
					at := now.Add(g.labelDelay + time.Duration(g.rng.Float64()*float64(3*g.labelDelay)))
					l, _ := json.Marshal(outcome{EventID: ev.EventID, TS: at.UTC(), Defaulted: map[bool]int{true: 1}[defaulted]})
					g.due = append(g.due, dueLabel{at, kafka.Message{Key: []byte(ev.EventID), Value: l}})
				}
			}
			if err := g.w.WriteMessages(ctx, g.buf...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("cannot produce events: %w", err)
			}
			g.sent.Add(int64(len(g.buf)))
			if err := g.sendLabels(ctx, now); err != nil {
				return err
			}
		}
	}
}

// sendLabels sends the outcomes due by now, keyed by event id (one id's labels stay
// in order on one partition).
func (g *generator) sendLabels(ctx context.Context, now time.Time) error {
	if g.labels == nil {
		return nil
	}
	g.lbuf = g.lbuf[:0]
	kept := g.due[:0]
	for _, d := range g.due {
		if d.at.After(now) {
			kept = append(kept, d)
		} else {
			g.lbuf = append(g.lbuf, d.msg)
		}
	}
	g.due = kept
	if len(g.lbuf) == 0 {
		return nil
	}
	if err := g.labels.WriteMessages(ctx, g.lbuf...); err != nil && ctx.Err() == nil {
		return fmt.Errorf("cannot produce labels: %w", err)
	}
	return nil
}
