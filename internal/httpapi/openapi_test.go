package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/detectors"
)

func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := assets.ReadFile("assets/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

// docPath maps a mux pattern's path to its OpenAPI path ("/{$}" → "/").
func docPath(muxPath string) string { return strings.TrimSuffix(muxPath, "{$}") }

// TestOpenAPIDescribesEveryRoute: every route of the mux is in the document, and
// the document describes nothing the mux does not serve.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := openAPIDoc(t)
	paths := doc["paths"].(map[string]any)
	served := map[string]bool{}
	for _, r := range New(Options{}).table {
		key := strings.ToLower(r.method) + " " + docPath(r.path)
		served[key] = true
		item, ok := paths[docPath(r.path)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s: path missing from openapi.json", r.method, r.path)
			continue
		}
		op, ok := item[strings.ToLower(r.method)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s: method missing from openapi.json", r.method, r.path)
			continue
		}
		if op["summary"] == "" || op["responses"] == nil {
			t.Errorf("route %s %s: no summary or responses", r.method, r.path)
		}
	}
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if !served[m+" "+p] {
				t.Errorf("openapi.json describes %s %s, which the server does not serve", strings.ToUpper(m), p)
			}
		}
	}
}

// TestResponsesMatchOpenAPI: the bodies the API returns have exactly the shape the
// document gives them (no undocumented field, every required one present).
func TestResponsesMatchOpenAPI(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	if code, _, body := do(t, h, "POST", "/api/v1/silences", testToken, `{"model":"car-loan","duration":"1h","comment":"c"}`); code != 201 {
		t.Fatalf("create silence = %d %s", code, body)
	}
	type request struct {
		method, target, path, body string
		code                       int
	}
	check := func(t *testing.T, tt request) {
		t.Helper()
		code, _, body := do(t, h, tt.method, tt.target, testToken, tt.body)
		if code != tt.code {
			t.Fatalf("= %d, want %d\n%s", code, tt.code, body)
		}
		checkShape(t, tt.method, tt.path, code, body)
	}
	tests := []request{
		{"GET", "/api/v1/cluster", "/api/v1/cluster", "", 200},
		{"GET", "/api/v1/streams", "/api/v1/streams", "", 200},
		{"GET", "/api/v1/windows", "/api/v1/windows", "", 200},
		{"GET", "/api/v1/windows?stream=nope", "/api/v1/windows", "", 404},
		{"GET", "/api/v1/windows?limit=x", "/api/v1/windows", "", 400},
		{"GET", "/api/v1/findings", "/api/v1/findings", "", 200},
		{"GET", "/api/v1/performance", "/api/v1/performance", "", 200},
		{"GET", "/api/v1/performance?stream=nope", "/api/v1/performance", "", 404},
		{"GET", "/api/v1/performance?limit=0", "/api/v1/performance", "", 400},
		{"GET", "/api/v1/alerts", "/api/v1/alerts", "", 200},
		{"GET", "/api/v1/deliveries", "/api/v1/deliveries", "", 200},
		{"GET", "/api/v1/silences", "/api/v1/silences", "", 200},
		{"POST", "/api/v1/silences", "/api/v1/silences", `{"feature":"age","expires_at":"` + f.now.Add(time.Hour).Format(time.RFC3339) + `"}`, 201},
		{"POST", "/api/v1/silences", "/api/v1/silences", `{}`, 400},
		{"DELETE", "/api/v1/silences/none", "/api/v1/silences/{id}", "", 404},
		{"GET", "/healthz", "/healthz", "", 200},
		{"GET", "/readyz", "/readyz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) { check(t, tt) })
	}

	// A follower that cannot consume yet answers in the same shapes.
	f.src.setRole(roleFollower)
	f.src.setReady(errors.New("stream credit: cannot reach broker 127.0.0.1:9092"))
	for _, tt := range []request{
		{"GET", "/api/v1/cluster", "/api/v1/cluster", "", 200},
		{"GET", "/api/v1/streams", "/api/v1/streams", "", 200},
		{"GET", "/readyz", "/readyz", "", 503},
	} {
		t.Run("follower "+tt.method+" "+tt.target, func(t *testing.T) { check(t, tt) })
	}
}

// shapeChecker checks a decoded JSON value against the subset of JSON Schema the
// document uses: $ref, allOf, oneOf, type, enum, properties, required,
// additionalProperties and items.
type shapeChecker struct{ doc map[string]any }

func (c *shapeChecker) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		node := any(c.doc)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			node = node.(map[string]any)[part]
		}
		s = node.(map[string]any)
	}
}

