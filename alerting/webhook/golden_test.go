package webhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

var update = flag.Bool("update", false, "rewrite testdata/bodies.golden")

// goldenBodies renders a full alert and an empty one in every format, one body a
// line: the bodies the golden files hold.
func goldenBodies(t *testing.T) [][]byte {
	t.Helper()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	full := alerting.Alert{ID: "msg_x", Stream: "s", Model: "car-loan", ModelVersion: "v3", WindowStart: start, WindowEnd: start.Add(time.Hour),
		Rows: 7, Reference: "ref <&>", Severity: alerting.SeverityCritical, Stable: []string{"z"}, DashboardURL: "http://127.0.0.1/?a=1&b=2",
		Drifted: []alerting.Change{
			{Feature: "a", Detector: "psi", Score: 0.3, Threshold: math.Inf(1), PValue: math.NaN(), Summary: "p50 1 → 2"},
			{Feature: "b", Detector: "ks", Score: 0.1, Threshold: 0.05, PValue: -1, Rule: "KS D", Distribution: &alerting.Distribution{Labels: []string{"x"}}},
		},
		Episode: "ep_y", FirstWindowStart: start.Add(-2 * time.Hour), FirstWindowEnd: start.Add(-time.Hour), ReferenceID: "ref_z"}
	var got [][]byte
	for _, tm := range []Template{{}, {Format: FormatArgo}, {Format: FormatAirflow}, {Format: FormatGitHub}, {Format: FormatJenkins},
		{Format: FormatTemplate, Text: `{{json .}} {{range .Drifted}}{{.Score}} {{.PValue}} {{json .PValue}} {{.Rule}};{{end}}`, ContentType: "text/plain"}} {
		n, err := New(Options{URL: "http://127.0.0.1:1/x", Template: tm})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []alerting.Alert{full, {ID: "empty"}} {
			r, err := n.Render("msg_id", NewPayload(a))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Body)
		}
	}
	return got
}

// The bodies every format sends are fixed bytes: receivers and their templates
// depend on the field names, on null for numbers that are not finite or p-values
// that are negative, on lists that are never null and on a rule left out when
// empty. testdata/bodies.golden holds one body a line, for a full alert and for an
// empty one, in the order of the formats of goldenBodies; go test -update rewrites
// it, and TestBodiesOnlyAddFields checks what such a change may do.
func TestRenderedBodiesAreStable(t *testing.T) {
	got := bytes.Join(goldenBodies(t), []byte("\n"))
	path := filepath.Join("testdata", "bodies.golden")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	compareLines(t, bytes.Split(got, []byte("\n")), bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n")), bytes.Equal)
}

// addedFields are the fields receivers got since driftmon 9f2f0e6, wherever a format
// puts them (issue 22: a retraining call names its episode, the episode's first
// drifting window and the reference's id).
var addedFields = []string{"episode_id", "first_window", "reference_id", "first_window_start", "first_window_end"}

// TestBodiesOnlyAddFields: receivers depend on the fields they get, so a change may
// add fields but not rename, drop or change one. testdata/bodies-9f2f0e6.golden holds
// the bodies driftmon wrote at 9f2f0e6 (before the alert types carried their own JSON
// encoding); every body sent now, without addedFields, says exactly what it said: the
// same JSON values, the same form parameters, the same text around a template's JSON.
func TestBodiesOnlyAddFields(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "bodies-9f2f0e6.golden"))
	if err != nil {
		t.Fatal(err)
	}
	compareLines(t, goldenBodies(t), bytes.Split(bytes.TrimSuffix(old, []byte("\n")), []byte("\n")), func(now, then []byte) bool {
		return reflect.DeepEqual(withoutAdded(t, now), withoutAdded(t, then))
	})
}

func compareLines(t *testing.T, got, want [][]byte, equal func(a, b []byte) bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d", len(got), len(want))
	}
	for i := range got {
		if !equal(got[i], want[i]) {
			t.Errorf("body %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// withoutAdded decodes a body, JSON, a form or a template's "JSON then text", with
// addedFields removed at any depth.
func withoutAdded(t *testing.T, body []byte) any {
	t.Helper()
	if !bytes.HasPrefix(body, []byte("{")) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for k, v := range form {
			out[k] = v
		}
		out["payload"] = withoutAdded(t, []byte(form.Get("payload")))
		return strip(out)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	rest, _ := io.ReadAll(dec.Buffered())
	return []any{strip(v), string(rest)}
}

func strip(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range addedFields {
			delete(v, k)
		}
		for k, x := range v {
			v[k] = strip(x)
		}
	case []any:
		for i, x := range v {
			v[i] = strip(x)
		}
	}
	return v
}
