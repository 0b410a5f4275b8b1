package engine

import (
	"strings"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/sketch"
)

// chartBins is how many equal-width bins a numeric feature's chart has.
const chartBins = 16

// Distribution is what a chart draws of one feature of the window: shares per bin in
// the reference and in the window, or nil when there is nothing to draw. Numeric features get equal-width bins over both sides' p1..p99
// (outer bins open), so the picture is a true histogram; categorical ones their
// categories. It reads the profiles, so it runs on the stream's goroutine, while they
// are valid (see Result).
func (r Result) Distribution(feature string) *alerting.Distribution {
	ref, cur := r.ReferenceProfile, r.Profile
	if ref == nil || cur == nil {
		return nil
	}
	rf, cf := ref.Feature(feature), cur.Feature(feature)
	if rf == nil && cf == nil {
		rf, cf = segmentFeatures(ref, cur, feature)
	}
	if rf == nil || cf == nil {
		return nil
	}
	switch {
	case rf.Num != nil && cf.Num != nil:
		rn, cn := rf.Num, cf.Num
		if rn.Count() == 0 || cn.Count() == 0 {
			return nil
		}
		lo := min(rn.Quantile(0.01), cn.Quantile(0.01))
		hi := max(rn.Quantile(0.99), cn.Quantile(0.99))
		if !(hi > lo) {
			return nil
		}
		d := &alerting.Distribution{Edges: make([]float64, chartBins+1)}
		for i := range d.Edges {
			d.Edges[i] = lo + (hi-lo)*float64(i)/chartBins
		}
		share := func(n *sketch.Numeric) []float64 {
			out := make([]float64, chartBins)
			prev := 0.0
			for i := 1; i <= chartBins; i++ {
				c := 1.0
				if i < chartBins {
					c = n.CDF(d.Edges[i])
				}
				out[i-1] = max(0, c-prev)
				prev = c
			}
			return out
		}
		d.Reference, d.Current = share(rn), share(cn)
		return d
	case rf.Cat != nil && cf.Cat != nil:
		b := detectors.CategoricalBins(rf.Cat, cf.Cat)
		rt, ct := 0.0, 0.0
		for i := range b.Labels {
			rt += b.Ref[i]
			ct += b.Cur[i]
		}
		if rt == 0 || ct == 0 {
			return nil
		}
		d := &alerting.Distribution{Labels: b.Labels}
		for i := range b.Labels {
			d.Reference = append(d.Reference, b.Ref[i]/rt)
			d.Current = append(d.Current, b.Cur[i]/ct)
		}
		return d
	}
	return nil
}

// segmentFeatures finds a segment finding's feature (detectors.SegmentName:
// "income@country=DE") in the segments of both profiles.
func segmentFeatures(ref, cur *sketch.Profile, name string) (rf, cf *sketch.Feature) {
	feature, segment, ok := strings.Cut(name, "@")
	by, value, ok2 := strings.Cut(segment, "=")
	if !ok || !ok2 {
		return nil, nil
	}
	rs, cs := ref.SegmentsBy(by), cur.SegmentsBy(by)
	if rs == nil || cs == nil {
		return nil, nil
	}
	rp, cp := rs.Profile(value), cs.Profile(value)
	if rp == nil || cp == nil {
		return nil, nil
	}
	return rp.Feature(feature), cp.Feature(feature)
}