func (c *shapeChecker) check(at string, s map[string]any, v any) []string {
	s = c.resolve(s)
	if all, ok := s["allOf"].([]any); ok {
		merged := map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}, "additionalProperties": false}
		for _, part := range all {
			p := c.resolve(part.(map[string]any))
			for k, v := range p["properties"].(map[string]any) {
				merged["properties"].(map[string]any)[k] = v
			}
			if r, ok := p["required"].([]any); ok {
				merged["required"] = append(merged["required"].([]any), r...)
			}
		}
		s = merged
	}
	if alts, ok := s["oneOf"].([]any); ok {
		var all []string
		for _, alt := range alts {
			probs := c.check(at, alt.(map[string]any), v)
			if len(probs) == 0 {
				return nil
			}
			all = append(all, probs...)
		}
		return []string{at + ": matches no alternative: " + strings.Join(all, "; ")}
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	}
	if len(types) > 0 && !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
		return []string{fmt.Sprintf("%s: %s, want %v", at, jsonType(v), types)}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return []string{fmt.Sprintf("%s: %v not in %v", at, v, enum)}
	}
	var probs []string
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		required, _ := s["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				probs = append(probs, fmt.Sprintf("%s: required %q missing", at, r))
			}
		}
		for k, x := range v {
			if ps, ok := props[k].(map[string]any); ok {
				probs = append(probs, c.check(at+"."+k, ps, x)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				probs = append(probs, c.check(at+"."+k, ap, x)...)
			case bool:
				if !ap {
					probs = append(probs, fmt.Sprintf("%s: %q is not documented", at, k))
				}
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range v {
				probs = append(probs, c.check(fmt.Sprintf("%s[%d]", at, i), items, x)...)
			}
		}
	}
	return probs
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// TestSegmentFindingsMatchOpenAPI: windows and findings with segment findings (their
// segment, share and whether only the segment drifted) have the documented shape,
// ?segments= keeps one key's or none, and the streams name the keys.
func TestSegmentFindingsMatchOpenAPI(t *testing.T) {
	srv := New(Options{Token: testToken, Source: &fakeSource{}, Now: func() time.Time { return t0.Add(2 * time.Hour) }})
	for _, r := range segmentedResults(t, 1, 1) {
		srv.Record(r)
	}
	for _, path := range []string{"/api/v1/windows", "/api/v1/findings", "/api/v1/windows?segments=segment"} {
		code, _, body := do(t, srv.Handler(), "GET", path, "", "")
		if code != 200 || !strings.Contains(string(body), `"segment":"segment=retail","segment_share":0.4`) {
			t.Fatalf("GET %s = %d, without segment findings:\n%.600s", path, code, body)
		}
		checkShape(t, "GET", strings.Split(path, "?")[0], code, body)
	}
	// The dashboard asks for one key's segment findings, or none.
	for _, path := range []string{"/api/v1/windows?segments=none", "/api/v1/windows?segments=country"} {
		code, _, body := do(t, srv.Handler(), "GET", path, "", "")
		if code != 200 || strings.Contains(string(body), `"segment":`) || !strings.Contains(string(body), `"feature":"income"`) {
			t.Errorf("GET %s = %d: want the whole traffic's findings and no segment's\n%.600s", path, code, body)
		}
	}
	code, _, body := do(t, srv.Handler(), "GET", "/api/v1/streams", "", "")
	if !strings.Contains(string(body), `"segment_keys":["segment"]`) {
		t.Errorf("streams do not name the segment keys: %s", body)
	}
	checkShape(t, "GET", "/api/v1/streams", code, body)
}

// TestQualityChecksMatchOpenAPI: a window's failed data-quality checks are in the
// windows the API lists, in the documented shape; passed checks are not.
func TestQualityChecksMatchOpenAPI(t *testing.T) {
	srv := New(Options{Token: testToken, Source: &fakeSource{}, Now: func() time.Time { return t0.Add(2 * time.Hour) }})
	rs := results(t, 1, 1)
	r := rs[len(rs)-1]
	r.Quality = append(slices.Clone(r.Quality),
		detectors.QualityFinding{Feature: "income", Check: detectors.CheckNullRate, Verdict: detectors.Violation,
			Ref: 0.01, Cur: 0.3, Score: 0.29, Threshold: 0.05, Tested: true, PValue: 1e-12, AdjustedP: 1e-11},
		detectors.QualityFinding{Check: detectors.CheckVolume, Verdict: detectors.Violation, Ref: 1000, Cur: 200, Score: 0.2, Threshold: 0.5},
		detectors.QualityFinding{Feature: "age", Check: detectors.CheckNullRate, Verdict: detectors.OK, Tested: true, AdjustedP: 0.9})
	for _, x := range rs[:len(rs)-1] {
		srv.Record(x)
	}
	srv.Record(r)
	code, _, body := do(t, srv.Handler(), "GET", "/api/v1/windows", "", "")
	for _, want := range []string{
		`"quality":[{"feature":"income","check":"null_rate","summary":"null rate 1.0% → 30.0%"`,
		`{"check":"volume","summary":"200 rows, expected 1k (0.2×)","ref":1000,"cur":200,"score":0.2,"threshold":0.5}`,
	} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET /api/v1/windows = %d, without %s:\n%.2000s", code, want, body)
		}
	}
	if strings.Contains(string(body), `"feature":"age","check"`) {
		t.Error("a passed check is listed")
	}
	checkShape(t, "GET", "/api/v1/windows", code, body)
}
