package alerting

import (
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"time"
)

func TestAlertIDStable(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	id := AlertID("loans", "car-loan", "v3", start)
	if !regexp.MustCompile(`^msg_[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("AlertID = %q, want msg_ + 32 hex digits", id)
	}
	if again := AlertID("loans", "car-loan", "v3", start.In(time.FixedZone("CET", 3600))); again != id {
		t.Errorf("same instant in another zone gave %q, want %q", again, id)
	}
	for name, other := range map[string]string{
		"stream":  AlertID("loans2", "car-loan", "v3", start),
		"model":   AlertID("loans", "car-loan2", "v3", start),
		"version": AlertID("loans", "car-loan", "v4", start),
		"window":  AlertID("loans", "car-loan", "v3", start.Add(time.Hour)),
		"split":   AlertID("loans", "car-loanv", "3", start),
	} {
		if other == id {
			t.Errorf("changing the %s kept the ID %q", name, id)
		}
	}
}

func TestHeadline(t *testing.T) {
	tests := []struct {
		c    Change
		want string
	}{
		{Change{Detector: "ks", Score: 0.4312, PValue: 1e-9}, "KS 0.43 (p<0.001)"},
		{Change{Detector: "ks", Score: 0.12, PValue: 0.0234}, "KS 0.12 (p=0.023)"},
		{Change{Detector: "psi", Score: 0.61, PValue: math.NaN()}, "PSI 0.61"},
		{Change{Detector: "chi2", Score: 1234.5, PValue: 0}, "χ² 1.23e+03 (p<0.001)"},
		{Change{Detector: "psi", Score: math.Inf(1), PValue: -1}, "PSI ∞"},
	}
	for _, tt := range tests {
		if got := tt.c.Headline(); got != tt.want {
			t.Errorf("Headline(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := FormatCount(n); got != want {
			t.Errorf("FormatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatWindow(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		start, end time.Time
		want       string
	}{
		{time.Date(2024, 5, 1, 11, 0, 0, 0, cet), time.Date(2024, 5, 1, 12, 0, 0, 0, cet), "2024-05-01 10:00 → 11:00 UTC"},
		{time.Date(2024, 5, 1, 23, 0, 0, 0, time.UTC), time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC), "2024-05-01 23:00 → 2024-05-02 00:00 UTC"},
		{time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC), time.Date(2024, 5, 1, 10, 1, 30, 0, time.UTC), "2024-05-01 10:00:30 → 10:01:30 UTC"},
	}
	for _, tt := range tests {
		if got := FormatWindow(tt.start, tt.end); got != tt.want {
			t.Errorf("FormatWindow = %q, want %q", got, tt.want)
		}
	}
}

func TestNumberJSON(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{math.NaN(), "null"}, {math.Inf(1), "null"}, {math.Inf(-1), "null"},
		{0, "0"}, {0.43, "0.43"}, {-2.5e-7, "-2.5e-7"}, {1e21, "1e+21"},
	} {
		b, err := json.Marshal(struct{ N Number }{Number(tt.v)})
		if err != nil {
			t.Fatalf("Marshal(%v): %v", tt.v, err)
		}
		if want := `{"N":` + tt.want + `}`; string(b) != want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.v, b, want)
		}
		var back struct{ N Number }
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if got := float64(back.N); got != tt.v && !(math.IsNaN(got) && (math.IsNaN(tt.v) || math.IsInf(tt.v, 0))) {
			t.Errorf("round trip of %v = %v", tt.v, got)
		}
	}
	var n Number
	if err := json.Unmarshal([]byte(`"1"`), &n); err == nil {
		t.Error(`Unmarshal("1") succeeded, want an error`)
	}
	if Finite(math.NaN()) != nil || Finite(math.Inf(1)) != nil || *Finite(0.5) != 0.5 {
		t.Error("Finite must be nil for NaN and ±Inf and point at other values")
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"car_value":            "car_value",
		"40K - 60K € \"a\" \\": "40K - 60K € \"a\" \\", // nothing to escape: as it is
		"x\x1b[2J":             `x\x1b[2J`,
		"a\tb\nc\r":            `a\tb\nc\r`,
		"t\x07\x7f\u0085":      `t\a\x7f\u0085`,
		"rtl\u202eevil":        `rtl\u202eevil`,
		"bad\x9butf8 \"q\"":    `bad\x9butf8 \"q\"`, // escaped: quotes too, so it reads back
		"":                     "",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
