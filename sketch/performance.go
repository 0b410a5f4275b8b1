package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/driftmon/driftmon/internal/wire"
)

// PerformanceKind says what the labels are.
type PerformanceKind uint8

// The kinds of model a Performance accumulator can judge.
const (
	// Classification is binary: the score in [0, 1] is P(positive) and the
	// label is positive or not.
	Classification PerformanceKind = iota + 1
	// Regression compares a numeric prediction with a numeric label.
	Regression
)

// String returns "classification" or "regression", the names used in
// configuration.
func (k PerformanceKind) String() string {
	switch k {
	case Classification:
		return "classification"
	case Regression:
		return "regression"
	}
	return fmt.Sprintf("performance_kind(%d)", uint8(k))
}

// PerformanceBins is the number of equal-width score bins on [0, 1] per class
// that ROC AUC is computed from. Pairs of a positive and a negative in
// different bins are ordered exactly; a pair in one bin counts 1/2, which is
// exact for tied scores. So the AUC is off the exact Mann–Whitney AUC by at
// most half the share of (positive, negative) pairs that share a bin
// (Performance.AUC returns that bound for each window). No fixed binning can
// promise a bound for any data (all scores within 1/2048 of each other fall
// in one bin), but for scores with densities below 4 per class the bound is
// under 4/2048/2 ≈ 0.001, and the error itself is far smaller (within-bin
// orders are half right on average): at most 1.5e-5 on the tests' data
// (TestPerformanceClassificationExact). 2048 bins
// keep a dense accumulator at 32 KiB, small enough to hold one per window.
const PerformanceBins = 2048

// logLossClamp keeps a score of exactly 0 or 1 from costing an infinite log
// loss; 1e-15 is scikit-learn's conventional clamp.
const logLossClamp = 1e-15

// Performance accumulates the joined (prediction, label) pairs of one
// window: exact confusion counts at Threshold, per-class score histograms
// for ROC AUC, and the sums the mean errors and their standard errors need.
// Accumulators of windows merge exactly (counts) or to rounding (sums), and
// encode in a small, checksummed, canonical form.
//
// The sums are exported for the detectors package, which turns them into
// metrics; callers should treat them as read-only.
type Performance struct {
	// Kind is Classification or Regression.
	Kind PerformanceKind
	// Threshold is the classification cut: a score ≥ Threshold predicts
	// positive. It is 0 for regression.
	Threshold float64
	// N is the number of valid pairs; Invalid the number ignored (NaN or
	// out-of-range scores, NaN or infinite predictions and labels, or an Add
	// of the other kind).
	N, Invalid int64
	// TP, FP, TN and FN are the confusion counts at Threshold
	// (classification).
	TP, FP, TN, FN int64
	// LogLossSum and LogLossSqSum are Σℓ and Σℓ² of the per-pair log loss
	// ℓ, scores clamped to [1e-15, 1−1e-15] (classification).
	LogLossSum, LogLossSqSum float64
	// AbsErrSum, SqErrSum and SqErrSqSum are Σ|e|, Σe² and Σe⁴ of the errors
	// e = prediction − label (regression); Σe⁴ gives RMSE its standard error.
	AbsErrSum, SqErrSum, SqErrSqSum float64
	// AbsPctErrSum and AbsPctErrSqSum are Σ|e/label| and its Σ of squares
	// over the PctN pairs whose label is not 0 (regression).
	AbsPctErrSum, AbsPctErrSqSum float64
	PctN                         int64
	// LabelMean and LabelM2 are the labels' mean and sum of squared
	// deviations (Welford), stable where a raw sum of squares would cancel
	// (regression).
	LabelMean, LabelM2 float64

	// neg and pos count the scores of negative and positive labels per bin
	// (classification; PerformanceBins long).
	neg, pos []int64
}

// NewPerformance returns an empty accumulator. threshold is the
// classification cut (a score ≥ threshold predicts positive), normally in
// [0, 1]; it is ignored for regression.
func NewPerformance(kind PerformanceKind, threshold float64) *Performance {
	p := &Performance{Kind: kind}
	if kind == Classification {
		p.Threshold = threshold
		p.neg = make([]int64, PerformanceBins)
		p.pos = make([]int64, PerformanceBins)
	}
	return p
}

