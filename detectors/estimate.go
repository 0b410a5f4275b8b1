package detectors

import (
	"math"

	"github.com/driftmon/driftmon/sketch"
)

// Estimate is a window's classification performance estimated from its scores alone,
// before (most of) its labels have come: confidence-based performance estimation
// (CBPE, as NannyML does it). The scores are first calibrated on the reference
// windows' labelled scores by isotonic regression over the score bins; each
// prediction then counts as a positive with its calibrated probability, and the
// metrics are their expected values. It holds while the relation between score and
// outcome stays what the reference showed (covariate shift); when the relation
// itself changes (concept drift), only the labels can tell, which is why the
// realised metrics are shown beside it.
type Estimate struct {
	// N is the number of scores the estimate is made of.
	N int64
	// Calibrated says the scores were calibrated on reference labels; without
	// them the raw scores are taken as probabilities.
	Calibrated                              bool
	Accuracy, Precision, Recall, F1, ROCAUC float64
}

// PerformanceReference is what a model's reference windows say about its labels,
// computed once each time they change rather than for every window judged against
// them: their accumulators pooled (for the label shift) and the score calibration
// (for the estimate).
type PerformanceReference struct {
	pooled *sketch.Performance // nil without reference windows
	cal    []float64           // P(positive) per score bin; nil without both classes
}

// NewPerformanceReference pools the reference windows' accumulators (those of the
// first one's kind) and fits the score calibration on their labelled scores. It does
// not keep refs.
func NewPerformanceReference(refs []*sketch.Performance) *PerformanceReference {
	r := &PerformanceReference{}
	for _, p := range refs {
		switch {
		case r.pooled == nil:
			r.pooled = p.Clone()
		case p.Kind == r.pooled.Kind:
			c := p.Clone()
			c.Threshold = r.pooled.Threshold // the labels' statistics do not depend on it
			if err := r.pooled.Merge(c); err != nil {
				continue
			}
		}
	}
	r.cal, _ = calibration(refs)
	return r
}

// EstimatePerformance estimates the metrics of the window whose scores h holds,
// calibrated on the reference windows' labelled scores (ref; nil: none yet, the raw
// scores are taken as probabilities), at threshold. A score bin counts as predicted
// positive from the bin that holds the threshold up: exact for thresholds on a bin
// edge, such as 0.5.
func EstimatePerformance(h *sketch.ScoreHistogram, ref *PerformanceReference, threshold float64) Estimate {
	nan := math.NaN()
	e := Estimate{N: h.N, Accuracy: nan, Precision: nan, Recall: nan, F1: nan, ROCAUC: nan}
	if h.N == 0 {
		return e
	}
	var cal []float64
	if ref != nil {
		cal = ref.cal
	}
	ok := cal != nil
	e.Calibrated = ok
	counts := h.Counts()
	tb := min(int(max(threshold, 0)*sketch.PerformanceBins), sketch.PerformanceBins-1)
	var tp, fp, tn, fn, below, wins, pos, neg float64
	for b, c := range counts {
		if c == 0 {
			continue
		}
		p := (float64(b) + 0.5) / sketch.PerformanceBins
		if ok {
			p = cal[b]
		}
		wp, wn := float64(c)*p, float64(c)*(1-p)
		if b >= tb {
			tp, fp = tp+wp, fp+wn
		} else {
			fn, tn = fn+wp, tn+wn
		}
		wins += wp * (below + wn/2)
		below += wn
		pos, neg = pos+wp, neg+wn
	}
	n := float64(h.N)
	e.Accuracy = (tp + tn) / n
	if tp+fp > 0 {
		e.Precision = tp / (tp + fp)
	}
	if tp+fn > 0 {
		e.Recall = tp / (tp + fn)
	}
	if p, r := e.Precision, e.Recall; p+r > 0 {
		e.F1 = 2 * p * r / (p + r)
	}
	if pos > 0 && neg > 0 {
		e.ROCAUC = wins / (pos * neg)
	}
	return e
}

// calibration returns P(positive) per score bin from the reference windows' labelled
// scores: the isotonic (non-decreasing) fit by pool-adjacent-violators, each bin
// weighted by its count, extended flat to the bins without reference scores. ok is
// false without reference labels of both classes.
func calibration(ref []*sketch.Performance) (cal []float64, ok bool) {
	pos := make([]float64, sketch.PerformanceBins)
	neg := make([]float64, sketch.PerformanceBins)
	var np, nn float64
	for _, r := range ref {
		if r.Kind != sketch.Classification {
			continue
		}
		for b, c := range r.ScoreCounts(true) {
			pos[b] += float64(c)
			np += float64(c)
		}
		for b, c := range r.ScoreCounts(false) {
			neg[b] += float64(c)
			nn += float64(c)
		}
	}
	if np == 0 || nn == 0 {
		return nil, false
	}
	// Blocks of bins with one fitted value: merge a block with the one before while
	// it would fit lower.
	type block struct {
		first, last int
		w, sum      float64 // weight and positives
	}
	var blocks []block
	for b := range pos {
		w := pos[b] + neg[b]
		if w == 0 {
			continue
		}
		blocks = append(blocks, block{b, b, w, pos[b]})
		for len(blocks) > 1 {
			k := len(blocks) - 1
			if blocks[k-1].sum/blocks[k-1].w <= blocks[k].sum/blocks[k].w {
				break
			}
			blocks[k-1] = block{blocks[k-1].first, blocks[k].last, blocks[k-1].w + blocks[k].w, blocks[k-1].sum + blocks[k].sum}
			blocks = blocks[:k]
		}
	}
	cal = make([]float64, sketch.PerformanceBins)
	for i, bl := range blocks {
		from, to := bl.first, bl.last
		if i == 0 {
			from = 0
		}
		if i == len(blocks)-1 {
			to = len(cal) - 1
		} else {
			// Bins between two blocks take the lower block's value: the fit is a
			// step function, flat until the next observed bin.
			to = blocks[i+1].first - 1
		}
		for b := from; b <= to; b++ {
			cal[b] = bl.sum / bl.w
		}
	}
	return cal, true
}
