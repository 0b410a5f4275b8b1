// Package alerting holds what every notifier needs to tell a person or a
// system that a model's inputs drifted: the Decision the policy makes about an
// alert episode, the Alert it carries and the Changes in that, each with its one
// JSON encoding (what the alert state and the outbox store); their stable IDs and
// how numbers in them are printed. It also holds the few seams its
// subpackages share: the transaction they keep records in (Tx, Store), the
// refusal no retry fixes (PermanentError), the HTTP client that never follows a
// redirect (HTTPClient), and JSON numbers that may be NaN (Number, Finite).
//
// It is the bottom of the alerting tree and imports only the standard library:
// not its subpackages, not sketch or detectors (notifiers stay testable with
// hand-written alerts, and the statistics can change without touching them), and
// nothing under internal/ (internal/state's store fits Tx and Store as it is).
package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity ranks an alert so receivers can route it (page or just post).
type Severity string

// The severities the monitor emits.
const (
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Alert is what a notification is about: the features of one model version
// that drifted in one window, with enough context for a person to judge it
// without opening the dashboard.
//
// Its JSON encoding (the struct tags, the window in UTC) is the one the alert
// state and the outbox store; receivers that need another shape (a webhook's
// payload, the API's alert) project it.
type Alert struct {
	// ID is stable: the same alert always has the same ID, so it serves as
	// the webhook-id and as the dedupe key of receivers. See AlertID.
	ID string `json:"id"`
	// Stream, Model and ModelVersion say whose inputs drifted.
	Stream       string `json:"stream"`
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	// WindowStart and WindowEnd bound the evaluated window; Rows is how many
	// events it held.
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Rows        int64     `json:"rows"`
	// Reference describes what the window was compared with, e.g.
	// "baseline reference.profile (50,000 rows)".
	Reference string `json:"reference,omitempty"`
	// Severity is SeverityWarning or SeverityCritical.
	Severity Severity `json:"severity,omitempty"`
	// Drifted lists the features that drifted, strongest first is nice but
	// not required: notifiers rank them themselves when they must truncate.
	Drifted []Change `json:"drifted,omitempty"`
	// Stable lists features that were checked and did not drift; showing
	// them tells the reader the monitor did look.
	Stable []string `json:"stable,omitempty"`
	// Insufficient lists features with too little data to decide.
	Insufficient []string `json:"insufficient,omitempty"`
	// DashboardURL links to the window in the dashboard; it may be empty.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Episode is the ID of the alert episode a retraining call belongs to (the
	// Alert.ID of its Slack messages), so a pipeline can tell one episode's call from
	// the next; empty when no episode was open (a trigger with every_window).
	Episode string `json:"episode,omitempty"`
	// FirstWindowStart and FirstWindowEnd bound the first drifting window of that
	// episode (or, without one, of the trigger's run of qualifying windows): where
	// the drift began, which the window the call was decided in need not be.
	FirstWindowStart time.Time `json:"first_window_start,omitzero"`
	FirstWindowEnd   time.Time `json:"first_window_end,omitzero"`
	// ReferenceID identifies the reference profile the window was judged against: a
	// digest of its encoding, equal for the same reference. Empty when unknown.
	ReferenceID string `json:"reference_id,omitempty"`
}

// MarshalJSON encodes a by its struct tags, its window in UTC.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert // without this method
	a.WindowStart, a.WindowEnd = a.WindowStart.UTC(), a.WindowEnd.UTC()
	a.FirstWindowStart, a.FirstWindowEnd = a.FirstWindowStart.UTC(), a.FirstWindowEnd.UTC()
	return json.Marshal(plain(a))
}

// WithoutDistributions returns a copy of a whose changes carry no Distribution:
// what is kept of an alert to list it, where no chart is drawn.
func (a Alert) WithoutDistributions() Alert {
	a.Drifted = slices.Clone(a.Drifted)
	for i := range a.Drifted {
		a.Drifted[i].Distribution = nil
	}
	return a
}

// Change is the evidence that one feature drifted.
//
// It encodes to JSON with every field present (Distribution only when set) and
// the numbers that are not finite as null, since JSON has no NaN; null and a
// missing number decode as NaN.
type Change struct {
	Feature string
	// Detector names the test that fired: "ks", "psi", "chi2", ...
	Detector string
	// Score is the detector's statistic and Threshold the value it had to
	// exceed.
	Score, Threshold float64
	// PValue is the test's p-value; NaN (or negative) when the detector has
	// none, as PSI does.
	PValue float64
	// Summary explains the shift in words, e.g. "p50 29.6k → 47.1k".
	Summary string
	// Rule says which rule fired, with its numbers, e.g. "KS D 0.38, lower bound
	// 0.36 ≥ min 0.1; BH p<0.001 ≤ 0.05". Empty for alerts that do not say.
	Rule string
	// Distribution, when set, holds the binned reference and window
	// distributions, for notifiers that draw them (see package chart).
	Distribution *Distribution
}

// changeJSON is Change's JSON encoding: its fields in order, the numbers as
// Numbers.
type changeJSON struct {
	Feature      string        `json:"feature"`
	Detector     string        `json:"detector"`
	Score        Number        `json:"score"`
	Threshold    Number        `json:"threshold"`
	PValue       Number        `json:"p_value"`
	Summary      string        `json:"summary"`
	Rule         string        `json:"rule"`
	Distribution *Distribution `json:"distribution,omitempty"`
}

// MarshalJSON encodes c, its non-finite numbers as null.
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(changeJSON{Feature: c.Feature, Detector: c.Detector, Score: Number(c.Score),
		Threshold: Number(c.Threshold), PValue: Number(c.PValue), Summary: c.Summary, Rule: c.Rule,
		Distribution: c.Distribution})
}

