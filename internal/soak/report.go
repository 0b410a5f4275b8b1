package soak

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is what a campaign measured: one row per figure, and the breaches, the rows
// whose figure is not what it must be.
type Report struct {
	Seed    uint64
	Profile string
	Setup   []string // what ran, in words: broker, scale-downs, faults not injected
	Rows    []Row
}

// Row is one figure of the table. Want is empty for figures that are reported, not
// judged; OK says whether a judged figure holds.
type Row struct {
	What, Value, Want string
	OK                bool
}

func (r *Report) add(what string, value any, want string, ok bool) {
	r.Rows = append(r.Rows, Row{What: what, Value: fmt.Sprint(value), Want: want, OK: ok})
}

// info adds a figure that is reported but not judged.
func (r *Report) info(what string, value any) {
	r.Rows = append(r.Rows, Row{What: what, Value: fmt.Sprint(value), OK: true})
}

// must adds a figure that must equal want.
func (r *Report) must(what string, got, want int64) {
	r.add(what, got, fmt.Sprint(want), got == want)
}

// Breaches are the judged rows that do not hold.
func (r *Report) Breaches() []Row {
	var out []Row
	for _, row := range r.Rows {
		if !row.OK {
			out = append(out, row)
		}
	}
	return out
}

// Print writes the setup and the table, then a verdict line.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\ndriftmon soak campaign — profile %s, seed %d\n", r.Profile, r.Seed)
	for _, s := range r.Setup {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| figure\t| measured\t| must be\t| |")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---|")
	for _, row := range r.Rows {
		mark := ""
		switch {
		case row.Want == "":
		case row.OK:
			mark = "ok"
		default:
			mark = "BREACH"
		}
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s |\n", row.What, strings.ReplaceAll(row.Value, "|", "/"), row.Want, mark)
	}
	tw.Flush()
	if b := r.Breaches(); len(b) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d breach(es):", len(b))
		for _, row := range b {
			fmt.Fprintf(w, " %s;", row.What)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "\nPASS: no breach")
	}
}
