package webhook

import (
	"slices"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// EventDrift is the type of the payload announcing drift.
const EventDrift = "driftmon.drift"

// EventObjective is the type of the payload of a call for an objective breach (a
// webhook with objectives): its drifted[] are the breached objectives, each with
// detector "objective".
const EventObjective = "driftmon.objective"

// DetectorObjective is the detector of a breached objective's change.
const DetectorObjective = "objective"

// Payload is the generic JSON body of a drift webhook: an alerting.Alert as
// receivers (retraining pipelines) see it. Field names are snake_case and stable,
// since receivers and user templates depend on them, so it is a projection of its
// own rather than the Alert's encoding: the window is an object, the lists are
// never null, and a type names the event. Fields are only ever added.
type Payload struct {
	Type         string   `json:"type"`
	ID           string   `json:"id"`
	Model        string   `json:"model"`
	ModelVersion string   `json:"model_version"`
	Stream       string   `json:"stream"`
	Window       Window   `json:"window"`
	Rows         int64    `json:"rows"`
	Reference    string   `json:"reference"`
	Severity     string   `json:"severity"`
	Drifted      []Change `json:"drifted"`
	Stable       []string `json:"stable"`
	Insufficient []string `json:"insufficient"`
	DashboardURL string   `json:"dashboard_url,omitempty"`
	// EpisodeID is the alert episode the call belongs to (one call per episode, by
	// default): the ID its Slack messages and audit entries carry. "" when the call
	// was made without a firing episode (a webhook with every_window).
	EpisodeID string `json:"episode_id"`
	// FirstWindow is the episode's first drifting window; Window is the window the
	// call was decided in.
	FirstWindow Window `json:"first_window"`
	// ReferenceID identifies the reference profile the model version was judged
	// against (a digest of its encoding); Reference describes it. "" when unknown.
	ReferenceID string `json:"reference_id"`
}

// Window is the evaluated time window, in UTC RFC 3339.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Change is one drifted feature as receivers see it: alerting.Change's encoding
// but that the rule is left out when empty, a p-value that is negative (none) is
// null as one that is not finite is, and there is no chart data. Numbers that are
// not finite are nil, so templates and JSON show null (JSON has no NaN).
type Change struct {
	Feature   string   `json:"feature"`
	Detector  string   `json:"detector"`
	Score     *float64 `json:"score"`
	Threshold *float64 `json:"threshold"`
	PValue    *float64 `json:"p_value"`
	Summary   string   `json:"summary"`
	// Rule says which rule fired, e.g. "KS D 0.38, lower bound 0.36 ≥ min 0.1;
	// BH p<0.001 ≤ 0.05"; omitted when the alert does not say.
	Rule string `json:"rule,omitempty"`
}

// NewPayload projects an alert onto the webhook body. Lists are never null,
// so receivers can iterate without checks.
func NewPayload(a alerting.Alert) Payload {
	p := Payload{
		Type:         EventDrift,
		ID:           a.ID,
		Model:        a.Model,
		ModelVersion: a.ModelVersion,
		Stream:       a.Stream,
		Window:       Window{Start: a.WindowStart.UTC(), End: a.WindowEnd.UTC()},
		Rows:         a.Rows,
		Reference:    a.Reference,
		Severity:     string(a.Severity),
		Drifted:      make([]Change, 0, len(a.Drifted)),
		Stable:       append([]string{}, a.Stable...),
		Insufficient: append([]string{}, a.Insufficient...),
		DashboardURL: a.DashboardURL,
		EpisodeID:    a.Episode,
		FirstWindow:  Window{Start: a.FirstWindowStart.UTC(), End: a.FirstWindowEnd.UTC()},
		ReferenceID:  a.ReferenceID,
	}
	if len(a.Drifted) > 0 && !slices.ContainsFunc(a.Drifted, func(c alerting.Change) bool { return c.Detector != DetectorObjective }) {
		p.Type = EventObjective
	}
	for _, c := range a.Drifted {
		pv := alerting.Finite(c.PValue)
		if pv != nil && *pv < 0 {
			pv = nil
		}
		p.Drifted = append(p.Drifted, Change{
			Feature:   c.Feature,
			Detector:  c.Detector,
			Score:     alerting.Finite(c.Score),
			Threshold: alerting.Finite(c.Threshold),
			PValue:    pv,
			Summary:   c.Summary,
			Rule:      c.Rule,
		})
	}
	return p
}
