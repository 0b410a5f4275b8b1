package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// carLoanConfig writes a config monitoring the car-loan features in count windows of
// 5,000 rows against baseline, and returns its path.
func carLoanConfig(t *testing.T, dir, name, baseline string, extraFeatures string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	writeFile(t, path, fmt.Sprintf(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: loans
    topic: car-loan
    event_time: ts
    features:
      car_value: {type: numeric}
      debt_to_income_ratio: {type: numeric}
      driver_tenure: {type: numeric}
      loan_length: {type: numeric}
      repaid_loan_on_prev_car: {type: categorical}
      salary_range: {type: categorical}
      size_of_downpayment: {type: categorical}%s
    predictions:
      y_pred_proba: {type: numeric}
    window: {rows: 5000}
    reference: {baseline: %q}
`, extraFeatures, baseline))
	return path
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBaselineProfileRoundTrip builds a profile with `baseline`, shows it, and checks
// that a config pointing at it gives exactly the verdicts of one pointing at the
// Parquet file it came from.
func TestBaselineProfileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	train, prod := abs(t, carLoanDir+"reference.parquet"), abs(t, carLoanDir+"monitoring.parquet")
	profile := filepath.Join(dir, "reference.profile")
	fromProfile := carLoanConfig(t, dir, "profile.yaml", "reference.profile", "")
	fromParquet := carLoanConfig(t, dir, "parquet.yaml", train, "")

	out, errOut := runOK(t, "baseline", "-c", fromProfile, "--input", train, "-o", profile)
	if !strings.Contains(out, "wrote "+profile+": stream loans, 8 features, 50,000 rows") || errOut != "" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}

	show, _ := runOK(t, "profile", "show", profile)
	for _, want := range []string{
		"rows      50,000", "features  8 (5 numeric, 3 categorical)", "window    no event times",
		"NUMERIC", "P50", "car_value             50,000      0        0      10k    11k  21.9k",
		"loan_length", "exact, 17 values", "y_pred_proba", "debt_to_income_ratio", "driver_tenure",
		"CATEGORICAL", "DISTINCT", `repaid_loan_on_prev_car  50,000      0         2  "true" 55.1%, "false" 44.9%`,
		`"60K+ €" 10.1%`, "size_of_downpayment",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("profile show lacks %q:\n%s", want, show)
		}
	}
	t.Logf("\n%s", show)

	runOK(t, "check", "-c", fromProfile)
	a, _ := runOK(t, "backtest", "-c", fromProfile, "--input", prod, "--format", "jsonl")
	b, _ := runOK(t, "backtest", "-c", fromParquet, "--input", prod, "--format", "jsonl")
	wa, wb := parseJSONL(t, a), parseJSONL(t, b)
	if len(wa) != len(wb) {
		t.Fatalf("%d windows from the profile, %d from the Parquet file", len(wa), len(wb))
	}
	var drifted [][]string
	for i := range wa {
		drifted = append(drifted, wa[i].Drifted)
		if !slices.Equal(wa[i].Drifted, wb[i].Drifted) {
			t.Errorf("window %d: drifted %v from the profile, %v from Parquet", i+1, wa[i].Drifted, wb[i].Drifted)
		}
		for j, f := range wa[i].Findings {
			g := wb[i].Findings[j]
			if f.Feature != g.Feature || *f.Score != *g.Score || *f.PValue != *g.PValue || f.Verdict != g.Verdict {
				t.Errorf("window %d %s: %v/%v/%s from the profile, %v/%v/%s from Parquet",
					i+1, f.Feature, *f.Score, *f.PValue, f.Verdict, *g.Score, *g.PValue, g.Verdict)
			}
		}
	}
	checkCarLoanVerdicts(t, drifted)
}

// The event-time column gives the profile its bounds.
func TestBaselineTimeBounds(t *testing.T) {
	dir := t.TempDir()
	cfg := carLoanConfig(t, dir, "c.yaml", "reference.profile", "")
	profile := filepath.Join(dir, "reference.profile")
	out, _ := runOK(t, "baseline", "-c", cfg, "--input", abs(t, carLoanDir+"reference.csv"), "-o", profile, "--time-column", "timestamp")
	if !strings.HasSuffix(out, "50,000 rows, 2018-01-01 00:00:00 → 2018-10-30 17:51:16\n") {
		t.Errorf("stdout %q", out)
	}
	show, _ := runOK(t, "profile", "show", profile)
	if !strings.Contains(show, "window    2018-01-01 00:00:00 → 2018-10-30 17:51:16 UTC") {
		t.Errorf("profile show:\n%s", show)
	}
}

func TestBaselineErrors(t *testing.T) {
	dir := t.TempDir()
	train := abs(t, carLoanDir+"reference.parquet")
	withHorsepower := carLoanConfig(t, dir, "hp.yaml", "reference.profile", "\n      horsepower: {type: numeric}")
	plain := carLoanConfig(t, dir, "plain.yaml", "reference.profile", "")
	profile := filepath.Join(dir, "reference.profile")

	got := runFails(t, 1, "baseline", "-c", withHorsepower, "--input", train, "-o", profile)
	if !strings.Contains(got, "reference.parquet: no column for horsepower") {
		t.Errorf("missing column: %s", got)
	}
	if got := runFails(t, 2, "baseline", "-c", plain, "--input", train, "-o", filepath.Join(dir, "ref.bin")); !strings.Contains(got, "must end in .profile") {
		t.Errorf("-o without .profile: %s", got)
	}
	if got := runFails(t, 2, "baseline", "-c", plain); !strings.Contains(got, "--input is required") {
		t.Errorf("no --input: %s", got)
	}

	// A profile of the plain stream does not fit a stream that also monitors horsepower.
	runOK(t, "baseline", "-c", plain, "--input", train, "-o", profile)
	got = runFails(t, 1, "backtest", "-c", withHorsepower, "--input", train)
	if !strings.Contains(got, "reference.baseline: "+profile+": profile does not match the stream's fields") || !strings.Contains(got, "the profile has no feature horsepower") {
		t.Errorf("mismatched profile: %s", got)
	}
	got = runFails(t, 1, "check", "-c", withHorsepower)
	if !strings.Contains(got, "the profile has no feature horsepower") {
		t.Errorf("check with a mismatched profile: %s", got)
	}
}
