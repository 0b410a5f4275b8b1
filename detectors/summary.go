package detectors

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Summary returns one line a person can act on, saying how the feature
// moved without repeating the primary score (alerts print Detector, Score
// and p-value next to it), e.g.
//
//	p50 21.9k → 43.8k, mean 29.6k → 47.1k (PSI 1.84)
//	'60K+ €' 10.1% → 1.0%, '20K - 40K €' 25.0% → 31.2%
//
// Numeric features give the median and mean, the p5/p95 range when its
// width changed by 20% or more, and PSI in parentheses; categorical ones
// the one or two categories whose shares moved most (the second only when
// it moved at least a third as much as the first). Both add the null
// rate when it changed by a percentage point or more.
func (f Finding) Summary() string {
	if f.Verdict == InsufficientData {
		if f.Note != "" {
			return "insufficient data: " + f.Note
		}
		return "insufficient data"
	}
	if f.Segment != "" {
		return f.segmentSummary()
	}
	e := f.Explanation
	switch f.Kind {
	case KindMultivariate:
		return multivariateSummary(e)
	case KindJoint:
		return jointSummary(e)
	}
	var parts []string
	nullShown := false
	if f.Kind == "categorical" {
		for i, t := range e.Top {
			if i == 2 || i == 1 && math.Abs(t.CurShare-t.RefShare) < math.Abs(e.Top[0].CurShare-e.Top[0].RefShare)/3 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %s → %s", quoteLabel(t.Label), Percent(t.RefShare), Percent(t.CurShare)))
			nullShown = nullShown || t.Label == LabelNull
		}
	} else {
		parts = append(parts,
			fmt.Sprintf("p50 %s → %s", Compact(e.RefP50), Compact(e.CurP50)),
			fmt.Sprintf("mean %s → %s", Compact(e.RefMean), Compact(e.CurMean)))
		if w0, w1 := e.RefP95-e.RefP5, e.CurP95-e.CurP5; w0 > 0 && math.Abs(w1/w0-1) >= 0.2 {
			parts = append(parts, fmt.Sprintf("p5/p95 %s/%s → %s/%s", Compact(e.RefP5), Compact(e.RefP95), Compact(e.CurP5), Compact(e.CurP95)))
		}
	}
	if !nullShown && math.Abs(e.CurNullRate-e.RefNullRate) >= 0.01 {
		parts = append(parts, fmt.Sprintf("nulls %s → %s", Percent(e.RefNullRate), Percent(e.CurNullRate)))
	}
	s := strings.Join(parts, ", ")
	if f.Kind != "categorical" {
		s += " (PSI " + Score(f.PSI) + ")"
	}
	return s
}

func quoteLabel(l string) string {
	if l == LabelNull || l == LabelOther || l == LabelRare {
		return l
	}
	return "'" + l + "'"
}

// Percent formats a share as "10.0%".
func Percent(share float64) string {
	return strconv.FormatFloat(share*100, 'f', 1, 64) + "%"
}

// Score formats a score with two decimals ("0.43"), or two significant
// digits below 0.01 ("0.0012").
func Score(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Compact formats a value with three significant digits and a k/M/B/T
// suffix: 29600 → "29.6k", 1200000 → "1.2M", 0.13 → "0.13", 7 → "7".
func Compact(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	suffixes := []string{"", "k", "M", "B", "T"}
	a := math.Abs(v)
	i := 0
	for i < len(suffixes)-1 && a >= 999.5 {
		a /= 1000
		v /= 1000
		i++
	}
	if i == 0 && a != 0 && (a < 1e-3 || a >= 1e15) {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + suffixes[i]
}

// multivariateSummary says how the mean reconstruction error moved and along
// which components, e.g. "reconstruction error 0.2 → 1.8 (×9.0); PC2 (x +0.71,
// y −0.71) variance 0.2 → 1.8".
func multivariateSummary(e Explanation) string {
	s := fmt.Sprintf("reconstruction error %s → %s", Compact(e.RefMean), Compact(e.CurMean))
	if e.RefMean > 0 {
		s += fmt.Sprintf(" (×%.2g)", e.CurMean/e.RefMean)
	}
	for i, c := range e.Components {
		if i == 2 {
			break
		}
		s += fmt.Sprintf("; %s variance %s → %s", c.Label(), Compact(c.RefVariance), Compact(c.CurVariance))
	}
	return s
}

// segmentSummary is the summary of a segment's finding, which says where and
// how much of the traffic: "drift only in country=DE (11% of rows): income p50
// 41k → 55k, mean 40.2k → 54.9k (PSI 0.61)".
func (f Finding) segmentSummary() string {
	g := f
	g.Segment = ""
	where := "in "
	if f.SegmentOnly {
		where = "drift only in "
	}
	return where + f.Segment + " (" + Percent(f.SegmentShare) + " of rows): " + f.BaseFeature() + " " + g.Summary()
}
