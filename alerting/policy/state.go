package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// State is the alert state of one stream (or several): per alert, how many
// consecutive windows drifted or were clean and whether it fires; per
// episode, what was last sent and when; per retraining trigger, its count,
// last call and the episode it was for; per model version, when it last sent
// traffic and whether it is superseded. The zero State is empty and ready. It is not safe for
// concurrent use: each stream's goroutine owns its own.
//
// State encodes to JSON (MarshalJSON) so the monitor can store it in the
// transaction that commits the window; decode it with UnmarshalJSON after
// a restart.
type State struct {
	groups   map[groupKey]*group
	triggers map[triggerKey]*trigger
	versions map[versionKey]*version
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
	Bad      streak // the current streak of drifting windows
	Clean    int    // clean windows since the last drifting one
	Firing   bool
	Critical bool
	Change   alerting.Change // latest evidence
}

// streak is a stretch of consecutive windows that count towards something: a
// feature's drift (member.Bad) or a webhook's trigger (trigger.Streak). It keeps how
// many, and the bounds of the first window; they are zero in state written
// before they were kept.
type streak struct {
	N                    int
	FirstStart, FirstEnd time.Time
}

// extend counts o's window into the streak, remembering it when it is the first.
func (r *streak) extend(o Observation) {
	if r.N == 0 {
		r.FirstStart, r.FirstEnd = o.WindowStart, o.WindowEnd
	}
	r.N++
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
	// FirstStart and FirstEnd bound the first drifting window of the features
	// that fired it; zero in state written before they were kept.
	FirstStart, FirstEnd time.Time
}

// triggerKey is a trigger's state for a model version and a kind of evidence
// (drift, or performance): each counts its own windows and calls for its own
// episodes.
type triggerKey struct {
	Name, Stream, Model, Version string
	Kind                         alerting.Kind
}

type trigger struct {
	Streak streak    // consecutive qualifying windows
	Last   time.Time // window end of the last call
	// Episode is the episode the last call was for, and Called the features
	// the episode's calls named (for escalations).
	Episode string
	Called  []string
	// Noted is the episode and reason of the last muted call audited, so that a
	// muted call is audited once per episode rather than in every window.
	Noted string
}

type versionKey struct {
	Stream, Model, Version string
}

// version is what the policy knows of a model version's traffic.
type version struct {
	Last       time.Time // end of its last window with rows
	Others     int       // windows of other versions of the model since
	Superseded string    // the version that superseded it; "" while it is live
}

// maxRetired bounds the superseded versions remembered per model, so that a
// model retrained daily does not grow the state forever; a version forgotten
// this way is judged afresh should its traffic ever return.
const maxRetired = 8

func (s *State) init() {
	if s.groups == nil {
		s.groups = map[groupKey]*group{}
	}
	if s.triggers == nil {
		s.triggers = map[triggerKey]*trigger{}
	}
	if s.versions == nil {
		s.versions = map[versionKey]*version{}
	}
}

// forgettable reports whether a trigger that does not qualify in a window
// ending at end has nothing left to remember: its cooldown has passed, and the
// episode it called for is no longer open (forgetting it would call again).
func (s *State) forgettable(k triggerKey, ts *trigger, cooldown time.Duration, end time.Time) bool {
	if !ts.Last.IsZero() && end.Before(ts.Last.Add(cooldown)) {
		return false
	}
	return ts.Episode == "" || s.episodeOf(k.Stream, k.Model, k.Version, ts.Episode) == nil
}

// lastCall is the window end of the trigger's last call for the model version,
// whatever the evidence (drift or performance): the cooldown is per model version.
// Objective breaches have a cooldown of their own: a rollback for latency does not
// hold back a retraining for drift.
func (s *State) lastCall(k triggerKey) time.Time {
	var last time.Time
	kinds := []alerting.Kind{alerting.KindDrift, alerting.KindPerformance}
	if k.Kind == alerting.KindObjective {
		kinds = []alerting.Kind{alerting.KindObjective}
	}
	for _, kind := range kinds {
		k.Kind = kind
		if ts := s.triggers[k]; ts != nil && ts.Last.After(last) {
			last = ts.Last
		}
	}
	return last
}

