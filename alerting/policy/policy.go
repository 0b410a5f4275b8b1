// Package policy decides, window by window, what to tell people and
// pipelines about a model's inputs: when an alert fires (drift in N
// consecutive windows), how severe it is, when it is repeated, updated or
// resolved (M clean windows), which alerts are silenced or inhibited, and
// when a retraining webhook is called.
//
// It is a pure state machine: Observe takes the State, one closed window's
// Observation and the time, and returns alerting.Decisions. It does no I/O, reads no
// clock and starts nothing, so the monitor can store the State in the same
// transaction as its checkpoint and the outbox, and a restart continues
// exactly where the last committed window left off: no storm of repeats,
// no lost resolve. Silences, the one set that changes outside windows (the
// API edits it), are saved and restored in that transaction too.
//
// An alert's identity is (stream, model, version, kind, feature): one per
// drifting feature, or Dataset for alerts about the whole model. Alerts are
// grouped per (stream, model, version, kind) into episodes, so one bad
// window is one message, not forty: the episode fires, is updated when its
// features or severity change, repeated every RepeatEvery while nothing
// changes, and resolved when its last feature resolves.
//
// A retraining webhook is called once per episode: when its trigger's condition
// holds while the model's episode fires, at most once per Cooldown for the model
// version, and again within the episode only when new features drift and the
// trigger asks for escalations (OnNewFeatures). Trigger.EveryWindow keeps the
// older rule, a call in every qualifying window.
//
// A model version whose traffic stops while another version of the model flows
// is superseded (Rules.SupersedeAfter): its open episodes resolve with the reason
// "superseded by version X", and it is neither alerted on nor retrained again
// until its traffic returns.
//
// Performance windows may be provisional (Observation.Provisional): their
// degradations count, their clean verdicts do not, so a provisional window can
// fire an alert but never resolve one.
//
// It owns the decision rules, the alert state and the silences. It imports only
// alerting: never a notifier, the outbox or the audit trail (they consume its
// Decisions), nor detectors or sketch (the monitor turns findings into
// Observations), nor anything under internal/.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// Dataset is the feature of alerts about a whole model rather than one
// feature (alerting.KindNoData, KindDataLoss, KindBlind).
const Dataset = "dataset"

// Why a decision is muted (alerting.Decision.Muted).
const (
	// MutedSilenced: every feature of the decision matches a silence.
	MutedSilenced = "silenced"
	// MutedInhibited: a no-data or data-loss alert fires for the stream, so
	// its drift alerts and retraining calls would not be trustworthy.
	MutedInhibited = "inhibited"
	// MutedCooldown: the retraining webhook was called for this model less
	// than its Cooldown ago.
	MutedCooldown = "cooldown"
	// MutedUnannounced: the episode resolved before anyone was told it
	// fired (it was silenced or inhibited throughout).
	MutedUnannounced = "unannounced"
)

// Rules are the static policy, from the configuration.
type Rules struct {
	// FireAfter is how many consecutive windows a feature must drift before
	// its alert fires. 0 → 1.
	FireAfter int
	// ResolveAfter is how many consecutive clean windows resolve a firing
	// feature. 0 → 1.
	ResolveAfter int
	// RepeatEvery repeats an unchanged firing episode when this much window
	// time passed since it was last sent. 0 never repeats.
	RepeatEvery time.Duration
	// CriticalPSI is the PSI from which a drifted feature is critical
	// rather than a warning. 0 → 0.25, the industry's "significant shift".
	CriticalPSI float64
	// Retrain are the retraining webhooks' triggers.
	Retrain []Trigger
	// SupersedeAfter is how many windows of other versions of a model must close,
	// with no window of a version in between, before that version counts as
	// retired: its open episodes resolve as superseded. 0 → 3.
	SupersedeAfter int
}

// DefaultSupersedeAfter is Rules.SupersedeAfter when it is 0.
const DefaultSupersedeAfter = 3

