package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/sketch"
)

// perfBody is the performance response as a client decodes it; pointers tell null
// from 0.
type perfBody struct {
	Models []struct {
		Stream, Model, Version string
		Windows                []struct {
			Start, End            time.Time
			Status                string
			Predictions, Labelled int64
			Coverage              *float64
			Revision              int
			Metrics               map[string]any
			Verdict               struct {
				Metric           string
				Value, SE, Bound *float64
				Reference        *float64
				ReferenceSD      *float64 `json:"reference_sd"`
				PValue           *float64 `json:"p_value"`
				Degraded         bool
				Rule             string
			}
			Reference string
		}
	}
}

func getPerformance(t *testing.T, s *Server, target string) (perfBody, []byte) {
	t.Helper()
	code, hdr, body := do(t, s.Handler(), "GET", target, "", "")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %s\n%s", target, code, hdr.Get("Content-Type"), body)
	}
	var v perfBody
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, body)
	}
	return v, body
}

// TestPerformanceRevisions: a window handed out provisional, revised by more labels
// and then final is one window in the API, final, with the final figures.
func TestPerformanceRevisions(t *testing.T) {
	res := results(t, 1, 0)[2]
	srv := New(Options{})
	final := performance(t, res, 1, 2000, 1900, false, true, 2)
	for _, r := range []labels.Result{
		performance(t, res, 1, 2000, 150, false, false, 0),
		performance(t, res, 1, 2000, 1240, false, false, 1),
		final,
	} {
		srv.RecordPerformance(r)
	}
	v, _ := getPerformance(t, srv, "/api/v1/performance")
	if len(v.Models) != 1 || len(v.Models[0].Windows) != 1 {
		t.Fatalf("want one model with one window, got %+v", v.Models)
	}
	m := v.Models[0]
	if m.Stream != "credit" || m.Model != "car-loan" || m.Version != "3.2.0" {
		t.Errorf("model = %s/%s/%s", m.Stream, m.Model, m.Version)
	}
	w := m.Windows[0]
	if w.Status != "final" || w.Revision != 2 || w.Labelled != 1900 || w.Predictions != 2000 {
		t.Errorf("window = status %s revision %d labelled %d/%d, want final revision 2 1900/2000", w.Status, w.Revision, w.Labelled, w.Predictions)
	}
	if !w.Start.Equal(res.Start) || !w.End.Equal(res.End) {
		t.Errorf("window %v–%v, want %v–%v", w.Start, w.End, res.Start, res.End)
	}
	if w.Coverage == nil || *w.Coverage != 0.95 {
		t.Errorf("coverage = %v, want 0.95", w.Coverage)
	}
	if got := w.Metrics["roc_auc"]; got != final.Metrics.ROCAUC {
		t.Errorf("roc_auc = %v, want the final result's %v", got, final.Metrics.ROCAUC)
	}
	if got := w.Metrics["n"]; got != float64(final.Metrics.N) {
		t.Errorf("n = %v, want %d", got, final.Metrics.N)
	}
	c, _ := w.Metrics["confusion"].(map[string]any)
	if c["tp"] != float64(final.Metrics.TP) || c["fn"] != float64(final.Metrics.FN) {
		t.Errorf("confusion = %v, want tp %d fn %d", c, final.Metrics.TP, final.Metrics.FN)
	}
	if _, ok := w.Metrics["mae"]; ok {
		t.Errorf("a classifier's metrics have regression fields: %v", w.Metrics)
	}
	vd := w.Verdict
	if vd.Metric != "roc_auc" || vd.Value == nil || *vd.Value != final.Verdict.Value || vd.Degraded || vd.Rule != final.Verdict.Rule {
		t.Errorf("verdict = %+v, want %+v", vd, final.Verdict)
	}
	if vd.Bound == nil || *vd.Bound != 0.8 {
		t.Errorf("bound = %v, want the rule's min 0.8", vd.Bound)
	}
}

// TestPerformanceOrderAndHistory: windows come newest first whatever order their
// results arrive in, and only the newest History windows are kept; a late revision
// of a window already dropped does not come back.
func TestPerformanceOrderAndHistory(t *testing.T) {
	res := results(t, 5, 0)[2:] // five compared windows
	srv := New(Options{History: 3})
	for _, i := range []int{1, 0, 3, 2, 4} {
		srv.RecordPerformance(performance(t, res[i], uint64(i), 100, 50, false, false, 0))
	}
	srv.RecordPerformance(performance(t, res[0], 0, 100, 100, false, true, 1))
	srv.RecordPerformance(performance(t, res[3], 3, 100, 100, false, true, 1))
	v, _ := getPerformance(t, srv, "/api/v1/performance")
	ws := v.Models[0].Windows
	if len(ws) != 3 {
		t.Fatalf("%d windows kept, want History 3", len(ws))
	}
	for i, want := range []struct {
		start  time.Time
		status string
	}{{res[4].Start, "provisional"}, {res[3].Start, "final"}, {res[2].Start, "provisional"}} {
		if !ws[i].Start.Equal(want.start) || ws[i].Status != want.status {
			t.Errorf("windows[%d] = %v %s, want %v %s", i, ws[i].Start, ws[i].Status, want.start, want.status)
		}
	}
}

