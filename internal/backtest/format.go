package backtest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/report"
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
//   - jsonl: one JSON object per window, as it closes: the API's window and where it
//     lies in the input (see WindowJSON).
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

// WindowJSON is one window in the jsonl format: the window as the API shows it
// (report.Window, without distributions), with where it lies in the input.
type WindowJSON struct {
	// Index numbers the windows of the window's model from 1 (Window.Index).
	Index int `json:"window"`
	// Start and End stand in for the window's own (encoding/json takes the field
	// nested least): RFC 3339, or null without event times.
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
	// FirstRow and LastRow are absent unless known (Window.FirstRow).
	FirstRow int64 `json:"first_row,omitempty"`
	LastRow  int64 `json:"last_row,omitempty"`
	report.Window
}

// JSON returns w as it appears in the jsonl format. Without event times its bounds
// are null and it has no ID: every window's alert ID would be the same.
func (w Window) JSON() WindowJSON {
	out := WindowJSON{Index: w.Index, FirstRow: w.FirstRow, LastRow: w.LastRow, Window: report.NewWindow(w.Result)}
	if w.Timed {
		start, end := w.Start, w.End
		out.Start, out.End = &start, &end
	} else {
		out.ID = ""
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

func (c *csvWriter) Write(win Window) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(csvHeader); err != nil {
			return err
		}
	}
	w := win.JSON()
	var start, end, first, last string
	if w.Start != nil {
		start, end = w.Start.Format(time.RFC3339Nano), w.End.Format(time.RFC3339Nano)
	}
	if w.LastRow > 0 {
		first, last = strconv.FormatInt(w.FirstRow, 10), strconv.FormatInt(w.LastRow, 10)
	}
	head := []string{w.Stream, w.Model, w.Version, strconv.Itoa(w.Index), start, end, first, last, strconv.FormatInt(w.Rows, 10)}
	if w.Warmup {
		row := append(head, "", "", "", "", "", "", "", "", "warmup", w.Reference)
		if err := c.w.Write(printable(row)); err != nil {
			return err
		}
	}
	for _, f := range w.Findings {
		row := append(head[:len(head):len(head)], f.Feature, f.Kind, f.Detector,
			csvNumber(f.Score), csvNumber(f.Threshold), csvNumber(f.PValue), csvNumber(f.AdjustedP), csvNumber(f.PSI),
			f.Verdict, f.Summary)
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

// csvNumber is n with six significant digits, or empty when it is NaN or ±Inf.
func csvNumber(n alerting.Number) string {
	v := float64(n)
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
	windows []WindowJSON
}

func (t *tableWriter) Write(w Window) error {
	t.windows = append(t.windows, w.JSON())
	return nil
}

func (t *tableWriter) Close(sum Summary) error {
	models := map[[2]string]bool{}
	timed, ranges := false, false
	for _, w := range t.windows {
		models[[2]string{w.Model, w.Version}] = true
		timed = timed || w.Start != nil
		ranges = ranges || w.LastRow > 0
	}
	multi := len(models) > 1
	layout := timeLayout(t.windows)
	objectives := slices.ContainsFunc(t.windows, func(w WindowJSON) bool { return len(w.Objectives) > 0 })
	breached := 0

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
	if objectives {
		head = append(head, "BREACHED")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))

	perFeature := map[string]int{}
	var reference string
	for _, w := range t.windows {
		cells := []string{strconv.Itoa(w.Index)}
		if multi {
			m := w.Model
			if w.Version != "" {
				m += " " + w.Version
			}
			cells = append(cells, alerting.Printable(m))
		}
		if timed {
			var start, end string
			if w.Start != nil {
				start, end = w.Start.Format(layout), w.End.Format(layout)
			}
			cells = append(cells, start, end)
		}
		if ranges {
			cells = append(cells, alerting.FormatCount(w.FirstRow)+"–"+alerting.FormatCount(w.LastRow))
		}
		cells = append(cells, alerting.FormatCount(w.Rows), verdicts(w))
		if objectives {
			b := "-"
			if len(w.Breached) > 0 {
				b = alerting.Printable(strings.Join(w.Breached, ", "))
				breached++
			}
			cells = append(cells, b)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		for _, f := range w.Drifted {
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
	if objectives {
		fmt.Fprintf(t.w, ", %d breaching an objective", breached)
	}
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
func verdicts(w WindowJSON) string {
	if w.Warmup {
		return "(" + alerting.Printable(w.Reference) + ")" // "warm-up: 1 of 3 windows"
	}
	var drifted, insufficient []string
	for _, f := range w.Findings {
		switch detectors.Verdict(f.Verdict) {
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
func timeLayout(ws []WindowJSON) string {
	for _, w := range ws {
		if w.Start != nil && (w.Start.Second() != 0 || w.End.Second() != 0 || w.Start.Nanosecond() != 0 || w.End.Nanosecond() != 0) {
			return "2006-01-02 15:04:05"
		}
	}
	return "2006-01-02 15:04"
}
