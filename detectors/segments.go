package detectors

import (
	"strings"

	"github.com/driftmon/driftmon/sketch"
)

// Segment asks Evaluate to judge the per-value profiles a profile keeps for a
// categorical field (sketch.Segments): the Top values with the most rows in the
// reference. Ranking by the reference keeps the judged segments the same from
// window to window (a segment needs a reference to be compared with anyway),
// and a value new in the window is a move of the key's own distribution, which
// the whole traffic's categorical test sees.
type Segment struct {
	By  string
	Top int
}

// SegmentName is the Feature of a finding about feature within segment (a
// "key=value" string): "income@country=DE". Alert identities, metrics and the
// API tell it from the whole traffic's finding by it.
func SegmentName(feature, segment string) string { return feature + "@" + segment }

// SegmentsFeature is the Feature of the finding, of KindSegments, that says a
// key's segments could not be judged at all: "(segments by country)".
func SegmentsFeature(by string) string { return "(segments by " + by + ")" }

// KindSegments and DetectorSegments are the Kind and Detector of that finding;
// it is never drift, only insufficient data with a note saying why.
const (
	KindSegments     = "segments"
	DetectorSegments = "segments"
)

// segmentFindings judges every feature of each of the Top segments of each key
// that both profiles segment by, as Evaluate judges the whole traffic's, and
// returns the findings that have enough data, to be decided in the same
// Benjamini–Hochberg family as the whole traffic's: more segments then mean
// more tests in the family, not more false alarms. A segment with too few
// rows on either side gives no finding at all (a window of twenty small
// segments would otherwise list hundreds of insufficient ones).
//
// The per-segment detectors are the per-feature tests (KS with the Wasserstein
// floor for numeric features, chi-square with PSI and TVD for categorical
// ones): segment profiles carry no joint sketch or pair grids (sketch.Segments
// says why), and the data-quality checks stay on the whole traffic.
func segmentFindings(ref, cur *sketch.Profile, opts Options) []Finding {
	if ref == nil || cur == nil {
		return nil
	}
	var out []Finding
	for _, g := range opts.Segments {
		rs, cs := ref.SegmentsBy(g.By), cur.SegmentsBy(g.By)
		if cs == nil {
			continue
		}
		if rs == nil {
			// Say so: a reference made or handed over without these segments
			// would otherwise leave them unjudged without a word.
			out = append(out, Finding{Feature: SegmentsFeature(g.By), Kind: KindSegments, Detector: DetectorSegments,
				PValue: 1, AdjustedP: 1, Verdict: InsufficientData,
				Note: "the reference has no segments by " + g.By + " (made before they were configured, or handed over without them): rebuild it with driftmon baseline"})
			continue
		}
		for _, v := range rs.Top(g.Top) {
			rp, cp := rs.Profile(v), cs.Profile(v)
			if cp == nil || cp.Rows == 0 {
				continue
			}
			segment := g.By + "=" + v
			share := float64(cp.Rows) / float64(max(1, cur.Rows))
			for _, cf := range cp.Features {
				f := evaluateFeature(rp.Feature(cf.Name), cf, opts)
				if f.Verdict == InsufficientData {
					continue
				}
				f.Feature, f.Segment, f.SegmentShare = SegmentName(cf.Name, segment), segment, share
				out = append(out, f)
			}
		}
	}
	return out
}

// markSegmentOnly sets SegmentOnly on the segment findings that drifted while
// the whole traffic's finding of their feature did not.
func markSegmentOnly(fs []Finding) {
	whole := map[string]bool{}
	for _, f := range fs {
		if f.Segment == "" && f.Verdict == Drift {
			whole[f.Feature] = true
		}
	}
	for i := range fs {
		f := &fs[i]
		if f.Segment != "" && f.Verdict == Drift {
			f.SegmentOnly = !whole[f.BaseFeature()]
		}
	}
}

// BaseFeature is the feature a finding is about: Feature without its segment.
func (f Finding) BaseFeature() string {
	if f.Segment == "" {
		return f.Feature
	}
	return strings.TrimSuffix(f.Feature, "@"+f.Segment)
}
