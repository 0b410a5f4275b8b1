// Package report is what driftmon says about a window in JSON: a judged window
// (Window, made from an engine.Result by NewWindow) and a window's performance
// (PerformanceWindow, made from a labels.Result by NewPerformanceWindow), with JSON
// names and non-finite numbers as null (alerting.Number). It is the one projection of
// those results: the API serves it, the results file writes it a line each
// (internal/resultfile), and backtest prints it (internal/backtest), each adding only
// what is its own (a backtest's window number, the results file's kind).
//
// It imports the results it projects and alerting's number and alert ID, and nothing
// that runs: never internal/monitor, internal/httpapi or internal/state.
package report

import (
	"slices"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
)

// num is alerting.Number, the JSON number that is null when NaN or ±Inf, under a
// short name for the many fields below.
type num = alerting.Number

// Window is one judged window.
type Window struct {
	// ID equals the alert ID a drifting window gets (alerting.AlertID); empty, and
	// left out, when the window has no event-time bounds (a backtest of a file
	// without times).
	ID      string    `json:"id,omitempty"`
	Stream  string    `json:"stream"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Rows    int64     `json:"rows"`
	// Reference describes what the window was compared with; Warmup is true when
	// the window became part of the reference instead.
	Reference string    `json:"reference"`
	Warmup    bool      `json:"warmup"`
	Drifted   []string  `json:"drifted"`
	Findings  []Finding `json:"findings"`
	// Distributions has one entry per feature of the window, for the dashboard;
	// NewWindow leaves them out (nil, not encoded), Distributions makes them.
	Distributions []Distribution `json:"distributions,omitzero"`
	// Missing are, in a cluster, the partitions that were idle and had not closed
	// the window when the leader judged it.
	Missing []int32 `json:"missing_partitions,omitempty"`
	// Breached are the names of the objectives the window breached; Objectives every
	// objective's verdict. Left out when the stream has no objectives.
	Breached   []string    `json:"breached,omitempty"`
	Objectives []Objective `json:"objectives,omitempty"`
	// Latency is the model's inference latency and throughput in the window, from the
	// stream's latency_field; left out without one.
	Latency *Latency `json:"latency,omitempty"`
	// Quality are the data-quality checks the window failed (null, NaN and type-error
	// rates, out of range, new categories, distinct count, volume): what changed that
	// the drift tests of the values do not see. Left out when none failed.
	Quality []QualityCheck `json:"quality,omitempty"`
}

// QualityCheck is a failed detectors.QualityFinding with JSON names.
type QualityCheck struct {
	// Feature is empty for the window's volume.
	Feature string `json:"feature,omitempty"`
	Check   string `json:"check"`
	// Summary says what the check found, e.g. "null rate 0.2% → 8.1%".
	Summary string `json:"summary"`
	// Ref and Cur are what the check measures on each side, Score the effect compared
	// with Threshold (see detectors.QualityFinding); AdjustedP is the test's
	// Benjamini–Hochberg adjusted p-value, left out for checks decided by their
	// threshold alone.
	Ref       num  `json:"ref"`
	Cur       num  `json:"cur"`
	Score     num  `json:"score"`
	Threshold num  `json:"threshold"`
	AdjustedP *num `json:"adjusted_p_value,omitempty"`
}

// Latency is engine.Latency with JSON names and non-finite numbers as null.
type Latency struct {
	Field         string `json:"field"`
	P50           num    `json:"p50"`
	P95           num    `json:"p95"`
	P99           num    `json:"p99"`
	Max           num    `json:"max"`
	Values        int64  `json:"values"`
	RowsPerMinute num    `json:"rows_per_minute"`
}

// Objective is detectors.ObjectiveFinding with JSON names and non-finite numbers
// (an open bound, a statistic without data) as null.
type Objective struct {
	Name  string `json:"name"`
	Field string `json:"field,omitempty"`
	Stat  string `json:"stat"`
	Unit  string `json:"unit,omitempty"`
	// Verdict is breached, met, within_sketch_error or insufficient_data.
	Verdict string `json:"verdict"`
	// Value is the statistic; Low and High bound its sketch error band (for the value
	// statistic, the window's min and max). RankError is a t-digest quantile's rank
	// error allowance, 0 when exact.
	Value     num    `json:"value"`
	Low       num    `json:"low"`
	High      num    `json:"high"`
	RankError num    `json:"rank_error"`
	Min       num    `json:"min"`
	Max       num    `json:"max"`
	Values    int64  `json:"values"`
	Rule      string `json:"rule"`
	Note      string `json:"note,omitempty"`
}

func newObjective(f detectors.ObjectiveFinding) Objective {
	return Objective{Name: f.Name, Field: f.Field, Stat: f.Stat, Unit: f.Unit, Verdict: string(f.Verdict),
		Value: num(f.Value), Low: num(f.Low), High: num(f.High), RankError: num(f.RankError),
		Min: num(f.Min), Max: num(f.Max), Values: f.Values, Rule: f.Rule, Note: f.Note}
}

// Finding is detectors.Finding with JSON names, non-finite numbers as null and the
// one-line summary alerts use.
type Finding struct {
	Feature      string `json:"feature"`
	Kind         string `json:"kind"`
	Detector     string `json:"detector"`
	Score        num    `json:"score"`
	Threshold    num    `json:"threshold"`
	PValue       num    `json:"p_value"`
	AdjustedP    num    `json:"adjusted_p_value"`
	Verdict      string `json:"verdict"`
	PSI          num    `json:"psi"`
	PSIThreshold num    `json:"psi_threshold"`
	RefRows      int64  `json:"ref_rows"`
	CurRows      int64  `json:"cur_rows"`
	// Scores are every statistic computed, by name; encoding/json writes a map's
	// keys sorted, so equal findings encode to equal bytes.
	Scores map[string]num `json:"scores"`
	// Effects are the effect sizes the verdict looked at, each with its lower
	// confidence bound and minimum; Rule says which rule decided.
	Effects     []Effect    `json:"effects"`
	Rule        string      `json:"rule"`
	Note        string      `json:"note,omitempty"`
	Summary     string      `json:"summary"`
	Explanation Explanation `json:"explanation"`
	// Segment, for a finding about one segment's rows, is the segment as key=value
	// ("country=DE"; Feature is then "income@country=DE"), SegmentShare its share of
	// the window's rows and SegmentOnly whether it drifted while the whole traffic's
	// finding of the feature did not. Absent for the whole traffic.
	Segment      string `json:"segment,omitempty"`
	SegmentShare num    `json:"segment_share,omitempty"`
	SegmentOnly  bool   `json:"segment_only,omitempty"`
}

// Effect is detectors.Effect with non-finite numbers as null.
type Effect struct {
	Statistic  string `json:"statistic"`
	Value      num    `json:"value"`
	LowerBound num    `json:"lower_bound"`
	Min        num    `json:"min"`
	Reached    bool   `json:"reached"`
}

// Explanation is detectors.Explanation with JSON names.
type Explanation struct {
	RefP5       num        `json:"ref_p5"`
	RefP50      num        `json:"ref_p50"`
	RefP95      num        `json:"ref_p95"`
	CurP5       num        `json:"cur_p5"`
	CurP50      num        `json:"cur_p50"`
	CurP95      num        `json:"cur_p95"`
	RefMean     num        `json:"ref_mean"`
	CurMean     num        `json:"cur_mean"`
	RefNullRate num        `json:"ref_null_rate"`
	CurNullRate num        `json:"cur_null_rate"`
	Top         []BinShift `json:"top"`
	// Components are the multivariate finding's principal components that moved
	// most; empty for a feature.
	Components []Component `json:"components"`
	// Pairs are the joint finding's pairs whose association moved, each with its
	// grid on both sides; absent for a feature.
	Pairs []PairGrid `json:"pairs,omitempty"`
}

// PairGrid is detectors.PairShift with JSON names: one pair of features and its
// k×k grid on the reference's quantiles, on each side.
type PairGrid struct {
	X         string     `json:"x"`
	Y         string     `json:"y"`
	XEdges    []num      `json:"x_edges"`
	YEdges    []num      `json:"y_edges"`
	Ref       [][]num    `json:"ref"`
	Cur       [][]num    `json:"cur"`
	RefRows   int64      `json:"ref_rows"`
	CurRows   int64      `json:"cur_rows"`
	Statistic num        `json:"statistic"`
	DF        num        `json:"df"`
	PValue    num        `json:"p_value"`
	AdjustedP num        `json:"adjusted_p"`
	Effect    Effect     `json:"effect"`
	Top       []BinShift `json:"top"`
}

func pairGridOf(p detectors.PairShift) PairGrid {
	nums := func(v []float64) []num {
		out := make([]num, len(v))
		for i, x := range v {
			out[i] = num(x)
		}
		return out
	}
	g := PairGrid{X: p.X, Y: p.Y, XEdges: nums(p.XEdges), YEdges: nums(p.YEdges), RefRows: p.RefRows, CurRows: p.CurRows,
		Statistic: num(p.Statistic), DF: num(p.DF), PValue: num(p.PValue), AdjustedP: num(p.AdjustedP),
		Effect: Effect{Statistic: p.Effect.Statistic, Value: num(p.Effect.Value), LowerBound: num(p.Effect.Lower), Min: num(p.Effect.Min), Reached: p.Effect.Reached()},
		Top:    make([]BinShift, len(p.Top))}
	for _, row := range p.Ref {
		g.Ref = append(g.Ref, nums(row))
	}
	for _, row := range p.Cur {
		g.Cur = append(g.Cur, nums(row))
	}
	for i, b := range p.Top {
		g.Top[i] = BinShift{Label: b.Label, RefShare: num(b.RefShare), CurShare: num(b.CurShare), Contribution: num(b.Contribution)}
	}
	return g
}

// Component is detectors.Component with JSON names.
type Component struct {
	Label       string `json:"label"`
	Kept        bool   `json:"kept"`
	RefVariance num    `json:"ref_variance"`
	CurVariance num    `json:"cur_variance"`
}

// BinShift is one of the bins or categories contributing most to PSI.
type BinShift struct {
	Label        string `json:"label"`
	RefShare     num    `json:"ref_share"`
	CurShare     num    `json:"cur_share"`
	Contribution num    `json:"contribution"`
}

// NewWindow is what r showed, without distributions. It copies everything it
// keeps, so r's findings may change afterwards; it does not read r's profiles.
func NewWindow(r engine.Result) Window {
	w := Window{
		ID:     alerting.AlertID(r.Stream, r.Model, r.ModelVersion, r.Start),
		Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		Start: r.Start, End: r.End, Rows: r.Rows,
		Reference: r.Reference, Warmup: r.Warmup,
		Drifted:  r.Drifted(),
		Findings: make([]Finding, len(r.Findings)),
		Missing:  slices.Clone(r.Missing),
	}
	if w.Drifted == nil {
		w.Drifted = []string{}
	}
	for i, f := range r.Findings {
		w.Findings[i] = newFinding(f)
	}
	if l := r.Latency; l != nil {
		w.Latency = &Latency{Field: l.Field, P50: num(l.P50), P95: num(l.P95), P99: num(l.P99), Max: num(l.Max),
			Values: l.Values, RowsPerMinute: num(l.RowsPerMinute)}
	}
	w.Breached = r.Breached()
	for _, f := range r.Objectives {
		w.Objectives = append(w.Objectives, newObjective(f))
	}
	for _, q := range r.Quality {
		if q.Verdict != detectors.Violation {
			continue
		}
		c := QualityCheck{Feature: q.Feature, Check: q.Check, Summary: q.Summary(),
			Ref: num(q.Ref), Cur: num(q.Cur), Score: num(q.Score), Threshold: num(q.Threshold)}
		if q.Tested {
			p := num(q.AdjustedP)
			c.AdjustedP = &p
		}
		w.Quality = append(w.Quality, c)
	}
	return w
}

func newFinding(f detectors.Finding) Finding {
	out := Finding{
		Feature: f.Feature, Kind: f.Kind, Detector: f.Detector,
		Score: num(f.Score), Threshold: num(f.Threshold),
		PValue: num(f.PValue), AdjustedP: num(f.AdjustedP),
		Verdict: string(f.Verdict),
		PSI:     num(f.PSI), PSIThreshold: num(f.PSIThreshold),
		RefRows: f.RefRows, CurRows: f.CurRows,
		Scores:  make(map[string]num, len(f.Scores)),
		Effects: make([]Effect, len(f.Effects)), Rule: f.Rule,
		Note: f.Note, Summary: f.Summary(),
		Segment: f.Segment, SegmentShare: num(f.SegmentShare), SegmentOnly: f.SegmentOnly,
	}
	for i, e := range f.Effects {
		out.Effects[i] = Effect{Statistic: e.Statistic, Value: num(e.Value), LowerBound: num(e.Lower), Min: num(e.Min), Reached: e.Reached()}
	}
	for k, v := range f.Scores {
		out.Scores[k] = num(v)
	}
	e := f.Explanation
	out.Explanation = Explanation{
		RefP5: num(e.RefP5), RefP50: num(e.RefP50), RefP95: num(e.RefP95),
		CurP5: num(e.CurP5), CurP50: num(e.CurP50), CurP95: num(e.CurP95),
		RefMean: num(e.RefMean), CurMean: num(e.CurMean),
		RefNullRate: num(e.RefNullRate), CurNullRate: num(e.CurNullRate),
		Top: make([]BinShift, len(e.Top)), Components: make([]Component, len(e.Components)),
	}
	for i, c := range e.Components {
		out.Explanation.Components[i] = Component{Label: c.Label(), Kept: c.Kept, RefVariance: num(c.RefVariance), CurVariance: num(c.CurVariance)}
	}
	for _, p := range e.Pairs {
		out.Explanation.Pairs = append(out.Explanation.Pairs, pairGridOf(p))
	}
	for i, b := range e.Top {
		out.Explanation.Top[i] = BinShift{Label: b.Label, RefShare: num(b.RefShare), CurShare: num(b.CurShare), Contribution: num(b.Contribution)}
	}
	return out
}
