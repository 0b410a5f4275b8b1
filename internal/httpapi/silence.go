package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/policy"
)

// KindDataQuality is a kind a silence may name for compatibility with earlier
// builds; it mutes nothing, as data-quality checks raise no alert of their own.
const KindDataQuality = "data_quality"

// silenceKinds are the kinds a silence request may name: "" (drift), the kinds a
// silence mutes (policy.SilenceableKinds), and KindDataQuality.
func silenceKinds() []string {
	kinds := []string{""}
	for _, k := range policy.SilenceableKinds {
		kinds = append(kinds, string(k))
	}
	return append(kinds, KindDataQuality)
}

// silenceRequest is the body of POST /api/v1/silences.
type silenceRequest struct {
	Stream    string    `json:"stream"`
	Model     string    `json:"model"`
	Feature   string    `json:"feature"`
	Kind      string    `json:"kind"`
	Comment   string    `json:"comment"`
	ExpiresAt time.Time `json:"expires_at"`
	// Duration ("2h", "30m") is an alternative to ExpiresAt.
	Duration string `json:"duration"`
}

// maxSilence is the longest a silence may last; forgetting one should not mute
// a model for good.
const maxSilence = 90 * 24 * time.Hour

// silence checks a request and turns it into a silence, reporting every problem.
func (req silenceRequest) silence(now time.Time) (policy.Silence, error) {
	var errs []error
	if req.Stream == "" && req.Model == "" && req.Feature == "" && req.Kind == "" {
		errs = append(errs, errors.New("at least one matcher (stream, model, feature, kind) is required"))
	}
	if kinds := silenceKinds(); !slices.Contains(kinds, req.Kind) {
		errs = append(errs, fmt.Errorf("kind: %q is not one of %q", req.Kind, kinds[1:]))
	}
	exp := req.ExpiresAt
	switch {
	case req.Duration != "" && !exp.IsZero():
		errs = append(errs, errors.New("give expires_at or duration, not both"))
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("duration: %q is not a positive duration such as \"2h\"", req.Duration))
		}
		exp = now.Add(d)
	case exp.IsZero():
		errs = append(errs, errors.New("expires_at or duration is required"))
	}
	if !exp.IsZero() {
		if !exp.After(now) {
			errs = append(errs, errors.New("expires_at: must be in the future"))
		} else if exp.Sub(now) > maxSilence {
			errs = append(errs, fmt.Errorf("expires_at: at most %d days ahead", int(maxSilence.Hours()/24)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return policy.Silence{}, err
	}
	return policy.Silence{
		Stream: req.Stream, Model: req.Model, Feature: req.Feature, Kind: req.Kind,
		Comment: req.Comment, CreatedAt: now, ExpiresAt: exp,
	}, nil
}

// Silenced reports whether an active silence mutes drift alerts about feature of
// model in stream at time now. Silences naming another kind do not apply.
func (s *Server) Silenced(stream, model, feature string, now time.Time) bool {
	return s.silences.Silenced(stream, model, feature, alerting.KindDrift, now)
}
