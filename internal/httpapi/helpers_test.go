package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/sketch"
)

// The features of the test model: "income" moves in the shifted windows, the others
// never do. "segment" is categorical and "tier" a low-cardinality numeric (exact
// counts).
var testFields = []sketch.Field{
	{Name: "age", Kind: sketch.KindNumeric},
	{Name: "income", Kind: sketch.KindNumeric},
	{Name: "segment", Kind: sketch.KindCategorical},
	{Name: "tier", Kind: sketch.KindNumeric},
}

const (
	stableFeature  = "age"
	shiftedFeature = "income"
	windowRows     = 2000
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// window builds one window's profile from seeded data through an Arrow record, the
// way the monitor feeds it. shifted moves income's mean by one and a half standard
// deviations.
func window(t testing.TB, seed uint64, start time.Time, shifted bool, segments ...sketch.SegmentKey) *sketch.Profile {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "age", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "income", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "segment", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tier", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	values := []string{"retail", "retail", "retail", "smb", "smb", "corporate"}
	for range windowRows {
		b.Field(0).(*array.Float64Builder).Append(40 + 12*rng.NormFloat64())
		income := 52000 + 9000*rng.NormFloat64()
		if shifted {
			income += 13500
		}
		b.Field(1).(*array.Float64Builder).Append(income)
		if rng.IntN(50) == 0 {
			b.Field(2).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(values[rng.IntN(len(values))])
		}
		b.Field(3).(*array.Float64Builder).Append(float64(rng.IntN(5)))
	}
	rec := b.NewRecord()
	defer rec.Release()
	p := sketch.NewProfile(testFields, sketch.Options{Segments: segments})
	p.Update(rec, nil)
	p.Start, p.End = start, start.Add(10*time.Minute)
	return p
}

// results returns what the monitor would report for the stream "credit", model
// "car-loan" 3.2.0: two warm-up windows that become the reference, stable windows,
// then shifted ones, each compared by the real detectors.
func results(t testing.TB, stable, shifted int) []engine.Result {
	return judged(t, stable, shifted, detectors.Options{})
}

// segmentedResults are results' windows of the model "car-loan-eu" with segments by
// the field "segment" (retail, smb and corporate: 3, 2 and 1 in 6 rows; corporate too
// small for a verdict against two windows).
func segmentedResults(t testing.TB, stable, shifted int) []engine.Result {
	rs := judged(t, stable, shifted, detectors.Options{Segments: []detectors.Segment{{By: "segment", Top: 3}}},
		sketch.SegmentKey{By: "segment", MaxValues: 10})
	for i := range rs {
		rs[i].Model = "car-loan-eu"
	}
	return rs
}

func judged(t testing.TB, stable, shifted int, opts detectors.Options, segments ...sketch.SegmentKey) []engine.Result {
	t.Helper()
	var out []engine.Result
	var ref *sketch.Profile
	for i := range 2 + stable + shifted {
		start := t0.Add(time.Duration(i) * 10 * time.Minute)
		p := window(t, uint64(i+1), start, i >= 2+stable, segments...)
		r := engine.Result{
			Stream: "credit", Model: "car-loan", ModelVersion: "3.2.0",
			Start: start, End: start.Add(10 * time.Minute), Rows: p.Rows, Profile: p,
		}
		if i < 2 {
			r.Warmup, r.Reference = true, "warm-up"
			if ref == nil {
				ref = p.Clone()
			} else if err := ref.Merge(p); err != nil {
				t.Fatal(err)
			}
		} else {
			r.Reference, r.ReferenceProfile = "first 2 window(s) after start", ref
			r.Findings = detectors.Evaluate(ref, p, opts)
		}
		// Objectives and the latency panel, with income standing in for a latency:
		// its p99 breaches 80,000 in the shifted windows only.
		r.Objectives = detectors.EvaluateObjectives(p, fixtureObjectives, 10*time.Minute, i == 0)
		inc := p.Feature(shiftedFeature).Num
		r.Latency = &engine.Latency{Field: shiftedFeature, P50: inc.Quantile(0.5), P95: inc.Quantile(0.95), P99: inc.Quantile(0.99),
			Max: inc.Max(), Values: inc.Count(), RowsPerMinute: float64(p.Rows) / 10}
		out = append(out, r)
	}
	return out
}

// fixtureObjectives are the objectives of the fixture's windows: income's p99 at most
// 80,000 (the shifted windows breach it) and at least 100 rows a minute (all meet it
// but the first, whose rows are not judged).
var fixtureObjectives = []detectors.Objective{
	{Name: "income p99", Field: shiftedFeature, Stat: detectors.StatQuantile, Quantile: 0.99, Min: math.Inf(-1), Max: 80000},
	{Name: "rows per minute", Stat: detectors.StatRowsPerMinute, Min: 100, Max: math.Inf(1)},
}

// fakeSource stands in for the monitor's counters, readiness and role.
type fakeSource struct {
	mu     sync.Mutex
	stats  map[string]monitor.Stats
	labels map[string]labels.Stats
	ready  error
	role   string // "" is "single", a monitor without cluster:
}

func (f *fakeSource) Stats() map[string]monitor.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]monitor.Stats, len(f.stats))
	for k, v := range f.stats {
		out[k] = v
	}
	return out
}

