package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// The payload formats of Template.Format, one per kind of receiver.
const (
	// FormatJSON is the generic Payload as JSON (the default).
	FormatJSON = "json"
	// FormatAirflow triggers a DAG through Airflow's stable REST API: POST
	// /api/v1/dags/{dag_id}/dagRuns with {"dag_run_id": DagRunID(id),
	// "conf": Payload}. A 409 (the run exists) counts as delivered, so a
	// retry after a lost answer does not fail.
	FormatAirflow = "airflow"
	// FormatGitHub triggers a workflow through GitHub's repository_dispatch:
	// {"event_type": Template.EventType, "client_payload": {…}} with
	// Accept: application/vnd.github+json. GitHub allows 10 top-level keys
	// in client_payload; the ones sent are listed at githubPayload.
	FormatGitHub = "github"
	// FormatArgo is the generic Payload for an Argo Events webhook event
	// source; sensors read it as body.model, body.drifted…
	FormatArgo = "argo"
	// FormatJenkins calls a parameterised job's buildWithParameters with
	// form-encoded parameters: driftmon_id, type, model, model_version,
	// stream, severity, drifted (comma-separated names), window_start,
	// window_end (RFC 3339), payload (the generic JSON), episode_id,
	// reference_id and, when known, first_window_start and first_window_end.
	FormatJenkins = "jenkins"
	// FormatTemplate renders Template.Text, a Go text/template over
	// TemplateData, sent with Template.ContentType.
	FormatTemplate = "template"
)

// EventRetrain is the type of the payload asking a pipeline to retrain.
const EventRetrain = "driftmon.retrain"

// Template says how a payload becomes a request body.
type Template struct {
	// Format is one of the Format constants; "" means FormatJSON.
	Format string
	// EventType is GitHub's event_type (workflows filter on it); default
	// the payload's type, e.g. "driftmon.retrain".
	EventType string
	// Text is the text/template of FormatTemplate. Functions: json (a
	// value as JSON), join (strings.Join) and names (the drifted features'
	// names). Example: {"model": {{json .Model}}, "features": {{json (names .Drifted)}}}.
	Text string
	// ContentType is the body's media type with FormatTemplate; default
	// application/json. A JSON type makes rendering check that the output
	// is valid JSON.
	ContentType string
}

// TemplateData is what a user template sees: the generic payload's fields
// (.Model, .Drifted, .Window.Start…) plus the delivery's identifiers.
type TemplateData struct {
	Payload
	// WebhookID is the delivery's webhook-id, stable across retries.
	WebhookID string
	// DagRunID is DagRunID(WebhookID).
	DagRunID string
}

// Request is a rendered call. It holds no secret, so the durable outbox
// can store it: credentials and signatures are added when it is sent.
type Request struct {
	Body        []byte
	ContentType string
	// Header holds format-specific headers, e.g. GitHub's Accept.
	Header map[string]string
}

// DagRunID is the Airflow dag_run_id of a delivery: derived from the
// webhook-id, so every retry of one call names the same run.
func DagRunID(webhookID string) string { return "driftmon__" + webhookID }

// renderer is a checked Template.
type renderer struct {
	format      string
	eventType   string
	tmpl        *template.Template
	contentType string
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join": strings.Join,
	"names": func(cs []Change) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Feature
		}
		return out
	},
}

// newRenderer checks t, reporting each problem under path.
func newRenderer(t Template, path string) (*renderer, []error) {
	r := &renderer{format: t.Format, eventType: t.EventType, contentType: "application/json"}
	if r.format == "" {
		r.format = FormatJSON
	}
	var errs []error
	switch r.format {
	case FormatJSON, FormatArgo, FormatAirflow, FormatGitHub:
	case FormatJenkins:
		r.contentType = "application/x-www-form-urlencoded"
	case FormatTemplate:
		if strings.TrimSpace(t.Text) == "" {
			errs = append(errs, errors.New(path+".text: required with format template"))
			break
		}
		tmpl, err := template.New("webhook").Funcs(templateFuncs).Option("missingkey=error").Parse(t.Text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.text: %w", path, err))
		}
		r.tmpl = tmpl
		if t.ContentType != "" {
			if _, _, err := mime.ParseMediaType(t.ContentType); err != nil {
				errs = append(errs, fmt.Errorf("%s.content_type: %w", path, err))
			}
			r.contentType = t.ContentType
		}
	default:
		errs = append(errs, fmt.Errorf("%s.format: %q is not one of json, airflow, github, argo, jenkins, template", path, r.format))
	}
	if t.Text != "" && r.format != FormatTemplate {
		errs = append(errs, errors.New(path+".text: only with format template"))
	}
	return r, errs
}

