package report

import (
	"math"
	"testing"
)

// TestDistributions: every distribution's shares add up to 1 on each side; the
// shifted feature's current mass sits to the right of the reference's; the
// low-cardinality numeric gets one exact bar per value; the categorical one bar
// per category; warm-up windows have no reference side.
func TestDistributions(t *testing.T) {
	res := results(t, 1)
	shifted := res[len(res)-1]
	ds := Distributions(shifted.ReferenceProfile, shifted.Profile)
	if len(ds) != len(testFields) {
		t.Fatalf("%d distributions, want %d", len(ds), len(testFields))
	}
	byName := map[string]Distribution{}
	for _, d := range ds {
		byName[d.Feature] = d
		var ref, cur float64
		for _, b := range d.Bins {
			if b.Ref == nil {
				t.Fatalf("%s: bin %q without a reference share", d.Feature, b.Label)
			}
			ref += float64(*b.Ref)
			cur += float64(b.Cur)
		}
		if math.Abs(ref-1) > 1e-9 || math.Abs(cur-1) > 1e-9 {
			t.Errorf("%s: shares add up to ref %v, cur %v; want 1", d.Feature, ref, cur)
		}
	}

	income := byName[shiftedFeature]
	if income.Exact || len(income.Bins) != distBins {
		t.Errorf("income: exact %v, %d bins; want %d binned", income.Exact, len(income.Bins), distBins)
	}
	meanBin := func(d Distribution, ref bool) float64 {
		var m float64
		for i, b := range d.Bins {
			s := float64(b.Cur)
			if ref {
				s = float64(*b.Ref)
			}
			m += float64(i) * s
		}
		return m
	}
	if r, c := meanBin(income, true), meanBin(income, false); c-r < 3 {
		t.Errorf("income: mean bin ref %.1f, cur %.1f; want the current mass well to the right", r, c)
	}
	if r, c := meanBin(byName[stableFeature], true), meanBin(byName[stableFeature], false); math.Abs(c-r) > 1 {
		t.Errorf("age: mean bin ref %.1f, cur %.1f; want about equal", r, c)
	}

	tier := byName["tier"]
	if !tier.Exact || len(tier.Bins) != 5 || tier.Bins[0].Label != "0" || tier.Bins[4].Label != "4" {
		t.Errorf("tier: exact %v, bins %+v; want one bar per value 0..4", tier.Exact, tier.Bins)
	}

	seg := byName["segment"]
	if len(seg.Bins) != 3 || seg.Bins[0].Label != "retail" {
		t.Errorf("segment: bins %+v; want retail, smb, corporate", seg.Bins)
	}
	if s := float64(seg.CurNullShare); s < 0.01 || s > 0.04 {
		t.Errorf("segment: null share %v, want about 2%%", s)
	}

	warm := Distributions(nil, res[0].Profile)
	for _, d := range warm {
		if !math.IsNaN(float64(d.RefNullShare)) {
			t.Errorf("%s: warm-up reference null share %v, want none", d.Feature, d.RefNullShare)
		}
		for _, b := range d.Bins {
			if b.Ref != nil {
				t.Fatalf("%s: warm-up bin %q has a reference share", d.Feature, b.Label)
			}
		}
	}
}
