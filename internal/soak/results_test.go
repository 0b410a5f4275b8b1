package soak

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	w1  = `{"stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:00Z","end":"2026-12-01T00:00:19.99Z","rows":2000,"warmup":true,"reference":"warm-up","findings":[]}`
	w2  = `{"stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:20Z","end":"2026-12-01T00:00:39.99Z","rows":2000,"warmup":false,"reference":"r","findings":[{"feature":"x","verdict":"drift","score":0.0613461872501293,"adjusted_p_value":0.001,"psi":0.2}]}`
	w2b = `{"stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:20Z","end":"2026-12-01T00:00:39.99Z","rows":2000,"warmup":false,"reference":"r","findings":[{"feature":"x","verdict":"drift","score":0.06134618725012919,"adjusted_p_value":0.001,"psi":0.2}]}`
	w2c = `{"stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:20Z","end":"2026-12-01T00:00:39.99Z","rows":2000,"warmup":false,"reference":"r","findings":[{"feature":"x","verdict":"stable","score":0.0613,"adjusted_p_value":0.5,"psi":0.2}]}`
	w3  = `{"stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:40Z","end":"2026-12-01T00:00:59.99Z","rows":2000,"warmup":false,"reference":"r","findings":[]}`
)

func writeResults(t *testing.T, lines ...string) *windows {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := readWindows(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWindowsCompare checks what the table's window rows rest on: a window reported
// again after a kill is a repeat, with other verdicts a conflict; a score that differs
// in the 16th digit is a bit difference, not a different result; a missing window, an
// extra one and a changed verdict are all seen; a line cut by a kill is ignored.
func TestWindowsCompare(t *testing.T) {
	ref := writeResults(t, w1, w2, w3)
	got := writeResults(t, w1, w2b, w2b, w2, w3[:40])
	if got.repeats != 2 || got.bitRepeats != 1 || len(got.conflicts) != 0 {
		t.Errorf("repeats %d (bit %d), conflicts %v; want 2 (1), none", got.repeats, got.bitRepeats, got.conflicts)
	}
	missing, extra, differ, bits := got.compare(ref)
	if len(missing) != 1 || len(extra) != 0 || len(differ) != 0 || len(bits) != 1 {
		t.Errorf("missing %v, extra %v, differ %v, bits %v; want w3 missing and one bit difference", missing, extra, differ, bits)
	}
	if got.digest(true) == ref.digest(true) {
		t.Error("equal digests with a window missing")
	}
	if a, b := writeResults(t, w1, w2b).digest(true), writeResults(t, w1, w2).digest(true); a != b {
		t.Errorf("rounded digests differ for a 16th-digit difference: %s, %s", a, b)
	}
	if a, b := writeResults(t, w1, w2b).digest(false), writeResults(t, w1, w2).digest(false); a == b {
		t.Error("bit-exact digests equal for a 16th-digit difference")
	}

	conflicting := writeResults(t, w1, w2, w2c)
	if len(conflicting.conflicts) != 1 {
		t.Errorf("a window reported with another verdict: conflicts %v", conflicting.conflicts)
	}
	_, _, differ, _ = writeResults(t, w1, w2c, w3).compare(ref)
	if len(differ) != 1 {
		t.Errorf("a changed verdict: differ %v", differ)
	}
	if d := ref.driftingWindows(); len(d) != 1 || d[0] != "churn/churn/7 2026-12-01T00:00:20Z" {
		t.Errorf("drifting windows %v, want w2's", d)
	}
}

// TestOnlyResultsAreCompared: a window whose line differs from the reference's only
// in a summary that rounds a mean the other way (measured: summation order moved it
// across -0.01475) has the reference's results, reported again or in another run; a changed
// score still differs.
func TestOnlyResultsAreCompared(t *testing.T) {
	line := func(score, summary string) string {
		return `{"id":"a","stream":"churn","model":"churn","version":"7","start":"2026-12-01T00:00:20Z","end":"2026-12-01T00:00:39.99Z","rows":2000,"warmup":false,"reference":"r","drifted":[],` +
			`"findings":[{"feature":"x","verdict":"stable","score":` + score + `,"adjusted_p_value":0.5,"psi":0.01,"summary":"` + summary + `"}]}`
	}
	a, b := line("0.0147", "mean -0.0053 → -0.0147"), line("0.0147", "mean -0.0053 → -0.0148")
	if got := writeResults(t, w1, a, b); got.repeats != 1 || got.bitRepeats != 0 || len(got.conflicts) != 0 {
		t.Errorf("repeats %d (bit %d), conflicts %v; want one exact repeat", got.repeats, got.bitRepeats, got.conflicts)
	}
	ref := writeResults(t, w1, a)
	if _, _, differ, bits := writeResults(t, w1, b).compare(ref); len(differ) != 0 || len(bits) != 0 {
		t.Errorf("differ %v, bits %v; want the same results", differ, bits)
	}
	if _, _, differ, _ := writeResults(t, w1, line("0.0148", "mean -0.0053 → -0.0147")).compare(ref); len(differ) != 1 {
		t.Errorf("a changed score: differ %v", differ)
	}
}

// TestReportBreaches checks that a figure that is not what it must be fails the
// campaign and one that is does not.
func TestReportBreaches(t *testing.T) {
	r := &Report{}
	r.must("events counted twice", 0, 0)
	r.info("max RSS", "40 MiB")
	if b := r.Breaches(); len(b) != 0 {
		t.Fatalf("breaches %v, want none", b)
	}
	r.must("events lost", 3, 0)
	var out strings.Builder
	r.Print(&out)
	if b := r.Breaches(); len(b) != 1 || b[0].What != "events lost" || !strings.Contains(out.String(), "FAIL: 1 breach") {
		t.Fatalf("breaches %v, output:\n%s", b, out.String())
	}
}

// TestRoundingHidesOnlySummationOrder checks the measured case: a (multivariate) score
// of 0.0015 that a restart moved in its 12th significant digit counts as the same
// result, and a move of 1e-6 does not.
func TestRoundingHidesOnlySummationOrder(t *testing.T) {
	a := roundNumbers([]byte(`{"score":0.0015445912686955499,"p":0.9718877591274696}`))
	b := roundNumbers([]byte(`{"score":0.0015445912686942176,"p":0.9718877591274698}`))
	c := roundNumbers([]byte(`{"score":0.0015455912686955499,"p":0.9718877591274696}`))
	if string(a) != string(b) {
		t.Errorf("%s and %s differ", a, b)
	}
	if string(a) == string(c) {
		t.Errorf("a move of 1e-6 is hidden: %s", c)
	}
}

// TestBursts tells a retry loop (many deliveries of one id within seconds) from the
// repeats kill -9 causes (one per restart, seconds apart).
func TestBursts(t *testing.T) {
	s := &hookSink{times: map[string][]time.Time{}}
	t0 := time.Now()
	for i := range 40 {
		s.times["loop"] = append(s.times["loop"], t0.Add(time.Duration(i)*3*time.Millisecond))
	}
	for i := range 8 {
		s.times["restarts"] = append(s.times["restarts"], t0.Add(time.Duration(i)*4*time.Second))
	}
	got := s.bursts()
	if len(got) != 1 || got["loop"] != 40 {
		t.Errorf("bursts %v, want loop: 40 alone", got)
	}
}
