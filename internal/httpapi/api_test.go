package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/internal/report"
)

// TestAPI drives every endpoint through the handler: status, content type and the
// parts of the body a client relies on.
func TestAPI(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	a := f.lastAlert(t)
	future := f.now.Add(2 * time.Hour).Format(time.RFC3339)

	tests := []struct {
		name, method, target, token, body string
		code                              int
		// check inspects the decoded body; nil checks only the code and JSON-ness.
		check func(t *testing.T, v map[string]any)
	}{
		{name: "streams", method: "GET", target: "/api/v1/streams", code: 200, check: func(t *testing.T, v map[string]any) {
			streams := v["streams"].([]any)
			if len(streams) != 2 {
				t.Fatalf("streams = %d, want credit and fraud", len(streams))
			}
			credit := streams[0].(map[string]any)
			if credit["name"] != "credit" || credit["events"] != 12000.0 {
				t.Errorf("credit = %v", credit)
			}
			if credit["decode_errors"].(map[string]any)["malformed_json"] != 3.0 {
				t.Errorf("decode_errors = %v", credit["decode_errors"])
			}
			ver := credit["models"].([]any)[0].(map[string]any)["versions"].([]any)[0].(map[string]any)
			if ver["version"] != "3.2.0" || ver["windows"] != 6.0 || ver["drifted_windows"] != 2.0 {
				t.Errorf("version = %v", ver)
			}
			latest := ver["latest"].(map[string]any)
			if latest["id"] != a.ID || !slices.Contains(latest["drifted"].([]any), any(shiftedFeature)) {
				t.Errorf("latest = %v, want the alert's window %s with %s drifted", latest, a.ID, shiftedFeature)
			}
			if fraud := streams[1].(map[string]any); len(fraud["models"].([]any)) != 0 {
				t.Errorf("fraud has models: %v", fraud)
			}
		}},
		{name: "windows newest first", method: "GET", target: "/api/v1/windows?stream=credit&model=car-loan&version=3.2.0", code: 200, check: func(t *testing.T, v map[string]any) {
			ws := v["windows"].([]any)
			if len(ws) != 6 {
				t.Fatalf("windows = %d, want 6", len(ws))
			}
			first, last := ws[0].(map[string]any), ws[5].(map[string]any)
			if first["id"] != a.ID || last["warmup"] != true {
				t.Errorf("order: first %v (want %s), last warmup %v", first["id"], a.ID, last["warmup"])
			}
			fs := first["findings"].([]any)
			if len(fs) != len(testFields)+2 { // and "(multivariate)" and "(joint)", stable
				t.Fatalf("findings = %d, want %d", len(fs), len(testFields)+2)
			}
			for _, x := range fs {
				fd := x.(map[string]any)
				want := "stable"
				if fd["feature"] == shiftedFeature {
					want = "drift"
				}
				if fd["verdict"] != want {
					t.Errorf("%s: verdict %v, want %s", fd["feature"], fd["verdict"], want)
				}
				if _, ok := fd["explanation"].(map[string]any)["cur_p50"]; !ok {
					t.Errorf("%s: explanation without cur_p50", fd["feature"])
				}
				if fd["kind"] == "joint" {
					// The pair's grid on both sides, for the dashboard.
					pairs, _ := fd["explanation"].(map[string]any)["pairs"].([]any)
					if len(pairs) == 0 {
						t.Fatalf("joint finding without pairs: %v", fd["explanation"])
					}
					p := pairs[0].(map[string]any)
					if ref, cur := p["ref"].([]any), p["cur"].([]any); len(ref) < 2 || len(ref) != len(cur) || p["x"] == "" || p["y"] == "" {
						t.Errorf("pair grid %v", p)
					}
				}
			}
			if ds := first["distributions"].([]any); len(ds) != len(testFields) {
				t.Errorf("distributions = %d, want %d", len(ds), len(testFields))
			}
		}},
		{name: "windows limit", method: "GET", target: "/api/v1/windows?limit=2", code: 200, check: func(t *testing.T, v map[string]any) {
			if n := len(v["windows"].([]any)); n != 2 {
				t.Errorf("windows = %d, want 2", n)
			}
		}},
		{name: "windows of a known stream without windows", method: "GET", target: "/api/v1/windows?stream=fraud", code: 200, check: func(t *testing.T, v map[string]any) {
			if n := len(v["windows"].([]any)); n != 0 {
				t.Errorf("windows = %d, want 0", n)
			}
		}},
		{name: "windows bad limit", method: "GET", target: "/api/v1/windows?limit=ten", code: 400},
		{name: "windows zero limit", method: "GET", target: "/api/v1/windows?limit=0", code: 400},
		{name: "windows unknown stream", method: "GET", target: "/api/v1/windows?stream=nope", code: 404},
		{name: "windows unknown model", method: "GET", target: "/api/v1/windows?stream=credit&model=nope", code: 404},
		{name: "windows unknown version", method: "GET", target: "/api/v1/windows?model=car-loan&version=9", code: 404},
		{name: "findings", method: "GET", target: "/api/v1/findings?stream=credit", code: 200, check: func(t *testing.T, v map[string]any) {
			fs := v["findings"].([]any)
			if len(fs) != len(testFields)+2 {
				t.Fatalf("findings = %d, want one per feature, the multivariate and the joint one", len(fs))
			}
			fd := fs[1].(map[string]any)
			if fd["feature"] != shiftedFeature || fd["verdict"] != "drift" || fd["window_id"] != a.ID || fd["model"] != "car-loan" {
				t.Errorf("finding = %v", fd)
			}
			if !strings.Contains(fd["summary"].(string), "→") {
				t.Errorf("summary = %q", fd["summary"])
			}
		}},
		{name: "findings by verdict", method: "GET", target: "/api/v1/findings?verdict=drift", code: 200, check: func(t *testing.T, v map[string]any) {
			if fs := v["findings"].([]any); len(fs) != 1 || fs[0].(map[string]any)["feature"] != shiftedFeature {
				t.Errorf("findings = %v, want only %s", fs, shiftedFeature)
			}
		}},
		{name: "findings unknown model", method: "GET", target: "/api/v1/findings?model=nope", code: 404},
		{name: "alerts", method: "GET", target: "/api/v1/alerts", code: 200, check: func(t *testing.T, v map[string]any) {
			as := v["alerts"].([]any)
			if len(as) != 2 {
				t.Fatalf("alerts = %d, want the 2 shifted windows", len(as))
			}
			al := as[0].(map[string]any)
			if al["id"] != a.ID || al["severity"] == "" {
				t.Errorf("alert = %v", al)
			}
			routes := al["routes"].([]any)
			if len(routes) != 2 {
				t.Fatalf("routes = %v", routes)
			}
			hook := routes[1].(map[string]any)
			if hook["route"] != "webhook retrain" || hook["status"] != "delivered" || hook["attempts"] != 2.0 {
				t.Errorf("webhook route = %v, want delivered after 2 attempts", hook)
			}
			if d := al["drifted"].([]any)[0].(map[string]any); d["feature"] != shiftedFeature {
				t.Errorf("drifted = %v", d)
			}
		}},
		{name: "alerts of another stream", method: "GET", target: "/api/v1/alerts?stream=fraud", code: 200, check: func(t *testing.T, v map[string]any) {
			if n := len(v["alerts"].([]any)); n != 0 {
				t.Errorf("alerts = %d", n)
			}
		}},
		{name: "alerts bad limit", method: "GET", target: "/api/v1/alerts?limit=-1", code: 400},
		{name: "deliveries", method: "GET", target: "/api/v1/deliveries", code: 200, check: func(t *testing.T, v map[string]any) {
			ds := v["deliveries"].([]any)
			if len(ds) != 6 {
				t.Fatalf("deliveries = %d, want 3 per alert", len(ds))
			}
			d := ds[0].(map[string]any)
			if d["alert_id"] != a.ID || d["route"] != "webhook retrain" || d["status"] != "delivered" {
				t.Errorf("newest delivery = %v", d)
			}
		}},
		{name: "failed deliveries", method: "GET", target: "/api/v1/deliveries?status=failed", code: 200, check: func(t *testing.T, v map[string]any) {
			ds := v["deliveries"].([]any)
			if len(ds) != 2 || ds[0].(map[string]any)["error"] != "503 from receiver" {
				t.Errorf("failed deliveries = %v", ds)
			}
		}},
		{name: "deliveries bad status", method: "GET", target: "/api/v1/deliveries?status=lost", code: 400},
		{name: "silences empty", method: "GET", target: "/api/v1/silences", code: 200, check: func(t *testing.T, v map[string]any) {
			if n := len(v["silences"].([]any)); n != 0 {
				t.Errorf("silences = %d", n)
			}
		}},
		{name: "create silence without token", method: "POST", target: "/api/v1/silences", body: `{"model":"car-loan","duration":"1h"}`, code: 401},
		{name: "create silence with wrong token", method: "POST", target: "/api/v1/silences", token: "guess", body: `{"model":"car-loan","duration":"1h"}`, code: 401},
		{name: "create silence", method: "POST", target: "/api/v1/silences", token: testToken,
			body: `{"stream":"credit","feature":"income","kind":"drift","expires_at":"` + future + `","comment":"known campaign"}`, code: 201,
			check: func(t *testing.T, v map[string]any) {
				if !strings.HasPrefix(v["id"].(string), "sil_") || v["feature"] != "income" || v["comment"] != "known campaign" {
					t.Errorf("silence = %v", v)
				}
			}},
		{name: "create silence without matcher", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"duration":"1h"}`, code: 400},
		{name: "create silence without expiry", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"model":"car-loan"}`, code: 400},
		{name: "create silence in the past", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"model":"car-loan","expires_at":"2020-01-01T00:00:00Z"}`, code: 400},
		{name: "create silence of unknown kind", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"model":"car-loan","kind":"vibes","duration":"1h"}`, code: 400},
		{name: "create silence of objectives", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"model":"car-loan","feature":"latency_ms p99","kind":"objective","duration":"1h"}`, code: 201},
		{name: "create silence of a kind no silence mutes", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"model":"car-loan","kind":"no_data","duration":"1h"}`, code: 400},
		{name: "create silence with unknown field", method: "POST", target: "/api/v1/silences", token: testToken, body: `{"modle":"car-loan","duration":"1h"}`, code: 400},
		{name: "create silence not JSON", method: "POST", target: "/api/v1/silences", token: testToken, body: `model=car-loan`, code: 400},
		{name: "delete silence without token", method: "DELETE", target: "/api/v1/silences/sil_x", code: 401},
		{name: "delete unknown silence", method: "DELETE", target: "/api/v1/silences/sil_x", token: testToken, code: 404},
		{name: "unknown endpoint", method: "GET", target: "/api/v1/nope", code: 404},
		{name: "wrong method", method: "PUT", target: "/api/v1/streams", code: 405},
		{name: "openapi", method: "GET", target: "/api/v1/openapi.json", code: 200, check: func(t *testing.T, v map[string]any) {
			if v["openapi"] != "3.1.0" {
				t.Errorf("openapi = %v", v["openapi"])
			}
		}},
		{name: "healthz", method: "GET", target: "/healthz", code: 200},
		{name: "readyz", method: "GET", target: "/readyz", code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := do(t, h, tt.method, tt.target, tt.token, tt.body)
			if code != tt.code {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.target, code, tt.code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
			v := decode(t, body)
			if code >= 400 {
				if msg, _ := v["error"].(string); msg == "" {
					t.Errorf("error body without an error message: %s", body)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

// TestSilenceLifecycle: a silence created through the API mutes what it matches,
// is listed, and is gone once deleted or expired.
func TestSilenceLifecycle(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	code, hdr, body := do(t, h, "POST", "/api/v1/silences", testToken, `{"stream":"credit","model":"car-loan","feature":"income","duration":"30m"}`)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, body)
	}
	id := decode(t, body)["id"].(string)
	if loc := hdr.Get("Location"); loc != "/api/v1/silences/"+id {
		t.Errorf("Location = %q", loc)
	}
	// A second, broader silence of another kind must not mute drift.
	if code, _, body := do(t, h, "POST", "/api/v1/silences", testToken, `{"stream":"credit","kind":"data_quality","duration":"1h"}`); code != 201 {
		t.Fatalf("create = %d %s", code, body)
	}
	for _, tc := range []struct {
		stream, model, feature string
		at                     time.Duration
		want                   bool
	}{
		{"credit", "car-loan", "income", 0, true},
		{"credit", "car-loan", "income", 29 * time.Minute, true},
		{"credit", "car-loan", "income", 30 * time.Minute, false}, // expired
		{"credit", "car-loan", "age", 0, false},
		{"credit", "other", "income", 0, false},
		{"fraud", "car-loan", "income", 0, false},
	} {
		if got := f.srv.Silenced(tc.stream, tc.model, tc.feature, f.now.Add(tc.at)); got != tc.want {
			t.Errorf("Silenced(%s, %s, %s, +%s) = %v, want %v", tc.stream, tc.model, tc.feature, tc.at, got, tc.want)
		}
	}
	_, _, body = do(t, h, "GET", "/api/v1/silences", "", "")
	if n := len(decode(t, body)["silences"].([]any)); n != 2 {
		t.Fatalf("listed %d silences, want 2", n)
	}
	if code, _, body := do(t, h, "DELETE", "/api/v1/silences/"+id, testToken, ""); code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", code, body)
	}
	if f.srv.Silenced("credit", "car-loan", "income", f.now) {
		t.Error("still silenced after delete")
	}
	f.now = f.now.Add(2 * time.Hour)
	_, _, body = do(t, h, "GET", "/api/v1/silences", "", "")
	if n := len(decode(t, body)["silences"].([]any)); n != 0 {
		t.Errorf("listed %d silences after expiry, want 0", n)
	}
}

// TestNoTokenMeansReadOnly: without a configured token nothing can be changed, even
// with an empty bearer.
func TestNoTokenMeansReadOnly(t *testing.T) {
	s := New(Options{})
	h := s.Handler()
	for _, tc := range []struct{ method, target, token string }{
		{"POST", "/api/v1/silences", ""},
		{"POST", "/api/v1/silences", "anything"},
		{"DELETE", "/api/v1/silences/sil_x", ""},
	} {
		req := `{"model":"m","duration":"1h"}`
		if code, _, body := do(t, h, tc.method, tc.target, tc.token, req); code != http.StatusForbidden {
			t.Errorf("%s %s = %d, want 403\n%s", tc.method, tc.target, code, body)
		}
	}
	// Reads still work, and a server with nothing recorded answers with empty lists.
	for _, target := range []string{"/api/v1/streams", "/api/v1/windows", "/api/v1/findings", "/api/v1/alerts", "/api/v1/deliveries", "/api/v1/silences"} {
		code, _, body := do(t, h, "GET", target, "", "")
		if code != 200 {
			t.Errorf("GET %s = %d\n%s", target, code, body)
		}
		for k, v := range decode(t, body) {
			if k == "role" {
				continue // /api/v1/streams says the process's role beside its list
			}
			if l, ok := v.([]any); !ok || len(l) != 0 {
				t.Errorf("GET %s: %s = %v, want []", target, k, v)
			}
		}
	}
}

// TestReadyz: 503 with the source's reason until it is ready, then 200, and both
// answers say the role; a follower is ready as soon as its source is, leader or not.
// /healthz is 200 all along.
func TestReadyz(t *testing.T) {
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t)
			h := f.srv.Handler()
			f.src.setRole(role)
			f.src.setReady(fmt.Errorf("stream credit: cannot reach broker 127.0.0.1:9092"))
			code, _, body := do(t, h, "GET", "/readyz", "", "")
			v := decode(t, body)
			if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(v["error"]), "cannot reach broker") || v["role"] != role {
				t.Errorf("/readyz = %d %s, want 503 with the reason and role %q", code, body, role)
			}
			if code, _, _ := do(t, h, "GET", "/healthz", "", ""); code != 200 {
				t.Errorf("/healthz = %d while not ready", code)
			}
			f.src.setReady(nil)
			code, _, body = do(t, h, "GET", "/readyz", "", "")
			if v := decode(t, body); code != 200 || v["status"] != "ready" || v["role"] != role {
				t.Errorf("/readyz = %d %s once ready, want 200 with role %q", code, body, role)
			}
		})
	}
}

