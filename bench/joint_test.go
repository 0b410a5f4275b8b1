package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

// jointStream is the generated stream of the joint-drift detection table: three
// numeric features, a 0/1 class as a numeric prediction and a categorical segment,
// 5,000-row windows against a 50,000-row reference.
const jointStream = `
kafka: {brokers: ["127.0.0.1:9"]}
streams:
  - name: joint
    topic: joint
    features:
      x1: {type: numeric}
      x2: {type: numeric}
      x3: {type: numeric}
      segment: {type: categorical}
    predictions:
      y: {type: numeric}
    window: {rows: 5000}
`

// jointShift is a generated change of the joint distribution that leaves every
// marginal as it was.
type jointShift string

const (
	// correlationFlip: x1 and x2 standard normal with correlation +0.8, then −0.8.
	correlationFlip jointShift = "correlation of x1 and x2 flips from +0.8 to −0.8"
	// classRotation: class y = 0/1 (half each) with clusters at (+1,+1) and (−1,−1)
	// in (x1, x2), rotated a quarter turn to (+1,−1) and (−1,+1).
	classRotation jointShift = "class regions in (x1, x2) rotate a quarter turn"
	// radialSwap: four clusters at (±1.5, ±1.5), a quarter of the rows each, tight (σ
	// 0.3) at (+,+) and (−,−), wide (σ 1) at (+,−) and (−,+); the tight and wide
	// clusters interchange their centres every 25,000 rows. Each marginal is the same
	// mixture throughout and every correlation is 0.
	radialSwap jointShift = "tight and wide clusters interchange their centres every 25,000 rows"
	// xorFlip: x1 and x2 standard normal with sign(x1·x2) = +1, then −1.
	xorFlip jointShift = "the sign of x1·x2 flips (both stay N(0,1))"
)

// jointRecord generates n rows before (after=false) or after the shift.
func jointRecord(r *rand.Rand, n int, shift jointShift, after bool) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x1", Type: arrow.PrimitiveTypes.Float64}, {Name: "x2", Type: arrow.PrimitiveTypes.Float64},
		{Name: "x3", Type: arrow.PrimitiveTypes.Float64}, {Name: "segment", Type: arrow.BinaryTypes.String},
		{Name: "y", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	x1, x2, x3 := b.Field(0).(*array.Float64Builder), b.Field(1).(*array.Float64Builder), b.Field(2).(*array.Float64Builder)
	seg, y := b.Field(3).(*array.StringBuilder), b.Field(4).(*array.Float64Builder)
	for range n {
		seg.Append([]string{"retail", "smb", "corporate"}[r.IntN(3)])
		x3.Append(r.NormFloat64())
		switch shift {
		case radialSwap:
			c := r.IntN(4)
			sx, sy := float64(1-2*(c&1)), float64(1-2*(c>>1))
			sigma := 1.0
			if tight := sx == sy; tight != after {
				sigma = 0.3
			}
			x1.Append(1.5*sx + sigma*r.NormFloat64())
			x2.Append(1.5*sy + sigma*r.NormFloat64())
			y.Append(float64(r.IntN(2)))
		case xorFlip:
			a, m := r.NormFloat64(), math.Abs(r.NormFloat64())
			if after {
				m = -m
			}
			x1.Append(a)
			x2.Append(math.Copysign(m, a) * sign(m))
			y.Append(float64(r.IntN(2)))
		case classRotation:
			c := float64(r.IntN(2))
			s := 1 - 2*c
			x1.Append(s + r.NormFloat64())
			if after {
				s = -s
			}
			x2.Append(s + r.NormFloat64())
			y.Append(c)
		default:
			rho := 0.8
			if after {
				rho = -0.8
			}
			a := r.NormFloat64()
			x1.Append(a)
			x2.Append(rho*a + math.Sqrt(1-rho*rho)*r.NormFloat64())
			y.Append(float64(r.IntN(2)))
		}
	}
	return b.NewRecord()
}

// sign is −1 for negative m, else +1.
func sign(m float64) float64 {
	if m < 0 {
		return -1
	}
	return 1
}

// changed says whether window w (of 5,000 rows) comes after the stream's change:
// from window 5 on, and for the radial swap, whose clusters interchange every
// 25,000 rows, in windows 5–9 only (windows 10–14 are like the reference again).
func changed(shift jointShift, w int) bool { return w >= 5 && (shift != radialSwap || w < 10) }

// jointWindows is how many windows driftmonJoint runs.
func jointWindows(shift jointShift) int {
	if shift == radialSwap {
		return 15
	}
	return 10
}

