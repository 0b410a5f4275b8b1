package detectors

import (
	"fmt"
	"math"
	"time"

	"github.com/driftmon/driftmon/sketch"
)

// The statistics an objective bounds (Objective.Stat); config.Objective documents each.
const (
	StatValue         = "value"
	StatQuantile      = "quantile"
	StatMean          = "mean"
	StatNullShare     = "null_share"
	StatInvalidShare  = "invalid_share"
	StatDistinct      = "distinct"
	StatShare         = "share"
	StatRows          = "rows"
	StatRowsPerMinute = "rows_per_minute"
)

// Verdicts of objectives; InsufficientData is shared with drift.
const (
	// Breached: the statistic is outside a bound by more than its sketch error.
	Breached Verdict = "breached"
	// Met: the statistic is inside its bounds by more than its sketch error.
	Met Verdict = "met"
	// WithinError: a bound lies within the statistic's sketch error band, so the
	// sketch cannot tell which side the window is on; it is not a breach.
	WithinError Verdict = "within_sketch_error"
)

// Objective is a fixed bound on one statistic of one field of a window (or of the
// window's rows), e.g. p99 latency ≤ 250 ms.
//
// Objectives are judged apart from the drift and data-quality findings and never join
// their Benjamini–Hochberg family: a bound a person set is not a hypothesis about
// noise. The window either is outside it or not; there is no null distribution to
// control a false discovery rate over, and putting their (non-existent) p-values among
// the features' would change which features drift. What an objective does allow for
// is the sketch's own error (see EvaluateObjectives).
type Objective struct {
	// Name identifies the objective, e.g. "latency_ms p99".
	Name string
	// Field is the feature's name; "" for rows and rows_per_minute.
	Field string
	// Stat is one of the Stat constants.
	Stat string
	// Quantile is the rank of StatQuantile, in (0, 1).
	Quantile float64
	// Category is the category of StatShare.
	Category string
	// Min and Max bound the statistic, both included; ±Inf (or NaN) for an open end.
	Min, Max float64
	// Unit is printed after values of the field, e.g. "ms".
	Unit string
}

// ObjectiveFinding is how one window fared against one objective.
type ObjectiveFinding struct {
	// Name, Field, Stat and Unit are the objective's.
	Name, Field, Stat, Unit string
	// Verdict is Breached, Met, WithinError or InsufficientData.
	Verdict Verdict
	// Value is the statistic's estimate; Low and High bound its sketch error band
	// (equal to Value where the sketch is exact). For StatValue, Low and High are the
	// window's exact min and max, and Value the one outside (or nearest) a bound.
	Value, Low, High float64
	// RankError is the rank error allowance of a t-digest quantile (0 when exact).
	RankError float64
	// Min and Max are the objective's bounds (±Inf when open).
	Min, Max float64
	// Values is how many values the statistic is over (rows for the row statistics).
	Values int64
	// Rule says in words what was judged, e.g. "objective breached: latency_ms p99
	// 312 ms > 250 ms (sketch error band 309–316 ms)".
	Rule string
	// Summary is the statistic against its bounds in a few words, the Rule without
	// its verdict and name, e.g. "312 ms > 250 ms (sketch error band 309–316 ms)";
	// empty without a verdict.
	Summary string
	// Note says why a finding is insufficient_data.
	Note string
}

// Bound is the bound the finding is about: the one breached or, when none is, the
// one the statistic is nearest to (Max when both are open to that side).
func (f ObjectiveFinding) Bound() float64 {
	switch {
	case isOpen(f.Max):
		return f.Min
	case isOpen(f.Min):
		return f.Max
	case f.Value < f.Min || (f.Value <= f.Max && f.Value-f.Min < f.Max-f.Value):
		return f.Min
	}
	return f.Max
}

func isOpen(b float64) bool { return math.IsNaN(b) || math.IsInf(b, 0) }

// hllRelativeError is three standard errors of sketch.Categorical's HyperLogLog
// distinct count at precision 14 (1.04/√2¹⁴ ≈ 0.8% each): the band of a distinct
// count once some categories went to "other".
const hllRelativeError = 3 * 1.04 / 128

