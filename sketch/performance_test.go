package sketch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// scored is one classification example.
type scored struct {
	score    float64
	positive bool
}

// classified draws n examples whose scores come from two overlapping
// logistic populations (positives shifted up by sep), about a share rate of
// them positive. Every third score is rounded to two decimals so that there
// are many exact ties, and a few sit at exactly 0 and 1.
func classified(r *rand.Rand, n int, rate, sep float64) []scored {
	out := make([]scored, n)
	for i := range out {
		pos := r.Float64() < rate
		z := r.NormFloat64() - 1
		if pos {
			z += sep
		}
		s := 1 / (1 + math.Exp(-z))
		switch i % 3 {
		case 0:
			s = math.Round(s*100) / 100
		case 1:
			if r.IntN(50) == 0 {
				s = float64(r.IntN(2))
			}
		}
		out[i] = scored{s, pos}
	}
	return out
}

// exactAUC is the Mann–Whitney AUC of raw examples: the share of
// (positive, negative) pairs the positive outranks, ties counting 1/2, from
// midranks.
func exactAUC(xs []scored) float64 {
	ys := slices.Clone(xs)
	sort.Slice(ys, func(i, j int) bool { return ys[i].score < ys[j].score })
	var rankSum, np, nn float64
	for i := 0; i < len(ys); {
		j := i
		for j < len(ys) && ys[j].score == ys[i].score {
			j++
		}
		mid := float64(i+j+1) / 2 // midrank of positions i+1 … j
		for _, y := range ys[i:j] {
			if y.positive {
				rankSum += mid
				np++
			} else {
				nn++
			}
		}
		i = j
	}
	return (rankSum - np*(np+1)/2) / (np * nn)
}

func classification(xs []scored, threshold float64) *Performance {
	p := NewPerformance(Classification, threshold)
	for _, x := range xs {
		p.AddClassification(x.score, x.positive)
	}
	return p
}

func TestPerformanceClassificationExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct {
		name      string
		n         int
		rate, sep float64
	}{
		{"balanced", 20000, 0.5, 2},
		{"rare positives", 20000, 0.03, 2.5},
		{"weak model", 5000, 0.4, 0.3},
		{"tiny", 12, 0.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xs := classified(r, tc.n, tc.rate, tc.sep)
			const threshold = 0.4
			p := classification(xs, threshold)
			var tp, fp, tn, fn int64
			var loss float64
			for _, x := range xs {
				s := min(max(x.score, 1e-15), 1-1e-15)
				pred := x.score >= threshold
				switch {
				case x.positive && pred:
					tp++
				case x.positive:
					fn++
				case pred:
					fp++
				default:
					tn++
				}
				if x.positive {
					loss -= math.Log(s)
				} else {
					loss -= math.Log(1 - s)
				}
			}
			if p.N != int64(tc.n) || p.TP != tp || p.FP != fp || p.TN != tn || p.FN != fn || p.Invalid != 0 {
				t.Fatalf("counts n=%d tp=%d fp=%d tn=%d fn=%d, want %d %d %d %d %d", p.N, p.TP, p.FP, p.TN, p.FN, tc.n, tp, fp, tn, fn)
			}
			if math.Abs(p.LogLossSum-loss) > 1e-9*loss {
				t.Errorf("log-loss sum %v, want %v", p.LogLossSum, loss)
			}
			auc, bound := p.AUC()
			want := exactAUC(xs)
			t.Logf("AUC %.5f exact %.5f error %.1e bound %.1e", auc, want, math.Abs(auc-want), bound)
			if math.Abs(auc-want) > bound+1e-12 {
				t.Errorf("AUC %v off the exact %v by more than its bound %v", auc, want, bound)
			}
			if tc.n >= 1000 && math.Abs(auc-want) > 0.002 {
				t.Errorf("AUC %v, want %v within 0.002", auc, want)
			}
		})
	}
}