// render builds the request of one delivery.
func (r *renderer) render(id string, p Payload) (Request, error) {
	req := Request{ContentType: r.contentType}
	var err error
	switch r.format {
	case FormatJSON, FormatArgo:
		req.Body, err = json.Marshal(p)
	case FormatAirflow:
		req.Body, err = json.Marshal(struct {
			DagRunID string  `json:"dag_run_id"`
			Conf     Payload `json:"conf"`
		}{DagRunID(id), p})
	case FormatGitHub:
		event := r.eventType
		if event == "" {
			event = p.Type
		}
		req.Body, err = json.Marshal(struct {
			EventType     string        `json:"event_type"`
			ClientPayload githubPayload `json:"client_payload"`
		}{event, newGitHubPayload(p)})
		req.Header = map[string]string{"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
	case FormatJenkins:
		req.Body, err = jenkinsForm(id, p)
	case FormatTemplate:
		var b bytes.Buffer
		if err = r.tmpl.Execute(&b, TemplateData{Payload: p, WebhookID: id, DagRunID: DagRunID(id)}); err == nil {
			req.Body = b.Bytes()
			if isJSON(r.contentType) && !json.Valid(req.Body) {
				err = errors.New("the template's output is not valid JSON")
			}
		}
	default:
		panic("BUG: unchecked webhook format " + r.format)
	}
	if err != nil {
		return Request{}, fmt.Errorf("cannot render %s webhook body: %w", r.format, err)
	}
	return req, nil
}

// githubPayload is the client_payload of a repository_dispatch: the Payload
// without rows, stable and insufficient, to stay within GitHub's limit of 10
// top-level keys, all of which it uses; so the episode, its first drifting window
// and the reference id ride in the window object (client_payload.window.episode_id,
// .first_window, .reference_id). The *struct{} fields are never set: in JSON a
// field of the outer struct hides the embedded Payload's field of the same name,
// and an omitted nil hides it for good.
type githubPayload struct {
	Payload
	Window       githubWindow `json:"window"`
	Rows         *struct{}    `json:"rows,omitempty"`
	Stable       *struct{}    `json:"stable,omitempty"`
	Insufficient *struct{}    `json:"insufficient,omitempty"`
	EpisodeID    *struct{}    `json:"episode_id,omitempty"`
	FirstWindow  *struct{}    `json:"first_window,omitempty"`
	ReferenceID  *struct{}    `json:"reference_id,omitempty"`
}

// githubWindow is the window of a repository_dispatch's client_payload: the
// Payload's window and the fields that do not fit at the top level.
type githubWindow struct {
	Window
	EpisodeID   string `json:"episode_id"`
	FirstWindow Window `json:"first_window"`
	ReferenceID string `json:"reference_id"`
}

func newGitHubPayload(p Payload) githubPayload {
	return githubPayload{Payload: p, Window: githubWindow{Window: p.Window, EpisodeID: p.EpisodeID, FirstWindow: p.FirstWindow, ReferenceID: p.ReferenceID}}
}

func jenkinsForm(id string, p Payload) ([]byte, error) {
	full, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(p.Drifted))
	for i, c := range p.Drifted {
		names[i] = c.Feature
	}
	v := url.Values{
		"driftmon_id":   {id},
		"type":          {p.Type},
		"model":         {p.Model},
		"model_version": {p.ModelVersion},
		"stream":        {p.Stream},
		"severity":      {p.Severity},
		"drifted":       {strings.Join(names, ",")},
		"window_start":  {p.Window.Start.Format(time.RFC3339)},
		"window_end":    {p.Window.End.Format(time.RFC3339)},
		"payload":       {string(full)},
		"episode_id":    {p.EpisodeID},
		"reference_id":  {p.ReferenceID},
	}
	if !p.FirstWindow.Start.IsZero() {
		v.Set("first_window_start", p.FirstWindow.Start.Format(time.RFC3339))
		v.Set("first_window_end", p.FirstWindow.End.Format(time.RFC3339))
	}
	return []byte(v.Encode()), nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