// QuantileRankError is the rank error allowance of n's q-quantile: 0 when n keeps
// exact value counts; for a t-digest, the largest weight, as a share of the values,
// of the centroid that holds rank q and its two neighbours.
//
// Why that much: the digest knows of a centroid only its mean and weight, so the
// values it stands for may lie anywhere between its neighbours' means; the
// interpolated CDF at any point is then off by at most the weight of the centroid the
// point falls in plus half of each neighbour's (their values can straddle it), which
// the largest of the three bounds. The scale function keeps centroids small in the
// tails (a p99 centroid holds about π·√(q(1−q))/compression of the values), so
// the allowance is tight where latency objectives look. TestQuantileRankError checks
// it against the exact quantiles of raw samples, merged digests included.
func QuantileRankError(n *sketch.Numeric, q float64) float64 {
	if n.IsExact() || n.Count() == 0 {
		return 0
	}
	cs := n.Centroids()
	var total float64
	for _, c := range cs {
		total += c.Weight
	}
	t := q * total
	var cum float64
	i := 0
	for ; i < len(cs)-1; i++ {
		if cum+cs[i].Weight >= t {
			break
		}
		cum += cs[i].Weight
	}
	w := cs[i].Weight
	if i > 0 {
		w = math.Max(w, cs[i-1].Weight)
	}
	if i+1 < len(cs) {
		w = math.Max(w, cs[i+1].Weight)
	}
	return w / total
}

// EvaluateObjectives judges a window's profile against each objective, in order.
// window is the window's length (event-time windows; 0 for count windows, whose row
// statistics are then insufficient_data). partial says the window may hold only part
// of its traffic (a model's first event-time window: the traffic, or the monitor,
// started within it), so its row statistics are not judged either.
//
// A statistic the sketch keeps exactly (min, max, counts, shares, rows, a quantile
// while the feature has at most sketch.Options.MaxExact distinct values, a
// categorical distinct count while no category went to "other") is compared with
// its bounds as it is. A t-digest quantile is compared through its error band
// [Quantile(q−ε), Quantile(q+ε)] with ε = QuantileRankError, and a HyperLogLog
// distinct count through ±3 standard errors: a bound inside the band gives
// WithinError, not a breach. That keeps a verdict from flipping on the sketch's own
// noise: after a kill -9, or in a cluster, the same events reach a digest in another
// order and its quantiles move a little (within the band); only a bound within that
// little of the band's edge can still change sides.
//
// The mean is a sum, exact up to floating-point rounding; a bound at the mean itself
// is taken as met.
func EvaluateObjectives(p *sketch.Profile, objs []Objective, window time.Duration, partial bool) []ObjectiveFinding {
	if len(objs) == 0 || p == nil {
		return nil
	}
	out := make([]ObjectiveFinding, 0, len(objs))
	for _, o := range objs {
		out = append(out, evaluateObjective(p, o, window, partial))
	}
	return out
}

func evaluateObjective(p *sketch.Profile, o Objective, window time.Duration, partial bool) ObjectiveFinding {
	f := ObjectiveFinding{Name: o.Name, Field: o.Field, Stat: o.Stat, Unit: o.Unit,
		Min: o.Min, Max: o.Max, Value: math.NaN(), Low: math.NaN(), High: math.NaN()}
	if math.IsNaN(f.Min) {
		f.Min = math.Inf(-1)
	}
	if math.IsNaN(f.Max) {
		f.Max = math.Inf(1)
	}
	insufficient := func(note string) ObjectiveFinding {
		f.Verdict, f.Note = InsufficientData, note
		f.Rule = "objective " + o.Name + ": no verdict, " + note
		return f
	}
	exact := func(v float64) { f.Value, f.Low, f.High = v, v, v }
	switch o.Stat {
	case StatRows, StatRowsPerMinute:
		f.Values = p.Rows
		switch {
		case o.Stat == StatRowsPerMinute && window <= 0:
			return insufficient("count windows have no rate")
		case partial:
			return insufficient("first window: traffic may have started within it")
		case o.Stat == StatRows:
			exact(float64(p.Rows))
		default:
			exact(float64(p.Rows) / window.Minutes())
		}
		return judgeObjective(f, o)
	}
	feat := p.Feature(o.Field)
	if feat == nil {
		return insufficient("field " + o.Field + " not in the window")
	}
	switch o.Stat {
	case StatNullShare, StatInvalidShare:
		total := feat.Total() + feat.TypeErrors
		f.Values = total
		if total == 0 {
			return insufficient("no values")
		}
		bad := feat.Nulls()
		if o.Stat == StatInvalidShare {
			bad = feat.TypeErrors
			if feat.Num != nil {
				bad += feat.Num.NaNs() + feat.Num.Infs()
			}
		}
		exact(float64(bad) / float64(total))
		return judgeObjective(f, o)
	case StatDistinct, StatShare:
		c := feat.Cat
		if c == nil {
			return insufficient("field " + o.Field + " is not categorical")
		}
		f.Values = c.Count()
		if c.Count() == 0 {
			return insufficient("no non-null values")
		}
		if o.Stat == StatDistinct {
			d := c.Distinct()
			exact(d)
			if c.Other() > 0 {
				f.Low, f.High = math.Max(float64(c.Len()), d*(1-hllRelativeError)), d*(1+hllRelativeError)
			}
			return judgeObjective(f, o)
		}
		n := float64(c.Count())
		exact(float64(c.CountOf(o.Category)) / n)
		if c.CountOf(o.Category) == 0 && c.Other() > 0 {
			// Unseen, or counted among "other" once the exact counts were full.
			f.High = float64(c.Other()) / n
		}
		return judgeObjective(f, o)
	}
	num := feat.Num
	if num == nil {
		return insufficient("field " + o.Field + " is not numeric")
	}
	f.Values = num.Count()
	if num.Count() == 0 {
		return insufficient("no finite values")
	}
	switch o.Stat {
	case StatValue:
		f.Low, f.High = num.Min(), num.Max()
		f.Value = f.High
		if isOpen(f.Max) {
			f.Value = f.Low
		}
	case StatMean:
		exact(num.Mean())
	case StatQuantile:
		eps := QuantileRankError(num, o.Quantile)
		f.RankError = eps
		f.Value = num.Quantile(o.Quantile)
		f.Low = num.Quantile(math.Max(0, o.Quantile-eps))
		f.High = num.Quantile(math.Min(1, o.Quantile+eps))
	default:
		return insufficient("unknown statistic " + o.Stat)
	}
	return judgeObjective(f, o)
}