func TestPerformanceInvalid(t *testing.T) {
	p := NewPerformance(Classification, 0.5)
	for _, s := range []float64{math.NaN(), -0.1, 1.5, math.Inf(1)} {
		p.AddClassification(s, true)
	}
	p.AddRegression(1, 2)
	if p.N != 0 || p.Invalid != 5 {
		t.Errorf("n=%d invalid=%d, want 0 and 5", p.N, p.Invalid)
	}
	if auc, _ := p.AUC(); !math.IsNaN(auc) {
		t.Errorf("AUC of no examples %v, want NaN", auc)
	}
	q := NewPerformance(Regression, 0.5)
	for _, v := range [][2]float64{{math.NaN(), 1}, {1, math.Inf(-1)}, {math.Inf(1), 1}} {
		q.AddRegression(v[0], v[1])
	}
	q.AddClassification(0.5, true)
	if q.N != 0 || q.Invalid != 4 || q.Threshold != 0 {
		t.Errorf("n=%d invalid=%d threshold=%v, want 0, 4, 0", q.N, q.Invalid, q.Threshold)
	}
}

// regressed draws n (prediction, label) pairs: labels around 10 with some
// exactly 0, predictions the label plus noise.
func regressed(r *rand.Rand, n int) [][2]float64 {
	out := make([][2]float64, n)
	for i := range out {
		label := 10 + 3*r.NormFloat64()
		if r.IntN(20) == 0 {
			label = 0
		}
		out[i] = [2]float64{label + 2*r.NormFloat64() + 0.5, label}
	}
	return out
}

func regression(xs [][2]float64) *Performance {
	p := NewPerformance(Regression, 0)
	for _, x := range xs {
		p.AddRegression(x[0], x[1])
	}
	return p
}

