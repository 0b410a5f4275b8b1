package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
)

// The NannyML car-loan data: monitoring.* shifts abruptly at row 25,000
// (testdata/nannyml_car_loan/ground_truth.json).
const carLoanDir = "../../testdata/nannyml_car_loan/"

var (
	carLoanShifted = []string{"car_value", "loan_length", "salary_range", "repaid_loan_on_prev_car", "y_pred_proba"}
	carLoanStable  = []string{"debt_to_income_ratio", "driver_tenure", "size_of_downpayment", "y_pred", "repaid"}
)

// backtestFiles infers a stream from ref, replays input through it and returns every
// window.
func backtestFiles(t *testing.T, ref, input string, opts InferOptions, inOpts InputOptions) (*Inferred, []Window) {
	t.Helper()
	ctx := context.Background()
	inf, err := Infer(ctx, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.NewWithReference(inf.Stream, inf.Reference, inf.ReferenceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Open(input, inf.Stream, inOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var windows []Window
	sum, err := Run(ctx, e, in, Options{
		CountWindows: inf.Stream.Window.Rows > 0,
		OnWindow:     func(w Window) error { windows = append(windows, w); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Windows != len(windows) || sum.Rows != in.Rows() {
		t.Errorf("summary %+v, but %d windows and %d rows", sum, len(windows), in.Rows())
	}
	return inf, windows
}

// checkCarLoan asserts the ground truth on 5,000-row windows: nothing before the shift,
// exactly the shifted features after it.
func checkCarLoan(t *testing.T, windows []Window) {
	t.Helper()
	if len(windows) != 10 {
		t.Fatalf("%d windows, want 10", len(windows))
	}
	for i, w := range windows {
		drifted := w.Drifted()
		if w.Index != i+1 || w.Rows != 5000 || w.FirstRow != int64(i)*5000+1 || w.LastRow != int64(i+1)*5000 {
			t.Errorf("window %d: index %d, rows %d, input rows %d-%d", i+1, w.Index, w.Rows, w.FirstRow, w.LastRow)
		}
		if i < 5 {
			if len(drifted) > 0 {
				t.Errorf("window %d (before the shift) flags %v", i+1, drifted)
			}
			continue
		}
		for _, f := range carLoanShifted {
			if !slices.Contains(drifted, f) {
				t.Errorf("window %d (after the shift) misses %s; drifted %v", i+1, f, drifted)
			}
		}
		for _, f := range carLoanStable {
			if slices.Contains(drifted, f) {
				t.Errorf("window %d flags stable feature %s", i+1, f)
			}
		}
	}
}

func TestCarLoanInferredCSV(t *testing.T) {
	inf, windows := backtestFiles(t, carLoanDir+"reference.csv", carLoanDir+"monitoring.csv",
		InferOptions{Window: config.Window{Rows: 5000}, Exclude: []string{"repaid", "y_pred"}, TimeColumn: "timestamp"},
		InputOptions{TimeColumn: "timestamp"})
	checkCarLoan(t, windows)
	want := map[string]string{
		"car_value": "numeric", "debt_to_income_ratio": "numeric", "driver_tenure": "numeric", "loan_length": "numeric",
		"y_pred_proba": "numeric", "repaid_loan_on_prev_car": "categorical", "salary_range": "categorical",
		"size_of_downpayment": "categorical",
	}
	if len(inf.Stream.Features) != len(want) {
		t.Errorf("features %v, want %v", inf.Stream.Features, want)
	}
	for name, kind := range want {
		if got := inf.Stream.Features[name].Type; got != kind {
			t.Errorf("%s inferred as %q, want %q", name, got, kind)
		}
	}
	if len(inf.Skipped) != 0 {
		t.Errorf("skipped %v, want nothing (timestamp is the time column)", inf.Skipped)
	}
	// Event times give the windows their bounds: the shift is at 2019-03-31 03:00.
	if w := windows[5]; !w.Timed || !w.Start.Equal(time.Date(2019, 3, 31, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("window 6 starts at %v (timed %v), want the shift at 2019-03-31 03:00", w.Start, w.Timed)
	}
	if p := inf.Reference; p.Start.IsZero() || !p.End.After(p.Start) {
		t.Errorf("reference bounds %v → %v, want the reference's first and last event times", p.Start, p.End)
	}
}

// The Parquet pair with nothing excluded: y_pred (an int64 column with two values) and
// repaid stay numeric and stable, and the timestamp strings are skipped as an identifier.
func TestCarLoanInferredParquet(t *testing.T) {
	inf, windows := backtestFiles(t, carLoanDir+"reference.parquet", carLoanDir+"monitoring.parquet",
		InferOptions{Window: config.Window{Rows: 5000}}, InputOptions{})
	checkCarLoan(t, windows)
	if got := inf.Stream.Features["y_pred"].Type; got != "numeric" {
		t.Errorf("y_pred inferred as %q, want numeric", got)
	}
	if len(inf.Skipped) != 1 || inf.Skipped[0].Column != "timestamp" || !strings.Contains(inf.Skipped[0].Reason, "identifier or a time") {
		t.Errorf("skipped %+v, want timestamp as identifier-like", inf.Skipped)
	}
	if windows[0].Timed {
		t.Error("windows without a time column are marked timed")
	}
}

func TestInferKinds(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id,flag,small_int,score,label,empty\n")
	for i := 0; i < 3000; i++ {
		flag := "true"
		if i%3 == 0 {
			flag = "false"
		}
		b.WriteString(strings.Join([]string{"u" + itoa(i), flag, itoa(i % 4), itoa(i) + ".5", []string{"a", "b", "c"}[i%3], ""}, ","))
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, "ref.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inf, err := Infer(context.Background(), path, InferOptions{Window: config.Window{Rows: 100}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"flag": "categorical", "small_int": "numeric", "score": "numeric", "label": "categorical"}
	if len(inf.Stream.Features) != len(want) {
		t.Errorf("features %v, want %v", inf.Stream.Features, want)
	}
	for name, kind := range want {
		if got := inf.Stream.Features[name]; got.Type != kind || got.Path != name {
			t.Errorf("%s: %+v, want type %s read from column %s", name, got, kind, name)
		}
	}
	skipped := map[string]string{}
	for _, s := range inf.Skipped {
		skipped[s.Column] = s.Reason
	}
	if !strings.Contains(skipped["id"], "identifier") || !strings.Contains(skipped["empty"], "no values") || len(skipped) != 2 {
		t.Errorf("skipped %v, want id (identifier) and empty (no values)", skipped)
	}
	if inf.Reference.Rows != 3000 || len(inf.Reference.Features) != len(want) {
		t.Errorf("reference has %d rows and %d features", inf.Reference.Rows, len(inf.Reference.Features))
	}
	if inf.Stream.Detectors.FDR != config.DefaultFDR || inf.Stream.Detectors.MinRows != config.DefaultMinRows {
		t.Errorf("detectors %+v, want the config defaults", inf.Stream.Detectors)
	}

	_, err = Infer(context.Background(), path, InferOptions{Window: config.Window{Rows: 100}, Exclude: []string{"score", "nope"}})
	if err == nil || !strings.Contains(err.Error(), "cannot exclude nope") {
		t.Errorf("excluding an unknown column: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOpenNamesMissingAndMistypedColumns(t *testing.T) {
	sc := &config.Stream{Name: "s", Features: map[string]config.Field{
		"car_value":    {Type: "numeric", Path: "features.car_value"},
		"salary_range": {Type: "numeric", Path: "features.salary_range"}, // strings in the file
		"horsepower":   {Type: "numeric", Path: "features.horsepower"},
	}, Window: config.Window{Rows: 10}}
	_, err := Open(carLoanDir+"monitoring.parquet", sc, InputOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"monitoring.parquet", "no column for horsepower", "column salary_range is utf8, which cannot be read as numeric"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// A JSON-lines dump of the inference log itself is read by the fields' paths.
func TestOpenFindsFieldsByPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	lines := `{"ts":"2026-11-25T10:00:00Z","model":"car-loan","features":{"car_value":39811,"salary_range":"40K - 60K €"}}
{"ts":"2026-11-25T10:00:01Z","model":"car-loan","features":{"car_value":12000,"salary_range":"0 - 20K €"}}
{"ts":"2026-11-25T10:00:02Z","model":"other","features":{"car_value":15000,"salary_range":"0 - 20K €"}}
`
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &config.Stream{Name: "loans", Features: map[string]config.Field{
		"car_value":    {Type: "numeric", Path: "features.car_value"},
		"salary_range": {Type: "categorical", Path: "features.salary_range"},
	}, Window: config.Window{Size: time.Hour}, Detectors: config.Detectors{MinRows: 1}}
	in, err := Open(path, sc, InputOptions{TimeColumn: "ts", ModelColumn: "model"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p, err := BuildProfile(context.Background(), in, engine.StreamFields(sc), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 3 || p.Feature("car_value").Num.Max() != 39811 || p.Feature("salary_range").Cat.CountOf("0 - 20K €") != 2 {
		t.Errorf("profile: %d rows, car_value max %v", p.Rows, p.Feature("car_value").Num.Max())
	}
	if want := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC); !p.Start.Equal(want) || !p.End.Equal(want.Add(2*time.Second)) {
		t.Errorf("bounds %v → %v", p.Start, p.End)
	}
}

func TestRunSeparatesModelsAndFlushesTheLastWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.csv")
	var b strings.Builder
	b.WriteString("model,x\n")
	for i := 0; i < 250; i++ {
		b.WriteString([]string{"a", "b"}[i%2] + "," + itoa(i) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &config.Stream{Name: "s", Features: map[string]config.Field{"x": {Type: "numeric", Path: "x"}},
		Window: config.Window{Rows: 100}, Reference: config.Reference{WarmupWindows: 1}}
	e, err := engine.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Open(path, sc, InputOptions{ModelColumn: "model"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got []string
	sum, err := Run(context.Background(), e, in, Options{CountWindows: true, OnWindow: func(w Window) error {
		got = append(got, w.Model+itoa(w.Index)+"/"+itoa(int(w.Rows)))
		if w.FirstRow != 0 {
			t.Errorf("row range %d-%d for interleaved models", w.FirstRow, w.LastRow)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a1/100", "b1/100", "a2/25", "b2/25"}
	if !slices.Equal(got, want) || sum.Windows != 4 || sum.Rows != 250 {
		t.Errorf("windows %v (summary %+v), want %v", got, sum, want)
	}
}

func TestWriters(t *testing.T) {
	_, windows := backtestFiles(t, carLoanDir+"reference.parquet", carLoanDir+"monitoring.parquet",
		InferOptions{Window: config.Window{Rows: 25000}, Exclude: []string{"timestamp"}}, InputOptions{})
	write := func(format string) string {
		t.Helper()
		var out bytes.Buffer
		w, err := NewWriter(format, &out)
		if err != nil {
			t.Fatal(err)
		}
		for _, win := range windows {
			if err := w.Write(win); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(Summary{Windows: 2, Drifted: 1}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	t.Run("jsonl", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(write(FormatJSONL)), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want 2", len(lines))
		}
		for i, line := range lines {
			var raw map[string]any
			if err := json.Unmarshal([]byte(line), &raw); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			for _, k := range []string{"start", "end", "rows", "drifted", "findings"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("line %d lacks %q", i+1, k)
				}
			}
			// The API's names; no event times, so null bounds and no alert ID.
			if raw["version"] != "" || raw["window"] != float64(i+1) || raw["start"] != nil || raw["end"] != nil || raw["id"] != nil {
				t.Errorf("line %d: version %v, window %v, start %v, end %v, id %v; want \"\", %d, null, null, absent",
					i+1, raw["version"], raw["window"], raw["start"], raw["end"], raw["id"], i+1)
			}
			if _, ok := raw["findings"].([]any)[0].(map[string]any)["adjusted_p_value"]; !ok {
				t.Errorf("line %d: a finding lacks adjusted_p_value", i+1)
			}
			var w WindowJSON
			if err := json.Unmarshal([]byte(line), &w); err != nil {
				t.Fatal(err)
			}
			if w.Rows != 25000 || len(w.Findings) != 12 { // 10 features, "(multivariate)" and "(joint)"
				t.Errorf("line %d: %d rows, %d findings", i+1, w.Rows, len(w.Findings))
			}
			for _, f := range w.Findings {
				if f.Feature == "" || f.Detector == "" || null(f.Score) || null(f.PValue) || null(f.Threshold) || f.Verdict == "" {
					t.Errorf("line %d: incomplete finding %+v", i+1, f)
				}
			}
			if i == 0 && len(w.Drifted) != 0 || i == 1 && !slices.Contains(w.Drifted, "car_value") {
				t.Errorf("line %d: drifted %v", i+1, w.Drifted)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(write(FormatCSV)), "\n")
		if len(lines) != 1+2*12 || !strings.HasPrefix(lines[0], "stream,model,model_version,window,") {
			t.Fatalf("%d lines, header %q", len(lines), lines[0])
		}
		if !strings.Contains(strings.Join(lines, "\n"), ",2,,,25001,50000,25000,car_value,numeric,ks,") {
			t.Errorf("no car_value row for window 2:\n%s", strings.Join(lines, "\n"))
		}
	})
	t.Run("table", func(t *testing.T) {
		out := write(FormatTable)
		for _, want := range []string{"WINDOW  INPUT ROWS", "25,001–50,000", "car_value, loan_length", "2 windows, 1 with drift (reference: baseline reference.parquet (50,000 rows))", "car_value 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
	})
	if _, err := NewWriter("xml", nil); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestEstimateRows(t *testing.T) {
	if n, exact := EstimateRows(carLoanDir + "monitoring.parquet"); n != 50000 || !exact {
		t.Errorf("parquet: %d rows (exact %v), want exactly 50,000", n, exact)
	}
	if n, _ := EstimateRows(carLoanDir + "monitoring.csv"); n < 45000 || n > 55000 {
		t.Errorf("csv: estimated %d rows, want about 50,000", n)
	}
	if n, _ := EstimateRows("nope.csv"); n != 0 {
		t.Errorf("missing file: %d rows", n)
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	p := NewProgress(&out, "reading x.csv", 1000, true)
	p.now = func() time.Time { return now }
	p.start = now
	now = now.Add(time.Second)
	p.Update(250)
	if got := out.String(); !strings.Contains(got, "reading x.csv [=======") || !strings.Contains(got, " 25%") ||
		!strings.Contains(got, "250/1,000 rows") || !strings.Contains(got, "250 rows/s") || !strings.Contains(got, "3s left") {
		t.Errorf("bar: %q", got)
	}
	out.Reset()
	p.Update(300) // too soon to redraw
	if out.Len() != 0 {
		t.Errorf("redrawn within 100ms: %q", out.String())
	}
	now = now.Add(time.Second)
	p.rows = 1000
	p.Done()
	if got := out.String(); !strings.HasSuffix(got, "reading x.csv: 1,000 rows in 2s (500 rows/s)\n") {
		t.Errorf("done: %q", got)
	}
	var nilBar *Progress // off a terminal
	nilBar.Update(1)
	nilBar.Clear()
	nilBar.Done()
}

// null says a number of a decoded jsonl line was null (alerting.Number decodes it as
// NaN).
func null(n alerting.Number) bool { return math.IsNaN(float64(n)) }

// TestBacktestJudgesObjectives: a backtest judges the stream's objectives as the
// monitor does and its table says which windows breached them: the car-loan data's
// median car value rises past 35k after the shift only.
func TestBacktestJudgesObjectives(t *testing.T) {
	ctx := context.Background()
	inf, err := Infer(ctx, carLoanDir+"reference.parquet", InferOptions{Window: config.Window{Rows: 25000}, Exclude: []string{"timestamp"}})
	if err != nil {
		t.Fatal(err)
	}
	limit := 35000.0
	inf.Stream.Objectives = []config.Objective{{Name: "car_value p50", Field: "car_value", Stat: config.StatQuantile, Quantile: 0.5, Max: &limit}}
	e, err := engine.NewWithReference(inf.Stream, inf.Reference, inf.ReferenceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Open(carLoanDir+"monitoring.parquet", inf.Stream, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	w, err := NewWriter(FormatTable, &out)
	if err != nil {
		t.Fatal(err)
	}
	var breached []string
	sum, err := Run(ctx, e, in, Options{CountWindows: true, OnWindow: func(win Window) error {
		breached = append(breached, strings.Join(win.Breached(), ","))
		return w.Write(win)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(sum); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(breached, []string{"", "car_value p50"}) {
		t.Errorf("windows breached %q, want the second only", breached)
	}
	for _, want := range []string{"  BREACHED\n", "y_pred_proba  car_value p50\n", "2 windows, 1 with drift, 1 breaching an objective"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBacktestJudgesSegmentsAgainstABaseline: a baseline built from training data
// (what `driftmon baseline` writes) keeps the stream's segments, so a backtest against
// it finds a shift confined to one country that the whole traffic's tests miss.
func TestBacktestJudgesSegmentsAgainstABaseline(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, rows int, shift float64, seed uint64) string {
		r := rand.New(rand.NewPCG(seed, 23))
		var b strings.Builder
		b.WriteString("country,income\n")
		for range rows {
			c := []string{"DE", "FR", "IT", "ES", "NL", "BE", "PL", "AT", "SE", "PT"}[r.IntN(10)]
			income := 45000 + 15000*r.NormFloat64()
			if c == "DE" {
				income = 41000 + shift + 4000*r.NormFloat64()
			}
			fmt.Fprintf(&b, "%s,%.0f\n", c, income)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	train, prod := write("train.csv", 20000, 0, 1), write("prod.csv", 10000, 9000, 2)
	sc := &config.Stream{Name: "loans", Features: map[string]config.Field{
		"country": {Type: "categorical", Path: "country"}, "income": {Type: "numeric", Path: "income"},
	}, Window: config.Window{Rows: 5000}, Segments: []config.Segment{{By: "country", Top: 20, MaxValues: 256}}}
	in, err := Open(train, sc, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := BuildProfile(context.Background(), in, engine.StreamFields(sc), engine.SegmentKeys(sc), nil)
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	sc.Reference.Baseline = filepath.Join(dir, "train"+engine.ProfileExt)
	if err := engine.WriteProfile(sc.Reference.Baseline, ref); err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in, err = Open(prod, sc, InputOptions{}); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var drifted [][]string
	if _, err := Run(context.Background(), e, in, Options{OnWindow: func(w Window) error {
		drifted = append(drifted, w.Drifted())
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if len(drifted) != 2 || !slices.Equal(drifted[0], []string{"income@country=DE"}) || !slices.Equal(drifted[1], []string{"income@country=DE"}) {
		t.Errorf("drifted %v, want income in country=DE alone in both windows", drifted)
	}
}
