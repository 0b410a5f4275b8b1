package alerting

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

// A change encodes with every field, its numbers that are not finite as null, and
// decodes back; null and a missing number (as changes stored by earlier builds leave
// them out) are NaN.
func TestChangeJSON(t *testing.T) {
	c := Change{Feature: "salary_range", Detector: "psi", Score: 0.14, Threshold: math.Inf(1), PValue: math.NaN(),
		Summary: "40K - 60K € 31% → 45%", Distribution: &Distribution{Labels: []string{"a", "b"}, Reference: []float64{0.5, 0.5}, Current: []float64{0.2, 0.8}}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"feature":"salary_range","detector":"psi","score":0.14,"threshold":null,"p_value":null,"summary":"40K - 60K € 31% → 45%","rule":"",` +
		`"distribution":{"Edges":null,"Labels":["a","b"],"Reference":[0.5,0.5],"Current":[0.2,0.8]}}`
	if string(b) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
	}
	if b, _ := json.Marshal(Change{Feature: "x", Score: 1, Threshold: 2, PValue: 0.5}); string(b) !=
		`{"feature":"x","detector":"","score":1,"threshold":2,"p_value":0.5,"summary":"","rule":""}` {
		t.Errorf("a change without distribution = %s", b)
	}

	for _, in := range []string{
		string(b),
		// As earlier builds stored it: empty fields and non-finite numbers left out.
		`{"feature":"salary_range","detector":"psi","score":0.14,"summary":"40K - 60K € 31% → 45%","distribution":{"Edges":null,"Labels":["a","b"],"Reference":[0.5,0.5],"Current":[0.2,0.8]}}`,
	} {
		back := Change{Rule: "left over from before"}
		if err := json.Unmarshal([]byte(in), &back); err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(back.Threshold) || !math.IsNaN(back.PValue) {
			t.Errorf("%s: threshold %v, p-value %v, want NaN for null and missing", in, back.Threshold, back.PValue)
		}
		want := c
		back.Threshold, back.PValue, want.Threshold, want.PValue = 0, 0, 0, 0 // NaN is not equal to itself
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%s decoded as %+v, want %+v", in, back, want)
		}
	}
	var back Change
	if err := json.Unmarshal([]byte(`{"score":"high"}`), &back); err == nil {
		t.Error("a score that is a string decoded")
	}
}

// A decision survives its JSON encoding whole, its alert's window and its start in
// UTC; decoding replaces what the value held.
func TestDecisionJSON(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, cet)
	d := Decision{ID: "msg_1", Step: StepUpdate, Kind: KindDrift, Started: start.Add(-2 * time.Hour), Seq: 3,
		New: []string{"b"}, Resolved: []string{"c"}, Silenced: []string{"d"},
		Alert: Alert{ID: "ep_1", Stream: "loans", Model: "car-loan", ModelVersion: "v3", WindowStart: start, WindowEnd: start.Add(time.Hour),
			Rows: 5000, Reference: "baseline", Severity: SeverityCritical, Stable: []string{"e"}, Insufficient: []string{"f"},
			DashboardURL: "http://127.0.0.1/d", Drifted: []Change{{Feature: "a", Detector: "ks", Score: 0.3, Threshold: 0.1, PValue: 1e-6, Rule: "KS D 0.3"}}}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_1","step":"update","kind":"drift","alert":{"id":"ep_1","stream":"loans","model":"car-loan","model_version":"v3",` +
		`"window_start":"2024-05-01T11:00:00Z","window_end":"2024-05-01T12:00:00Z","rows":5000,"reference":"baseline","severity":"critical",` +
		`"drifted":[{"feature":"a","detector":"ks","score":0.3,"threshold":0.1,"p_value":0.000001,"summary":"","rule":"KS D 0.3"}],` +
		`"stable":["e"],"insufficient":["f"],"dashboard_url":"http://127.0.0.1/d"},"started":"2024-05-01T09:00:00Z","seq":3,` +
		`"new":["b"],"resolved":["c"],"silenced":["d"]}`
	if string(b) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
	}
	back := Decision{Muted: "silenced", Trigger: "left over"}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(inUTC(d)) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, inUTC(d))
	}
	if err := json.Unmarshal([]byte(`{"seq":"x"}`), &back); err == nil {
		t.Error("a decision with a string seq decoded")
	}
}

func inUTC(d Decision) Decision {
	d.Started, d.Alert.WindowStart, d.Alert.WindowEnd = d.Started.UTC(), d.Alert.WindowStart.UTC(), d.Alert.WindowEnd.UTC()
	return d
}

func TestStableIDAndDeliveryID(t *testing.T) {
	if StableID("ep_", "a", "bc") == StableID("ep_", "ab", "c") {
		t.Error("StableID does not tell the parts apart")
	}
	d := Decision{ID: "msg_1"}
	if d.DeliveryID("slack") == d.DeliveryID("webhook airflow") || d.DeliveryID("slack") != d.DeliveryID("slack") {
		t.Error("delivery IDs must be stable and distinct per route")
	}
}
