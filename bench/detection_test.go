package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// The car-loan data (testdata/nannyml_car_loan): 50,000 reference rows, 50,000
// monitoring rows with an abrupt shift at row 25,000.
const (
	carLoanDir    = "../testdata/nannyml_car_loan/"
	carLoanWindow = 5000
)

// carLoanStream is the stream driftmon monitors the car-loan data with: the seven
// features and the predicted probability, the string-valued and boolean ones as
// categorical, 5,000-row windows against reference.parquet, default detectors. The
// peers (bench/peers/run.py) are given the same columns with the same kinds.
const carLoanStream = `
kafka: {brokers: ["127.0.0.1:9"]}
streams:
  - name: car-loan
    topic: car-loan
    features:
      car_value: {type: numeric}
      debt_to_income_ratio: {type: numeric}
      driver_tenure: {type: numeric}
      loan_length: {type: numeric}
      repaid_loan_on_prev_car: {type: categorical}
      salary_range: {type: categorical}
      size_of_downpayment: {type: categorical}
    predictions:
      y_pred_proba: {type: numeric}
    window: {rows: 5000}
    reference: {baseline: reference.parquet}
`

// groundTruth is testdata/nannyml_car_loan/ground_truth.json, restricted to the
// monitored columns.
type groundTruth struct {
	ShiftRow        int64
	Drifted, Stable []string
}