// TestPerformanceNaNIsNull: undefined figures (no label yet, no prediction) are
// JSON null, not 0 and not an encoding error; a regression model shows its own
// metrics; both shapes match the OpenAPI document.
func TestPerformanceNaNIsNull(t *testing.T) {
	res := results(t, 1, 0)[2]
	srv := New(Options{})
	empty := sketch.NewPerformance(sketch.Classification, 0.5)
	srv.RecordPerformance(labels.Result{
		Stream: "credit", Model: "car-loan", ModelVersion: "3.2.0", Start: res.Start, End: res.End,
		Metrics: detectors.ComputeMetrics(empty), Verdict: detectors.EvaluatePerformance(empty, nil, perfRule, 30),
		LabelShift: detectors.EvaluateLabelShift(nil, empty, detectors.Options{}),
	})
	reg := sketch.NewPerformance(sketch.Regression, 0)
	for i := range 40 {
		reg.AddRegression(float64(i)+0.5, float64(i))
	}
	srv.RecordPerformance(labels.Result{
		Stream: "credit", Model: "price", Start: res.Start, End: res.End, Final: true,
		Predictions: 50, Labelled: 40, Metrics: detectors.ComputeMetrics(reg),
		Verdict:    detectors.EvaluatePerformance(reg, nil, detectors.PerformanceRule{Metric: detectors.MetricMAE, Max: 1, Min: math.NaN()}, 30),
		LabelShift: detectors.EvaluateLabelShift(nil, reg, detectors.Options{}),
	})

	v, body := getPerformance(t, srv, "/api/v1/performance?model=car-loan")
	w := v.Models[0].Windows[0]
	if w.Coverage != nil || w.Verdict.Value != nil || w.Verdict.SE != nil || w.Verdict.Bound != nil {
		t.Errorf("coverage %v, value %v, se %v, bound %v: want null", w.Coverage, w.Verdict.Value, w.Verdict.SE, w.Verdict.Bound)
	}
	for _, k := range []string{"accuracy", "roc_auc", "log_loss", "f1"} {
		if x, ok := w.Metrics[k]; !ok || x != nil {
			t.Errorf("metrics.%s = %v (present %v), want null", k, x, ok)
		}
	}
	if !bytes.Contains(body, []byte(`"coverage":null`)) {
		t.Errorf("no null coverage in %s", body)
	}

	v, _ = getPerformance(t, srv, "/api/v1/performance?model=price")
	m := v.Models[0].Windows[0].Metrics
	if m["kind"] != "regression" || m["mae"] != 0.5 || m["rmse"] != 0.5 {
		t.Errorf("regression metrics = %v, want mae = rmse = 0.5", m)
	}
	if _, ok := m["accuracy"]; ok {
		t.Errorf("a regression model's metrics have classification fields: %v", m)
	}
	if _, ok := m["mape"]; !ok {
		t.Errorf("mape missing: %v", m)
	}

	doc := openAPIDoc(t)
	_, _, all := do(t, srv.Handler(), "GET", "/api/v1/performance", "", "")
	var x any
	if err := json.Unmarshal(all, &x); err != nil {
		t.Fatal(err)
	}
	schema := map[string]any{"$ref": "#/components/schemas/PerformanceList"}
	for _, p := range (&shapeChecker{doc: doc}).check("$", schema, x) {
		t.Error(p)
	}
}

