package soak

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/driftmon/driftmon/internal/report"
	"github.com/driftmon/driftmon/internal/resultfile"
)

// windows is what a results file (DRIFTMON_RESULTS_FILE) says: each window's line
// once, by window key, and how often a window was reported again (after a kill a
// restarted run reports the windows of its last checkpoint's batch again).
type windows struct {
	lines      map[string][]byte // window key → what is compared of its line (comparedOf)
	rounded    map[string][]byte // window key → the same, numbers to 9 decimals
	order      []string          // keys, sorted
	repeats    int               // lines that repeat a window (numbers to 9 decimals)
	bitRepeats int               // of which differ in the last bits
	conflicts  []string          // windows reported twice, differently
	drifted    map[string]bool   // window key → some feature drifted
	startOf    map[string]string // window key → "stream/model/version start", what a payload names
}

func windowKey(r resultfile.Line) string {
	return fmt.Sprintf("%s/%s/%s [%s, %s)", r.Stream, r.Model, r.Version, r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano))
}

// comparedOf is what the campaign compares of a window's line, encoded: rows,
// reference, verdicts and scores (score, adjusted p-value, PSI), the rest left at its
// zero value. The rest (explanations, effects, and summaries and rules that print
// numbers to three digits) follows from the same sketches, but its text may round a
// mean that summation order moved the other way (measured: a mean of
// -0.014749999999999978 in one run, -0.014750000000000006 in the other, printed
// "-0.0147" and "-0.0148").
func comparedOf(r resultfile.Line) []byte {
	c := resultfile.Line{Stream: r.Stream, Model: r.Model, Version: r.Version, Start: r.Start, End: r.End, Rows: r.Rows,
		Warmup: r.Warmup, Reference: r.Reference, Findings: make([]report.Finding, len(r.Findings)), Missing: r.Missing}
	for i, f := range r.Findings {
		c.Findings[i] = report.Finding{Feature: f.Feature, Verdict: f.Verdict, Score: f.Score, AdjustedP: f.AdjustedP, PSI: f.PSI}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("BUG: a window's compared results do not encode: " + err.Error())
	}
	return b
}

// readWindows reads a results file; a last line cut by a kill is ignored.
func readWindows(path string) (*windows, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w := &windows{lines: map[string][]byte{}, rounded: map[string][]byte{}, drifted: map[string]bool{}, startOf: map[string]string{}}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var r resultfile.Line
		if json.Unmarshal(l, &r) != nil {
			continue // half written by a killed run
		}
		// The monitor encodes a result the same way each time: equal results, equal
		// bytes.
		canon := comparedOf(r)
		k := windowKey(r)
		if prev, ok := w.lines[k]; ok {
			switch {
			case bytes.Equal(prev, canon):
				w.repeats++
			case bytes.Equal(w.rounded[k], roundNumbers(canon)):
				w.repeats++
				w.bitRepeats++
			default:
				w.conflicts = append(w.conflicts, k)
			}
			continue
		}
		w.lines[k] = canon
		w.rounded[k] = roundNumbers(canon)
		w.order = append(w.order, k)
		w.startOf[k] = windowStart(r.Stream, r.Model, r.Version, r.Start)
		for _, f := range r.Findings {
			if f.Verdict == "drift" {
				w.drifted[k] = true
			}
		}
	}
	sort.Strings(w.order)
	return w, nil
}

// digest is a SHA-256 over every window's line, in key order, with its numbers to
// 9 decimals when rounded: two runs with equal digests closed the same
// windows with the same rows, references, verdicts and scores (to the last bit
// unless rounded).
func (w *windows) digest(rounded bool) string {
	lines := w.lines
	if rounded {
		lines = w.rounded
	}
	h := sha256.New()
	for _, k := range w.order {
		h.Write(lines[k])
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var number = regexp.MustCompile(`-?[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+`)

// roundNumbers rewrites every non-integer number of a JSON line to 9 decimals. Sums
// of floating-point numbers depend on the order they were added in; the joint sketch
// behind the (multivariate) finding adds per batch, and a restart moves batch
// boundaries, which changes its score by about 1e-15 (and the Benjamini–Hochberg
// p-values it shares a family with in their last bit). A relative precision would not
// do: a score of 0.0015 differs in its 12th significant digit. Rounding to a fixed
// grid of 1e-9 splits two numbers 1e-15 apart with a chance of about 1e-6.
func roundNumbers(line []byte) []byte {
	return number.ReplaceAllFunc(line, func(b []byte) []byte {
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return b
		}
		return strconv.AppendFloat(nil, f, 'f', 9, 64)
	})
}

// rows is the sum of the windows' rows.
func (w *windows) rows() int64 {
	var n int64
	for _, k := range w.order {
		var r resultfile.Line
		_ = json.Unmarshal(w.lines[k], &r)
		n += r.Rows
	}
	return n
}

// driftingWindows names the windows in which a feature drifted, by
// windowStart, sorted.
func (w *windows) driftingWindows() []string {
	var out []string
	for _, k := range w.order {
		if w.drifted[k] {
			out = append(out, w.startOf[k])
		}
	}
	sort.Strings(out)
	return out
}

func windowStart(stream, model, version string, start time.Time) string {
	return fmt.Sprintf("%s/%s/%s %s", stream, model, version, start.UTC().Format(time.RFC3339Nano))
}

// compare lists the windows that differ between w and the reference: missing from w,
// not in the reference, with other results (numbers to 9 decimals), and with results
// that differ only past the 9th decimal.
func (w *windows) compare(ref *windows) (missing, extra, differ, bits []string) {
	for _, k := range ref.order {
		got, ok := w.lines[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !bytes.Equal(w.rounded[k], ref.rounded[k]):
			differ = append(differ, k)
		case !bytes.Equal(got, ref.lines[k]):
			bits = append(bits, k)
		}
	}
	for _, k := range w.order {
		if _, ok := ref.lines[k]; !ok {
			extra = append(extra, k)
		}
	}
	return missing, extra, differ, bits
}

// setDiff returns the elements of a not in b (both sorted).
func setDiff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
