package sketch

import (
	"encoding/binary"
	"fmt"

	"github.com/driftmon/driftmon/internal/wire"
)

// ScoreHistogram counts a window's classification scores in the PerformanceBins
// equal-width bins of [0, 1] that Performance uses, labelled or not: what a
// performance estimate from the scores alone (before the labels come) needs.
type ScoreHistogram struct {
	// N is the number of scores counted; Invalid those ignored (NaN or outside
	// [0, 1]).
	N, Invalid int64
	counts     []int64
}

// NewScoreHistogram returns an empty histogram.
func NewScoreHistogram() *ScoreHistogram {
	return &ScoreHistogram{counts: make([]int64, PerformanceBins)}
}

// Add counts one score.
func (h *ScoreHistogram) Add(score float64) {
	if !(score >= 0 && score <= 1) {
		h.Invalid++
		return
	}
	h.N++
	h.counts[scoreBin(score)]++
}

// Counts returns the per-bin counts; the caller must not change them.
func (h *ScoreHistogram) Counts() []int64 { return h.counts }

// Merge adds o's scores to h.
func (h *ScoreHistogram) Merge(o *ScoreHistogram) {
	h.N += o.N
	h.Invalid += o.Invalid
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// scoreHistogramVersion is the first byte of an encoded ScoreHistogram.
const scoreHistogramVersion = 1

// MarshalBinary encodes h: a version byte, N and Invalid, then the nonzero bins
// as (bin gap, count) varints.
func (h *ScoreHistogram) MarshalBinary() ([]byte, error) {
	b := []byte{scoreHistogramVersion}
	b = binary.AppendUvarint(b, uint64(h.N))
	b = binary.AppendUvarint(b, uint64(h.Invalid))
	return appendBins(b, h.counts), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, checking that the bins add up to N.
func (h *ScoreHistogram) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] != scoreHistogramVersion {
		return fmt.Errorf("%w: score histogram version", ErrCorrupt)
	}
	r := &reader{Reader: wire.Reader{B: data[1:]}}
	n, invalid := r.Count(), r.Count()
	counts := make([]int64, PerformanceBins)
	r.bins(counts, n)
	if r.Err() != nil || len(r.B) != 0 {
		return fmt.Errorf("%w: score histogram", ErrCorrupt)
	}
	h.N, h.Invalid, h.counts = n, invalid, counts
	return nil
}
