package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The NannyML car-loan data: monitoring.* shifts abruptly at row 25,000
// (testdata/nannyml_car_loan/ground_truth.json).
const carLoanDir = "../../testdata/nannyml_car_loan/"

var (
	carLoanShifted = []string{"car_value", "loan_length", "salary_range", "repaid_loan_on_prev_car", "y_pred_proba"}
	carLoanStable  = []string{"debt_to_income_ratio", "driver_tenure", "size_of_downpayment"}
)

// runOK runs the command line and fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("%v: exit code %d; stderr:\n%s", args, code, errOut.String())
	}
	return out.String(), errOut.String()
}

// runFails runs the command line, checks its exit code and returns its stderr.
func runFails(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != wantCode {
		t.Fatalf("%v: exit code %d, want %d; stdout:\n%s\nstderr:\n%s", args, code, wantCode, out.String(), errOut.String())
	}
	return errOut.String()
}

// jsonWindow is what the tests read of a jsonl line.
type jsonWindow struct {
	Window      int      `json:"window"`
	WindowStart *string  `json:"start"`
	WindowEnd   *string  `json:"end"`
	Rows        int64    `json:"rows"`
	Drifted     []string `json:"drifted"`
	Findings    []struct {
		Feature   string   `json:"feature"`
		Detector  string   `json:"detector"`
		Score     *float64 `json:"score"`
		PValue    *float64 `json:"p_value"`
		Threshold *float64 `json:"threshold"`
		Verdict   string   `json:"verdict"`
	} `json:"findings"`
}

func parseJSONL(t *testing.T, out string) []jsonWindow {
	t.Helper()
	var ws []jsonWindow
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for _, k := range []string{"start", "end", "rows", "drifted", "findings"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %d lacks %q", i+1, k)
			}
		}
		var w jsonWindow
		if err := json.Unmarshal([]byte(line), &w); err != nil {
			t.Fatal(err)
		}
		for _, f := range w.Findings {
			if f.Feature == "" || f.Detector == "" || f.Score == nil || f.PValue == nil || f.Threshold == nil || f.Verdict == "" {
				t.Errorf("line %d: incomplete finding %+v", i+1, f)
			}
		}
		ws = append(ws, w)
	}
	return ws
}

// checkCarLoanVerdicts asserts the ground truth on ten 5,000-row windows.
func checkCarLoanVerdicts(t *testing.T, drifted [][]string) {
	t.Helper()
	if len(drifted) != 10 {
		t.Fatalf("%d windows, want 10", len(drifted))
	}
	for i, d := range drifted {
		if i < 5 {
			if len(d) > 0 {
				t.Errorf("window %d (before the shift) flags %v", i+1, d)
			}
			continue
		}
		for _, f := range carLoanShifted {
			if !slices.Contains(d, f) {
				t.Errorf("window %d (after the shift) misses %s; drifted %v", i+1, f, d)
			}
		}
		for _, f := range carLoanStable {
			if slices.Contains(d, f) {
				t.Errorf("window %d flags stable feature %s", i+1, f)
			}
		}
	}
}

