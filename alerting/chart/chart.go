// Package chart draws the reference and window distributions of drifted
// features as one PNG, for notifiers that can attach an image (Slack in
// bot-token mode). It uses only the standard library and the fixed-size
// basicfont, so it needs no cgo and no font files, and the same alert always
// gives the same bytes.
//
// It owns the drawing only and imports only alerting (the Distribution it
// draws): no notifier, policy or outbox, and nothing under internal/.
package chart

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/driftmon/driftmon/alerting"
)

// Size of the image and the most panels (features) it shows.
const (
	Width     = 800
	Height    = 500
	MaxPanels = 4
	// MaxBins is the most bars pairs a panel draws: more categories are
	// folded into "(other)", more numeric bins are merged pairwise.
	MaxBins = 24
)

// ErrNoDistribution is returned by Render when no change carries a
// Distribution, so there is nothing to draw.
var ErrNoDistribution = errors.New("no change has a distribution")

var (
	background = color.RGBA{0xff, 0xff, 0xff, 0xff}
	ink        = color.RGBA{0x22, 0x22, 0x22, 0xff}
	muted      = color.RGBA{0x66, 0x66, 0x66, 0xff}
	gridColor  = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	frameColor = color.RGBA{0xcc, 0xcc, 0xcc, 0xff}
	refColor   = color.RGBA{0xa8, 0xa8, 0xa8, 0xff}
	curColor   = color.RGBA{0xd6, 0x4f, 0x1e, 0xff}
)

var face = basicfont.Face7x13

const (
	charW   = 7  // advance of every basicfont glyph
	ascent  = 11 // basicfont.Face7x13 ascent
	lineH   = 13
	headerH = 24
)