func readGroundTruth(t *testing.T, monitored []string) groundTruth {
	t.Helper()
	data, err := os.ReadFile(carLoanDir + "ground_truth.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		GroundTruth struct {
			ChangeRow  int64    `json:"monitoring_change_row"`
			Drifted    []string `json:"drifted"`
			NotDrifted []string `json:"not_drifted"`
		} `json:"ground_truth"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	gt := groundTruth{ShiftRow: raw.GroundTruth.ChangeRow}
	// Entries read "car_value (KS~0.43, ...)": the name is the first word.
	for _, s := range raw.GroundTruth.Drifted {
		if name := strings.Fields(s)[0]; slices.Contains(monitored, name) {
			gt.Drifted = append(gt.Drifted, name)
		}
	}
	for _, s := range raw.GroundTruth.NotDrifted {
		if name := strings.Fields(s)[0]; slices.Contains(monitored, name) {
			gt.Stable = append(gt.Stable, name)
		}
	}
	if len(gt.Drifted)+len(gt.Stable) != len(monitored) {
		t.Fatalf("ground truth covers %v and %v, monitored are %v", gt.Drifted, gt.Stable, monitored)
	}
	return gt
}

// window is one tool's verdict on one window of the monitoring data.
type window struct {
	// First and End are the window's rows in monitoring.parquet, [First, End).
	First int64 `json:"first"`
	End   int64 `json:"end"`
	// Drifted names the features flagged as drifting; Possible those a tool calls
	// "possible drift" (whylogs), which count as not flagged.
	Drifted  []string `json:"drifted"`
	Possible []string `json:"possible"`
	// Seconds is the wall time of the window, CPUSeconds the CPU time of the whole
	// process meanwhile (user and system); Bytes the memory figure the tool reports (see
	// the run's MemoryNote).
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Bytes      int64   `json:"bytes"`
}

// run is one tool's pass over the monitoring data, as bench/peers/run.py writes it.
type run struct {
	Tool    string `json:"tool"`
	Version string `json:"version"`
	Method  string `json:"method"`
	// ReferenceSeconds is the one-off cost of summarising the reference (0 when the
	// tool does not keep one and pays it in every window).
	ReferenceSeconds float64 `json:"reference_seconds"`
	// MemoryNote says what Window.Bytes is; MaxRSS is the process's peak resident set.
	MemoryNote string   `json:"memory_note"`
	MaxRSS     int64    `json:"max_rss_bytes"`
	Windows    []window `json:"windows"`
}

// score is a run judged against the ground truth.
type score struct {
	Windows int
	// FalseAlarms counts flags of a stable feature, or of any feature before the shift;
	// AlarmWindows the windows with at least one.
	FalseAlarms, AlarmWindows int
	// Misses counts drifted features not flagged in a window after the shift.
	Misses int
	// Delay is, per drifted feature, the rows from the shift to the end of the first
	// window after it that flags the feature; -1 when none does.
	Delay map[string]int64
}

func judge(gt groundTruth, ws []window) score {
	s := score{Windows: len(ws), Delay: map[string]int64{}}
	for _, f := range gt.Drifted {
		s.Delay[f] = -1
	}
	for _, w := range ws {
		after := w.First >= gt.ShiftRow
		alarms := 0
		for _, f := range w.Drifted {
			if !after || slices.Contains(gt.Stable, f) {
				alarms++
			}
		}
		if alarms > 0 {
			s.AlarmWindows++
		}
		s.FalseAlarms += alarms
		if !after {
			continue
		}
		for _, f := range gt.Drifted {
			if !slices.Contains(w.Drifted, f) {
				s.Misses++
			} else if s.Delay[f] < 0 {
				s.Delay[f] = w.End - gt.ShiftRow
			}
		}
	}
	return s
}

// carLoanWindows reads monitoring.parquet as one 5,000-row record per window.
func carLoanWindows(t *testing.T) []arrow.Record {
	t.Helper()
	r, err := ingest.ReadFile(carLoanDir+"monitoring.parquet", ingest.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var chunks [][]arrow.Array
	var rows int64
	for r.Next() {
		rec := r.Record()
		for i, c := range rec.Columns() {
			if i == len(chunks) {
				chunks = append(chunks, nil)
			}
			c.Retain()
			chunks[i] = append(chunks[i], c)
		}
		rows += rec.NumRows()
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	cols := make([]arrow.Array, len(chunks))
	for i, cs := range chunks {
		if cols[i], err = array.Concatenate(cs, memory.DefaultAllocator); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			c.Release()
		}
	}
	all := array.NewRecord(r.Schema(), cols, rows)
	for _, c := range cols {
		c.Release()
	}
	defer all.Release()
	var out []arrow.Record
	for i := int64(0); i < rows; i += carLoanWindow {
		out = append(out, all.NewSlice(i, min(i+carLoanWindow, rows)))
	}
	return out
}

// driftmonCarLoan runs driftmon's engine over the car-loan windows: its reference
// summarised once, then each window profiled and evaluated. Bytes per window is what
// the window allocated (runtime.MemStats.TotalAlloc).
func driftmonCarLoan(t *testing.T) (run, []string) {
	t.Helper()
	cfg, err := config.Parse([]byte(carLoanStream), config.ParseOptions{Dir: carLoanDir})
	if err != nil {
		t.Fatal(err)
	}
	recs := carLoanWindows(t)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	start := time.Now()
	engine, err := engine.New(&cfg.Streams[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	out := run{Tool: "driftmon", ReferenceSeconds: time.Since(start).Seconds(),
		Method:     "KS (numeric) and chi-square with PSI (categorical), BH at FDR 0.05, D ≥ 0.1 / PSI ≥ 0.1",
		MemoryNote: "bytes allocated by the window (Go heap, runtime.MemStats.TotalAlloc)"}
	var monitored []string
	for _, f := range engine.Fields() {
		monitored = append(monitored, f.Name)
	}
	var ms runtime.MemStats
	var first int64
	for _, rec := range recs {
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc
		start, cpu := time.Now(), cpuTime()
		results := engine.Process(rec)
		elapsed, cpu := time.Since(start), cpuTime()-cpu
		runtime.ReadMemStats(&ms)
		if len(results) != 1 {
			t.Fatalf("a %d-row record closed %d windows, want 1", rec.NumRows(), len(results))
		}
		res := results[0]
		w := window{First: first, End: first + res.Rows, Drifted: res.Drifted(), Seconds: elapsed.Seconds(), CPUSeconds: cpu.Seconds(), Bytes: int64(ms.TotalAlloc - alloc)}
		out.Windows = append(out.Windows, w)
		first = w.End
	}
	out.MaxRSS = vmHWM()
	return out, monitored
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM is the process's peak resident set (VmHWM in /proc/self/status), or 0.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// TestCarLoanDetection runs driftmon over the car-loan data in 5,000-row windows
// against the reference and checks it against the ground truth: no false alarm, no
// miss, every drifted feature flagged in the first window after the shift. The tables
// it logs are in bench/README.md.
func TestCarLoanDetection(t *testing.T) {
	dm, monitored := driftmonCarLoan(t)
	gt := readGroundTruth(t, monitored)
	t.Logf("\n%s", detectionTable(gt, []run{dm}))
	s := judge(gt, dm.Windows)
	if s.Windows != 10 {
		t.Errorf("%d windows, want 10", s.Windows)
	}
	if s.FalseAlarms != 0 || s.Misses != 0 {
		t.Errorf("%d false alarms, %d misses; want none", s.FalseAlarms, s.Misses)
	}
	for f, d := range s.Delay {
		if d != carLoanWindow {
			t.Errorf("%s first flagged %d rows after the shift, want %d (the first window)", f, d, carLoanWindow)
		}
	}
}

// detectionTable is the per-window verdicts of runs next to the ground truth, then a
// summary per run, in markdown.
func detectionTable(gt groundTruth, runs []run) string {
	var b strings.Builder
	b.WriteString("| window (rows) | truth |")
	for _, r := range runs {
		fmt.Fprintf(&b, " %s |", r.Tool)
	}
	b.WriteString("\n|---|---|")
	for range runs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, w := range runs[0].Windows {
		truth := "no drift"
		if w.First >= gt.ShiftRow {
			truth = "drift: " + strings.Join(gt.Drifted, ", ")
		}
		fmt.Fprintf(&b, "| %d–%d | %s |", w.First, w.End, truth)
		for _, r := range runs {
			cell := verdictCell(gt, r.Windows[i])
			if len(runs) == 1 {
				flagged := "none"
				if len(w.Drifted) > 0 {
					flagged = strings.Join(w.Drifted, ", ")
				}
				cell = flagged + " " + cell
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| tool | windows | false alarms (windows) | misses | detection delay, rows after the shift | reference summary | wall time per window, median (max) | CPU time per window, median (max) | memory per window, median (max) | peak RSS |\n")
	b.WriteString("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		s := judge(gt, r.Windows)
		delay := delayText(gt, s)
		secs := make([]float64, len(r.Windows))
		cpu := make([]float64, len(r.Windows))
		bytes := make([]float64, len(r.Windows))
		for i, w := range r.Windows {
			secs[i], cpu[i], bytes[i] = w.Seconds*1000, w.CPUSeconds*1000, float64(w.Bytes)/(1<<20)
		}
		ref := "none (recomputed per window)"
		if r.ReferenceSeconds > 0 {
			ref = fmt.Sprintf("%.0f ms", r.ReferenceSeconds*1000)
		}
		fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d | %s | %s | %s ms (%s) | %s ms (%s) | %.1f MiB (%.1f) | %.0f MiB |\n",
			r.Tool, s.Windows, s.FalseAlarms, s.AlarmWindows, s.Misses, delay, ref,
			ms(median(secs)), ms(slices.Max(secs)), ms(median(cpu)), ms(slices.Max(cpu)), median(bytes), slices.Max(bytes), float64(r.MaxRSS)/(1<<20))
	}
	return b.String()
}

// delayText is the detection delay of every drifted feature, or one figure when they
// are all the same.
func delayText(gt groundTruth, s score) string {
	text := func(d int64) string {
		if d < 0 {
			return "never"
		}
		return fmt.Sprintf("%d", d)
	}
	same := true
	for _, f := range gt.Drifted {
		same = same && s.Delay[f] == s.Delay[gt.Drifted[0]]
	}
	if same && len(gt.Drifted) > 0 {
		return fmt.Sprintf("%s (all %d features)", text(s.Delay[gt.Drifted[0]]), len(gt.Drifted))
	}
	var parts []string
	for _, f := range gt.Drifted {
		parts = append(parts, f+" "+text(s.Delay[f]))
	}
	return strings.Join(parts, ", ")
}

// verdictCell is "✓" when a window's flags are exactly the truth, otherwise the false
// alarms (+name) and misses (−name); possible-drift calls follow in brackets.
func verdictCell(gt groundTruth, w window) string {
	var want []string
	if w.First >= gt.ShiftRow {
		want = gt.Drifted
	}
	var diff []string
	for _, f := range w.Drifted {
		if !slices.Contains(want, f) {
			diff = append(diff, "+"+f)
		}
	}
	for _, f := range want {
		if !slices.Contains(w.Drifted, f) {
			diff = append(diff, "−"+f)
		}
	}
	cell := "✓"
	if len(diff) > 0 {
		cell = strings.Join(diff, " ")
	}
	if len(w.Possible) > 0 {
		cell += " (possible: " + strings.Join(w.Possible, ", ") + ")"
	}
	return cell
}

// ms formats milliseconds with two significant digits below 100.
func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