func (f *fakeSource) LabelStats() map[string]labels.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]labels.Stats, len(f.labels))
	for k, v := range f.labels {
		out[k] = v
	}
	return out
}

func (f *fakeSource) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeSource) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

func (f *fakeSource) Role() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.role == "" {
		return roleSingle
	}
	return f.role
}

func (f *fakeSource) setRole(role string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.role = role
}

const testToken = "s3cret-token"

// fixture is a server fed with results and deliveries, as the monitor would.
type fixture struct {
	srv *Server
	src *fakeSource
	now time.Time
	res []engine.Result
	// perf is what the label join said of the compared windows, in the order it
	// said it (see performanceResults).
	perf []labels.Result
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		src: &fakeSource{
			stats: map[string]monitor.Stats{
				"credit": {Events: 12000, Rejected: map[string]int64{"malformed_json": 3, "wrong_type": 1}},
				"fraud":  {Events: 0, Rejected: map[string]int64{}},
			},
			labels: map[string]labels.Stats{
				"credit": {Labels: 5200, Matched: 5000, Expired: 120, TooLate: 30, Unlabelled: 400, Duplicates: 7,
					LatePredictions: 2, Rejected: map[string]int64{"malformed_json": 4}},
			},
		},
		now: t0.Add(2 * time.Hour),
	}
	f.srv = New(Options{Token: testToken, Source: f.src, Now: func() time.Time { return f.now }})
	f.res = results(t, 2, 2)
	f.perf = performanceResults(t, f.res)
	for _, r := range f.perf {
		f.srv.RecordPerformance(r)
	}
	for _, r := range f.res {
		f.srv.Record(r)
		if a, ok := alertOf(r, "http://127.0.0.1:8080/"); ok {
			f.srv.RecordDelivery("slack", a, nil)
			f.srv.RecordDelivery("webhook retrain", a, errors.New("503 from receiver"))
			f.srv.RecordDelivery("webhook retrain", a, nil)
		}
	}
	return f
}

// lastAlert is the alert of the fixture's last (shifted) window.
func (f *fixture) lastAlert(t testing.TB) alerting.Alert {
	t.Helper()
	a, ok := alertOf(f.res[len(f.res)-1], "")
	if !ok {
		t.Fatal("the shifted window raised no alert")
	}
	return a
}

// do sends a request to the server's handler and returns the status and body.
func do(t testing.TB, h http.Handler, method, target, token, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

// decode unmarshals a JSON body into a generic value.
func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return v
}