// scoreBin is the histogram bin of a score in [0, 1]; 1 joins the top bin.
func scoreBin(score float64) int {
	return min(int(score*PerformanceBins), PerformanceBins-1)
}

// AddClassification adds one scored, labelled example. A score that is NaN
// or outside [0, 1] is not a probability: it is ignored and counted in
// Invalid, as is any call on a regression accumulator.
func (p *Performance) AddClassification(score float64, positive bool) {
	if p.Kind != Classification || !(score >= 0 && score <= 1) {
		p.Invalid++
		return
	}
	p.N++
	predicted := score >= p.Threshold
	s := min(max(score, logLossClamp), 1-logLossClamp)
	var loss float64
	b := scoreBin(score)
	if positive {
		loss = -math.Log(s)
		p.pos[b]++
		if predicted {
			p.TP++
		} else {
			p.FN++
		}
	} else {
		loss = -math.Log1p(-s)
		p.neg[b]++
		if predicted {
			p.FP++
		} else {
			p.TN++
		}
	}
	p.LogLossSum += loss
	p.LogLossSqSum += loss * loss
}

// AddRegression adds one prediction and its label. NaN or infinite values
// are ignored and counted in Invalid, as is any call on a classification
// accumulator.
func (p *Performance) AddRegression(prediction, label float64) {
	if p.Kind != Regression || !isFinite(prediction) || !isFinite(label) {
		p.Invalid++
		return
	}
	p.N++
	e := prediction - label
	ae, se := math.Abs(e), e*e
	p.AbsErrSum += ae
	p.SqErrSum += se
	p.SqErrSqSum += se * se
	if label != 0 {
		ape := ae / math.Abs(label)
		p.PctN++
		p.AbsPctErrSum += ape
		p.AbsPctErrSqSum += ape * ape
	}
	d := label - p.LabelMean
	p.LabelMean += d / float64(p.N)
	p.LabelM2 += d * (label - p.LabelMean)
}

// Positives is the number of positive labels (classification).
func (p *Performance) Positives() int64 { return p.TP + p.FN }

// Negatives is the number of negative labels (classification).
func (p *Performance) Negatives() int64 { return p.FP + p.TN }

// AUC returns the ROC AUC from the score histograms, a tied or same-bin
// (positive, negative) pair counting 1/2, and maxErr, the largest amount it
// can be off the exact rank AUC: half the share of pairs that share a bin.
// Both are NaN without a positive and a negative.
func (p *Performance) AUC() (auc, maxErr float64) {
	np, nn := p.Positives(), p.Negatives()
	if p.Kind != Classification || np == 0 || nn == 0 {
		return math.NaN(), math.NaN()
	}
	var below, wins, same float64
	for b := range p.pos {
		pb, nb := float64(p.pos[b]), float64(p.neg[b])
		wins += pb * (below + nb/2)
		same += pb * nb
		below += nb
	}
	pairs := float64(np) * float64(nn)
	return wins / pairs, same / 2 / pairs
}

// ScoreCounts returns a copy of the per-bin score counts of the positive or
// negative labels (PerformanceBins long; nil for regression), e.g. for a
// calibration or score-distribution chart.
func (p *Performance) ScoreCounts(positive bool) []int64 {
	if positive {
		return slices.Clone(p.pos)
	}
	return slices.Clone(p.neg)
}

// Merge adds o's pairs to p, as if they had been added to p. The kinds, and
// for classification the thresholds, must match: a confusion matrix at
// another cut cannot be combined.
func (p *Performance) Merge(o *Performance) error {
	switch {
	case o == nil:
		return nil
	case o.Kind != p.Kind:
		return fmt.Errorf("cannot merge %s performance into %s", o.Kind, p.Kind)
	case p.Kind == Classification && o.Threshold != p.Threshold:
		return fmt.Errorf("cannot merge performance at threshold %g into threshold %g", o.Threshold, p.Threshold)
	}
	if o.N > 0 && p.Kind == Regression {
		// Chan et al.'s pairwise update of the labels' mean and M2.
		n, m := float64(p.N), float64(o.N)
		d := o.LabelMean - p.LabelMean
		p.LabelMean += d * m / (n + m)
		p.LabelM2 += o.LabelM2 + d*d*n*m/(n+m)
	}
	p.N += o.N
	p.Invalid += o.Invalid
	p.TP += o.TP
	p.FP += o.FP
	p.TN += o.TN
	p.FN += o.FN
	p.LogLossSum += o.LogLossSum
	p.LogLossSqSum += o.LogLossSqSum
	p.AbsErrSum += o.AbsErrSum
	p.SqErrSum += o.SqErrSum
	p.SqErrSqSum += o.SqErrSqSum
	p.AbsPctErrSum += o.AbsPctErrSum
	p.AbsPctErrSqSum += o.AbsPctErrSqSum
	p.PctN += o.PctN
	for b := range p.pos {
		p.pos[b] += o.pos[b]
		p.neg[b] += o.neg[b]
	}
	return nil
}