// driftmonJoint runs the engine over generated 5,000-row windows (see changed)
// against a 50,000-row reference from before the change.
func driftmonJoint(t *testing.T, shift jointShift, seed uint64) run {
	t.Helper()
	cfg, err := config.Parse([]byte(jointStream), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	start := time.Now()
	fields := engine.StreamFields(&cfg.Streams[0])
	ref := sketch.NewProfile(fields, sketch.Options{})
	refRec := jointRecord(r, 50000, shift, false)
	ref.Update(refRec, nil)
	refRec.Release()
	engine, err := engine.NewWithReference(&cfg.Streams[0], ref, "generated reference (50,000 rows)", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := run{Tool: "driftmon", ReferenceSeconds: time.Since(start).Seconds(), MemoryNote: "bytes allocated by the window (Go heap, runtime.MemStats.TotalAlloc)", Method: "per-feature tests, the PCA-error (multivariate) and pair-grid (joint) findings, BH at FDR 0.05, effects on lower bounds"}
	var first int64
	for w := range jointWindows(shift) {
		rec := jointRecord(r, 5000, shift, changed(shift, w))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc
		start, cpu := time.Now(), cpuTime()
		results := engine.Process(rec)
		elapsed, cpu := time.Since(start), cpuTime()-cpu
		runtime.ReadMemStats(&ms)
		rec.Release()
		if len(results) != 1 {
			t.Fatalf("a 5,000-row record closed %d windows, want 1", len(results))
		}
		res := results[0]
		out.Windows = append(out.Windows, window{First: first, End: first + res.Rows, Drifted: res.Drifted(), Seconds: elapsed.Seconds(), CPUSeconds: cpu.Seconds(), Bytes: int64(ms.TotalAlloc - alloc)})
		first += res.Rows
	}
	out.MaxRSS = vmHWM()
	return out
}

// TestJointDriftDetection: on every generated stream no feature drifts, the
// pair-grid finding flags every window after the change (from the first) and
// none before it (nor, for the radial swap, after the clusters swap back), and
// the PCA finding flags the correlation flip and the rotation but not the radial
// swap, whose correlations stay 0. The tables it logs are in bench/README.md.
func TestJointDriftDetection(t *testing.T) {
	for i, shift := range []jointShift{correlationFlip, classRotation, radialSwap, xorFlip} {
		t.Run(string(shift), func(t *testing.T) {
			dm := driftmonJoint(t, shift, uint64(i+1))
			var joint, pca []int
			for w, win := range dm.Windows {
				if slices.Contains(win.Drifted, detectors.FeatureJoint) {
					joint = append(joint, w)
				}
				if slices.Contains(win.Drifted, detectors.FeatureMultivariate) {
					pca = append(pca, w)
				}
				for _, f := range win.Drifted {
					if f != detectors.FeatureJoint && f != detectors.FeatureMultivariate {
						t.Errorf("window %d: %s drifted, want every feature stable", w, f)
					}
				}
				if slices.Contains(win.Drifted, detectors.FeatureJoint) != changed(shift, w) {
					t.Errorf("window %d: (joint) flagged %v, want %v", w, !changed(shift, w), changed(shift, w))
				}
				pcaWant := changed(shift, w) && (shift == correlationFlip || shift == classRotation)
				if slices.Contains(win.Drifted, detectors.FeatureMultivariate) != pcaWant && shift != xorFlip {
					t.Errorf("window %d: (multivariate) flagged %v, want %v", w, !pcaWant, pcaWant)
				}
			}
			t.Logf("%s: %d windows of 5,000 rows; (joint) flagged in windows %v, (multivariate) in %v; median %.1f ms a window",
				shift, len(dm.Windows), joint, pca, 1000*medianSeconds(dm.Windows))
		})
	}
}

func medianSeconds(ws []window) float64 {
	s := make([]float64, len(ws))
	for i, w := range ws {
		s[i] = w.Seconds
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// TestNewDetectorsNullFalseAlarms: the share of trials, reference and window drawn
// from the same distribution, in which the detectors added in December flag: the
// multivariate finding (on the correlated generated stream, before its shift) and
// a categorical feature flagged by its total variation distance rather than PSI.
// The multivariate p-value's own rate below 0.05 checks its calibration. 500
// trials per size (DRIFTMON_TRIALS to change; a tenth under the race detector).
func TestNewDetectorsNullFalseAlarms(t *testing.T) {
	trials := 500
	if raceEnabled || testing.Short() {
		trials = 50
	}
	if s := os.Getenv("DRIFTMON_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		trials = n
	}
	fields := []sketch.Field{{Name: "x1", Kind: sketch.KindNumeric}, {Name: "x2", Kind: sketch.KindNumeric},
		{Name: "x3", Kind: sketch.KindNumeric}, {Name: "segment", Kind: sketch.KindCategorical}, {Name: "y", Kind: sketch.KindNumeric}}
	for _, n := range []int{1000, 5000} {
		t.Run(fmt.Sprintf("n=m=%d", n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 2))
			var multi, multiP, joint, jointP, tvd, any int
			for range trials {
				profile := func() *sketch.Profile {
					p := sketch.NewProfile(fields, sketch.Options{})
					rec := jointRecord(r, n, correlationFlip, false)
					p.Update(rec, nil)
					rec.Release()
					return p
				}
				ref, cur := profile(), profile()
				flagged, multiFlag, jointFlag, tvdFlag := false, false, false, false
				for _, f := range detectors.Evaluate(ref, cur, detectors.Options{}) {
					if f.Feature == detectors.FeatureMultivariate && f.PValue < 0.05 {
						multiP++
					}
					if f.Feature == detectors.FeatureJoint && f.PValue < 0.05 {
						jointP++
					}
					if f.Verdict != detectors.Drift {
						continue
					}
					flagged = true
					multiFlag = multiFlag || f.Feature == detectors.FeatureMultivariate
					jointFlag = jointFlag || f.Feature == detectors.FeatureJoint
					tvdFlag = tvdFlag || f.Kind == "categorical" && len(f.Rule) > 3 && f.Rule[:3] == "TVD"
				}
				multi += b2i(multiFlag)
				joint += b2i(jointFlag)
				tvd += b2i(tvdFlag)
				any += b2i(flagged)
			}
			t.Logf("n=m=%d, %d trials: multivariate flagged %.3f (its p < 0.05 in %.3f), joint %.3f (%.3f), a categorical by TVD %.3f, anything %.3f",
				n, trials, float64(multi)/float64(trials), float64(multiP)/float64(trials), float64(joint)/float64(trials), float64(jointP)/float64(trials),
				float64(tvd)/float64(trials), float64(any)/float64(trials))
			if trials >= 100 && float64(any)/float64(trials) > detectors.DefaultFDR {
				t.Errorf("any-alarm rate %.3f > FDR %.2f", float64(any)/float64(trials), detectors.DefaultFDR)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