func TestBacktestInferredCSVTable(t *testing.T) {
	out, errOut := runOK(t, "backtest", "--reference", carLoanDir+"reference.csv", "--input", carLoanDir+"monitoring.csv",
		"--window-rows", "5000", "--exclude", "repaid,timestamp,y_pred")
	if errOut != "" {
		t.Errorf("stderr off a terminal: %q", errOut)
	}
	var drifted [][]string
	for _, line := range strings.Split(out, "\n") {
		// "6       25,001–30,000  5,000  car_value, loan_length, ..."
		f := strings.Fields(line)
		if len(f) < 4 || !strings.Contains(f[1], "–") {
			continue
		}
		if f[2] != "5,000" {
			t.Errorf("window %s has %s rows", f[0], f[2])
		}
		var names []string
		if f[3] != "-" {
			for _, n := range f[3:] {
				names = append(names, strings.TrimSuffix(n, ","))
			}
		}
		drifted = append(drifted, names)
	}
	checkCarLoanVerdicts(t, drifted)
	for _, want := range []string{"WINDOW  INPUT ROWS     ROWS   DRIFTED", "25,001–30,000", "10 windows, 5 with drift (reference: baseline reference.csv (50,000 rows))"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}

func TestBacktestInferredParquetJSONL(t *testing.T) {
	out, errOut := runOK(t, "backtest", "--reference", carLoanDir+"reference.parquet", "--input", carLoanDir+"monitoring.parquet",
		"--window-rows", "5000", "--time-column", "timestamp", "--exclude", "repaid,y_pred", "--format", "jsonl")
	if errOut != "" {
		t.Errorf("stderr: %q", errOut)
	}
	ws := parseJSONL(t, out)
	var drifted [][]string
	for i, w := range ws {
		// Eight features, the multivariate and the joint finding.
		if w.Window != i+1 || w.Rows != 5000 || w.WindowStart == nil || w.WindowEnd == nil || len(w.Findings) != 10 {
			t.Errorf("window %d: %+v", i+1, w)
		}
		drifted = append(drifted, w.Drifted)
	}
	checkCarLoanVerdicts(t, drifted)
	if *ws[5].WindowStart != "2019-03-31T03:00:00Z" {
		t.Errorf("window 6 starts at %s, want the shift at 2019-03-31T03:00:00Z", *ws[5].WindowStart)
	}
}

func TestBacktestCSVFormatAndTunedThresholds(t *testing.T) {
	// Effect minima of D 0.5 and 5σ silence every numeric shift (car_value's D ≈ 0.43,
	// W ≈ 0.9σ) and leave the categorical PSI gate alone.
	out, _ := runOK(t, "backtest", "--reference", carLoanDir+"reference.parquet", "--input", carLoanDir+"monitoring.parquet",
		"--window-rows", "25000", "--exclude", "timestamp", "--format", "csv", "--ks-min", "0.5", "--wasserstein-min", "5")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+2*12 {
		t.Fatalf("%d lines, want a header and (10 features + the multivariate and joint findings) × 2 windows:\n%s", len(lines), out)
	}
	for _, l := range lines[1:] {
		cells := strings.Split(l, ",")
		feature, threshold, verdict := cells[9], cells[13], cells[17]
		if cells[11] == "ks" && threshold != "0.5" {
			t.Errorf("%s: KS threshold %s, want 0.5", feature, threshold)
		}
		if cells[11] == "ks" && verdict == "drift" {
			t.Errorf("%s drifts despite --ks-min 0.5: %s", feature, l)
		}
	}
	if !strings.Contains(out, ",2,,,25001,50000,25000,salary_range,categorical,psi,") || !strings.Contains(out, ",drift,") {
		t.Errorf("window 2 salary_range should still drift:\n%s", out)
	}
}

func TestBacktestUsageErrors(t *testing.T) {
	ref, in := carLoanDir+"reference.csv", carLoanDir+"monitoring.csv"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backtest", "--reference", ref}, "--input is required"},
		{[]string{"backtest", "--input", in, "--window-rows", "10"}, "give -c driftmon.yaml, or --reference"},
		{[]string{"backtest", "--reference", ref, "--input", in}, "set --window-rows N"},
		{[]string{"backtest", "--reference", ref, "--input", in, "--window-size", "1h"}, "--window-size needs --time-column"},
		{[]string{"backtest", "--reference", ref, "--input", in, "--window-rows", "10", "--format", "xml"}, `unknown format "xml"`},
		{[]string{"backtest", "--reference", ref, "--input", in, "--window-rows", "10", "extra"}, "unexpected arguments"},
		{[]string{"backtest", "--reference", ref, "--input", in, "--window-rows", "10", "--fdr", "3"}, "--fdr must be between 0 and 1"},
		{[]string{"backtest", "-c", "x.yaml", "--input", in, "--exclude", "repaid"}, "--exclude only applies without -c"},
	} {
		if got := runFails(t, 2, tc.args...); !strings.Contains(got, tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, got)
		}
	}
}

