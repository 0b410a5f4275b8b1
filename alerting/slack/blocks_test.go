package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// carLoanAlert is a realistic alert: a car-loan scoring model whose
// applicants suddenly ask for pricier cars and earn more.
func carLoanAlert() alerting.Alert {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return alerting.Alert{
		ID:           alerting.AlertID("loan-applications", "car-loan", "v3", start),
		Stream:       "loan-applications",
		Model:        "car-loan",
		ModelVersion: "v3",
		WindowStart:  start,
		WindowEnd:    start.Add(time.Hour),
		Rows:         12480,
		Reference:    "baseline reference.profile (50,000 rows)",
		Severity:     alerting.SeverityCritical,
		Drifted: []alerting.Change{
			{Feature: "salary_range", Detector: "psi", Score: 0.61, Threshold: 0.1, PValue: math.NaN(), Summary: "'60K+ €' 10.0% → 31.0%, '<20K €' 22.0% → 8.0%"},
			{Feature: "car_value", Detector: "ks", Score: 0.43, Threshold: 0.1, PValue: 1e-12, Summary: "p50 29.6k → 47.1k, p95 61.0k → 88.3k"},
		},
		Stable:       []string{"age", "loan_term_months", "employment_years", "region", "score"},
		DashboardURL: "http://127.0.0.1:8080/models/car-loan/v3?window=2024-05-01T10:00:00Z",
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func TestBlocksWithinLimits(t *testing.T) {
	long := strings.Repeat("very_long_feature_name_<&>_", 400) // ~10k characters
	changes := func(n int, name func(i int) string) []alerting.Change {
		out := make([]alerting.Change, n)
		for i := range out {
			out[i] = alerting.Change{Feature: name(i), Detector: "ks", Score: 0.2 + float64(i)/1000, Threshold: 0.1, PValue: 0.0001, Summary: "p50 1.0k → 2.0k"}
		}
		return out
	}
	names := func(n int, name func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	short := func(i int) string { return fmt.Sprintf("feature_%03d", i) }
	tests := []struct {
		name     string
		alert    func(a *alerting.Alert)
		wantText []string
	}{
		{name: "0 drifted", alert: func(a *alerting.Alert) { a.Drifted = nil }, wantText: []string{"No feature drifted."}},
		{name: "1 drifted", alert: func(a *alerting.Alert) { a.Drifted = changes(1, short) }},
		{name: "5 drifted", alert: func(a *alerting.Alert) { a.Drifted = changes(5, short) }},
		{name: "200 drifted", alert: func(a *alerting.Alert) {
			a.Drifted = changes(200, short)
			a.Stable = names(5000, short)
			a.Insufficient = names(3000, short)
		}, wantText: []string{"…and 180 more drifted", "feature_199", "more"}},
		{name: "very long names", alert: func(a *alerting.Alert) {
			a.Model, a.ModelVersion, a.Stream, a.Reference = long, long, long, long
			a.Drifted = changes(60, func(int) string { return long })
			for i := range a.Drifted {
				a.Drifted[i].Summary = long
			}
			a.Stable = names(100, func(int) string { return long })
			a.Insufficient = []string{long}
			a.DashboardURL = "http://127.0.0.1/" + strings.Repeat("x", 4000)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := carLoanAlert()
			tt.alert(&a)
			raw := mustJSON(t, Blocks(a))
			if err := slacktest.CheckBlocks(raw); err != nil {
				t.Fatalf("blocks break Slack's limits: %v", err)
			}
			text := Text(a)
			if n := utf8.RuneCountInString(text); n == 0 || n > maxFallbackText {
				t.Errorf("Text has %d characters, want 1..%d", n, maxFallbackText)
			}
			if !utf8.ValidString(string(raw)) || !utf8.ValidString(text) {
				t.Errorf("output is not valid UTF-8")
			}
			if strings.Contains(string(raw), "<&>") {
				t.Errorf("unescaped <&> reached mrkdwn")
			}
			rendered := slacktest.Render(raw)
			for _, w := range tt.wantText {
				if !strings.Contains(rendered, w) {
					t.Errorf("rendering lacks %q:\n%s", w, rendered)
				}
			}
		})
	}
}

func TestBlocksGolden(t *testing.T) {
	a := carLoanAlert()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "&lt;" readable in the golden file
	enc.SetIndent("", "  ")
	if err := enc.Encode(Blocks(a)); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	text := "text: " + Text(a) + "\n\n" + slacktest.Render(raw)
	golden(t, "car_loan.blocks.json", raw)
	golden(t, "car_loan.txt", []byte(text))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestBlocksRankStrongestFirst(t *testing.T) {
	a := carLoanAlert()
	a.Drifted = []alerting.Change{
		{Feature: "weak", Detector: "ks", Score: 0.11, Threshold: 0.1},
		{Feature: "strong", Detector: "psi", Score: 2.0, Threshold: 0.1},
	}
	r := slacktest.Render(mustJSON(t, Blocks(a)))
	if strings.Index(r, "strong") > strings.Index(r, "weak") {
		t.Errorf("strongest change not first:\n%s", r)
	}
}
