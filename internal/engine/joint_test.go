package engine

import (
	"testing"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
)

// TestJointOptions: detectors.joint reaches the sketches (max_pairs: which pairs
// a window's grids count) and the detectors (min, grid), on by default; with disable
// there are neither grids nor a finding.
func TestJointOptions(t *testing.T) {
	stream := func(j config.Joint) *config.Stream {
		return &config.Stream{Name: "s", Window: config.Window{Rows: 10}, Features: map[string]config.Field{
			"a": {Type: "numeric"}, "b": {Type: "numeric"}, "c": {Type: "numeric"}, "d": {Type: "numeric"}},
			Detectors: config.Detectors{Joint: j}}
	}
	e, err := New(stream(config.Joint{MaxPairs: 3, Min: 0.3, Grid: 4}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := e.newProfile().Grid; g == nil || len(g.Pairs()) != 3 || len(g.Names) != 3 {
		t.Errorf("max_pairs 3: grid %v", g)
	}
	if o := e.DetectorOptions(); o.MinJoint != 0.3 || o.JointGrid != 4 {
		t.Errorf("detector options %+v", o)
	}
	e, err = New(stream(config.Joint{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := e.newProfile().Grid; g == nil || len(g.Pairs()) != 6 {
		t.Errorf("default max_pairs: grid %v, want all 6 pairs", g)
	}
	withGrids := e.newProfile()
	e, err = New(stream(config.Joint{Disable: true}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := e.newProfile().Grid; g != nil {
		t.Errorf("joint disabled: grid %v, want none (its cost saved)", g.Pairs())
	}
	for _, f := range detectors.Evaluate(withGrids, e.newProfile(), e.DetectorOptions()) {
		if f.Feature == detectors.FeatureJoint {
			t.Error("joint disabled: a (joint) finding")
		}
	}
}