// alertOf is a window's alert as a notifier would get it: one per window with drift
// (the monitor's policy groups windows into episodes; these tests need no more).
func alertOf(r engine.Result, dashboard string) (a alerting.Alert, ok bool) {
	a = alerting.Alert{
		ID:     alerting.AlertID(r.Stream, r.Model, r.ModelVersion, r.Start),
		Stream: r.Stream, Model: r.Model, ModelVersion: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Rows,
		Reference: r.Reference, DashboardURL: dashboard,
		Severity: alerting.SeverityWarning,
	}
	for _, f := range r.Findings {
		switch f.Verdict {
		case detectors.Drift:
			a.Drifted = append(a.Drifted, alerting.Change{
				Feature: f.Feature, Detector: f.Detector, Score: f.Score,
				Threshold: f.Threshold, PValue: f.AdjustedP, Summary: f.Summary(),
			})
			if f.PSI >= 0.25 {
				a.Severity = alerting.SeverityCritical
			}
		case detectors.Stable:
			a.Stable = append(a.Stable, f.Feature)
		default:
			a.Insufficient = append(a.Insufficient, f.Feature)
		}
	}
	sort.SliceStable(a.Drifted, func(i, j int) bool { return a.Drifted[i].Score > a.Drifted[j].Score })
	return a, len(a.Drifted) > 0
}

// perfRule is the fixture's performance rule: ROC AUC at least 0.8.
var perfRule = detectors.PerformanceRule{Metric: detectors.MetricROCAUC, Min: 0.8, Max: math.NaN()}

// performance builds a performance result of the window of r from seeded scores
// of a classifier: labelled of predictions joined, 30% positives, scores that
// separate the classes well or, when weak, barely; judged by perfRule.
func performance(t testing.TB, r engine.Result, seed uint64, predictions, labelled int64, weak, final bool, revision int) labels.Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	p := sketch.NewPerformance(sketch.Classification, 0.5)
	sep := 0.25
	if weak {
		sep = 0.02
	}
	for range labelled {
		positive := rng.Float64() < 0.3
		score := 0.5 - sep + 0.15*rng.NormFloat64()
		if positive {
			score = 0.5 + sep + 0.15*rng.NormFloat64()
		}
		p.AddClassification(min(max(score, 0), 1), positive)
	}
	return labels.Result{
		Stream: r.Stream, Model: r.Model, ModelVersion: r.ModelVersion,
		Start: r.Start, End: r.End, Final: final,
		Predictions: predictions, Labelled: labelled,
		Metrics: detectors.ComputeMetrics(p),
		Verdict: detectors.EvaluatePerformance(p, nil, perfRule, 30),
		// Against a reference of the first window's labels, as the monitor compares.
		LabelShift: detectors.EvaluateLabelShift(detectors.NewPerformanceReference([]*sketch.Performance{p}), p, detectors.Options{}),
		Estimated:  detectors.EstimatePerformance(scoresOf(p), detectors.NewPerformanceReference([]*sketch.Performance{p}), 0.5),
		Reference:  "min 0.8",
		Revision:   revision,
	}
}

// performanceResults is what the label join hands out for the compared windows of
// res (warm-up windows excluded), in order: each stable window provisional with
// few labels, then final and fine; the first shifted window final and degraded
// (weak scores); the last window provisional twice, 62% labelled at last.
func performanceResults(t testing.TB, res []engine.Result) []labels.Result {
	t.Helper()
	var out []labels.Result
	compared := res[2:]
	for i, r := range compared {
		seed := uint64(100 + i)
		switch {
		case i == len(compared)-1:
			out = append(out, performance(t, r, seed, 2000, 300, true, false, 0),
				performance(t, r, seed, 2000, 1240, true, false, 1))
		case i == len(compared)-2:
			out = append(out, performance(t, r, seed, 2000, 1900, true, true, 0))
		default:
			out = append(out, performance(t, r, seed, 2000, 20, false, false, 0),
				performance(t, r, seed, 2000, 1950, false, true, 1))
		}
	}
	return out
}

// scoresOf is the score histogram of p's labelled scores.
func scoresOf(p *sketch.Performance) *sketch.ScoreHistogram {
	h := sketch.NewScoreHistogram()
	for _, positive := range []bool{true, false} {
		for b, c := range p.ScoreCounts(positive) {
			for range c {
				h.Add((float64(b) + 0.5) / sketch.PerformanceBins)
			}
		}
	}
	return h
}
