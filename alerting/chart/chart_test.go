package chart

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"testing"

	"github.com/driftmon/driftmon/alerting"
)

func numeric(feature string, score float64) alerting.Change {
	return alerting.Change{
		Feature: feature, Detector: "ks", Score: score, Threshold: 0.1, PValue: 0.0001,
		Distribution: &alerting.Distribution{
			Edges:     []float64{0, 10000, 20000, 30000, 40000, 50000, 60000, 70000, 80000, 90000, 100000},
			Reference: []float64{0.02, 0.08, 0.15, 0.22, 0.2, 0.14, 0.09, 0.05, 0.03, 0.02},
			Current:   []float64{0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.21, 0.13, 0.07, 0.04},
		},
	}
}

func categorical(feature string, score float64) alerting.Change {
	return alerting.Change{
		Feature: feature, Detector: "chi2", Score: score, Threshold: 20, PValue: 0.012,
		Distribution: &alerting.Distribution{
			Labels:    []string{"DE", "FR", "IT", "ES", "NL", "(other)"},
			Reference: []float64{0.4, 0.25, 0.15, 0.1, 0.05, 0.05},
			Current:   []float64{0.2, 0.3, 0.2, 0.1, 0.1, 0.1},
		},
	}
}

func TestRender(t *testing.T) {
	many := alerting.Change{Feature: "merchant_category_with_a_very_long_name", Detector: "psi", Score: 0.61, Threshold: 0.2, PValue: math.NaN(),
		Distribution: &alerting.Distribution{}}
	for i := range 40 {
		many.Distribution.Labels = append(many.Distribution.Labels, "category-"+string(rune('a'+i%26)))
		many.Distribution.Reference = append(many.Distribution.Reference, 1.0/40)
		many.Distribution.Current = append(many.Distribution.Current, float64(i)/780)
	}
	tests := []struct {
		name    string
		changes []alerting.Change
	}{
		{"numeric", []alerting.Change{numeric("income", 0.43)}},
		{"categories", []alerting.Change{categorical("country", 48)}},
		{"two", []alerting.Change{numeric("income", 0.43), categorical("country", 48)}},
		{"symbols", []alerting.Change{{Feature: "salary_range — €", Detector: "chi2", Score: 31, Threshold: 10, PValue: 0.002,
			Distribution: &alerting.Distribution{
				Labels:    []string{"<20K €", "20–40K €", "Zürich", "60K+ €"},
				Reference: []float64{0.22, 0.38, 0.30, 0.10},
				Current:   []float64{0.08, 0.26, 0.35, 0.31},
			}}}},
		{"four of five", []alerting.Change{
			numeric("income", 0.43), categorical("country", 48), many, numeric("age", 0.2),
			numeric("weakest", 0.11), {Feature: "no_distribution", Detector: "ks", Score: 9, Threshold: 0.1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Render(tt.changes)
			if err != nil {
				t.Fatal(err)
			}
			if dir := os.Getenv("CHART_OUT"); dir != "" {
				_ = os.WriteFile(dir+"/"+tt.name+".png", b, 0o644)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if got := img.Bounds(); got != image.Rect(0, 0, Width, Height) {
				t.Errorf("bounds %v, want %dx%d", got, Width, Height)
			}
			// The legend has a current-coloured square; count well beyond it.
			if n := countColor(img, curColor); n < 2000 {
				t.Errorf("%d pixels of the current colour, want the bars to show (≥ 2000)", n)
			}
			if n := countColor(img, refColor); n < 2000 {
				t.Errorf("%d pixels of the reference colour, want the bars to show (≥ 2000)", n)
			}
			again, err := Render(tt.changes)
			if err != nil || !bytes.Equal(b, again) {
				t.Errorf("second render differs (err %v): output is not deterministic", err)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := Render([]alerting.Change{{Feature: "x", Score: 1}}); !errors.Is(err, ErrNoDistribution) {
		t.Errorf("no distribution: err %v, want ErrNoDistribution", err)
	}
	bad := numeric("income", 0.4)
	bad.Distribution.Current = bad.Distribution.Current[:3]
	if _, err := Render([]alerting.Change{bad}); err == nil {
		t.Error("mismatched lengths: no error")
	}
}

func TestMergePairsKeepsMass(t *testing.T) {
	d := &alerting.Distribution{}
	for i := range 51 {
		d.Edges = append(d.Edges, float64(i))
	}
	for range 50 {
		d.Reference = append(d.Reference, 0.02)
		d.Current = append(d.Current, 0.02)
	}
	b := binsOf(d)
	if len(b.ref) > MaxBins || len(b.edges) != len(b.ref)+1 {
		t.Fatalf("%d bins and %d edges, want ≤ %d bins and one more edge", len(b.ref), len(b.edges), MaxBins)
	}
	if s := sum(b.ref); math.Abs(s-1) > 1e-9 {
		t.Errorf("merged shares sum to %v, want 1", s)
	}
	if b.edges[0] != 0 || b.edges[len(b.edges)-1] != 50 {
		t.Errorf("edges %v, want to span 0..50", b.edges)
	}
}

func countColor(img image.Image, c interface{ RGBA() (r, g, b, a uint32) }) int {
	wr, wg, wb, _ := c.RGBA()
	n := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r == wr && g == wg && b == wb {
				n++
			}
		}
	}
	return n
}
