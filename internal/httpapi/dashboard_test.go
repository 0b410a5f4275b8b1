package httpapi

import (
	"bytes"
	"context"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
)

const chromium = "/usr/bin/chromium"

// TestDashboardInChromium loads the dashboard in headless Chromium against a
// server fed with real detector results (one shifted feature, the others stable)
// and checks what the browser built: the shifted feature's cells are marked
// drifted, the stable feature's never are, distributions are drawn, the alert
// is listed, and the performance panel shows the final and provisional windows
// from late labels, newest first, degraded ones marked. It also leaves a screenshot in $DRIFTMON_ARTIFACTS (or a temporary
// directory) and logs its path.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("needs %s: apt-get install chromium", chromium)
	}
	f := newFixture(t)
	url := "http://" + serve(t, f.srv, nil) + "/"

	dom, console := runChromium(t, "--dump-dom", "--enable-logging=stderr", "--v=0", url)
	// The page's Content-Security-Policy must not block anything the page does (the
	// heat map's colours and the bars' widths are style properties set by the script).
	for _, line := range strings.Split(console, "\n") {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("the browser blocked something: %s", line)
		}
	}
	cells := cellsOf(dom)
	if len(cells) == 0 {
		t.Fatalf("no heat map cells in the DOM:\n%s", dom)
	}
	var drifted []string
	for _, c := range cells {
		if slices.Contains(c.classes, "drifted") {
			drifted = append(drifted, c.feature+"@"+c.window)
		}
	}
	a := f.lastAlert(t)
	if !slices.Contains(drifted, shiftedFeature+"@"+a.ID) {
		t.Errorf("drifted cells %v: want %s in the last window %s", drifted, shiftedFeature, a.ID)
	}
	for _, d := range drifted {
		if !strings.HasPrefix(d, shiftedFeature+"@") {
			t.Errorf("cell %s is marked drifted; only %s shifted", d, shiftedFeature)
		}
	}
	if !slices.ContainsFunc(cells, func(c cell) bool { return c.feature == stableFeature }) {
		t.Errorf("no cells for the stable feature %s", stableFeature)
	}
	if n := strings.Count(dom, `class="bar-cur"`); n < 20 {
		t.Errorf("%d current-distribution bars drawn, want the distributions of the selected window", n)
	}
	if !regexp.MustCompile(`class="dist drifted" data-feature="` + shiftedFeature + `"`).MatchString(dom) {
		t.Errorf("the distribution of %s is not marked drifted", shiftedFeature)
	}
	// A finding says which rule decided it, with its numbers.
	if !regexp.MustCompile(`class="rule">(KS D|W1) [0-9.]+σ?, lower bound [0-9.]+σ? ≥ min`).MatchString(dom) {
		t.Errorf("no drifted distribution says which rule fired")
	}
	// The joint finding's pairs: each pair's grid, the reference's and the window's side
	// by side (a finding of the fixture's windows, stable there).
	pairs := regexp.MustCompile(`class="dist pair[^"]*" data-pair="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(pairs) == 0 || !strings.Contains(pairs[0][1], " &amp; ") {
		t.Errorf("no pair grid of the joint finding drawn: %v", pairs)
	}
	if n := strings.Count(dom, `<table class="pair-cells">`); n != 2*len(pairs) {
		t.Errorf("%d grids drawn for %d pairs, want two a pair (reference, window)", n, len(pairs))
	}
	if !strings.Contains(dom, "reference") || !regexp.MustCompile(`<td title="[^"]+ &amp; [^"]+: reference [0-9.]+%, current [0-9.]+%"`).MatchString(dom) {
		t.Errorf("the pair grids' cells do not say their bounds and shares")
	}
	if !strings.Contains(dom, `data-alert="`+a.ID+`"`) {
		t.Errorf("alert %s not listed", a.ID)
	}
	checkPerformancePanel(t, f, dom)
	checkObjectives(t, f, dom)

	dir := os.Getenv("DRIFTMON_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, err := filepath.Abs(filepath.Join(dir, "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = runChromium(t, "--screenshot="+shot, "--window-size=1280,900", url)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no PNG screenshot at %s: %v", shot, err)
	}
	t.Logf("dashboard screenshot: %s", shot)
}

// checkPerformancePanel checks the lines of the performance panel against the
// fixture's results: one per compared window, newest first, the newest still
// provisional (62% labelled, said in its tooltip), the one before final and
// degraded.
func checkPerformancePanel(t *testing.T, f *fixture, dom string) {
	t.Helper()
	lines := perfLinesOf(dom)
	want := []string{}
	for i := len(f.res) - 1; i >= 2; i-- { // compared windows, newest first
		want = append(want, f.res[i].Start.Format(time.RFC3339))
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.attrs["data-perf-window"])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("performance lines %v, want one per compared window newest first %v", got, want)
	}
	newest, prev := lines[0], lines[1]
	if newest.attrs["data-status"] != "provisional" || !slices.Contains(newest.classes, "provisional") {
		t.Errorf("newest line %v: want provisional", newest.attrs)
	}
	if !strings.Contains(newest.attrs["title"], "provisional · 62% labelled") {
		t.Errorf("newest line's tooltip %q does not say it is provisional and 62%% labelled", newest.attrs["title"])
	}
	if prev.attrs["data-status"] != "final" || !slices.Contains(prev.classes, "final") || !slices.Contains(prev.classes, "degraded") {
		t.Errorf("second line %v: want final and degraded", prev.attrs)
	}
	if !strings.Contains(prev.attrs["title"], "ROC AUC") {
		t.Errorf("degraded line's tooltip %q does not give the rule", prev.attrs["title"])
	}
	for _, l := range lines[2:] {
		if slices.Contains(l.classes, "degraded") || l.attrs["data-status"] != "final" {
			t.Errorf("stable window's line %v: want final, not degraded", l.attrs)
		}
	}
	if !strings.Contains(dom, "Performance · ROC AUC") {
		t.Error("the performance panel does not name the rule's metric")
	}
}

// checkObjectives checks the objectives' heat map rows and the latency panel against
// the fixture: income's p99 breached in the shifted windows only, marked in both, the
// rule in the tooltips; the panel's lines newest first, with the p99 and the rate.
func checkObjectives(t *testing.T, f *fixture, dom string) {
	t.Helper()
	breached := map[string]bool{}
	for _, m := range regexp.MustCompile(`<td class="cell objective breached[^"]*" data-objective="income p99" data-window="([^"]+)" title="([^"]*)"`).FindAllStringSubmatch(dom, -1) {
		breached[m[1]] = true
		if !strings.Contains(html.UnescapeString(m[2]), "objective breached: income p99 ") {
			t.Errorf("breached cell's tooltip %q does not give the rule", m[2])
		}
	}
	for _, r := range f.res {
		id := alerting.AlertID(r.Stream, r.Model, r.ModelVersion, r.Start)
		if want := r.Objectives[0].Verdict == detectors.Breached; breached[id] != want {
			t.Errorf("window %s: income p99 cell breached %v, want %v (%s)", r.Start, breached[id], want, r.Objectives[0].Rule)
		}
	}
	if len(breached) != 2 {
		t.Errorf("%d breached objective cells, want the 2 shifted windows", len(breached))
	}
	if n := strings.Count(dom, `data-objective="rows per minute"`); n != len(f.res) {
		t.Errorf("%d cells of the rows per minute objective, want one a window (%d)", n, len(f.res))
	}
	var got []string
	var marked []string
	for _, tag := range trTag.FindAllString(dom, -1) {
		m := regexp.MustCompile(`data-latency-window="([^"]+)"`).FindStringSubmatch(tag)
		if m == nil {
			continue
		}
		got = append(got, m[1])
		if strings.Contains(tag, `class="breached"`) {
			marked = append(marked, m[1])
		}
	}
	var want, wantMarked []string
	for i := len(f.res) - 1; i >= 0; i-- {
		want = append(want, f.res[i].Start.Format(time.RFC3339))
		if f.res[i].Objectives[0].Verdict == detectors.Breached {
			wantMarked = append(wantMarked, f.res[i].Start.Format(time.RFC3339))
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(marked, wantMarked) {
		t.Errorf("latency lines %v (breached %v), want every window newest first %v (breached %v)", got, marked, want, wantMarked)
	}
	if !strings.Contains(dom, "Latency and throughput · income") || !strings.Contains(dom, "200 rows/min") {
		t.Error("the latency panel does not name its field or show the rate")
	}
}

// perfLine is a line of a performance panel as the browser rendered it.
type perfLine struct {
	classes []string
	attrs   map[string]string
}

var trTag = regexp.MustCompile(`<tr\b[^>]*>`)

// perfLinesOf finds the performance lines (tr elements with data-perf-window) in a
// DOM dump, in document order.
func perfLinesOf(dom string) []perfLine {
	var out []perfLine
	for _, tag := range trTag.FindAllString(dom, -1) {
		l := perfLine{attrs: map[string]string{}}
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			l.attrs[m[1]] = html.UnescapeString(m[2])
		}
		l.classes = strings.Fields(l.attrs["class"])
		if l.attrs["data-perf-window"] != "" {
			out = append(out, l)
		}
	}
	return out
}