// UnmarshalJSON replaces c by the encoded change. A number that is null or missing
// is NaN: changes stored by earlier versions leave out the numbers that are not
// finite, and every field that is empty.
func (c *Change) UnmarshalJSON(b []byte) error {
	nan := Number(math.NaN())
	in := changeJSON{Score: nan, Threshold: nan, PValue: nan}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*c = Change{Feature: in.Feature, Detector: in.Detector, Score: float64(in.Score),
		Threshold: float64(in.Threshold), PValue: float64(in.PValue), Summary: in.Summary, Rule: in.Rule,
		Distribution: in.Distribution}
	return nil
}

// Distribution is a feature's share of rows per bin in the reference and in
// the window, binned the same way. Bins are numeric ranges (Edges) or
// categories (Labels).
type Distribution struct {
	// Edges bounds the bins of a numeric feature: bin i holds the values
	// between Edges[i] and Edges[i+1], so len(Edges) is the number of bins
	// plus one. Nil for a categorical feature, or for numeric bins better
	// named by Labels (e.g. with a "(null)" bin).
	Edges []float64
	// Labels names the bins of a categorical feature, one per bin, e.g.
	// "DE", "FR", "(other)". Ignored when Edges is set.
	Labels []string
	// Reference and Current are the shares of rows (0–1) per bin, one per
	// bin, in the reference and in the window.
	Reference, Current []float64
}

// Bins returns the number of bins: len(Edges)-1 for a numeric feature,
// len(Labels) for a categorical one.
func (d *Distribution) Bins() int {
	if len(d.Edges) > 0 {
		return len(d.Edges) - 1
	}
	return len(d.Labels)
}

// AlertID returns the stable identifier of the alert for a model version's
// window: "msg_" followed by 32 hex digits of a SHA-256 over the inputs. The
// same inputs always give the same ID, which is what makes webhook retries
// and restarts deduplicable downstream.
func AlertID(stream, model, version string, windowStart time.Time) string {
	h := sha256.New()
	for _, s := range []string{stream, model, version} {
		// Length-prefix each part so ("a","bc") and ("ab","c") differ.
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	fmt.Fprintf(h, "%d", windowStart.UnixNano())
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Title is the one-line headline of the alert, e.g.
// "Drift in car-loan v3 — critical".
func (a Alert) Title() string {
	name := strings.TrimSpace(a.Model + " " + a.ModelVersion)
	if name == "" {
		name = a.Stream
	}
	if name == "" {
		name = "unknown model"
	}
	if a.Severity == "" {
		return "Drift in " + name
	}
	return "Drift in " + name + " — " + string(a.Severity)
}

// Headline states the evidence of a change in one line, for notifiers that
// show one line per feature: the rule that fired when the change says
// ("W1 0.31σ, lower bound 0.25σ ≥ min 0.08σ; BH p<0.001 ≤ 0.05"), else the
// score and p-value, e.g. "KS 0.43 (p<0.001)" or "PSI 0.61".
func (c Change) Headline() string {
	if c.Rule != "" {
		return c.Rule
	}
	s := DetectorLabel(c.Detector) + " " + FormatScore(c.Score)
	if p := FormatPValue(c.PValue); p != "" {
		s += " (" + p + ")"
	}
	return s
}

// DetectorLabel is how a detector name is shown to people: "ks" → "KS",
// "chi2" → "χ²".
func DetectorLabel(detector string) string {
	switch strings.ToLower(detector) {
	case "chi2":
		return "χ²"
	case "":
		return "drift"
	default:
		return strings.ToUpper(detector)
	}
}

// FormatScore prints a detector statistic with two decimals below 10 and
// three significant digits above, so scores stay short in messages.
func FormatScore(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	case math.Abs(v) < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// FormatPValue prints a p-value as "p<0.001" or "p=0.012"; it returns ""
// when there is none (NaN, negative or infinite).
func FormatPValue(p float64) string {
	switch {
	case math.IsNaN(p) || math.IsInf(p, 0) || p < 0:
		return ""
	case p < 0.001:
		return "p<0.001"
	default:
		return "p=" + strconv.FormatFloat(p, 'f', 3, 64)
	}
}

// FormatCount prints an integer with thousands separators: 12345 → "12,345".
func FormatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Printable returns s with what a terminal would act on or hide escaped as in a Go
// string literal: control characters ("\x1b", "\n", "\t"), invisible formatting such
// as bidirectional overrides ("\u202e") and bytes that are not UTF-8 ("\x9b", a
// control sequence introducer on some terminals). It is for data values (feature
// names, categories, model names) printed in tables and CSV, where an escape sequence
// in the data could otherwise rewrite the screen. Any other s, non-ASCII letters
// included, is returned as it is.
func Printable(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return quoted(s)
			}
		}
		if !strconv.IsPrint(r) {
			return quoted(s)
		}
	}
	return s
}

// quoted is strconv.Quote without the quotes.
func quoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// FormatWindow prints a window in UTC, compactly when both ends fall on the
// same day: "2024-05-01 10:00 → 11:00 UTC".
func FormatWindow(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	layout := "15:04"
	if start.Second() != 0 || end.Second() != 0 {
		layout = "15:04:05"
	}
	if start.IsZero() && end.IsZero() {
		return "unknown window"
	}
	if start.Format(time.DateOnly) == end.Format(time.DateOnly) {
		return start.Format(time.DateOnly+" "+layout) + " → " + end.Format(layout) + " UTC"
	}
	return start.Format(time.DateOnly+" "+layout) + " → " + end.Format(time.DateOnly+" "+layout) + " UTC"
}

// Sleep waits for d or until ctx is done, whichever comes first, and returns ctx's
// error in the second case: a notifier's wait for its turn, a retry's backoff.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