// episodeOf returns the open episode id of the model version, or nil.
func (s *State) episodeOf(stream, model, version, id string) *episode {
	for _, kind := range []alerting.Kind{alerting.KindDrift, alerting.KindPerformance, alerting.KindObjective} {
		if g := s.groups[groupKey{stream, model, version, kind}]; g != nil && g.Episode != nil && g.Episode.ID == id {
			return g.Episode
		}
	}
	return nil
}

// versionsOf returns the known versions of a model, sorted.
func (s *State) versionsOf(stream, model string) []versionKey {
	var out []versionKey
	for k := range s.versions {
		if k.Stream == stream && k.Model == model {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// forgetRetired keeps the maxRetired superseded versions of a model that sent
// traffic last, and forgets the others.
func (s *State) forgetRetired(stream, model string) {
	var retired []versionKey
	for _, k := range s.versionsOf(stream, model) {
		if s.versions[k].Superseded != "" {
			retired = append(retired, k)
		}
	}
	if len(retired) <= maxRetired {
		return
	}
	sort.SliceStable(retired, func(i, j int) bool { return s.versions[retired[i]].Last.After(s.versions[retired[j]].Last) })
	for _, k := range retired[maxRetired:] {
		delete(s.versions, k)
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
	Versions []versionJSON `json:"versions,omitempty"`
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
	// The fields below are left out of state written by earlier builds of version 1.
	FirstStart time.Time `json:"first_start,omitzero"`
	FirstEnd   time.Time `json:"first_end,omitzero"`
}

type episodeJSON struct {
	ID         string            `json:"id"`
	Started    time.Time         `json:"started"`
	Seq        int               `json:"seq"`
	Notified   bool              `json:"notified"`
	LastSent   time.Time         `json:"last_sent,omitzero"`
	Severity   alerting.Severity `json:"severity,omitempty"`
	Shown      []string          `json:"shown,omitempty"`
	FirstStart time.Time         `json:"first_start,omitzero"`
	FirstEnd   time.Time         `json:"first_end,omitzero"`
}

type triggerJSON struct {
	Name string `json:"name"`
	// Kind is "" in state written before triggers were kept per kind: drift.
	Kind       alerting.Kind `json:"kind,omitempty"`
	Stream     string        `json:"stream"`
	Model      string        `json:"model"`
	Version    string        `json:"version"`
	Count      int           `json:"count,omitempty"`
	Last       time.Time     `json:"last,omitzero"`
	FirstStart time.Time     `json:"first_start,omitzero"`
	FirstEnd   time.Time     `json:"first_end,omitzero"`
	Episode    string        `json:"episode,omitempty"`
	Called     []string      `json:"called,omitempty"`
	Noted      string        `json:"noted,omitempty"`
}

type versionJSON struct {
	Stream     string    `json:"stream"`
	Model      string    `json:"model"`
	Version    string    `json:"version"`
	Last       time.Time `json:"last,omitzero"`
	Others     int       `json:"others,omitempty"`
	Superseded string    `json:"superseded,omitempty"`
}

// MarshalJSON encodes the state deterministically (sorted), so equal
// states give equal bytes.
func (s *State) MarshalJSON() ([]byte, error) {
	out := stateJSON{Version: stateVersion, Groups: []groupJSON{}, Triggers: []triggerJSON{}}
	for k, g := range s.groups {
		gj := groupJSON{Stream: k.Stream, Model: k.Model, Version: k.Version, Kind: k.Kind, Members: []memberJSON{}}
		for _, f := range sortedKeys(g.members) {
			m := g.members[f]
			gj.Members = append(gj.Members, memberJSON{Feature: f, Bad: m.Bad.N, Clean: m.Clean, Firing: m.Firing, Critical: m.Critical, Change: m.Change,
				FirstStart: m.Bad.FirstStart.UTC(), FirstEnd: m.Bad.FirstEnd.UTC()})
		}
		if e := g.Episode; e != nil {
			gj.Episode = &episodeJSON{ID: e.ID, Started: e.Started.UTC(), Seq: e.Seq, Notified: e.Notified, LastSent: e.LastSent.UTC(), Severity: e.Severity, Shown: e.Shown,
				FirstStart: e.FirstStart.UTC(), FirstEnd: e.FirstEnd.UTC()}
		}
		out.Groups = append(out.Groups, gj)
	}
	sort.Slice(out.Groups, func(i, j int) bool {
		a, b := out.Groups[i], out.Groups[j]
		return lessKey(groupKey{a.Stream, a.Model, a.Version, a.Kind}, groupKey{b.Stream, b.Model, b.Version, b.Kind})
	})
	for k, t := range s.triggers {
		out.Triggers = append(out.Triggers, triggerJSON{Name: k.Name, Kind: k.Kind, Stream: k.Stream, Model: k.Model, Version: k.Version, Count: t.Streak.N, Last: t.Last.UTC(),
			FirstStart: t.Streak.FirstStart.UTC(), FirstEnd: t.Streak.FirstEnd.UTC(), Episode: t.Episode, Called: t.Called, Noted: t.Noted})
	}
	sort.Slice(out.Triggers, func(i, j int) bool {
		a, b := out.Triggers[i], out.Triggers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return lessKey(groupKey{a.Stream, a.Model, a.Version, a.Kind}, groupKey{b.Stream, b.Model, b.Version, b.Kind})
	})
	for k, v := range s.versions {
		out.Versions = append(out.Versions, versionJSON{Stream: k.Stream, Model: k.Model, Version: k.Version, Last: v.Last.UTC(), Others: v.Others, Superseded: v.Superseded})
	}
	sort.Slice(out.Versions, func(i, j int) bool {
		a, b := out.Versions[i], out.Versions[j]
		return lessKey(groupKey{a.Stream, a.Model, a.Version, ""}, groupKey{b.Stream, b.Model, b.Version, ""})
	})
	return json.Marshal(out)
}

// UnmarshalJSON replaces s by the encoded state. State written before
// retraining calls were made per episode records no episode for its triggers: a
// trigger whose last call came while its model version's episode fired is taken
// to have made that episode's call (naming its features), so an upgrade does not
// call again for an episode already called for.
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
			g.members[m.Feature] = &member{Bad: streak{m.Bad, m.FirstStart, m.FirstEnd}, Clean: m.Clean, Firing: m.Firing, Critical: m.Critical, Change: m.Change}
		}
		if e := gj.Episode; e != nil {
			g.Episode = &episode{ID: e.ID, Started: e.Started, Seq: e.Seq, Notified: e.Notified, LastSent: e.LastSent, Severity: e.Severity, Shown: e.Shown,
				FirstStart: e.FirstStart, FirstEnd: e.FirstEnd}
		}
		s.groups[groupKey{gj.Stream, gj.Model, gj.Version, gj.Kind}] = g
	}
	for _, t := range in.Triggers {
		ts := &trigger{Streak: streak{t.Count, t.FirstStart, t.FirstEnd}, Last: t.Last,
			Episode: t.Episode, Called: t.Called, Noted: t.Noted}
		kind := cmp.Or(t.Kind, alerting.KindDrift)
		if t.Kind == "" && ts.Episode == "" && !ts.Last.IsZero() {
			for _, k := range []alerting.Kind{alerting.KindDrift, alerting.KindPerformance} {
				if g := s.groups[groupKey{t.Stream, t.Model, t.Version, k}]; g != nil && g.Episode != nil && !ts.Last.Before(g.Episode.Started) {
					ts.Episode, ts.Called, kind = g.Episode.ID, slices.Clone(g.Episode.Shown), k
					break
				}
			}
		}
		s.triggers[triggerKey{t.Name, t.Stream, t.Model, t.Version, kind}] = ts
	}
	for _, v := range in.Versions {
		s.versions[versionKey{v.Stream, v.Model, v.Version}] = &version{Last: v.Last, Others: v.Others, Superseded: v.Superseded}
	}
	return nil
}
