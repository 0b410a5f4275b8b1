package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const testID = "msg_0123456789abcdef0123456789abcdef"

func retrainPayload() Payload {
	p := NewPayload(testAlert())
	p.Type = EventRetrain
	return p
}

func render(t *testing.T, tmpl Template) Request {
	t.Helper()
	n, err := New(Options{URL: "http://127.0.0.1/hook", Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	r, err := n.Render(testID, retrainPayload())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func TestTemplates(t *testing.T) {
	generic, err := json.Marshal(retrainPayload())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		tmpl  Template
		ctype string
		check func(t *testing.T, r Request)
	}{
		{"generic json", Template{}, "application/json", func(t *testing.T, r Request) {
			if string(r.Body) != string(generic) {
				t.Errorf("body %s, want the generic payload", r.Body)
			}
		}},
		{"argo events", Template{Format: FormatArgo}, "application/json", func(t *testing.T, r Request) {
			if string(r.Body) != string(generic) {
				t.Errorf("body %s, want the generic payload", r.Body)
			}
		}},
		{"airflow dagRuns", Template{Format: FormatAirflow}, "application/json", func(t *testing.T, r Request) {
			m := decode(t, r.Body)
			if m["dag_run_id"] != "driftmon__"+testID {
				t.Errorf("dag_run_id %v, want it derived from the webhook-id", m["dag_run_id"])
			}
			conf, _ := m["conf"].(map[string]any)
			if conf["model"] != "car-loan" || conf["type"] != EventRetrain || len(m) != 2 {
				t.Errorf("body %s", r.Body)
			}
		}},
		{"github repository_dispatch", Template{Format: FormatGitHub, EventType: "retrain-car-loan"}, "application/json", func(t *testing.T, r Request) {
			m := decode(t, r.Body)
			cp, _ := m["client_payload"].(map[string]any)
			if m["event_type"] != "retrain-car-loan" || cp["model"] != "car-loan" || cp["id"] == "" {
				t.Errorf("body %s", r.Body)
			}
			if len(cp) > 10 {
				t.Errorf("client_payload has %d top-level keys; GitHub allows 10", len(cp))
			}
			if r.Header["Accept"] != "application/vnd.github+json" {
				t.Errorf("headers %v lack Accept: application/vnd.github+json", r.Header)
			}
		}},
		{"jenkins buildWithParameters", Template{Format: FormatJenkins}, "application/x-www-form-urlencoded", func(t *testing.T, r Request) {
			v, err := url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			if v.Get("driftmon_id") != testID || v.Get("model") != "car-loan" || v.Get("drifted") != "car_value,salary_range" ||
				v.Get("window_start") != "2024-05-01T10:00:00Z" || v.Get("type") != EventRetrain {
				t.Errorf("form %v", v)
			}
			if !json.Valid([]byte(v.Get("payload"))) {
				t.Errorf("payload parameter is not JSON: %s", v.Get("payload"))
			}
		}},
		{"user template", Template{Format: FormatTemplate, Text: `{"run": {{json .DagRunID}}, "model": {{json .Model}}, "features": {{json (names .Drifted)}}, "start": {{json .Window.Start}}}`}, "application/json", func(t *testing.T, r Request) {
			want := `{"run": "driftmon__` + testID + `", "model": "car-loan", "features": ["car_value","salary_range"], "start": "2024-05-01T10:00:00Z"}`
			if string(r.Body) != want {
				t.Errorf("body %s\nwant %s", r.Body, want)
			}
		}},
		{"user template, plain text", Template{Format: FormatTemplate, Text: `retrain {{.Model}} {{.ModelVersion}}: {{join (names .Drifted) " "}}`, ContentType: "text/plain; charset=utf-8"}, "text/plain; charset=utf-8", func(t *testing.T, r Request) {
			if string(r.Body) != "retrain car-loan v3: car_value salary_range" {
				t.Errorf("body %q", r.Body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.tmpl)
			if r.ContentType != tt.ctype {
				t.Errorf("content type %q, want %q", r.ContentType, tt.ctype)
			}
			tt.check(t, r)
			if again := render(t, tt.tmpl); string(again.Body) != string(r.Body) {
				t.Errorf("rendering is not deterministic:\n%s\n%s", r.Body, again.Body)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name string
		tmpl Template
		want string
	}{
		{"unknown format", Template{Format: "xml"}, "webhook.template.format"},
		{"template without text", Template{Format: FormatTemplate}, "webhook.template.text: required"},
		{"template that does not parse", Template{Format: FormatTemplate, Text: "{{.Model"}, "webhook.template.text"},
		{"text with another format", Template{Format: FormatAirflow, Text: "x"}, "only with format template"},
		{"bad content type", Template{Format: FormatTemplate, Text: "x", ContentType: "/;"}, "webhook.template.content_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{URL: "http://127.0.0.1/hook", Template: tt.tmpl})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
	n, err := New(Options{URL: "http://127.0.0.1/hook", Template: Template{Format: FormatTemplate, Text: `{"model": {{.Model}}}`}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Render(testID, retrainPayload()); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("Render of invalid JSON = %v, want an error", err)
	}
	n, err = New(Options{URL: "http://127.0.0.1/hook", Template: Template{Format: FormatTemplate, Text: `{{.Nope}}`}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Render(testID, retrainPayload()); err == nil {
		t.Error("Render with an unknown field succeeded")
	}
}

// An Airflow run that already exists (409) means an earlier attempt got
// through: the delivery succeeds instead of failing for ever.
func TestAirflowConflictIsDelivered(t *testing.T) {
	var runs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			DagRunID string `json:"dag_run_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		runs = append(runs, body.DagRunID)
		if len(runs) > 1 {
			http.Error(w, `{"title":"DAGRun already exists"}`, http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	n, err := New(Options{URL: srv.URL + "/api/v1/dags/retrain_car_loan/dagRuns", Template: Template{Format: FormatAirflow}, Auth: Auth{Type: AuthBasic, Username: "airflow", Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r, err := n.Render(testID, retrainPayload())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Send(context.Background(), testID, r); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if len(runs) != 2 || runs[0] != runs[1] {
		t.Errorf("runs %v, want the same dag_run_id twice", runs)
	}
	// Another format answered 409 is refused.
	g, err := New(Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Send(context.Background(), testID, Request{Body: []byte(`{}`)}); err == nil {
		t.Error("a 409 to a generic webhook succeeded")
	}
}
