package webhook

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// The bodies every format sends are fixed bytes: receivers and their templates
// depend on the field names, on null for numbers that are not finite or p-values
// that are negative, on lists that are never null and on a rule left out when
// empty. testdata/bodies.golden holds one body a line, for a full alert and for an
// empty one, in the order of the formats below; it was written by driftmon at
// 9f2f0e6, before the alert types carried their own JSON encoding.
func TestRenderedBodiesAreStable(t *testing.T) {
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	full := alerting.Alert{ID: "msg_x", Stream: "s", Model: "car-loan", ModelVersion: "v3", WindowStart: start, WindowEnd: start.Add(time.Hour),
		Rows: 7, Reference: "ref <&>", Severity: alerting.SeverityCritical, Stable: []string{"z"}, DashboardURL: "http://127.0.0.1/?a=1&b=2",
		Drifted: []alerting.Change{
			{Feature: "a", Detector: "psi", Score: 0.3, Threshold: math.Inf(1), PValue: math.NaN(), Summary: "p50 1 → 2"},
			{Feature: "b", Detector: "ks", Score: 0.1, Threshold: 0.05, PValue: -1, Rule: "KS D", Distribution: &alerting.Distribution{Labels: []string{"x"}}},
		}}
	var got []byte
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
			got = append(append(got, r.Body...), '\n')
		}
	}
	want, err := os.ReadFile(filepath.Join("testdata", "bodies.golden"))
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d bodies, want %d", len(gotLines), len(wantLines))
	}
	for i := range gotLines {
		if !bytes.Equal(gotLines[i], wantLines[i]) {
			t.Errorf("body %d:\n got %s\nwant %s", i, gotLines[i], wantLines[i])
		}
	}
}
