package policy

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// Silence mutes the alerts of its kind (drift by default, see Silences.Silenced) that
// match all of its non-empty matchers until it expires.
type Silence struct {
	ID string `json:"id"`
	// Stream, Model and Feature are matchers; empty matches anything.
	Stream  string `json:"stream,omitempty"`
	Model   string `json:"model,omitempty"`
	Feature string `json:"feature,omitempty"`
	// Kind is the alert kind it mutes: empty or "drift" for drift, "performance" or
	// "objective" for those (SilenceableKinds). "data_quality" is kept as silences of
	// earlier builds named it, and mutes nothing: data-quality checks raise no alert
	// of their own.
	Kind      string    `json:"kind,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// matches reports whether the silence applies to an alert of kind about feature of
// model in stream at time now.
func (sl Silence) matches(stream, model, feature string, kind alerting.Kind, now time.Time) bool {
	return now.Before(sl.ExpiresAt) &&
		(sl.Stream == "" || sl.Stream == stream) &&
		(sl.Model == "" || sl.Model == model) &&
		(sl.Kind == string(kind) || sl.Kind == "" && kind == alerting.KindDrift) &&
		(sl.Feature == "" || sl.Feature == feature)
}

// SilenceableKinds are the kinds of alert a silence can mute.
var SilenceableKinds = []alerting.Kind{alerting.KindDrift, alerting.KindPerformance, alerting.KindObjective}

// silenceBucket holds the silences in the state store, one per ID.
const silenceBucket = "alert_silences"

// Silences is the set of silences the API manages and the policy consults (its
// Silenced method is a Silencer). It is state like the alerts it mutes: the monitor
// saves it in the transaction that saves the policy state, so it survives a restart
// and, replicated with the rest of the state, a cluster's failover, and restores it on
// start. Expired silences are dropped as they are met. The zero value is an empty set;
// it is safe for concurrent use.
type Silences struct {
	mu  sync.Mutex
	set map[string]Silence
	// changes counts the silences added and removed, so a stream can tell that its
	// next checkpoint has a silence to save even while it reads nothing.
	changes uint64
}

// Changes counts the silences added and removed since the set was made.
func (s *Silences) Changes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

// Add stores sl under a new ID and returns it.
func (s *Silences) Add(sl Silence) Silence {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]Silence{}
	}
	for {
		sl.ID = "sil_" + rand.Text()[:16]
		if _, dup := s.set[sl.ID]; !dup {
			break
		}
	}
	s.set[sl.ID] = sl
	s.changes++
	return sl
}

// Remove deletes the silence with the given ID; false when there is none.
func (s *Silences) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[id]; !ok {
		return false
	}
	delete(s.set, id)
	s.changes++
	return true
}

// Active drops the silences expired at now and returns the others, soonest to expire
// first.
func (s *Silences) Active(now time.Time) []Silence {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Silence, 0, len(s.set))
	for id, sl := range s.set {
		if !now.Before(sl.ExpiresAt) {
			delete(s.set, id)
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

// Silenced reports whether an active silence mutes an alert of kind about feature of
// model in stream at time now. A silence without a kind mutes drift alerts only; one
// that names performance or objective mutes those alerts (feature matching the metric
// or the objective). Alerts that data is missing, lost or unjudged, and retraining
// calls, are never silenced, whatever a silence's matchers say.
func (s *Silences) Silenced(stream, model, feature string, kind alerting.Kind, now time.Time) bool {
	if !slices.Contains(SilenceableKinds, kind) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.set {
		if sl.matches(stream, model, feature, kind, now) {
			return true
		}
	}
	return false
}

// Save writes the silences active at now into tx, one key per silence, and deletes
// the stored ones that were removed or expired. It writes only what changed, so
// saving an unchanged set with every checkpoint costs no write (and, in a cluster,
// nothing to replicate).
func (s *Silences) Save(tx alerting.Tx, now time.Time) error {
	active := s.Active(now)
	keep := make(map[string]bool, len(active))
	for _, sl := range active {
		keep[sl.ID] = true
		b, err := json.Marshal(sl)
		if err != nil {
			return fmt.Errorf("cannot encode silence %s: %w", sl.ID, err)
		}
		if bytes.Equal(tx.Get(silenceBucket, sl.ID), b) {
			continue
		}
		if err := tx.Put(silenceBucket, sl.ID, b); err != nil {
			return err
		}
	}
	return tx.DeleteIf(silenceBucket, "", func(id string, _ []byte) bool { return !keep[id] })
}

// Restore replaces the set by the silences saved in tx that are still active at now.
// The store is the truth when a process starts, or takes a cluster over: a silence
// removed by the previous leader must not come back from this process's memory.
func (s *Silences) Restore(tx alerting.Tx, now time.Time) error {
	set := map[string]Silence{}
	err := tx.ForEach(silenceBucket, "", func(id string, v []byte) error {
		var sl Silence
		if err := json.Unmarshal(v, &sl); err != nil {
			return fmt.Errorf("cannot read silence %s: %w", id, err)
		}
		if now.Before(sl.ExpiresAt) {
			set[id] = sl
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = set
	return nil
}
