package detectors

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Summary returns one line a person can act on, e.g.
// "p50 29.6k → 47.1k, KS 0.43" for a numeric feature or
// "'60K+ €' 10.0% → 1.0%, PSI 0.61" for a categorical one.
func (f Finding) Summary() string {
	if f.Verdict == InsufficientData {
		if f.Note != "" {
			return "insufficient data: " + f.Note
		}
		return "insufficient data"
	}
	e := f.Explanation
	var b strings.Builder
	if f.Kind == "categorical" {
		if len(e.Top) > 0 {
			t := e.Top[0]
			fmt.Fprintf(&b, "%s %s → %s, ", quoteLabel(t.Label), Percent(t.RefShare), Percent(t.CurShare))
		}
		fmt.Fprintf(&b, "PSI %s", Score(f.PSI))
	} else {
		if e.RefP50 != e.CurP50 || e.RefMean == e.CurMean {
			fmt.Fprintf(&b, "p50 %s → %s, ", Compact(e.RefP50), Compact(e.CurP50))
		} else {
			fmt.Fprintf(&b, "mean %s → %s, ", Compact(e.RefMean), Compact(e.CurMean))
		}
		fmt.Fprintf(&b, "KS %s", Score(f.Score))
		if f.PSI >= 0.1 {
			fmt.Fprintf(&b, ", PSI %s", Score(f.PSI))
		}
	}
	if math.Abs(e.CurNullRate-e.RefNullRate) >= 0.01 {
		fmt.Fprintf(&b, ", nulls %s → %s", Percent(e.RefNullRate), Percent(e.CurNullRate))
	}
	return b.String()
}

func quoteLabel(l string) string {
	if l == LabelNull || l == LabelOtherNew {
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
