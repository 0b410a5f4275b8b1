package detectors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// TestEstimateTracksRealisedUnderCovariateShift draws outcomes y ~ Bernoulli(s) and gives
// the model a miscalibrated but monotone score s²; the reference windows are labelled,
// the current window's inputs shift (s ~ √U instead of U) with the score–outcome
// relation unchanged. The estimate from the current scores alone must be within 0.015
// of the accuracy, F1 and ROC AUC computed exactly from the window's raw labels (their
// own sampling noise is about 0.006), where the uncalibrated scores would be off by
// far more.
func TestEstimateTracksRealisedUnderCovariateShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var ref []*sketch.Performance
	for range 4 {
		p := sketch.NewPerformance(sketch.Classification, 0.5)
		for range 5000 {
			s := rng.Float64()
			p.AddClassification(s*s, rng.Float64() < s)
		}
		ref = append(ref, p)
	}
	reference := NewPerformanceReference(ref)
	for trial := range 3 {
		h := sketch.NewScoreHistogram()
		var scores []float64
		var labels []bool
		for range 5000 {
			s := math.Sqrt(rng.Float64())
			scores = append(scores, s*s)
			labels = append(labels, rng.Float64() < s)
			h.Add(s * s)
		}
		acc, f1, auc := exactClassification(scores, labels, 0.5)
		e := EstimatePerformance(h, reference, 0.5)
		if !e.Calibrated || e.N != 5000 {
			t.Fatalf("estimate %+v: want calibrated, 5000 scores", e)
		}
		for _, c := range []struct {
			name      string
			est, real float64
		}{{"accuracy", e.Accuracy, acc}, {"F1", e.F1, f1}, {"ROC AUC", e.ROCAUC, auc}} {
			if math.Abs(c.est-c.real) > 0.015 {
				t.Errorf("trial %d: estimated %s %.4f, realised %.4f", trial, c.name, c.est, c.real)
			}
		}
		raw := EstimatePerformance(h, nil, 0.5)
		if raw.Calibrated || math.Abs(raw.Accuracy-acc) < 0.03 {
			t.Errorf("uncalibrated accuracy %.4f (calibrated %v) should be far from the realised %.4f", raw.Accuracy, raw.Calibrated, acc)
		}
		t.Logf("trial %d: accuracy %.4f est %.4f (raw %.4f); F1 %.4f est %.4f; AUC %.4f est %.4f", trial,
			acc, e.Accuracy, raw.Accuracy, f1, e.F1, auc, e.ROCAUC)
	}
}

// exactClassification computes accuracy and F1 at threshold and the rank ROC AUC (ties
// ½) from raw scores and labels.
func exactClassification(scores []float64, labels []bool, threshold float64) (acc, f1, auc float64) {
	var tp, fp, tn, fn float64
	var pos, neg []float64
	for i, s := range scores {
		pred := s >= threshold
		switch {
		case pred && labels[i]:
			tp++
		case pred:
			fp++
		case labels[i]:
			fn++
		default:
			tn++
		}
		if labels[i] {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
	}
	sort.Float64s(neg)
	var wins float64
	for _, s := range pos {
		lo := sort.SearchFloat64s(neg, s)
		hi := sort.Search(len(neg), func(i int) bool { return neg[i] > s })
		wins += float64(lo) + float64(hi-lo)/2
	}
	precision, recall := tp/(tp+fp), tp/(tp+fn)
	return (tp + tn) / float64(len(scores)), 2 * precision * recall / (precision + recall), wins / float64(len(pos)*len(neg))
}
