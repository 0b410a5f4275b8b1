package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

const profileUsage = `Usage: driftmon profile show [--top N] FILE.profile...

Prints what a reference profile (written by "driftmon baseline") holds: its time bounds,
rows, and per feature the counts, quantiles and moments (numeric) or top categories
(categorical) that windows are compared with. --top N shows N categories per
categorical feature (default 5).
`

func runProfile(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, profileUsage)
	top := fs.Int("top", 5, "categories shown per categorical feature")
	if len(args) == 0 || args[0] != "show" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	for i, path := range fs.Args() {
		p, err := engine.ReadProfile(path)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		var size int64
		if st, err := os.Stat(path); err == nil {
			size = st.Size()
		}
		if err := showProfile(stdout, path, size, p, *top); err != nil {
			return err
		}
	}
	return nil
}

// showProfile prints p as aligned text: a header, then one table per kind of feature.
func showProfile(w io.Writer, path string, size int64, p *sketch.Profile, top int) error {
	var nums, cats []*sketch.Feature
	for _, f := range p.Features {
		if f.Cat != nil {
			cats = append(cats, f)
		} else {
			nums = append(nums, f)
		}
	}
	o := p.Options()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\t%s (%s)\n", path, bytesText(size))
	if p.Start.IsZero() {
		fmt.Fprintf(tw, "window\tno event times\n")
	} else {
		fmt.Fprintf(tw, "window\t%s → %s UTC\n", p.Start.UTC().Format(timeLayout), p.End.UTC().Format(timeLayout))
	}
	fmt.Fprintf(tw, "rows\t%s\n", alerting.FormatCount(p.Rows))
	fmt.Fprintf(tw, "features\t%d (%d numeric, %d categorical)\n", len(p.Features), len(nums), len(cats))
	fmt.Fprintf(tw, "sketches\tt-digest compression %g, exact counts up to %d values, %d categories\n", o.Compression, o.MaxExact, o.MaxCategories)
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(nums) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{{"NUMERIC", "COUNT", "NULLS", "NAN/INF", "MIN", "P5", "P50", "P95", "MAX", "MEAN", "STD", "SKETCH"}}
		for _, f := range nums {
			n := f.Num
			sk := "t-digest"
			if vals, _, ok := n.Exact(); ok {
				sk = fmt.Sprintf("exact, %d values", len(vals))
			} else if cs := n.Centroids(); cs != nil {
				sk = fmt.Sprintf("t-digest, %d centroids", len(cs))
			}
			rows = append(rows, []string{alerting.Printable(f.Name),
				alerting.FormatCount(n.Count()), nulls(f), alerting.FormatCount(n.NaNs() + n.Infs()),
				num(n.Min()), num(n.Quantile(0.05)), num(n.Quantile(0.5)), num(n.Quantile(0.95)), num(n.Max()),
				num(n.Mean()), num(n.Std()), sk})
		}
		// Names and the sketch column read left to right; numbers line up on the right.
		if err := writeAligned(w, rows, func(col int) bool { return col > 0 && col < 11 }); err != nil {
			return err
		}
	}
	if len(cats) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{{"CATEGORICAL", "COUNT", "NULLS", "DISTINCT", "TOP CATEGORIES (share of non-null values)"}}
		for _, f := range cats {
			c := f.Cat
			distinct := alerting.FormatCount(int64(c.Distinct()))
			if c.Other() > 0 {
				distinct = "~" + distinct // HyperLogLog estimate
			}
			rows = append(rows, []string{alerting.Printable(f.Name), alerting.FormatCount(c.Count()), nulls(f), distinct, topCategories(c, top)})
		}
		if err := writeAligned(w, rows, func(col int) bool { return col > 0 && col < 4 }); err != nil {
			return err
		}
	}
	var typeErrs []string
	for _, f := range p.Features {
		if f.TypeErrors > 0 {
			typeErrs = append(typeErrs, fmt.Sprintf("%s %s", alerting.Printable(f.Name), alerting.FormatCount(f.TypeErrors)))
		}
	}
	if len(typeErrs) > 0 {
		fmt.Fprintf(w, "\nvalues of the wrong type (counted as nulls): %s\n", strings.Join(typeErrs, ", "))
	}
	return nil
}

// topCategories lists the n most frequent categories with their shares, then the rest
// and the values past MaxCategories ("other").
func topCategories(c *sketch.Categorical, n int) string {
	if c.Count() == 0 {
		return "-"
	}
	cs := c.Counts()
	slices.SortStableFunc(cs, func(a, b sketch.CategoryCount) int {
		switch {
		case a.Count > b.Count:
			return -1
		case a.Count < b.Count:
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	total := float64(c.Count())
	var parts []string
	var rest int64
	for i, cc := range cs {
		if i < n {
			parts = append(parts, fmt.Sprintf("%s %s", strconv.Quote(cc.Value), detectors.Percent(float64(cc.Count)/total)))
		} else {
			rest += cc.Count
		}
	}
	if more := len(cs) - n; more > 0 {
		parts = append(parts, fmt.Sprintf("%d more %s", more, detectors.Percent(float64(rest)/total)))
	}
	if c.Other() > 0 {
		parts = append(parts, "other "+detectors.Percent(float64(c.Other())/total))
	}
	return strings.Join(parts, ", ")
}

// writeAligned writes rows as columns two spaces apart, right-aligning the columns for
// which right is true.
func writeAligned(w io.Writer, rows [][]string, right func(col int) bool) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case right(i):
				b.WriteString(pad + c)
			case i == len(r)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
			if i < len(r)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func nulls(f *sketch.Feature) string {
	k := f.Nulls()
	if k == 0 || f.Total() == 0 {
		return alerting.FormatCount(k)
	}
	return fmt.Sprintf("%s (%s)", alerting.FormatCount(k), detectors.Percent(float64(k)/float64(f.Total())))
}

func num(v float64) string {
	if v != v {
		return "-"
	}
	return detectors.Compact(v)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
