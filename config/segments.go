package config

import "strconv"

// Segment asks for drift per value of one categorical field (country, region,
// product line): each frequent value keeps a profile of its own, and the
// per-feature tests run on it too, inside the model's Benjamini–Hochberg
// family, so that a shift confined to a slice of the traffic, which the
// whole-traffic tests dilute, is found and named ("income in country=DE, 11%
// of rows").
type Segment struct {
	// By is a categorical feature or prediction of the stream whose values are
	// the segments. Required.
	By string `yaml:"by"`
	// Top is how many segments are judged: the values with the most rows in the
	// reference, among those that keep a profile. Default DefaultSegmentTop.
	Top int `yaml:"top"`
	// MaxValues bounds the values that keep a profile in each window and
	// reference (the rest are summarised together as "other"): the values with
	// the smallest hash, so that the choice does not depend on the order rows
	// arrive in (sketch.Segments). A key with at most this many values keeps
	// them all and Top picks the largest exactly; above it the kept values are a
	// sample. Default DefaultSegmentMaxValues, at least Top.
	MaxValues int `yaml:"max_values"`
}

// Defaults and bounds of Segment.
const (
	DefaultSegmentTop       = 20
	DefaultSegmentMaxValues = 256
	// MaxSegmentValues bounds max_values (sketch.SegmentMaxValuesLimit).
	MaxSegmentValues = 4096
	// MaxSegmentKeys bounds the keys of one stream: each costs a profile per
	// value on every row.
	MaxSegmentKeys = 4
)

func (s *Stream) setSegmentDefaults() {
	for i := range s.Segments {
		g := &s.Segments[i]
		if g.Top == 0 {
			g.Top = DefaultSegmentTop
		}
		if g.MaxValues == 0 {
			g.MaxValues = max(DefaultSegmentMaxValues, g.Top)
		}
	}
}

func (s *Stream) validateSegments(p string, bad func(string, string, ...any)) {
	if len(s.Segments) > MaxSegmentKeys {
		bad(p+".segments", "at most %d keys, got %d", MaxSegmentKeys, len(s.Segments))
	}
	seen := map[string]bool{}
	for i, g := range s.Segments {
		q := p + ".segments[" + strconv.Itoa(i) + "]"
		f, feature := s.Features[g.By]
		if !feature {
			f = s.Predictions[g.By]
		}
		switch _, prediction := s.Predictions[g.By]; {
		case g.By == "":
			bad(q+".by", "is required: the categorical feature whose values are the segments")
		case !feature && !prediction:
			bad(q+".by", "must name a feature or prediction of the stream, got %q", g.By)
		case f.Type != "categorical":
			bad(q+".by", "must name a categorical field, %q is %s", g.By, f.Type)
		case seen[g.By]:
			bad(q+".by", "%q is segmented twice", g.By)
		}
		seen[g.By] = true
		if g.Top < 1 {
			bad(q+".top", "must be at least 1, got %d", g.Top)
		}
		if g.MaxValues < g.Top || g.MaxValues > MaxSegmentValues {
			bad(q+".max_values", "must be between top (%d) and %d, got %d", g.Top, MaxSegmentValues, g.MaxValues)
		}
	}
}
