package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// State is the alert state of one stream (or several): per alert, how many
// consecutive windows drifted or were clean and whether it fires; per
// episode, what was last sent and when; per retraining trigger, its count
// and last call. The zero State is empty and ready. It is not safe for
// concurrent use: each stream's goroutine owns its own.
//
// State encodes to JSON (MarshalJSON) so the monitor can store it in the
// transaction that commits the window; decode it with UnmarshalJSON after
// a restart.
type State struct {
	groups   map[groupKey]*group
	triggers map[triggerKey]*trigger
}

type groupKey struct {
	Stream, Model, Version string
	Kind                   alerting.Kind
}

type group struct {
	members map[string]*member
	Episode *episode
}

// member is one alert: a feature (or Dataset) of a group.
type member struct {
	Bad, Clean int
	Firing     bool
	Critical   bool
	Change     alerting.Change // latest evidence
}

// episode is a group's stretch of firing, from Fire to Resolve.
type episode struct {
	ID       string
	Started  time.Time
	Seq      int  // notifications sent
	Notified bool // Fire was sent
	LastSent time.Time
	Severity alerting.Severity
	Shown    []string // features in the last notification sent
}

type triggerKey struct {
	Name, Stream, Model, Version string
}

type trigger struct {
	Count int       // consecutive qualifying windows
	Last  time.Time // window end of the last call
}

func (s *State) init() {
	if s.groups == nil {
		s.groups = map[groupKey]*group{}
	}
	if s.triggers == nil {
		s.triggers = map[triggerKey]*trigger{}
	}
}

// tidy forgets a group with nothing left to remember.
func (s *State) tidy(k groupKey) {
	if g := s.groups[k]; g != nil && g.Episode == nil && len(g.members) == 0 {
		delete(s.groups, k)
	}
}

// inhibited reports whether a no-data, data-loss or blind alert fires for stream.
func (s *State) inhibited(stream string) bool {
	for k, g := range s.groups {
		if k.Stream == stream && (k.Kind == alerting.KindNoData || k.Kind == alerting.KindDataLoss || k.Kind == alerting.KindBlind) && g.Episode != nil {
			return true
		}
	}
	return false
}

// Episode is a firing alert group, for the API and dashboards.
type Episode struct {
	// ID is the episode's ID, the Alert.ID of its decisions.
	ID                     string
	Stream, Model, Version string
	Kind                   alerting.Kind
	Started                time.Time
	// Features are the firing features (Dataset for whole-model alerts).
	Features []string
	// Severity and LastSent are as last sent; Notified is false while the
	// episode was silenced or inhibited throughout.
	Severity alerting.Severity
	LastSent time.Time
	Notified bool
}