func TestBacktestBadInputs(t *testing.T) {
	dir := t.TempDir()
	// monitoring data without car_value, and with words where loan_length's numbers belong
	prod := filepath.Join(dir, "prod.csv")
	writeFile(t, prod, "salary_range,loan_length,debt_to_income_ratio\n0 - 20K €,long,0.5\n")
	corrupt := filepath.Join(dir, "ref.profile")
	writeFile(t, corrupt, "DMPF\x01garbage")

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing and mistyped columns", []string{"backtest", "--reference", carLoanDir + "reference.parquet", "--input", prod,
			"--window-rows", "10", "--exclude", "repaid,timestamp,y_pred,y_pred_proba,driver_tenure,size_of_downpayment,repaid_loan_on_prev_car"},
			[]string{"prod.csv: no column for car_value", "column loan_length is utf8, which cannot be read as numeric"}},
		{"corrupt profile", []string{"backtest", "--reference", corrupt, "--input", prod, "--window-rows", "10"},
			[]string{"ref.profile is not a valid driftmon profile", "corrupt profile encoding"}},
		{"missing file", []string{"backtest", "--reference", filepath.Join(dir, "nope.csv"), "--input", prod, "--window-rows", "10"},
			[]string{"nope.csv", "no such file"}},
		{"unknown exclude", []string{"backtest", "--reference", carLoanDir + "reference.csv", "--input", prod, "--window-rows", "10", "--exclude", "horsepower"},
			[]string{"cannot exclude horsepower: reference.csv has no such column"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runFails(t, 1, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// With -c and no baseline the first windows become the reference; the stream's
// event_time names the file's time column, so --window-size needs nothing more.
func TestBacktestConfigWarmupAndEventTimeWindows(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "driftmon.yaml")
	writeFile(t, cfg, `
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: loans
    topic: car-loan
    event_time: timestamp
    features:
      car_value: {type: numeric}
      salary_range: {type: categorical}
      driver_tenure: {type: numeric}
    window: {rows: 1000}
    reference: {warmup_windows: 2}
`)
	out, _ := runOK(t, "backtest", "-c", cfg, "--input", carLoanDir+"monitoring.parquet", "--window-size", "720h")
	for _, want := range []string{
		"START (UTC)       END               ROWS   DRIFTED",
		// The data starts mid-window (that window holds half a window's rows): the
		// first window is no part of the reference.
		"1       2018-10-16 00:00  2018-11-15 00:00  2,519  (first window: traffic may have started within it; not part of the reference)",
		"2       2018-11-15 00:00  2018-12-15 00:00  4,955  (warm-up: 1 of 2 windows)",
		"3       2018-12-15 00:00  2019-01-14 00:00  4,954  (warm-up: 2 of 2 windows)",
		"4       2019-01-14 00:00  2019-02-13 00:00  4,955  -",
		"7       2019-04-14 00:00  2019-05-14 00:00  4,955  car_value, salary_range",
		"11 windows, 6 with drift (reference: first 2 window(s) after start (9,909 rows))",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "driver_tenure") {
		t.Errorf("driver_tenure flagged:\n%s", out)
	}
}

// TestBacktestTopicRange replays a kfake topic: three hours like the first, the
// reference (warm-up), then one shifted hour. The hours hold 200 events, so the
// reference's minimum size is lowered to one hour's.
func TestBacktestTopicRange(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewSource(7))
	var msgs []kafka.Message
	for i := 0; i < 4*200; i++ {
		ts := start.Add(time.Duration(i) * 18 * time.Second) // 200 an hour
		x := rng.NormFloat64()
		if i >= 3*200 {
			x += 2
		}
		msgs = append(msgs, kafka.Message{Time: ts, Value: []byte(fmt.Sprintf(`{"ts":%q,"features":{"x":%g}}`, ts.Format(time.RFC3339), x))})
	}
	msgs = append(msgs, kafka.Message{Time: start.Add(4 * time.Hour), Value: []byte("{")})
	conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], "events", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	cfg := filepath.Join(t.TempDir(), "driftmon.yaml")
	yaml := fmt.Sprintf("kafka:\n  brokers: [%s]\nstreams:\n  - name: s\n    topic: %%s\n    event_time: ts\n    features:\n      x: {type: numeric}\n    window: {size: 1h}\n    reference: {min_rows: 200}\n", brokers[0])
	writeCfg := func(topic string) {
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(yaml, topic)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("events")

	out, errOut := runOK(t, "backtest", "-c", cfg, "--topic-range", "--format", "jsonl")
	ws := parseJSONL(t, out)
	if len(ws) != 4 {
		t.Fatalf("%d windows, want 4:\n%s", len(ws), out)
	}
	for i, w := range ws {
		if drifted := slices.Contains(w.Drifted, "x"); drifted != (i == 3) {
			t.Errorf("window %d drifted %v", i+1, w.Drifted)
		}
	}
	for _, want := range []string{"partition 0: offsets 0 to 801 (801 messages)", "rejected: 1 malformed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	out, _ = runOK(t, "backtest", "-c", cfg, "--topic-range", "--format", "jsonl", "--from", "2026-11-01T01:00:00Z", "--to-offset", "800")
	if ws := parseJSONL(t, out); len(ws) != 3 || *ws[0].WindowStart != "2026-11-01T01:00:00Z" {
		t.Errorf("from 01:00: windows %+v, want 3 from 01:00", ws)
	}

	if errOut := runFails(t, 2, "backtest", "-c", cfg, "--topic-range", "--from", "2026-11-02T00:00:00Z", "--to", "2026-11-01T00:00:00Z"); !strings.Contains(errOut, "--from 2026-11-02T00:00:00Z is not before --to 2026-11-01T00:00:00Z") {
		t.Errorf("from after to: %s", errOut)
	}
	if errOut := runFails(t, 2, "backtest", "-c", cfg, "--from-offset", "3", "--input", "x.csv"); !strings.Contains(errOut, "need --topic-range") {
		t.Errorf("--from-offset without --topic-range: %s", errOut)
	}
	writeCfg("nope")
	if errOut := runFails(t, 1, "backtest", "-c", cfg, "--topic-range"); !strings.Contains(errOut, `unknown topic "nope"`) {
		t.Errorf("unknown topic: %s", errOut)
	}
}

// TestBacktestEscapesControlCharacters replays files whose column names, category values
// and model names hold terminal control sequences (clear screen, set the window title,
// a bidirectional override): the table and CSV print them escaped, as \x1b; JSON lines
// keep the values, escaped by JSON itself.
func TestBacktestEscapesControlCharacters(t *testing.T) {
	const (
		num   = "x\x1b[2J"             // clears the screen
		cat   = "c\x1b]0;pwned\x07"    // sets the terminal's title
		red   = "\x1b[31mred\u202e"    // colour, then a right-to-left override
		model = "m\x1b[1A\x1b[Kforged" // up a line and erase it
		empty = "e\x1b[8m"             // hides what follows
	)
	dir := t.TempDir()
	file := func(name string, shifted bool) string {
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write([]string{num, cat, "model", empty})
		for i := range 2000 {
			v, c := i%50, "blue"
			if shifted {
				v, c = 100+i%50, red
			}
			w.Write([]string{strconv.Itoa(v), c, []string{model, "plain"}[i%2], ""})
		}
		w.Flush()
		p := filepath.Join(dir, name)
		writeFile(t, p, b.String())
		return p
	}
	ref, prod := file("ref.csv", false), file("prod.csv", true)
	// controls finds what a terminal acts on: C0 controls but the newline, DEL, C1
	// controls and the bidirectional overrides.
	controls := regexp.MustCompile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]")
	escaped := []string{`x\x1b[2J`, `c\x1b]0;pwned\a`}

	for _, format := range []string{"table", "csv"} {
		out, errOut := runOK(t, "backtest", "--reference", ref, "--input", prod, "--window-rows", "1000",
			"--exclude", "model", "--format", format)
		if m := controls.FindAllString(out+errOut, -1); m != nil {
			t.Errorf("%s: control characters %q printed raw:\n%s", format, m, out)
		}
		for _, want := range escaped {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %s:\n%s", format, want, out)
			}
		}
		if format == "csv" && !strings.Contains(out, `'\x1b[31mred\u202e'`) {
			t.Errorf("csv: no category %q in a summary:\n%s", red, out)
		}
		if want := "not monitored: e\\x1b[8m: no values in the reference\n"; errOut != want {
			t.Errorf("%s: stderr %q, want %q", format, errOut, want)
		}
	}
	// Errors quote column names too.
	errOut := runFails(t, 1, "backtest", "--reference", ref, "--input", prod, "--window-rows", "1000", "--exclude", "nope")
	if m := controls.FindAllString(errOut, -1); m != nil || !strings.Contains(errOut, `(columns: x\x1b[2J, c\x1b]0;pwned\a, model, e\x1b[8m)`) {
		t.Errorf("error %q, want the column names escaped", errOut)
	}
	out, _ := runOK(t, "backtest", "--reference", ref, "--input", prod, "--window-rows", "1000", "--exclude", "model", "--format", "jsonl")
	var w jsonWindow
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &w); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(w.Drifted, num) || !slices.Contains(w.Drifted, cat) {
		t.Errorf("jsonl drifted %q, want the names as they are in the file", w.Drifted)
	}

	// Model names come from the data too (with -c, the stream's model path).
	cfg := filepath.Join(dir, "driftmon.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: s
    topic: t
    model: model
    features: {%q: {type: numeric, path: %q}}
    window: {rows: 200}
    reference: {warmup_windows: 1, min_rows: 100}
`, "x", num))
	for _, format := range []string{"table", "csv"} {
		out, errOut := runOK(t, "backtest", "-c", cfg, "--input", prod, "--format", format)
		if m := controls.FindAllString(out+errOut, -1); m != nil {
			t.Errorf("-c, %s: control characters %q printed raw:\n%s", format, m, out)
		}
		if !strings.Contains(out, `m\x1b[1A\x1b[Kforged`) {
			t.Errorf("-c, %s: output lacks the escaped model name:\n%s", format, out)
		}
	}
}