// Clone returns a deep copy, for readers of an accumulator another goroutine
// still adds to.
func (p *Performance) Clone() *Performance {
	q := *p
	q.pos, q.neg = slices.Clone(p.pos), slices.Clone(p.neg)
	return &q
}

// Performance encoding (integers uvarint, floats little-endian float64):
//
//	magic "DMPM" | version (1 byte) | CRC-32C of the payload (4 bytes) | payload
//
// payload:
//
//	kind byte | threshold | n invalid
//	classification: tp fp tn fn | logLossSum logLossSqSum
//	  | for the negatives' then the positives' histogram: k
//	  | k × (gap, count), gap = bin − previous bin − 1 (the first: bin)
//	regression: pctN | absErr sqErr sqErrSq absPctErr absPctErrSq labelMean labelM2
//
// Only nonzero bins are written, so a window of n labels costs O(n) bytes at
// most, and a few KiB however many labels it holds.
const (
	performanceMagic   = "DMPM"
	performanceVersion = 1
)

// MarshalBinary encodes p in a versioned, checksummed, canonical form: equal
// accumulators give equal bytes.
func (p *Performance) MarshalBinary() ([]byte, error) {
	b := make([]byte, headerLen, 64)
	copy(b, performanceMagic)
	b[len(performanceMagic)] = performanceVersion
	b = append(b, byte(p.Kind))
	b = appendFloat(b, p.Threshold)
	b = binary.AppendUvarint(b, uint64(p.N))
	b = binary.AppendUvarint(b, uint64(p.Invalid))
	switch p.Kind {
	case Classification:
		for _, v := range [...]int64{p.TP, p.FP, p.TN, p.FN} {
			b = binary.AppendUvarint(b, uint64(v))
		}
		b = appendFloat(b, p.LogLossSum)
		b = appendFloat(b, p.LogLossSqSum)
		b = appendBins(b, p.neg)
		b = appendBins(b, p.pos)
	case Regression:
		b = binary.AppendUvarint(b, uint64(p.PctN))
		for _, v := range [...]float64{p.AbsErrSum, p.SqErrSum, p.SqErrSqSum, p.AbsPctErrSum, p.AbsPctErrSqSum, p.LabelMean, p.LabelM2} {
			b = appendFloat(b, v)
		}
	default:
		return nil, fmt.Errorf("cannot encode performance of %s", p.Kind)
	}
	binary.LittleEndian.PutUint32(b[len(performanceMagic)+1:], crc32.Checksum(b[headerLen:], castagnoli))
	return b, nil
}

func appendBins(b []byte, counts []int64) []byte {
	k := 0
	for _, c := range counts {
		if c != 0 {
			k++
		}
	}
	b = binary.AppendUvarint(b, uint64(k))
	next := 0
	for i, c := range counts {
		if c != 0 {
			b = binary.AppendUvarint(b, uint64(i-next))
			b = binary.AppendUvarint(b, uint64(c))
			next = i + 1
		}
	}
	return b
}

