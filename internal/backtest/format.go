package backtest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
)

// Output formats of NewWriter.
const (
	FormatTable = "table"
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// Writer prints windows as they close; Close prints what comes after the last one.
type Writer interface {
	Write(Window) error
	Close(Summary) error
}

// NewWriter returns a Writer of format (FormatTable, FormatJSONL or FormatCSV) to w.
//
//   - table: one aligned line per window (its number, bounds, rows and the features that
//     drifted), then a summary: how many windows drifted, and how often each feature did.
//     It is printed when the run ends, so columns line up.
//   - jsonl: one JSON object per window, as it closes (see WindowJSON).
//   - csv: a header, then one row per window and feature, as windows close.
func NewWriter(format string, w io.Writer) (Writer, error) {
	switch format {
	case FormatTable, "":
		return &tableWriter{w: w}, nil
	case FormatJSONL:
		return &jsonlWriter{enc: json.NewEncoder(w)}, nil
	case FormatCSV:
		return &csvWriter{w: csv.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("unknown format %q: want table, jsonl or csv", format)
}

// WindowJSON is one window in the jsonl format. Times are RFC 3339 and null without
// event times; first_row and last_row are absent unless known.
type WindowJSON struct {
	Stream       string        `json:"stream"`
	Model        string        `json:"model"`
	ModelVersion string        `json:"model_version"`
	Window       int           `json:"window"`
	WindowStart  *time.Time    `json:"window_start"`
	WindowEnd    *time.Time    `json:"window_end"`
	FirstRow     int64         `json:"first_row,omitempty"`
	LastRow      int64         `json:"last_row,omitempty"`
	Rows         int64         `json:"rows"`
	Reference    string        `json:"reference"`
	Warmup       bool          `json:"warmup"`
	Drifted      []string      `json:"drifted"`
	Findings     []FindingJSON `json:"findings"`
}

// FindingJSON is one feature's finding in the jsonl format. Scores that are not finite
// are null.
type FindingJSON struct {
	Feature   string   `json:"feature"`
	Kind      string   `json:"kind"`
	Detector  string   `json:"detector"`
	Score     *float64 `json:"score"`
	PValue    *float64 `json:"p_value"`
	AdjustedP *float64 `json:"adjusted_p"`
	Threshold *float64 `json:"threshold"`
	PSI       *float64 `json:"psi"`
	Verdict   string   `json:"verdict"`
	Summary   string   `json:"summary"`
}

// JSON returns w as it appears in the jsonl format.
func (w Window) JSON() WindowJSON {
	out := WindowJSON{
		Stream: w.Stream, Model: w.Model, ModelVersion: w.ModelVersion, Window: w.Index,
		FirstRow: w.FirstRow, LastRow: w.LastRow, Rows: w.Rows,
		Reference: w.Reference, Warmup: w.Warmup,
		Drifted: w.Drifted(), Findings: []FindingJSON{},
	}
	if out.Drifted == nil {
		out.Drifted = []string{}
	}
	if w.Timed {
		start, end := w.Start, w.End
		out.WindowStart, out.WindowEnd = &start, &end
	}
	for _, f := range w.Findings {
		out.Findings = append(out.Findings, FindingJSON{
			Feature: f.Feature, Kind: f.Kind, Detector: f.Detector,
			Score: alerting.Finite(f.Score), PValue: alerting.Finite(f.PValue), AdjustedP: alerting.Finite(f.AdjustedP),
			Threshold: alerting.Finite(f.Threshold), PSI: alerting.Finite(f.PSI),
			Verdict: string(f.Verdict), Summary: f.Summary(),
		})
	}
	return out
}

type jsonlWriter struct{ enc *json.Encoder }

func (j *jsonlWriter) Write(w Window) error { return j.enc.Encode(w.JSON()) }
func (j *jsonlWriter) Close(Summary) error  { return nil }

type csvWriter struct {
	w      *csv.Writer
	header bool
}

var csvHeader = []string{
	"stream", "model", "model_version", "window", "window_start", "window_end", "first_row", "last_row", "rows",
	"feature", "kind", "detector", "score", "threshold", "p_value", "adjusted_p", "psi", "verdict", "summary",
}

func (c *csvWriter) Write(w Window) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(csvHeader); err != nil {
			return err
		}
	}
	var start, end, first, last string
	if w.Timed {
		start, end = w.Start.Format(time.RFC3339Nano), w.End.Format(time.RFC3339Nano)
	}
	if w.LastRow > 0 {
		first, last = strconv.FormatInt(w.FirstRow, 10), strconv.FormatInt(w.LastRow, 10)
	}
	head := []string{w.Stream, w.Model, w.ModelVersion, strconv.Itoa(w.Index), start, end, first, last, strconv.FormatInt(w.Rows, 10)}
	if w.Warmup {
		row := append(head, "", "", "", "", "", "", "", "", "warmup", w.Reference)
		if err := c.w.Write(printable(row)); err != nil {
			return err
		}
	}
	for _, f := range w.Findings {
		row := append(head[:len(head):len(head)], f.Feature, f.Kind, f.Detector,
			csvFloat(f.Score), csvFloat(f.Threshold), csvFloat(f.PValue), csvFloat(f.AdjustedP), csvFloat(f.PSI),
			string(f.Verdict), f.Summary())
		if err := c.w.Write(printable(row)); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

// printable escapes the control characters of every cell (alerting.Printable): the
// values come from the data. JSON needs no such step: its encoder escapes them.
func printable(cells []string) []string {
	for i, c := range cells {
		cells[i] = alerting.Printable(c)
	}
	return cells
}

func csvFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func (c *csvWriter) Close(Summary) error {
	if !c.header {
		c.header = true
		c.w.Write(csvHeader)
	}
	c.w.Flush()
	return c.w.Error()
}

// tableWriter keeps the windows until Close so the columns can be aligned.
type tableWriter struct {
	w       io.Writer
	windows []Window
}

func (t *tableWriter) Write(w Window) error {
	t.windows = append(t.windows, w)
	return nil
}

func (t *tableWriter) Close(sum Summary) error {
	models := map[[2]string]bool{}
	timed, ranges := false, false
	for _, w := range t.windows {
		models[[2]string{w.Model, w.ModelVersion}] = true
		timed = timed || w.Timed
		ranges = ranges || w.LastRow > 0
	}
	multi := len(models) > 1
	layout := timeLayout(t.windows)

	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	var head []string
	head = append(head, "WINDOW")
	if multi {
		head = append(head, "MODEL")
	}
	if timed {
		head = append(head, "START (UTC)", "END")
	}
	if ranges {
		head = append(head, "INPUT ROWS")
	}
	head = append(head, "ROWS", "DRIFTED")
	fmt.Fprintln(tw, strings.Join(head, "\t"))

	perFeature := map[string]int{}
	var reference string
	for _, w := range t.windows {
		cells := []string{strconv.Itoa(w.Index)}
		if multi {
			m := w.Model
			if w.ModelVersion != "" {
				m += " " + w.ModelVersion
			}
			cells = append(cells, alerting.Printable(m))
		}
		if timed {
			cells = append(cells, w.Start.Format(layout), w.End.Format(layout))
		}
		if ranges {
			cells = append(cells, alerting.FormatCount(w.FirstRow)+"–"+alerting.FormatCount(w.LastRow))
		}
		cells = append(cells, alerting.FormatCount(w.Rows), verdicts(w))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		for _, f := range w.Drifted() {
			perFeature[f]++
		}
		if !w.Warmup {
			reference = w.Reference
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(t.w, "\n%d windows, %d with drift", sum.Windows, sum.Drifted)
	if reference != "" {
		fmt.Fprintf(t.w, " (reference: %s)", alerting.Printable(reference))
	}
	fmt.Fprintln(t.w)
	if len(perFeature) > 0 {
		names := make([]string, 0, len(perFeature))
		for n := range perFeature {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if perFeature[names[i]] != perFeature[names[j]] {
				return perFeature[names[i]] > perFeature[names[j]]
			}
			return names[i] < names[j]
		})
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", alerting.Printable(n), perFeature[n])
		}
		_, err := fmt.Fprintf(t.w, "drifting windows per feature: %s\n", strings.Join(parts, ", "))
		return err
	}
	return nil
}

// verdicts is a window's DRIFTED cell: the drifted features, or "-", and the features
// without a verdict, with control characters escaped.
func verdicts(w Window) string {
	if w.Warmup {
		return "(" + alerting.Printable(w.Reference) + ")" // "warm-up: 1 of 3 windows"
	}
	var drifted, insufficient []string
	for _, f := range w.Findings {
		switch f.Verdict {
		case detectors.Drift:
			drifted = append(drifted, alerting.Printable(f.Feature))
		case detectors.InsufficientData:
			insufficient = append(insufficient, alerting.Printable(f.Feature))
		}
	}
	s := "-"
	if len(drifted) > 0 {
		s = strings.Join(drifted, ", ")
	}
	switch {
	case len(insufficient) == len(w.Findings) && len(w.Findings) > 0:
		s = "(insufficient data)"
	case len(insufficient) > 0:
		s += " (insufficient data: " + strings.Join(insufficient, ", ") + ")"
	}
	return s
}

// timeLayout shows seconds only when some bound has them.
func timeLayout(ws []Window) string {
	for _, w := range ws {
		if w.Timed && (w.Start.Second() != 0 || w.End.Second() != 0 || w.Start.Nanosecond() != 0 || w.End.Nanosecond() != 0) {
			return "2006-01-02 15:04:05"
		}
	}
	return "2006-01-02 15:04"
}