// Trigger is the policy of one retraining webhook: call it when at least
// MinFeatures features, or any of the KeyFeatures, drifted in ForWindows
// consecutive windows of a model version whose alert episode fires: once per
// episode, and at most once per Cooldown per model version.
type Trigger struct {
	// Name identifies the trigger; Decisions carry it, so it is usually the
	// webhook's name.
	Name string
	// MinFeatures is how many features must drift in a window; 0 relies on
	// KeyFeatures alone.
	MinFeatures int
	// KeyFeatures are features whose drift alone is enough.
	KeyFeatures []string
	// Objectives are objective names whose breach alone is enough, in a window of the
	// model's objective episode (alerting.KindObjective). A trigger without them is
	// never called for a breach; one with them and neither MinFeatures nor
	// KeyFeatures is called for breaches only.
	Objectives []string
	// ForWindows is how many consecutive windows must qualify. 0 → 1.
	ForWindows int
	// Cooldown is the least window time between two calls for one model
	// version: an episode that fires sooner after the last call gets its call
	// once the cooldown has passed, if its condition still holds then. An
	// escalation (OnNewFeatures) is not held back by it. 0: none.
	Cooldown time.Duration
	// OnNewFeatures calls again within an episode when features drift that no
	// call of the episode named: an escalation.
	OnNewFeatures bool
	// EveryWindow calls in every window in which the condition holds (for
	// ForWindows windows again after each call), with or without a firing
	// episode, at most once per Cooldown: the rule before episodes.
	EveryWindow bool
}

// Silencer reports whether a silence matches an alert at time now: the
// monitor passes Silences.Silenced, the set the HTTP API manages (matchers on
// stream, model, feature and kind, with an expiry). Feature is Dataset for
// whole-model alerts and "" for retraining calls of a model.
type Silencer func(stream, model, feature string, kind alerting.Kind, now time.Time) bool

// Policy applies Rules. It holds no state of its own and is safe for
// concurrent use; each stream's goroutine passes its own State.
type Policy struct {
	rules    Rules
	silenced Silencer
}