// TestPerformanceSelector: stream, model and version select as on the other
// routes, limit bounds the windows of each model, and bad parameters are JSON
// errors.
func TestPerformanceSelector(t *testing.T) {
	f := newFixture(t)
	other := f.res[3]
	other.Model = "churn"
	r := performance(t, other, 7, 100, 60, false, false, 0)
	f.srv.RecordPerformance(r)

	tests := []struct {
		target string
		code   int
		models []string // model of each entry, in order
		// windows is the number of windows of each entry.
		windows []int
	}{
		{"/api/v1/performance", 200, []string{"car-loan", "churn"}, []int{4, 1}},
		{"/api/v1/performance?stream=credit&model=car-loan&version=3.2.0", 200, []string{"car-loan"}, []int{4}},
		{"/api/v1/performance?model=churn", 200, []string{"churn"}, []int{1}},
		{"/api/v1/performance?limit=2", 200, []string{"car-loan", "churn"}, []int{2, 1}},
		{"/api/v1/performance?stream=fraud", 200, nil, nil}, // a known stream without labels
		{"/api/v1/performance?stream=nope", 404, nil, nil},
		{"/api/v1/performance?model=car-loan&version=9", 404, nil, nil},
		{"/api/v1/performance?limit=0", 400, nil, nil},
		{"/api/v1/performance?limit=many", 400, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			code, hdr, body := do(t, f.srv.Handler(), "GET", tt.target, "", "")
			if code != tt.code || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("= %d %s, want %d JSON\n%s", code, hdr.Get("Content-Type"), tt.code, body)
			}
			if code != 200 {
				if msg, _ := decode(t, body)["error"].(string); msg == "" {
					t.Errorf("error body without a message: %s", body)
				}
				return
			}
			var v perfBody
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			if len(v.Models) != len(tt.models) {
				t.Fatalf("%d models, want %v\n%s", len(v.Models), tt.models, body)
			}
			for i, m := range v.Models {
				if m.Model != tt.models[i] || len(m.Windows) != tt.windows[i] {
					t.Errorf("models[%d] = %s with %d windows, want %s with %d", i, m.Model, len(m.Windows), tt.models[i], tt.windows[i])
				}
			}
		})
	}

	// The fixture's newest window comes first: still provisional, revised once.
	v, _ := getPerformance(t, f.srv, "/api/v1/performance?model=car-loan&limit=1")
	w := v.Models[0].Windows[0]
	last := f.perf[len(f.perf)-1]
	if !w.Start.Equal(last.Start) || w.Status != "provisional" || w.Revision != 1 || w.Labelled != 1240 {
		t.Errorf("newest = %v %s revision %d labelled %d, want %v provisional revision 1 labelled 1240",
			w.Start, w.Status, w.Revision, w.Labelled, last.Start)
	}
}

// TestPerformanceMetrics: /metrics carries the label join's counters per stream and
// the newest final and provisional window's figures per model version.
func TestPerformanceMetrics(t *testing.T) {
	f := newFixture(t)
	fams := scrape(t, f.srv)
	credit := func(kv ...string) map[string]string {
		m := map[string]string{"stream": "credit"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	ver := func(kv ...string) map[string]string {
		return credit(append([]string{"model", "car-loan", "version", "3.2.0"}, kv...)...)
	}
	final, provisional := f.perf[len(f.perf)-3], f.perf[len(f.perf)-1]
	if !final.Final || !final.Verdict.Degraded || provisional.Final {
		t.Fatalf("BUG: the fixture's newest windows are not a degraded final one then a provisional one")
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"driftmon_labels_total", credit("outcome", "matched"), 5000},
		{"driftmon_labels_total", credit("outcome", "expired"), 120},
		{"driftmon_labels_total", credit("outcome", "too_late"), 30},
		{"driftmon_labels_total", credit("outcome", "duplicate"), 7},
		{"driftmon_labels_total", credit("outcome", "unlabelled_predictions"), 400},
		{"driftmon_labels_total", credit("outcome", "late_predictions"), 2},
		{"driftmon_labels_decoded_total", credit(), 5200},
		{"driftmon_labels_rejected_total", credit("reason", "malformed_json"), 4},
		{"driftmon_performance", ver("metric", "roc_auc", "status", "final"), final.Metrics.ROCAUC},
		{"driftmon_performance", ver("metric", "accuracy", "status", "final"), final.Metrics.Accuracy},
		{"driftmon_performance", ver("metric", "roc_auc", "status", "provisional"), provisional.Metrics.ROCAUC},
		{"driftmon_performance_degraded", ver("status", "final"), 1},
		{"driftmon_performance_degraded", ver("status", "provisional"), 1},
		{"driftmon_label_coverage", ver("status", "final"), 0.95},
		{"driftmon_label_coverage", ver("status", "provisional"), 0.62},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: no such series", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := value(fams, "driftmon_performance", ver("metric", "mae")); ok {
		t.Error("a classifier exports a regression metric")
	}
	if _, ok := value(fams, "driftmon_labels_total", map[string]string{"stream": "fraud"}); ok {
		t.Error("label counters for a stream that joins no labels")
	}
}
