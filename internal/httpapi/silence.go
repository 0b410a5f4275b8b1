package httpapi

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Silence mutes alerts that match all of its non-empty matchers until it expires.
// Silences live in memory: a restart forgets them.
type Silence struct {
	ID string `json:"id"`
	// Stream, Model, Feature and Kind are matchers; empty matches anything.
	Stream  string `json:"stream,omitempty"`
	Model   string `json:"model,omitempty"`
	Feature string `json:"feature,omitempty"`
	// Kind is the alert kind: "drift" or "data_quality".
	Kind      string    `json:"kind,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// The alert kinds a silence may name.
const (
	KindDrift       = "drift"
	KindDataQuality = "data_quality"
)

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
func (req silenceRequest) silence(now time.Time) (Silence, error) {
	var errs []error
	if req.Stream == "" && req.Model == "" && req.Feature == "" && req.Kind == "" {
		errs = append(errs, errors.New("at least one matcher (stream, model, feature, kind) is required"))
	}
	switch req.Kind {
	case "", KindDrift, KindDataQuality:
	default:
		errs = append(errs, fmt.Errorf("kind: %q is not one of %q, %q", req.Kind, KindDrift, KindDataQuality))
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
		return Silence{}, err
	}
	return Silence{
		Stream: req.Stream, Model: req.Model, Feature: req.Feature, Kind: req.Kind,
		Comment: req.Comment, CreatedAt: now, ExpiresAt: exp,
	}, nil
}

// matches reports whether the silence applies to the alert described.
func (sl Silence) matches(stream, model, kind, feature string, now time.Time) bool {
	return now.Before(sl.ExpiresAt) &&
		(sl.Stream == "" || sl.Stream == stream) &&
		(sl.Model == "" || sl.Model == model) &&
		(sl.Kind == "" || sl.Kind == kind) &&
		(sl.Feature == "" || sl.Feature == feature)
}

// Silenced reports whether an active silence mutes drift alerts about feature of
// model in stream at time now. Silences naming another kind do not apply.
func (s *Server) Silenced(stream, model, feature string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.silences {
		if sl.matches(stream, model, KindDrift, feature, now) {
			return true
		}
	}
	return false
}

// addSilence stores sl under a new ID and returns it.
func (s *Server) addSilence(sl Silence) Silence {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		sl.ID = "sil_" + rand.Text()[:16]
		if _, dup := s.silences[sl.ID]; !dup {
			break
		}
	}
	s.silences[sl.ID] = sl
	return sl
}

// activeSilences drops expired silences and returns the others, soonest to expire
// first.
func (s *Server) activeSilences(now time.Time) []Silence {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Silence, 0, len(s.silences))
	for id, sl := range s.silences {
		if !now.Before(sl.ExpiresAt) {
			delete(s.silences, id)
			continue
		}
		out = append(out, sl)
	}
	slices.SortFunc(out, func(a, b Silence) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// removeSilence deletes a silence; false when there is none with that ID.
func (s *Server) removeSilence(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.silences[id]; !ok {
		return false
	}
	delete(s.silences, id)
	return true
}