// New checks the rules and returns a Policy; silenced may be nil (nothing
// is ever silenced). Every problem is reported, each under its path.
func New(r Rules, silenced Silencer) (*Policy, error) {
	var errs []error
	if r.FireAfter < 0 {
		errs = append(errs, errors.New("policy.fire_after: must not be negative"))
	}
	if r.ResolveAfter < 0 {
		errs = append(errs, errors.New("policy.resolve_after: must not be negative"))
	}
	if r.RepeatEvery < 0 {
		errs = append(errs, errors.New("policy.repeat_every: must not be negative"))
	}
	if r.CriticalPSI < 0 {
		errs = append(errs, errors.New("policy.critical_psi: must not be negative"))
	}
	if r.SupersedeAfter < 0 {
		errs = append(errs, errors.New("policy.supersede_after: must not be negative"))
	}
	names := map[string]bool{}
	for i, t := range r.Retrain {
		path := fmt.Sprintf("policy.retrain[%d]", i)
		switch {
		case t.Name == "":
			errs = append(errs, errors.New(path+".name: required"))
		case names[t.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", path, t.Name))
		}
		names[t.Name] = true
		if t.MinFeatures < 0 {
			errs = append(errs, errors.New(path+".min_features: must not be negative"))
		}
		if t.MinFeatures <= 0 && len(t.KeyFeatures) == 0 && len(t.Objectives) == 0 {
			errs = append(errs, errors.New(path+": set min_features, key_features or objectives"))
		}
		if t.ForWindows < 0 {
			errs = append(errs, errors.New(path+".for_windows: must not be negative"))
		}
		if t.Cooldown < 0 {
			errs = append(errs, errors.New(path+".cooldown: must not be negative"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if r.FireAfter == 0 {
		r.FireAfter = 1
	}
	if r.ResolveAfter == 0 {
		r.ResolveAfter = 1
	}
	if r.CriticalPSI == 0 {
		r.CriticalPSI = 0.25
	}
	if r.SupersedeAfter == 0 {
		r.SupersedeAfter = DefaultSupersedeAfter
	}
	r.Retrain = slices.Clone(r.Retrain)
	for i := range r.Retrain {
		r.Retrain[i].ForWindows = max(r.Retrain[i].ForWindows, 1)
	}
	if silenced == nil {
		silenced = func(string, string, string, alerting.Kind, time.Time) bool { return false }
	}
	return &Policy{rules: r, silenced: silenced}, nil
}

// Observation is what one closed window of one model showed.
type Observation struct {
	// Stream, Model and Version say whose window it is. Model "" reports
	// on the whole stream (only NoData and DataLoss make sense then).
	Stream, Model, Version string
	WindowStart, WindowEnd time.Time
	Rows                   int64
	// Reference describes what the window was compared with.
	Reference string
	// DashboardURL links to the window; copied into the alerts.
	DashboardURL string
	// Drifted are the features that drifted; Stable the ones checked
	// without drift; Insufficient the ones with too little data to judge.
	// A feature in none of them is not judged either way.
	Drifted      []Drift
	Stable       []string
	Insufficient []string
	// Quiet are checked without drift like Stable, but not listed in alerts:
	// segments' findings (income@country=DE), hundreds in a window, that only
	// need to count as clean for a segment's drift to resolve.
	Quiet []string
	// NoData reports that the window had no data, or too little to judge.
	// Any later window of the stream with data counts towards resolving it.
	NoData bool
	// DataLoss reports that the window is known to miss data.
	DataLoss bool
	// Blind reports that the stream's events are read but cannot be judged
	// (alerting.KindBlind). Like DataLoss it is observed on the whole stream.
	Blind bool
	// Kind is alerting.KindDrift (or "") for a window's drift findings,
	// alerting.KindPerformance for its performance verdict: then Drifted holds the degraded metrics and
	// Stable the ones within their rule, and availability is not concerned.
	// alerting.KindObjective is the window's objectives: Drifted the breached ones,
	// Stable the met ones, Insufficient those within sketch error or without data.
	Kind alerting.Kind
	// Provisional says the verdicts may still change (a performance window
	// whose labels are not all in): its drifted features count towards firing,
	// its stable ones are no evidence, so it cannot resolve an alert.
	Provisional bool
}

// Drift is one feature's drift in a window: the evidence shown to people
// and the effect size that sets its severity.
type Drift struct {
	alerting.Change
	// PSI is the feature's population stability index against the
	// reference, computed for every feature type; at Rules.CriticalPSI or
	// above the drift is critical.
	PSI float64
}

// Observe applies one closed window to s and returns the decisions it
// leads to, in a deterministic order: availability alerts (no data, data
// loss) first, then drift, then retraining. now is the wall-clock time,
// used only to match silences; everything else runs on window time, so a
// replayed window gives the same decisions.
func (p *Policy) Observe(s *State, o Observation, now time.Time) []alerting.Decision {
	s.init()
	var out []alerting.Decision
	if o.Model != "" {
		var retired bool
		if out, retired = p.traffic(s, o, out); retired {
			return out // a superseded version's late report (performance, no data)
		}
	}
	kind := alerting.KindDrift
	if o.Kind == alerting.KindPerformance || o.Kind == alerting.KindObjective {
		kind = o.Kind
	} else {
		out = p.availability(s, o, alerting.KindNoData, o.NoData, now, out)
		out = p.availability(s, o, alerting.KindDataLoss, o.DataLoss, now, out)
		out = p.availability(s, o, alerting.KindBlind, o.Blind, now, out)
	}
	inhibited := s.inhibited(o.Stream)

	verdicts := make(map[string]verdict, len(o.Drifted)+len(o.Stable))
	evidence := make(map[string]Drift, len(o.Drifted))
	for _, f := range o.Stable {
		verdicts[f] = clean
	}
	for _, f := range o.Quiet {
		verdicts[f] = clean
	}
	for _, d := range o.Drifted {
		verdicts[d.Feature] = bad
		evidence[d.Feature] = d
	}
	if len(verdicts) > 0 { // a window that judged no feature says nothing about drift
		if d, ok := p.step(s, groupKey{o.Stream, o.Model, o.Version, kind}, o, verdicts, evidence, inhibited, now); ok {
			out = append(out, d)
		}
	}
	return p.retrain(s, o, inhibited, now, out)
}

type verdict int

const (
	bad verdict = iota + 1
	clean
)

// availability advances the no-data or data-loss alerts the window
// concerns: its own model's, and the whole stream's when that fires.
func (p *Policy) availability(s *State, o Observation, kind alerting.Kind, flagged bool, now time.Time, out []alerting.Decision) []alerting.Decision {
	v := clean
	if flagged {
		v = bad
	}
	if kind == alerting.KindNoData && !flagged && o.Rows == 0 && len(o.Drifted)+len(o.Stable) == 0 {
		return out // an empty report proves nothing
	}
	keys := []groupKey{{o.Stream, o.Model, o.Version, kind}}
	if o.Model != "" && !flagged {
		keys = append(keys, groupKey{o.Stream, "", "", kind})
	}
	for _, k := range keys {
		if _, ok := s.groups[k]; !ok && v == clean {
			continue
		}
		if d, ok := p.step(s, k, o, map[string]verdict{Dataset: v}, nil, false, now); ok {
			out = append(out, d)
		}
	}
	return out
}

// step advances one group's members by the window's verdicts and decides
// what to tell about its episode.
func (p *Policy) step(s *State, k groupKey, o Observation, verdicts map[string]verdict, evidence map[string]Drift, inhibited bool, now time.Time) (alerting.Decision, bool) {
	g := s.groups[k]
	if g == nil {
		anyBad := false
		for _, v := range verdicts {
			anyBad = anyBad || v == bad
		}
		if !anyBad {
			return alerting.Decision{}, false
		}
		g = &group{members: map[string]*member{}}
		s.groups[k] = g
	}

	for _, f := range sortedKeys(verdicts) {
		m := g.members[f]
		switch verdicts[f] {
		case bad:
			if m == nil {
				m = &member{}
				g.members[f] = m
			}
			m.Bad.extend(o)
			m.Clean = 0
			if ev, ok := evidence[f]; ok {
				m.Change = ev.Change
				m.Critical = ev.PSI >= p.rules.CriticalPSI
			}
			if !m.Firing && m.Bad.N >= p.rules.FireAfter {
				m.Firing = true
			}
		case clean:
			if m == nil || o.Provisional {
				continue
			}
			m.Clean++
			m.Bad.N = 0
			if m.Firing && m.Clean >= p.rules.ResolveAfter {
				m.Firing = false
			}
		}
		if !m.Firing && m.Bad.N == 0 {
			delete(g.members, f)
		}
	}

	var firing, visible, silenced []string
	for _, f := range sortedKeys(g.members) {
		if !g.members[f].Firing {
			continue
		}
		firing = append(firing, f)
		if p.silenced(k.Stream, k.Model, f, k.Kind, now) {
			silenced = append(silenced, f)
		} else {
			visible = append(visible, f)
		}
	}

	ep := g.Episode
	if ep == nil {
		if len(firing) == 0 {
			s.tidy(k)
			return alerting.Decision{}, false
		}
		ep = &episode{ID: alerting.StableID("ep_", k.Stream, k.Model, k.Version, string(k.Kind), o.WindowStart.UTC().Format(time.RFC3339Nano)), Started: o.WindowStart,
			FirstStart: o.WindowStart, FirstEnd: o.WindowEnd}
		for _, f := range firing {
			if m := g.members[f]; !m.Bad.FirstStart.IsZero() && m.Bad.FirstStart.Before(ep.FirstStart) {
				ep.FirstStart, ep.FirstEnd = m.Bad.FirstStart, m.Bad.FirstEnd
			}
		}
		g.Episode = ep
	}

	d := alerting.Decision{Kind: k.Kind, Started: ep.Started, Silenced: silenced}
	if len(firing) == 0 { // the last feature resolved: the episode ends
		g.Episode = nil
		s.tidy(k)
		d.Step, d.Seq = alerting.StepResolve, ep.Seq
		d.Resolved = ep.Shown
		d.Alert = p.alert(k, o, ep.ID, nil, g)
		d.Alert.Severity = ep.Severity
		if !ep.Notified {
			d.Muted = MutedUnannounced
		}
		d.ID = alerting.StableID("msg_", ep.ID, string(d.Step), fmt.Sprint(d.Seq))
		return d, true
	}

	severity := p.severity(k.Kind, g, visible)
	d.Alert = p.alert(k, o, ep.ID, visible, g)
	d.Alert.Severity = severity
	switch {
	case !ep.Notified:
		d.Step, d.New = alerting.StepFire, visible
	default:
		d.New = minus(visible, ep.Shown)
		d.Resolved = minus(ep.Shown, firing)
		switch {
		case len(d.New) > 0 || len(d.Resolved) > 0 || severity != ep.Severity:
			d.Step = alerting.StepUpdate
		case p.rules.RepeatEvery > 0 && !o.WindowEnd.Before(ep.LastSent.Add(p.rules.RepeatEvery)):
			d.Step = alerting.StepRepeat
		default:
			return alerting.Decision{}, false
		}
	}
	d.Seq = ep.Seq
	d.ID = alerting.StableID("msg_", ep.ID, string(d.Step), fmt.Sprint(d.Seq))
	switch {
	case inhibited && k.Kind == alerting.KindDrift:
		d.Muted = MutedInhibited
	case len(visible) == 0:
		d.Muted = MutedSilenced
	default:
		ep.Notified = true
		ep.Seq++
		ep.LastSent = o.WindowEnd
		ep.Severity = severity
		ep.Shown = visible
	}
	return d, true
}

// severity of an episode: critical when any visible drifted feature's
// latest PSI reached CriticalPSI; availability alerts are warnings.
func (p *Policy) severity(kind alerting.Kind, g *group, visible []string) alerting.Severity {
	if kind != alerting.KindDrift {
		return alerting.SeverityWarning
	}
	for _, f := range visible {
		if g.members[f].Critical {
			return alerting.SeverityCritical
		}
	}
	return alerting.SeverityWarning
}

// alert renders an episode as of window o.
func (p *Policy) alert(k groupKey, o Observation, id string, visible []string, g *group) alerting.Alert {
	a := alerting.Alert{
		ID: id, Stream: k.Stream, Model: k.Model, ModelVersion: k.Version,
		WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, Rows: o.Rows,
		Reference: o.Reference, DashboardURL: o.DashboardURL,
	}
	if k.Kind != alerting.KindDrift && k.Kind != alerting.KindPerformance && k.Kind != alerting.KindObjective {
		return a
	}
	for _, f := range visible {
		a.Drifted = append(a.Drifted, g.members[f].Change)
	}
	sort.SliceStable(a.Drifted, func(i, j int) bool { return a.Drifted[i].Score > a.Drifted[j].Score })
	firing := func(f string) bool { m := g.members[f]; return m != nil && m.Firing }
	for _, f := range o.Stable {
		if !firing(f) {
			a.Stable = append(a.Stable, f)
		}
	}
	a.Insufficient = slices.Clone(o.Insufficient)
	return a
}

// retrain advances every trigger for the window's model version. A trigger
// whose condition holds for ForWindows windows calls once for the version's
// firing episode of the window's kind (drift, or performance): the first such
// window after the episode fired makes the call, unless the cooldown since the
// last call has not passed yet, a silence matches or the stream's availability
// alerts inhibit it; such a muted call is audited once and made in the first
// window it no longer is. EveryWindow triggers call in every qualifying window.
func (p *Policy) retrain(s *State, o Observation, inhibited bool, now time.Time, out []alerting.Decision) []alerting.Decision {
	if o.NoData || len(o.Drifted)+len(o.Stable) == 0 {
		return out // no evidence either way
	}
	var drifted []alerting.Change
	var names []string
	for _, d := range o.Drifted {
		if !p.silenced(o.Stream, o.Model, d.Feature, alerting.KindRetrain, now) {
			drifted = append(drifted, d.Change)
			names = append(names, d.Feature)
		}
	}
	slices.Sort(names)
	kind := alerting.KindDrift
	if o.Kind == alerting.KindPerformance || o.Kind == alerting.KindObjective {
		kind = o.Kind
	}
	var ep *episode
	if g := s.groups[groupKey{o.Stream, o.Model, o.Version, kind}]; g != nil {
		ep = g.Episode
	}
	for _, t := range p.rules.Retrain {
		if kind == alerting.KindObjective {
			if len(t.Objectives) == 0 {
				continue // a breach calls triggers that name objectives only
			}
		} else if t.MinFeatures <= 0 && len(t.KeyFeatures) == 0 {
			continue // a trigger of objectives only
		}
		k := triggerKey{t.Name, o.Stream, o.Model, o.Version, kind}
		ts := s.triggers[k]
		var key []string
		keys := t.KeyFeatures
		if kind == alerting.KindObjective {
			keys = t.Objectives
		}
		for _, c := range drifted {
			if slices.Contains(keys, c.Feature) {
				key = append(key, c.Feature)
			}
		}
		enough := t.MinFeatures > 0 && len(drifted) >= t.MinFeatures && kind != alerting.KindObjective
		if !enough && len(key) == 0 {
			if ts != nil && !o.Provisional { // a provisional window is no evidence of calm
				ts.Streak.N = 0
				if s.forgettable(k, ts, t.Cooldown, o.WindowEnd) {
					delete(s.triggers, k)
				}
			}
			continue
		}
		if ts == nil {
			ts = &trigger{}
			s.triggers[k] = ts
		}
		ts.Streak.extend(o)
		if ts.Streak.N < t.ForWindows {
			continue
		}
		fresh := ep == nil || ts.Episode != ep.ID
		var escalation []string
		if !t.EveryWindow {
			if ep == nil {
				continue // the call waits for the alert to fire
			}
			if !fresh {
				if !t.OnNewFeatures {
					continue // the episode had its call
				}
				if escalation = minus(names, ts.Called); len(escalation) == 0 {
					continue
				}
			}
		}
		d := p.retrainDecision(t, o, drifted, key, enough, ts, ep)
		if escalation != nil {
			d.Reason = "escalation: " + strings.Join(escalation, ", ") + " drifted since the episode's last call"
		}
		switch {
		case inhibited:
			d.Muted = MutedInhibited
		case p.silenced(o.Stream, o.Model, "", alerting.KindRetrain, now):
			d.Muted = MutedSilenced
		case escalation == nil && !s.lastCall(k).IsZero() && o.WindowEnd.Before(s.lastCall(k).Add(t.Cooldown)):
			d.Muted = MutedCooldown
		}
		if d.Muted != "" {
			if !t.EveryWindow {
				// One audit entry per episode and reason, not one per window.
				note := ep.ID + " " + d.Muted
				if ts.Noted == note {
					continue
				}
				ts.Noted = note
			}
			out = append(out, d)
			continue
		}
		ts.Last = o.WindowEnd
		if t.EveryWindow {
			ts.Streak.N = 0
		}
		if ep != nil {
			if fresh {
				ts.Called = nil
			}
			ts.Episode = ep.ID
			ts.Called = union(ts.Called, names)
		}
		out = append(out, d)
	}
	return out
}

// retrainDecision is trigger t's call for window o: the window's unsilenced
// drifted features, and the episode's identity and first drifting window when
// one fires (else the first window of the trigger's run of qualifying windows).
func (p *Policy) retrainDecision(t Trigger, o Observation, drifted []alerting.Change, key []string, enough bool, ts *trigger, ep *episode) alerting.Decision {
	d := alerting.Decision{
		Step: alerting.StepRetrain, Kind: alerting.KindRetrain, Trigger: t.Name,
		ID: alerting.StableID("msg_", "retrain", t.Name, o.Stream, o.Model, o.Version, o.WindowStart.UTC().Format(time.RFC3339Nano)),
	}
	d.Alert = alerting.Alert{
		ID: d.ID, Stream: o.Stream, Model: o.Model, ModelVersion: o.Version,
		WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, Rows: o.Rows,
		Reference: o.Reference, DashboardURL: o.DashboardURL,
		Severity: alerting.SeverityWarning, Drifted: drifted,
		Stable: slices.Clone(o.Stable), Insufficient: slices.Clone(o.Insufficient),
		FirstWindowStart: ts.Streak.FirstStart, FirstWindowEnd: ts.Streak.FirstEnd,
	}
	if ep != nil {
		d.Started = ep.Started
		d.Alert.Episode = ep.ID
		d.Alert.FirstWindowStart, d.Alert.FirstWindowEnd = ep.FirstStart, ep.FirstEnd
		if ep.FirstStart.IsZero() { // an episode opened by a build that did not record it
			d.Alert.FirstWindowStart, d.Alert.FirstWindowEnd = ep.Started, ep.Started.Add(o.WindowEnd.Sub(o.WindowStart))
		}
	}
	for _, dr := range o.Drifted {
		if dr.PSI >= p.rules.CriticalPSI && slices.ContainsFunc(drifted, func(c alerting.Change) bool { return c.Feature == dr.Feature }) {
			d.Alert.Severity = alerting.SeverityCritical
		}
	}
	windows := "1 window"
	if t.ForWindows > 1 {
		windows = fmt.Sprintf("%d windows", t.ForWindows)
	}
	switch {
	case enough:
		d.Reason = fmt.Sprintf("%d features drifted for %s (trigger: %d)", len(drifted), windows, t.MinFeatures)
	case o.Kind == alerting.KindObjective:
		d.Reason = fmt.Sprintf("objective %s breached for %s", key[0], windows)
	default:
		d.Reason = fmt.Sprintf("key feature %s drifted for %s", key[0], windows)
	}
	return d
}

// traffic keeps track of which versions of the window's model send traffic and
// supersedes those that stopped while another flowed: a window with rows of
// version v (not a performance report, which comes later) counts against every
// other version of the model whose last window ended at or before its start; the
// version it reaches Rules.SupersedeAfter against is superseded by v. A window
// of a superseded version revives it. retired reports that o is another report
// (performance, no data) about a superseded version, which is not judged.
func (p *Policy) traffic(s *State, o Observation, out []alerting.Decision) (_ []alerting.Decision, retired bool) {
	k := versionKey{o.Stream, o.Model, o.Version}
	v := s.versions[k]
	if o.Kind == alerting.KindPerformance || o.Kind == alerting.KindObjective || o.Rows <= 0 {
		// Objectives are observed beside the window's drift (warm-up windows too),
		// which counts its traffic.
		return out, v != nil && v.Superseded != ""
	}
	if v == nil {
		v = &version{}
		s.versions[k] = v
	}
	v.Superseded, v.Last, v.Others = "", o.WindowEnd, 0
	for _, uk := range s.versionsOf(o.Stream, o.Model) {
		u := s.versions[uk]
		if uk == k || u.Superseded != "" || o.WindowStart.Before(u.Last) {
			continue
		}
		if u.Others++; u.Others >= p.rules.SupersedeAfter {
			out = p.supersede(s, uk, o, out)
		}
	}
	s.forgetRetired(o.Stream, o.Model)
	return out, false
}

// supersede retires version uk in window o of another version: each of its open
// episodes resolves with the reason, and its triggers are forgotten.
func (p *Policy) supersede(s *State, uk versionKey, o Observation, out []alerting.Decision) []alerting.Decision {
	u := s.versions[uk]
	u.Superseded, u.Others = o.Version, 0
	reason := fmt.Sprintf("superseded by version %s: version %s sent nothing while %d windows of the model closed", o.Version, uk.Version, p.rules.SupersedeAfter)
	gone := Observation{Stream: uk.Stream, Model: uk.Model, Version: uk.Version,
		WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, DashboardURL: o.DashboardURL}
	var keys []groupKey
	for gk := range s.groups {
		if gk.Stream == uk.Stream && gk.Model == uk.Model && gk.Version == uk.Version {
			keys = append(keys, gk)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
	for _, gk := range keys {
		g := s.groups[gk]
		delete(s.groups, gk)
		ep := g.Episode
		if ep == nil {
			continue
		}
		d := alerting.Decision{Kind: gk.Kind, Step: alerting.StepResolve, Started: ep.Started, Seq: ep.Seq,
			Resolved: ep.Shown, Reason: reason}
		d.Alert = p.alert(gk, gone, ep.ID, nil, g)
		d.Alert.Severity = ep.Severity
		if !ep.Notified {
			d.Muted = MutedUnannounced
		}
		d.ID = alerting.StableID("msg_", ep.ID, string(d.Step), fmt.Sprint(d.Seq))
		out = append(out, d)
	}
	for tk := range s.triggers {
		if tk.Stream == uk.Stream && tk.Model == uk.Model && tk.Version == uk.Version {
			delete(s.triggers, tk)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// union returns the sorted elements of a and b (sorted), each once.
func union(a, b []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
}

// minus returns the elements of a (sorted) not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