// Render draws up to MaxPanels of the changes that have a Distribution,
// strongest first (score relative to threshold), as side-by-side bars per
// bin: reference grey, window coloured. It returns ErrNoDistribution when
// there is nothing to draw, and an error naming the feature when a
// Distribution's lengths disagree.
func Render(changes []alerting.Change) ([]byte, error) {
	panels, err := Panels(changes)
	if err != nil {
		return nil, err
	}

	img := image.NewRGBA(image.Rect(0, 0, Width, Height))
	fill(img, img.Bounds(), background)
	drawLegend(img)
	for i, r := range layout(len(panels), image.Rect(0, headerH, Width, Height)) {
		drawPanel(img, r, panels[i])
	}

	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("chart: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// Panels returns the changes Render draws, in the order it draws them: up
// to MaxPanels of those with a Distribution, strongest first (score relative
// to threshold). It returns ErrNoDistribution when there are none, and an
// error naming the feature when a Distribution's lengths disagree.
func Panels(changes []alerting.Change) ([]alerting.Change, error) {
	var panels []alerting.Change
	for _, c := range changes {
		if c.Distribution == nil {
			continue
		}
		d := c.Distribution
		if n := d.Bins(); n <= 0 || len(d.Reference) != n || len(d.Current) != n {
			return nil, fmt.Errorf("chart: feature %q: distribution has %d bins, %d reference and %d current shares",
				c.Feature, d.Bins(), len(d.Reference), len(d.Current))
		}
		panels = append(panels, c)
	}
	if len(panels) == 0 {
		return nil, ErrNoDistribution
	}
	slices.SortStableFunc(panels, func(a, b alerting.Change) int { return cmp.Compare(strength(b), strength(a)) })
	return panels[:min(len(panels), MaxPanels)], nil
}

// strength ranks changes across detectors: how far the score passed its
// threshold.
func strength(c alerting.Change) float64 {
	s := c.Score
	if c.Threshold > 0 {
		s /= c.Threshold
	}
	if math.IsNaN(s) {
		return math.Inf(-1)
	}
	return s
}

// layout splits r into n panels: one, two stacked, or a 2×2 grid.
func layout(n int, r image.Rectangle) []image.Rectangle {
	w, h := r.Dx(), r.Dy()
	switch n {
	case 1:
		return []image.Rectangle{r}
	case 2:
		return []image.Rectangle{
			image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+h/2),
			image.Rect(r.Min.X, r.Min.Y+h/2, r.Max.X, r.Max.Y),
		}
	default:
		var out []image.Rectangle
		for i := range n {
			x, y := r.Min.X+(i%2)*w/2, r.Min.Y+(i/2)*h/2
			out = append(out, image.Rect(x, y, x+w/2, y+h/2))
		}
		return out
	}
}

func drawLegend(img *image.RGBA) {
	x := 12
	y := 7
	fill(img, image.Rect(x, y, x+12, y+10), refColor)
	x += 16
	x = text(img, x, y+ascent-1, "reference", ink)
	x += 16
	fill(img, image.Rect(x, y, x+12, y+10), curColor)
	x += 16
	x = text(img, x, y+ascent-1, "current window", ink)
	text(img, x+16, y+ascent-1, "(share of rows per bin)", muted)
	hline(img, 0, Width, headerH-1, frameColor)
}

// panel margins, in pixels.
const (
	padX    = 10
	axisW   = 40 // room for "100%" left of the plot
	titleH  = 22
	labelsH = 20 // room for the bin labels under the plot
)

func drawPanel(img *image.RGBA, r image.Rectangle, c alerting.Change) {
	d := binsOf(c.Distribution)

	// Title: feature left, evidence right; the feature is cut to fit.
	evidence := headline(c)
	maxFeature := (r.Dx()-2*padX)/charW - len(evidence) - 2
	text(img, r.Min.X+padX, r.Min.Y+6+ascent, truncate(sanitize(c.Feature), maxFeature), ink)
	text(img, r.Max.X-padX-len(evidence)*charW, r.Min.Y+6+ascent, evidence, muted)

	plot := image.Rect(r.Min.X+padX+axisW, r.Min.Y+titleH+8, r.Max.X-padX, r.Max.Y-labelsH-6)
	if plot.Dx() < 10 || plot.Dy() < 10 {
		return
	}

	// Y axis: percent gridlines on a nice step.
	top := 0.0
	for i := range d.ref {
		top = max(top, d.ref[i], d.cur[i])
	}
	step := niceStep(top)
	top = math.Max(step, math.Ceil(top/step-1e-9)*step)
	yOf := func(v float64) int { return plot.Max.Y - int(math.Round(v/top*float64(plot.Dy()))) }
	for v := 0.0; v <= top+step/2; v += step {
		y := yOf(v)
		hline(img, plot.Min.X, plot.Max.X, y, gridColor)
		label := formatPercent(v, step)
		text(img, plot.Min.X-4-len(label)*charW, y+ascent/2-1, label, muted)
	}

	// Bars: per bin, reference then current, side by side.
	n := len(d.ref)
	groupW := float64(plot.Dx()) / float64(n)
	barW := math.Min(48, math.Max(1, groupW*0.35))
	for i := range n {
		x0 := float64(plot.Min.X) + float64(i)*groupW + (groupW-2*barW)/2
		bar(img, int(math.Round(x0)), int(math.Round(x0+barW)), yOf(clamp(d.ref[i], top)), plot.Max.Y, refColor)
		bar(img, int(math.Round(x0+barW)), int(math.Round(x0+2*barW)), yOf(clamp(d.cur[i], top)), plot.Max.Y, curColor)
	}
	hline(img, plot.Min.X, plot.Max.X, plot.Max.Y, ink)
	vline(img, plot.Min.X, plot.Min.Y, plot.Max.Y+1, ink)

	// X labels: edges at bin boundaries for numbers, names under bins for
	// categories; every k-th when they would overlap.
	ly := plot.Max.Y + 4 + ascent
	if d.edges != nil {
		widest := 0
		labels := make([]string, len(d.edges))
		for i, e := range d.edges {
			labels[i] = formatNumber(e)
			widest = max(widest, len(labels[i]))
		}
		k := every(widest*charW+8, groupW)
		for i := 0; i < len(labels); i += k {
			x := plot.Min.X + int(math.Round(float64(i)*groupW))
			vline(img, x, plot.Max.Y, plot.Max.Y+3, ink)
			lx := min(x-len(labels[i])*charW/2, r.Max.X-2-len(labels[i])*charW)
			text(img, lx, ly, labels[i], muted)
		}
		return
	}
	k := every(4*charW+6, groupW) // at least four characters per label
	fit := max(4, int(float64(k)*groupW-6)/charW)
	for i := 0; i < n; i += k {
		label := truncate(sanitize(d.labels[i]), fit)
		cx := plot.Min.X + int(math.Round((float64(i)+0.5)*groupW))
		text(img, cx-len(label)*charW/2, ly, label, muted)
	}
}

// every returns the least k such that k bins are at least need pixels wide.
func every(need int, groupW float64) int {
	return max(1, int(math.Ceil(float64(need)/groupW)))
}

// bins is a Distribution reduced to at most MaxBins bins, with NaN and
// negative shares drawn as 0.
type bins struct {
	edges    []float64
	labels   []string
	ref, cur []float64
}

func binsOf(d *alerting.Distribution) bins {
	b := bins{ref: cleaned(d.Reference), cur: cleaned(d.Current)}
	if len(d.Edges) > 0 {
		b.edges = d.Edges
		for len(b.ref) > MaxBins {
			b = mergePairs(b)
		}
		return b
	}
	b.labels = d.Labels
	if len(b.labels) > MaxBins {
		keep := MaxBins - 1
		b.labels = append(slices.Clone(b.labels[:keep]), "(other)")
		b.ref = append(b.ref[:keep:keep], sum(b.ref[keep:]))
		b.cur = append(b.cur[:keep:keep], sum(b.cur[keep:]))
	}
	return b
}

// mergePairs halves the number of numeric bins by adding neighbours.
func mergePairs(b bins) bins {
	var out bins
	for i := 0; i < len(b.ref); i += 2 {
		j := min(i+2, len(b.ref))
		out.edges = append(out.edges, b.edges[i])
		out.ref = append(out.ref, sum(b.ref[i:j]))
		out.cur = append(out.cur, sum(b.cur[i:j]))
	}
	out.edges = append(out.edges, b.edges[len(b.edges)-1])
	return out
}

func cleaned(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		if x > 0 && !math.IsInf(x, 1) {
			out[i] = x
		}
	}
	return out
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func clamp(v, top float64) float64 { return math.Min(v, top) }

// niceStep picks a gridline step of 1, 2 or 5 × 10^k so that 2 to 5 lines
// span [0, top].
func niceStep(top float64) float64 {
	if top <= 0 {
		return 0.1
	}
	raw := top / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// formatPercent prints a share as a percentage with as many decimals as
// the step needs: 0.25 → "25%", 0.005 → "0.5%".
func formatPercent(v, step float64) string {
	dec := 0
	for s := step * 100; s < 1-1e-9 && dec < 4; s *= 10 {
		dec++
	}
	return strconv.FormatFloat(v*100, 'f', dec, 64) + "%"
}

// formatNumber prints a bin edge in at most about six characters:
// 47100 → "47.1k", 0.125 → "0.125".
func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case math.IsNaN(v):
		return "?"
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e4:
		return trim(v/1e3) + "k"
	default:
		return trim(v)
	}
}