// TestHistory: at most History windows are kept per model, the counters keep
// counting, and the newest are the ones kept.
func TestHistory(t *testing.T) {
	s := New(Options{History: 3})
	res := results(t, 3, 2)
	for _, r := range res {
		s.Record(r)
	}
	_, _, body := do(t, s.Handler(), "GET", "/api/v1/windows?limit=100", "", "")
	var got struct{ Windows []report.Window }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Windows) != 3 {
		t.Fatalf("kept %d windows, want 3", len(got.Windows))
	}
	if !got.Windows[0].End.Equal(res[len(res)-1].End) || !got.Windows[2].Start.Equal(res[len(res)-3].Start) {
		t.Errorf("kept %v … %v, want the newest three", got.Windows[2].Start, got.Windows[0].Start)
	}
	_, _, body = do(t, s.Handler(), "GET", "/api/v1/streams", "", "")
	ver := decode(t, body)["streams"].([]any)[0].(map[string]any)["models"].([]any)[0].(map[string]any)["versions"].([]any)[0].(map[string]any)
	if ver["windows"] != float64(len(res)) || ver["kept"] != 3.0 {
		t.Errorf("version = %v, want %d windows closed and 3 kept", ver, len(res))
	}
}

// TestMissingPartitions: a window a cluster's leader judged without some idle
// partitions names them, in the shape the document gives.
func TestMissingPartitions(t *testing.T) {
	s := New(Options{})
	res := results(t, 1, 0)
	res[len(res)-1].Missing = []int32{2, 5}
	for _, r := range res {
		s.Record(r)
	}
	_, _, body := do(t, s.Handler(), "GET", "/api/v1/windows", "", "")
	checkShape(t, "GET", "/api/v1/windows", 200, body)
	var got struct{ Windows []report.Window }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if m := got.Windows[0].Missing; !slices.Equal(m, []int32{2, 5}) || got.Windows[1].Missing != nil {
		t.Errorf("missing partitions %v, then %v; want [2 5] for the newest window only", m, got.Windows[1].Missing)
	}
}