// Episodes returns the firing episodes, ordered by stream, model, version
// and kind.
func (s *State) Episodes() []Episode {
	var out []Episode
	for k, g := range s.groups {
		if g.Episode == nil {
			continue
		}
		e := Episode{
			ID: g.Episode.ID, Stream: k.Stream, Model: k.Model, Version: k.Version, Kind: k.Kind,
			Started: g.Episode.Started, Severity: g.Episode.Severity, LastSent: g.Episode.LastSent,
			Notified: g.Episode.Notified,
		}
		for _, f := range sortedKeys(g.members) {
			if g.members[f].Firing {
				e.Features = append(e.Features, f)
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return lessKey(out[i].key(), out[j].key()) })
	return out
}

func (e Episode) key() groupKey { return groupKey{e.Stream, e.Model, e.Version, e.Kind} }

func lessKey(a, b groupKey) bool {
	if a.Stream != b.Stream {
		return a.Stream < b.Stream
	}
	if a.Model != b.Model {
		return a.Model < b.Model
	}
	if a.Version != b.Version {
		return a.Version < b.Version
	}
	return a.Kind < b.Kind
}

// Clone returns a deep copy, e.g. to keep the last committed State while
// a window's transaction is in flight.
func (s *State) Clone() *State {
	b, err := s.MarshalJSON()
	if err != nil {
		panic("BUG: policy state does not encode: " + err.Error())
	}
	var c State
	if err := c.UnmarshalJSON(b); err != nil {
		panic("BUG: policy state does not decode: " + err.Error())
	}
	return &c
}

// stateVersion is the version of the JSON encoding.
const stateVersion = 1

type stateJSON struct {
	Version  int           `json:"version"`
	Groups   []groupJSON   `json:"groups"`
	Triggers []triggerJSON `json:"triggers"`
}

type groupJSON struct {
	Stream  string        `json:"stream"`
	Model   string        `json:"model"`
	Version string        `json:"version"`
	Kind    alerting.Kind `json:"kind"`
	Members []memberJSON  `json:"members"`
	Episode *episodeJSON  `json:"episode,omitempty"`
}

type memberJSON struct {
	Feature  string          `json:"feature"`
	Bad      int             `json:"bad,omitempty"`
	Clean    int             `json:"clean,omitempty"`
	Firing   bool            `json:"firing,omitempty"`
	Critical bool            `json:"critical,omitempty"`
	Change   alerting.Change `json:"change"`
}

type episodeJSON struct {
	ID       string            `json:"id"`
	Started  time.Time         `json:"started"`
	Seq      int               `json:"seq"`
	Notified bool              `json:"notified"`
	LastSent time.Time         `json:"last_sent,omitzero"`
	Severity alerting.Severity `json:"severity,omitempty"`
	Shown    []string          `json:"shown,omitempty"`
}

type triggerJSON struct {
	Name    string    `json:"name"`
	Stream  string    `json:"stream"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Count   int       `json:"count,omitempty"`
	Last    time.Time `json:"last,omitzero"`
}

// MarshalJSON encodes the state deterministically (sorted), so equal
// states give equal bytes.
func (s *State) MarshalJSON() ([]byte, error) {
	out := stateJSON{Version: stateVersion, Groups: []groupJSON{}, Triggers: []triggerJSON{}}
	for k, g := range s.groups {
		gj := groupJSON{Stream: k.Stream, Model: k.Model, Version: k.Version, Kind: k.Kind, Members: []memberJSON{}}
		for _, f := range sortedKeys(g.members) {
			m := g.members[f]
			gj.Members = append(gj.Members, memberJSON{Feature: f, Bad: m.Bad, Clean: m.Clean, Firing: m.Firing, Critical: m.Critical, Change: m.Change})
		}
		if e := g.Episode; e != nil {
			gj.Episode = &episodeJSON{ID: e.ID, Started: e.Started.UTC(), Seq: e.Seq, Notified: e.Notified, LastSent: e.LastSent.UTC(), Severity: e.Severity, Shown: e.Shown}
		}
		out.Groups = append(out.Groups, gj)
	}
	sort.Slice(out.Groups, func(i, j int) bool {
		a, b := out.Groups[i], out.Groups[j]
		return lessKey(groupKey{a.Stream, a.Model, a.Version, a.Kind}, groupKey{b.Stream, b.Model, b.Version, b.Kind})
	})
	for k, t := range s.triggers {
		out.Triggers = append(out.Triggers, triggerJSON{Name: k.Name, Stream: k.Stream, Model: k.Model, Version: k.Version, Count: t.Count, Last: t.Last.UTC()})
	}
	sort.Slice(out.Triggers, func(i, j int) bool {
		a, b := out.Triggers[i], out.Triggers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return lessKey(groupKey{a.Stream, a.Model, a.Version, ""}, groupKey{b.Stream, b.Model, b.Version, ""})
	})
	return json.Marshal(out)
}

// UnmarshalJSON replaces s by the encoded state.
func (s *State) UnmarshalJSON(b []byte) error {
	var in stateJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decode policy state: %w", err)
	}
	if in.Version != stateVersion {
		return fmt.Errorf("decode policy state: version %d, want %d", in.Version, stateVersion)
	}
	*s = State{}
	s.init()
	for _, gj := range in.Groups {
		g := &group{members: map[string]*member{}}
		for _, m := range gj.Members {
			g.members[m.Feature] = &member{Bad: m.Bad, Clean: m.Clean, Firing: m.Firing, Critical: m.Critical, Change: m.Change}
		}
		if e := gj.Episode; e != nil {
			g.Episode = &episode{ID: e.ID, Started: e.Started, Seq: e.Seq, Notified: e.Notified, LastSent: e.LastSent, Severity: e.Severity, Shown: e.Shown}
		}
		s.groups[groupKey{gj.Stream, gj.Model, gj.Version, gj.Kind}] = g
	}
	for _, t := range in.Triggers {
		s.triggers[triggerKey{t.Name, t.Stream, t.Model, t.Version}] = &trigger{Count: t.Count, Last: t.Last}
	}
	return nil
}