// UnmarshalBinary replaces p with the accumulator encoded by MarshalBinary.
// Bytes that are truncated, corrupted or inconsistent (counts that do not
// add up, negative or NaN sums) give an error wrapping ErrCorrupt, never a
// panic, and p is left unchanged.
func (p *Performance) UnmarshalBinary(data []byte) error {
	if len(data) < headerLen || string(data[:len(performanceMagic)]) != performanceMagic {
		return fmt.Errorf("decode performance: bad magic: %w", ErrCorrupt)
	}
	if v := data[len(performanceMagic)]; v != performanceVersion {
		return fmt.Errorf("decode performance: unsupported version %d: %w", v, ErrCorrupt)
	}
	want := binary.LittleEndian.Uint32(data[len(performanceMagic)+1:])
	if got := crc32.Checksum(data[headerLen:], castagnoli); got != want {
		return fmt.Errorf("decode performance: checksum mismatch: %w", ErrCorrupt)
	}
	r := &reader{Reader: wire.Reader{B: data[headerLen:]}}
	q, err := r.performance()
	if err != nil {
		return fmt.Errorf("decode performance: %w: %w", ErrCorrupt, err)
	}
	*p = *q
	return nil
}

func (r *reader) performance() (*Performance, error) {
	kind := PerformanceKind(r.Byte())
	threshold := r.float()
	if r.Err() != nil {
		return nil, r.Err()
	}
	if kind != Classification && kind != Regression {
		return nil, fmt.Errorf("bad kind %d", kind)
	}
	if !isFinite(threshold) || kind == Regression && threshold != 0 {
		return nil, fmt.Errorf("bad threshold %g", threshold)
	}
	p := NewPerformance(kind, threshold)
	p.N, p.Invalid = r.Count(), r.Count()
	// sum reports whether every value is a non-negative number (+Inf is
	// allowed: Σe⁴ of huge errors overflows honestly).
	sums := func(vs ...float64) bool {
		return !slices.ContainsFunc(vs, func(v float64) bool { return !(v >= 0) })
	}
	if kind == Classification {
		p.TP, p.FP, p.TN, p.FN = r.Count(), r.Count(), r.Count(), r.Count()
		p.LogLossSum, p.LogLossSqSum = r.float(), r.float()
		if r.Err() != nil {
			return nil, r.Err()
		}
		if p.TP > p.N || p.FP > p.N-p.TP || p.TN > p.N-p.TP-p.FP || p.FN != p.N-p.TP-p.FP-p.TN {
			return nil, errors.New("confusion counts do not add up to n")
		}
		if !sums(p.LogLossSum, p.LogLossSqSum) || math.IsInf(p.LogLossSum, 0) || math.IsInf(p.LogLossSqSum, 0) {
			return nil, errors.New("bad log-loss sums")
		}
		r.bins(p.neg, p.Negatives())
		r.bins(p.pos, p.Positives())
	} else {
		p.PctN = r.Count()
		fs := make([]float64, 7)
		for i := range fs {
			fs[i] = r.float()
		}
		if r.Err() != nil {
			return nil, r.Err()
		}
		p.AbsErrSum, p.SqErrSum, p.SqErrSqSum, p.AbsPctErrSum, p.AbsPctErrSqSum, p.LabelMean, p.LabelM2 = fs[0], fs[1], fs[2], fs[3], fs[4], fs[5], fs[6]
		switch {
		case p.PctN > p.N:
			return nil, fmt.Errorf("%d percentage errors of %d pairs", p.PctN, p.N)
		case !sums(fs[:5]...) || !isFinite(p.LabelMean) || !sums(p.LabelM2):
			return nil, errors.New("bad error sums")
		case p.N == 0 && slices.ContainsFunc(fs, func(v float64) bool { return v != 0 }):
			return nil, errors.New("sums without pairs")
		}
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	if len(r.B) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(r.B))
	}
	return p, nil
}

// bins reads a sparse histogram into counts, which must sum to want.
func (r *reader) bins(counts []int64, want int64) {
	k := r.Length(2)
	if k > len(counts) {
		r.Fail("%d bins, more than %d", k, len(counts))
	}
	next := uint64(0)
	var sum int64
	for i := 0; i < k && r.Err() == nil; i++ {
		gap, c := r.Uvarint(), r.Count()
		if r.Err() != nil {
			return
		}
		if gap >= uint64(len(counts))-next || c <= 0 || c > want-sum {
			r.Fail("bad bin %d", i)
			return
		}
		b := next + gap
		counts[b] = c
		sum += c
		next = b + 1
	}
	if r.Err() == nil && sum != want {
		r.Fail("bin counts sum to %d, want %d", sum, want)
	}
}