// runChromium runs headless Chromium with a throwaway profile and returns stdout and
// stderr (where --enable-logging=stderr writes the page's console). The virtual-time
// budget lets the page's fetches finish before the DOM is dumped.
func runChromium(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return string(out), errb.String()
}

// cell is a heat map cell as the browser rendered it.
type cell struct {
	classes         []string
	feature, window string
}

var (
	tdTag = regexp.MustCompile(`<td\b[^>]*>`)
	attr  = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
)

// cellsOf finds the heat map cells (td elements with data-feature) in a DOM dump.
func cellsOf(dom string) []cell {
	var out []cell
	for _, tag := range tdTag.FindAllString(dom, -1) {
		var c cell
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			switch m[1] {
			case "class":
				c.classes = strings.Fields(m[2])
			case "data-feature":
				c.feature = m[2]
			case "data-window":
				c.window = m[2]
			}
		}
		if c.feature != "" {
			out = append(out, c)
		}
	}
	return out
}

// TestDashboardSplitsBySegment: a model with segment findings gets a heat map of the
// whole traffic (no segment rows), and split by a segment key (?split=segment, or the
// select above the map) one row per segment and feature, largest segment first, with
// the shifted feature's segment cells drifted.
func TestDashboardSplitsBySegment(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("needs %s: apt-get install chromium", chromium)
	}
	srv := New(Options{Token: testToken, Source: &fakeSource{}, Now: func() time.Time { return t0.Add(2 * time.Hour) }})
	for _, r := range segmentedResults(t, 1, 1) {
		srv.Record(r)
	}
	url := "http://" + serve(t, srv, nil) + "/"
	rows := func(dom string) (names, drifted []string) {
		for _, c := range cellsOf(dom) {
			if !slices.Contains(names, c.feature) {
				names = append(names, c.feature)
			}
			if slices.Contains(c.classes, "drifted") && !slices.Contains(drifted, c.feature) {
				drifted = append(drifted, c.feature)
			}
		}
		return names, drifted
	}
	whole, _ := runChromium(t, "--dump-dom", url)
	if !strings.Contains(whole, `data-split=`) || !strings.Contains(whole, `<option value="segment">by segment</option>`) {
		t.Errorf("no split select offering the segment key")
	}
	if names, _ := rows(whole); slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "@") }) || len(names) == 0 {
		t.Errorf("whole traffic heat map rows %v: want the features, no segment rows", names)
	}
	split, _ := runChromium(t, "--dump-dom", url+"?split=segment")
	names, drifted := rows(split)
	// retail (half the rows) before smb; corporate has too few reference rows.
	want := []string{"age@segment=retail", "income@segment=retail", "tier@segment=retail", "age@segment=smb", "income@segment=smb", "tier@segment=smb"}
	if !slices.Equal(names, want) {
		t.Errorf("split heat map rows %v, want %v", names, want)
	}
	if !slices.Equal(drifted, []string{"income@segment=retail", "income@segment=smb"}) {
		t.Errorf("drifted rows %v, want income's in each segment", drifted)
	}
}