func trim(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// headline is Change.Headline in the characters basicfont has.
func headline(c alerting.Change) string {
	return sanitize(c.Headline())
}

// sanitize replaces what basicfont cannot draw by "?", so every character
// is exactly charW wide.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if _, ok := face.GlyphAdvance(r); !ok || r < ' ' {
			return '?'
		}
		return r
	}, spelled.Replace(s))
}

// spelled writes common symbols basicfont lacks in ASCII.
var spelled = strings.NewReplacer("€", "EUR", "∞", "inf", "χ²", "chi2", "—", "-", "–", "-", "→", "->", "…", "...", "≥", ">=", "≤", "<=",
	"ä", "ae", "ö", "oe", "ü", "ue", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue", "ß", "ss",
	"é", "e", "è", "e", "ê", "e", "á", "a", "à", "a", "â", "a", "í", "i", "ó", "o", "ô", "o", "ú", "u", "ç", "c", "ñ", "n")

// truncate cuts s to n characters, ending in "." when cut.
func truncate(s string, n int) string {
	rs := []rune(s)
	if n <= 0 {
		return ""
	}
	if len(rs) <= n {
		return s
	}
	if n <= 2 {
		return string(rs[:n])
	}
	return string(rs[:n-2]) + ".."
}

// text draws s with its baseline at y and returns the x after it.
func text(img *image.RGBA, x, y int, s string, c color.Color) int {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
	return d.Dot.X.Round()
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func bar(img *image.RGBA, x0, x1, y0, y1 int, c color.Color) {
	if x1 <= x0 {
		x1 = x0 + 1
	}
	if y0 >= y1 {
		return
	}
	fill(img, image.Rect(x0, y0, x1, y1), c)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	fill(img, image.Rect(x0, y, x1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	fill(img, image.Rect(x, y0, x+1, y1), c)
}
