package engine

import (
	"math"
	"time"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/sketch"
)

// Result is what one closed window showed.
type Result struct {
	Stream, Model, ModelVersion string
	Start, End                  time.Time
	Rows                        int64
	// Reference describes what the window was compared with. Warmup is true when the
	// window became (part of) the reference instead of being compared.
	Reference string
	Warmup    bool
	// firstWindow marks a model's first event-time window (Reference firstWindowNote),
	// which may hold only part of its traffic: its row objectives are not judged.
	firstWindow bool
	Findings    []detectors.Finding
	// Quality are the window's data-quality checks against the reference: null, NaN
	// and type-error rates, out-of-range and new-category shares, distinct counts, and
	// (event-time windows with a warm-up reference) volume.
	Quality []detectors.QualityFinding
	// Objectives are the window's objectives (config.Objective), judged from its own
	// profile: warm-up windows included, with or without a reference.
	Objectives []detectors.ObjectiveFinding
	// Latency is the model's inference latency and throughput in the window, from the
	// stream's latency_field; nil without one (or in a cluster worker's partial).
	Latency *Latency
	// Missing are, in a cluster, the partitions that were idle and had not closed the
	// window when the leader judged it: their rows, should they come, count as late.
	Missing []int32
	// Profile and ReferenceProfile are the window's and the reference's sketches, for
	// OnWindow callbacks that draw distributions. They are valid only during the
	// callback; ReferenceProfile is nil for warm-up windows.
	Profile, ReferenceProfile *sketch.Profile
}

// Drifted is the names of the features that drifted, in feature order.
func (r Result) Drifted() []string {
	return namesOf(r.Findings, func(f detectors.Finding) (string, bool) { return f.Feature, f.Verdict == detectors.Drift })
}

// Violations is the summaries of the data-quality checks the window failed.
func (r Result) Violations() []string {
	return namesOf(r.Quality, func(q detectors.QualityFinding) (string, bool) {
		if q.Verdict != detectors.Violation {
			return "", false // no summary made for a check that passed
		}
		return q.Summary(), true
	})
}

// Breached is the names of the objectives the window breached, in config order.
func (r Result) Breached() []string {
	return namesOf(r.Objectives, func(o detectors.ObjectiveFinding) (string, bool) { return o.Name, o.Verdict == detectors.Breached })
}

// namesOf is what name says of each of xs it keeps, in order; nil when it keeps none.
func namesOf[T any](xs []T, name func(T) (string, bool)) []string {
	var out []string
	for _, x := range xs {
		if n, ok := name(x); ok {
			out = append(out, n)
		}
	}
	return out
}

// Latency is a window's inference latency (quantiles of the stream's latency field)
// and throughput, for the dashboard's latency panel. Quantiles are NaN when the window
// holds no finite latency; RowsPerMinute is NaN for count windows.
type Latency struct {
	Field              string
	P50, P95, P99, Max float64
	// Values is how many finite latencies the quantiles are of.
	Values        int64
	RowsPerMinute float64
}

// latencyOf summarises the latency field of a closed window's profile.
func latencyOf(p *sketch.Profile, field string, size time.Duration) *Latency {
	f := p.Feature(field)
	if field == "" || f == nil || f.Num == nil {
		return nil
	}
	l := &Latency{Field: field, P50: f.Num.Quantile(0.5), P95: f.Num.Quantile(0.95), P99: f.Num.Quantile(0.99),
		Max: math.NaN(), Values: f.Num.Count(), RowsPerMinute: math.NaN()}
	if f.Num.Count() > 0 {
		l.Max = f.Num.Max()
	}
	if size > 0 {
		l.RowsPerMinute = float64(p.Rows) / size.Minutes()
	}
	return l
}
