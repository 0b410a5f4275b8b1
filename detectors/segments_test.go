package detectors

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// segmentColumns draws n rows from 20 countries of equal share: four numeric
// features whose means and spreads depend on the country, and a categorical
// one whose shares do, as real segments differ from each other without drift.
func segmentColumns(r *rand.Rand, n int) []column {
	cols := []column{{name: "country", cat: make([]string, n)}, {name: "term", cat: make([]string, n)}}
	for j := range 4 {
		cols = append(cols, column{name: fmt.Sprint("x", j), num: make([]float64, n)})
	}
	for i := range n {
		c := r.IntN(20)
		cols[0].cat[i] = fmt.Sprintf("c%02d", c)
		cols[1].cat[i] = []string{"12", "24", "36"}[min(2, r.IntN(3+c%3))]
		for j := range 4 {
			cols[2+j].num[i] = float64(c*j)/10 + (1+float64(c%4)/4)*r.NormFloat64()
		}
	}
	return cols
}

// TestSegmentsNoDriftFalseAlarms: on null data with 20 segments the share of
// windows with any drift finding (the whole traffic's or a segment's) stays
// within the FDR, because the segments' tests join the model's one
// Benjamini–Hochberg family; judged as a family of their own, each segment
// would add its own false alarms (measured beside it).
func TestSegmentsNoDriftFalseAlarms(t *testing.T) {
	trials, assert := trialsFor(t, 500)
	r := rand.New(rand.NewPCG(23, 20))
	sopts := sketch.Options{GridPairs: -1, Segments: []sketch.SegmentKey{{By: "country", MaxValues: 256}}}
	opts := Options{Segments: []Segment{{By: "country", Top: 20}}}
	var flagged, flaggedSegment, flaggedSeparate, judged int
	for trial := range trials {
		ref := profileOf(t, segmentColumns(r, 30000), sopts, 5000)
		cur := profileOf(t, segmentColumns(r, 4000), sopts, 1000)
		any, anySegment := false, false
		for _, f := range Evaluate(ref, cur, opts) {
			if f.Segment != "" {
				judged++
			}
			if f.Verdict == Drift {
				any, anySegment = true, anySegment || f.Segment != ""
				t.Logf("trial %d: false alarm %s: %s", trial, f.Feature, f.Rule)
			}
		}
		flagged += b2i(any)
		flaggedSegment += b2i(anySegment)
		// The same tests with a Benjamini–Hochberg family per segment.
		separate := false
		bySegment := map[string][]Finding{}
		for _, f := range segmentFindings(ref, cur, opts.withDefaults()) {
			bySegment[f.Segment] = append(bySegment[f.Segment], f)
		}
		for _, fs := range bySegment {
			decide(fs, opts.withDefaults())
			for _, f := range fs {
				separate = separate || f.Verdict == Drift
			}
		}
		flaggedSeparate += b2i(separate)
	}
	rate := float64(flagged) / float64(trials)
	t.Logf("%d trials, 20 segments, %.0f segment findings a window: windows with any drift %.3f (a segment's %.3f); with a family per segment a segment's would be %.3f",
		trials, float64(judged)/float64(trials), rate, float64(flaggedSegment)/float64(trials), float64(flaggedSeparate)/float64(trials))
	if judged < trials*20*5*9/10 {
		t.Fatalf("%d segment findings in %d trials: most segments were not judged", judged, trials)
	}
	if assert && rate > DefaultFDR+0.02 {
		t.Errorf("false alarm rate %.3f > %.3f", rate, DefaultFDR+0.02)
	}
}

// TestReferenceWithoutSegmentsSaysSo: a reference without a key's segments (made
// before they were configured, or handed over without them) gives one insufficient
// finding that says why, not silence; with them it gives none.
func TestReferenceWithoutSegmentsSaysSo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	sopts := sketch.Options{GridPairs: -1, Segments: []sketch.SegmentKey{{By: "country", MaxValues: 256}}}
	opts := Options{Segments: []Segment{{By: "country", Top: 20}}}
	plain := profileOf(t, segmentColumns(r, 5000), sketch.Options{GridPairs: -1}, 1000)
	segmented := profileOf(t, segmentColumns(r, 5000), sopts, 1000)
	cur := profileOf(t, segmentColumns(r, 4000), sopts, 1000)
	var notes []Finding
	for _, f := range Evaluate(plain, cur, opts) {
		if f.Kind == KindSegments {
			notes = append(notes, f)
		}
		if f.Segment != "" {
			t.Errorf("a segment judged against a reference without segments: %s", f.Feature)
		}
	}
	if len(notes) != 1 || notes[0].Feature != "(segments by country)" || notes[0].Verdict != InsufficientData ||
		notes[0].Note == "" {
		t.Fatalf("findings of kind segments %+v, want one insufficient (segments by country) with a note", notes)
	}
	for _, f := range Evaluate(segmented, cur, opts) {
		if f.Kind == KindSegments {
			t.Errorf("a reference with segments: %s %s", f.Feature, f.Note)
		}
	}
}