// judgeObjective decides f from its band [Low, High] (for StatValue: min and max):
// breached when the band is wholly beyond a bound, met when it is wholly within
// both, within sketch error otherwise.
func judgeObjective(f ObjectiveFinding, o Objective) ObjectiveFinding {
	name := o.Name
	lo, hi := f.Low, f.High
	if o.Stat == StatValue {
		// Every value must be within the bounds: the exact max against Max, the
		// exact min against Min.
		lo, hi = f.High, f.Low
		if f.High > f.Max {
			f.Value = f.High
		} else if f.Low < f.Min {
			f.Value = f.Low
		}
	}
	var verdict string
	switch {
	case lo > f.Max:
		f.Verdict, verdict = Breached, "objective breached"
		f.Summary = f.format(f.Value) + " > " + f.format(f.Max) + f.band()
	case hi < f.Min:
		f.Verdict, verdict = Breached, "objective breached"
		f.Summary = f.format(f.Value) + " < " + f.format(f.Min) + f.band()
	case lo >= f.Min && hi <= f.Max || o.Stat == StatValue:
		f.Verdict, verdict = Met, "objective met"
		f.Summary = f.format(f.Value) + " within " + f.bounds() + f.band()
	default:
		f.Verdict, verdict = WithinError, "within sketch error"
		f.Summary = f.format(f.Value) + f.band() + ", bound " + f.bounds()
	}
	f.Rule = verdict + ": " + name + " " + f.Summary
	return f
}

// bounds prints the objective's bounds: "≤ 250 ms", "≥ 0", "[0, 1]".
func (f ObjectiveFinding) bounds() string {
	switch {
	case isOpen(f.Min):
		return "≤ " + f.format(f.Max)
	case isOpen(f.Max):
		return "≥ " + f.format(f.Min)
	}
	return "[" + f.format(f.Min) + ", " + f.format(f.Max) + "]"
}

// band prints the sketch error band when there is one.
func (f ObjectiveFinding) band() string {
	switch {
	case f.Stat == StatValue:
		return " (values " + f.format(f.Low) + " to " + f.format(f.High) + ")"
	case f.Low == f.High:
		return ""
	case f.RankError > 0:
		return fmt.Sprintf(" (sketch error band %s–%s, rank ±%s)", f.format(f.Low), f.format(f.High), Percent(f.RankError))
	}
	return " (sketch error band " + f.format(f.Low) + "–" + f.format(f.High) + ")"
}

// format prints a value of the finding's statistic: shares as percentages, field
// values with their unit.
func (f ObjectiveFinding) format(v float64) string {
	switch f.Stat {
	case StatNullShare, StatInvalidShare, StatShare:
		return Percent(v)
	case StatValue, StatQuantile, StatMean:
		if f.Unit != "" {
			return Compact(v) + " " + f.Unit
		}
	}
	return Compact(v)
}