// TestRecordCopies: after Record returns the monitor reuses its profiles; what the
// API serves must not change with them.
func TestRecordCopies(t *testing.T) {
	s := New(Options{})
	res := results(t, 0, 1)
	for _, r := range res {
		s.Record(r)
	}
	_, _, before := do(t, s.Handler(), "GET", "/api/v1/windows", "", "")
	last := res[len(res)-1]
	last.Profile.Merge(window(t, 99, t0, true))
	last.ReferenceProfile.Merge(window(t, 98, t0, true))
	last.Findings[0].Scores["ks"] = 42
	last.Findings[0].Explanation.Top = nil
	_, _, after := do(t, s.Handler(), "GET", "/api/v1/windows", "", "")
	if string(before) != string(after) {
		t.Error("the API's windows changed when the monitor changed its profiles and findings after Record")
	}
}

// TestSilencesAreTheGivenSet: the API creates and deletes silences in the set given as
// Options.Silences, the one the monitor applies and saves with its state.
func TestSilencesAreTheGivenSet(t *testing.T) {
	silences := &policy.Silences{}
	h := New(Options{Token: testToken, Silences: silences}).Handler()
	code, _, body := do(t, h, "POST", "/api/v1/silences", testToken, `{"model":"car-loan","feature":"income","duration":"30m"}`)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, body)
	}
	id := decode(t, body)["id"].(string)
	if got := silences.Active(time.Now()); len(got) != 1 || got[0].ID != id || got[0].Feature != "income" {
		t.Fatalf("the monitor's silences = %+v, want the one created (%s)", got, id)
	}
	if code, _, body := do(t, h, "DELETE", "/api/v1/silences/"+id, testToken, ""); code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", code, body)
	}
	if got := silences.Active(time.Now()); len(got) != 0 {
		t.Errorf("the monitor's silences after delete = %+v, want none", got)
	}
}