func TestPerformanceRegressionExact(t *testing.T) {
	xs := regressed(rand.New(rand.NewPCG(3, 3)), 10000)
	p := regression(xs)
	var abs, sq, quad, ape, ape2, lsum float64
	var pct int64
	for _, x := range xs {
		e := x[0] - x[1]
		abs += math.Abs(e)
		sq += e * e
		quad += e * e * e * e
		lsum += x[1]
		if x[1] != 0 {
			a := math.Abs(e / x[1])
			ape += a
			ape2 += a * a
			pct++
		}
	}
	mean := lsum / float64(len(xs))
	var m2 float64
	for _, x := range xs {
		m2 += (x[1] - mean) * (x[1] - mean)
	}
	if p.N != int64(len(xs)) || p.PctN != pct {
		t.Fatalf("n=%d pctN=%d, want %d %d", p.N, p.PctN, len(xs), pct)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"abs", p.AbsErrSum, abs}, {"sq", p.SqErrSum, sq}, {"quad", p.SqErrSqSum, quad},
		{"ape", p.AbsPctErrSum, ape}, {"ape2", p.AbsPctErrSqSum, ape2},
		{"label mean", p.LabelMean, mean}, {"label m2", p.LabelM2, m2},
	} {
		if math.Abs(c.got-c.want) > 1e-9*math.Abs(c.want) {
			t.Errorf("%s %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestPerformanceMerge: merged parts equal one accumulator over all pairs,
// exactly for counts and to rounding for sums.
func TestPerformanceMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	xs := classified(r, 9000, 0.3, 1.5)
	whole := classification(xs, 0.3)
	merged := NewPerformance(Classification, 0.3)
	for _, part := range [][]scored{xs[:100], xs[100:100], xs[100:5000], xs[5000:]} {
		if err := merged.Merge(classification(part, 0.3)); err != nil {
			t.Fatal(err)
		}
	}
	merged.AddClassification(math.NaN(), true)
	whole.AddClassification(math.NaN(), true)
	if merged.N != whole.N || merged.TP != whole.TP || merged.FP != whole.FP || merged.TN != whole.TN ||
		merged.FN != whole.FN || merged.Invalid != whole.Invalid || !slices.Equal(merged.pos, whole.pos) || !slices.Equal(merged.neg, whole.neg) {
		t.Errorf("merged counts differ from the whole")
	}
	if math.Abs(merged.LogLossSum-whole.LogLossSum) > 1e-9*whole.LogLossSum {
		t.Errorf("log-loss sum %v, want %v", merged.LogLossSum, whole.LogLossSum)
	}

	ys := regressed(r, 5000)
	rw := regression(ys)
	rm := NewPerformance(Regression, 0)
	for _, part := range [][][2]float64{ys[:1], ys[1:2000], ys[2000:]} {
		if err := rm.Merge(regression(part)); err != nil {
			t.Fatal(err)
		}
	}
	if rm.N != rw.N || rm.PctN != rw.PctN {
		t.Errorf("merged n=%d pctN=%d, want %d %d", rm.N, rm.PctN, rw.N, rw.PctN)
	}
	for _, c := range [][2]float64{{rm.AbsErrSum, rw.AbsErrSum}, {rm.SqErrSum, rw.SqErrSum}, {rm.SqErrSqSum, rw.SqErrSqSum},
		{rm.AbsPctErrSum, rw.AbsPctErrSum}, {rm.LabelMean, rw.LabelMean}, {rm.LabelM2, rw.LabelM2}} {
		if math.Abs(c[0]-c[1]) > 1e-9*math.Abs(c[1]) {
			t.Errorf("merged sum %v, want %v", c[0], c[1])
		}
	}

	for _, bad := range []*Performance{NewPerformance(Regression, 0), NewPerformance(Classification, 0.5)} {
		if err := whole.Merge(bad); err == nil {
			t.Errorf("merge of %s at %v into classification at 0.3: no error", bad.Kind, bad.Threshold)
		}
	}
}

func TestPerformanceEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	c := classification(classified(r, 3000, 0.4, 1), 0.5)
	c.AddClassification(math.NaN(), false)
	for _, p := range []*Performance{
		c, regression(regressed(r, 500)),
		NewPerformance(Classification, 0.5), NewPerformance(Regression, 0),
		classification(classified(r, 3, 0.5, 1), 0.7),
	} {
		data, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var q Performance
		if err := q.UnmarshalBinary(data); err != nil {
			t.Fatalf("%s n=%d: %v", p.Kind, p.N, err)
		}
		again, _ := q.MarshalBinary()
		if !slices.Equal(data, again) || q.N != p.N || q.Invalid != p.Invalid || q.LogLossSum != p.LogLossSum ||
			q.LabelM2 != p.LabelM2 || !slices.Equal(q.pos, p.pos) {
			t.Errorf("%s n=%d: round trip differs", p.Kind, p.N)
		}
		if p.N == 3 && len(data) > 64 {
			t.Errorf("3 examples encode to %d bytes, want a sparse encoding", len(data))
		}
		for cut := range len(data) {
			if err := q.UnmarshalBinary(data[:cut]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s n=%d cut at %d: %v, want ErrCorrupt", p.Kind, p.N, cut, err)
			}
		}
		if p.N > 0 {
			bad := slices.Clone(data)
			bad[len(bad)-1] ^= 1
			if err := q.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: flipped bit: %v, want ErrCorrupt", p.Kind, err)
			}
		}
	}
	t.Logf("3000 examples encode to %d bytes", func() int { b, _ := c.MarshalBinary(); return len(b) }())
	// Consistent framing around inconsistent counts: TP > N.
	var q Performance
	if err := q.UnmarshalBinary(performanceFramed(append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0}, make([]byte, 16)...))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("inconsistent counts: %v, want ErrCorrupt", err)
	}
}

// performanceFramed puts a payload behind a valid performance header.
func performanceFramed(payload []byte) []byte {
	b := append([]byte(performanceMagic), performanceVersion, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[len(performanceMagic)+1:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// FuzzUnmarshalPerformance: hostile bytes give an error or an accumulator
// that can be read, merged and re-encoded to bytes that decode to the same
// encoding — never a panic.
// Each input is tried as is and as a payload behind a valid header.
func FuzzUnmarshalPerformance(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, p := range []*Performance{
		classification(classified(r, 200, 0.4, 1), 0.5), regression(regressed(r, 50)),
		NewPerformance(Classification, 0.5), NewPerformance(Regression, 0),
	} {
		data, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[headerLen:])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, performanceFramed(data)} {
			var p Performance
			if err := p.UnmarshalBinary(d); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				continue
			}
			_, _ = p.AUC()
			q := p.Clone()
			if err := q.Merge(&p); err != nil {
				t.Fatal(err)
			}
			again, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var p2 Performance
			if err := p2.UnmarshalBinary(again); err != nil {
				t.Fatalf("re-encoding does not decode: %v", err)
			}
			if third, _ := p2.MarshalBinary(); !slices.Equal(third, again) {
				t.Fatal("re-encoding is not canonical")
			}
		}
	})
}
