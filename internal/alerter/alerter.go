// Package alerter is where judged windows become alerts: it maps the alerting config to
// the policy, the notifiers and the outbox, applies each judged window (and each
// performance verdict, stall and data loss) to a stream's policy state, and records
// the decisions — audit entries and outbox items — in the transaction of the
// checkpoint that holds the windows they come from, so a crash loses or repeats
// none. Delivery is the outbox's (alerting/outbox).
//
// It imports the engine's and the label join's results, the state store, the alerting
// packages and sketch (to name the reference of a retraining call); it must not import
// internal/monitor or anything that reads Kafka.
package alerter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/outbox"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/alerting/slack"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

// alertStateBucket holds each stream's policy state, written in the stream's
// checkpoint transaction together with the outbox items its decisions made.
const alertStateBucket = "alert_state"

// slackRoute is the outbox route of the Slack notifier.
const slackRoute = "slack"

// Alerter turns closed windows into policy decisions (fire, update, repeat, resolve,
// retrain) and those into outbox items, in the same transaction as the windows they
// come from. It is the one switch from alerting config to notifiers.
type Alerter struct {
	log        *slog.Logger
	policy     *policy.Policy
	senders    map[string]outbox.Sender
	webhooks   map[string]*webhook.Notifier // by webhook (= trigger) name
	hasSlack   bool
	configHash string
	dashboard  string
	onDelivery func(route string, a alerting.Alert, err error)
	silences   *policy.Silences // saved and restored with the policy state

	outbox *outbox.Outbox // set by Start; nil when nothing is notified
}

// Outbox is the outbox Start opened; nil before, or when nothing is notified.
func (al *Alerter) Outbox() *outbox.Outbox { return al.outbox }

// wake tells the outbox that new items are committed.
func (al *Alerter) wake() {
	if al.outbox != nil {
		al.outbox.Wake()
	}
}

// Run delivers until ctx is done.
func (al *Alerter) Run(ctx context.Context) error {
	if al.outbox == nil {
		<-ctx.Done()
		return nil
	}
	return al.outbox.Run(ctx)
}

// New builds the notifiers and the policy from cfg; it sends nothing.
func New(cfg *config.Config, log *slog.Logger, silences *policy.Silences, onDelivery func(string, alerting.Alert, error)) (*Alerter, error) {
	a := cfg.Alerting
	al := &Alerter{
		log: log.With("component", "alerting"), senders: map[string]outbox.Sender{},
		webhooks: map[string]*webhook.Notifier{}, dashboard: a.DashboardURL, onDelivery: onDelivery,
		silences: silences,
	}
	var errs []error
	if s := a.Slack; s != nil {
		n, err := slack.New(slack.Options{
			Token: s.Token, Channel: s.Channel, WebhookURL: s.WebhookURL, APIURL: s.APIURL,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.slack: %w", err))
		} else {
			al.senders[slackRoute] = slackSender{n: n}
			al.hasSlack = true
		}
	}
	var triggers []policy.Trigger
	for i, w := range a.Webhooks {
		auth := webhook.Auth{}
		switch {
		case w.BasicUser != "":
			auth = webhook.Auth{Type: webhook.AuthBasic, Username: w.BasicUser, Password: w.BasicPassword}
		case w.Header != "":
			auth = webhook.Auth{Type: webhook.AuthHeader, Header: w.Header, Value: w.HeaderValue}
		}
		n, err := webhook.New(webhook.Options{
			URL: w.URL, Secret: w.Secret, Signing: w.Signing, BearerToken: w.BearerToken, Auth: auth,
			Template: webhook.Template{Format: w.Format, EventType: w.EventType, Text: w.Template, ContentType: w.ContentType},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.webhooks[%d]: %w", i, err))
			continue
		}
		al.webhooks[w.Name] = n
		al.senders[webhookRoute(w.Name)] = outbox.Webhook(n)
		t := policy.Trigger{Name: w.Name, MinFeatures: w.MinFeatures, KeyFeatures: w.KeyFeatures, Objectives: w.Objectives, ForWindows: w.ForWindows,
			OnNewFeatures: w.OnNewFeatures, EveryWindow: w.EveryWindow}
		if w.Cooldown != nil {
			t.Cooldown = *w.Cooldown
		}
		triggers = append(triggers, t)
	}
	p, err := policy.New(policy.Rules{
		FireAfter: a.Policy.FireAfter, ResolveAfter: a.Policy.ResolveAfter, RepeatEvery: a.Policy.RepeatEvery,
		CriticalPSI: a.Policy.CriticalPSI, Retrain: triggers, SupersedeAfter: a.Policy.SupersedeAfter,
	}, silences.Silenced)
	if err != nil {
		errs = append(errs, fmt.Errorf("alerting.policy: %w", err))
	}
	al.policy = p
	// The audit trail names the configuration each decision was made under.
	if b, err := yaml.Marshal(cfg); err == nil {
		al.configHash = audit.Hash(b)
	}
	return al, errors.Join(errs...)
}

func webhookRoute(name string) string { return "webhook " + name }

// Start opens the outbox on store; with nothing to notify there is none, and
// decisions are only audited.
func (al *Alerter) Start(store *state.Store) error {
	if len(al.senders) == 0 {
		return nil
	}
	senders := make(map[string]outbox.Sender, len(al.senders))
	for route, s := range al.senders {
		if sl, ok := s.(slackSender); ok {
			s = outbox.Slack(sl.n, store, al.log) // threads are kept in the store
		}
		senders[route] = observed{route: route, s: s, onDelivery: al.onDelivery}
	}
	// People read Slack: its messages are retried within seconds (outbox.ChatSchedule).
	ob, err := outbox.New(store, outbox.Options{Senders: senders, Logger: al.log,
		Schedules: map[string][]time.Duration{slackRoute: outbox.ChatSchedule()}})
	if err != nil {
		return err
	}
	al.outbox = ob
	return nil
}

// slackSender holds the Slack notifier until Start knows the store.
type slackSender struct{ n *slack.Notifier }

func (slackSender) Send(context.Context, outbox.Item) (time.Duration, error) {
	return 0, errors.New("BUG: Slack sender used before start")
}

// observed reports every delivery attempt's outcome (for metrics and the API).
type observed struct {
	route      string
	s          outbox.Sender
	onDelivery func(string, alerting.Alert, error)
}

func (o observed) Send(ctx context.Context, it outbox.Item) (time.Duration, error) {
	retryAfter, err := o.s.Send(ctx, it)
	if o.onDelivery != nil {
		// The alert as decided (rows, severity, drifted features), under the delivery's
		// id, which is the webhook-id its receiver sees. Items stored by an older version
		// carry only their subject.
		sub := it.Subject
		a := alerting.Alert{Stream: sub.Stream, Model: sub.Model, ModelVersion: sub.ModelVersion,
			WindowStart: sub.WindowStart, WindowEnd: sub.WindowEnd, Reference: sub.Reference}
		if it.Decision != nil {
			a = it.Decision.Alert
		}
		a.ID = it.ID
		o.onDelivery(o.route, a, err)
	}
	return retryAfter, err
}

// ObserveStall observes a stream that reads events but has closed no window for a
// while: a blind alert about the window e's clock is stuck before (the end of the last
// one closed, or the wall clock's when none has closed).
func (al *Alerter) ObserveStall(v *Verdicts, e *engine.Engine) {
	size := e.WindowSize()
	start := time.Now().Truncate(size)
	if to := e.Clock().ClosedTo(); to != math.MinInt64 {
		start = time.Unix(0, to).UTC()
	}
	o := policy.Observation{Stream: v.Stream, WindowStart: start, WindowEnd: start.Add(size), DashboardURL: al.dashboard, Blind: true}
	v.Decided = append(v.Decided, al.policy.Observe(v.State, o, time.Now())...)
}

// Verdicts is one stream's alert state: the policy's memory of its alerts, the
// decisions not yet recorded, and the lost-message count the data-loss alert last saw.
// It is owned by the goroutine that judges the stream's windows (one process's stream,
// or the cluster's leader).
type Verdicts struct {
	Stream string
	// State is the policy's memory of the stream's alerts.
	State *policy.State
	// Decided are the decisions not yet recorded.
	Decided []alerting.Decision
	// LossSeen is the lost-message count the data-loss alert last looked at.
	LossSeen int64
	// silencesSaved is the silences' change count (policy.Silences.Changes) as of
	// the last recorded transaction, and silencesSaving as of the one being recorded.
	silencesSaved, silencesSaving uint64
}

// SilencesChanged reports whether a silence was added or removed since the stream's
// last recorded transaction. The stream then checkpoints even while it reads nothing,
// so that a restart keeps a silence made in a quiet hour.
func (al *Alerter) SilencesChanged(v *Verdicts) bool {
	return al.silences.Changes() != v.silencesSaved
}

// Observe applies a closed window to the stream's policy state and keeps the decisions
// until they are recorded. With every compared window the stream as a whole is also
// observed for data loss: lost is the stream's messages deleted from the topic before
// they were read, so far; a new loss fires a data-loss alert (which holds back the
// stream's drift alerts: its windows miss data), and windows without new loss resolve
// it. blind says that most of the window's events came late or were refused (a blind
// alert, which holds drift alerts back too).
func (al *Alerter) Observe(v *Verdicts, r engine.Result, lost int64, blind bool) {
	now := time.Now()
	if r.Warmup {
		// Objectives need no reference: a warm-up window is judged against them too.
		al.observeObjectives(v, r, now)
		return
	}
	loss := policy.Observation{Stream: r.Stream, WindowStart: r.Start, WindowEnd: r.End,
		Reference: r.Reference, DashboardURL: al.dashboard, DataLoss: lost > v.LossSeen, Blind: blind}
	v.LossSeen = lost
	v.Decided = append(v.Decided, al.policy.Observe(v.State, loss, now)...)
	ds := al.policy.Observe(v.State, observation(r, al.dashboard), now)
	for i := range ds {
		if ds[i].Step == alerting.StepRetrain && r.ReferenceProfile != nil {
			// Only for the rare retraining call: it encodes the whole reference.
			id, err := referenceID(r.ReferenceProfile)
			if err != nil {
				al.log.Warn("cannot identify the reference of a retraining call", "model", r.Model, "version", r.ModelVersion, "err", err)
			}
			ds[i].Alert.ReferenceID = id
		}
	}
	v.Decided = append(v.Decided, ds...)
	al.observeObjectives(v, r, now)
}

// observeObjectives applies the window's objectives to the stream's policy state: an
// episode of their own kind (alerting.KindObjective), whose members are the
// objectives. A breach is bad, a met objective clean; one within sketch error or
// without data is neither, so it neither fires nor resolves an episode on the
// sketch's own noise.
func (al *Alerter) observeObjectives(v *Verdicts, r engine.Result, now time.Time) {
	if len(r.Objectives) == 0 {
		return
	}
	o := policy.Observation{Kind: alerting.KindObjective, Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Rows, Reference: r.Reference, DashboardURL: al.dashboard}
	for _, f := range r.Objectives {
		switch f.Verdict {
		case detectors.Breached:
			o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: f.Name, Detector: webhook.DetectorObjective,
				Score: f.Value, Threshold: f.Bound(), PValue: math.NaN(), Rule: f.Rule, Summary: f.Summary}})
		case detectors.Met:
			o.Stable = append(o.Stable, f.Name)
		default:
			o.Insufficient = append(o.Insufficient, f.Name)
		}
	}
	v.Decided = append(v.Decided, al.policy.Observe(v.State, o, now)...)
}

// referenceID identifies a reference profile: "ref_" and 32 hex digits of a
// SHA-256 of its encoding, which is canonical, so the same reference (a baseline
// file, a warm-up that has ended) always has the same id and another one another.
func referenceID(p *sketch.Profile) (string, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "ref_" + hex.EncodeToString(sum[:16]), nil
}

// ObservePerformance applies a window's performance verdict to the stream's policy
// state, once per window (labels.Result.Decided).
// minRows is labels.min_rows: fewer labelled predictions are too few for a verdict.
// A window that is not final yet is provisional to the policy: it can fire an alert
// (a degradation, a label shift) but not resolve one, so a few early labels that look
// fine do not end an alert the next window fires again.
func (al *Alerter) ObservePerformance(v *Verdicts, r labels.Result, minRows int64) {
	if !r.Decided {
		return
	}
	o := policy.Observation{Kind: alerting.KindPerformance, Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Labelled, Reference: r.Reference, DashboardURL: al.dashboard,
		Provisional: !r.Final}
	pv := r.Verdict
	if ls := r.LabelShift; ls.Drifted {
		o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: "label", Detector: ls.Effect.Statistic,
			Score: ls.Effect.Value, Threshold: ls.Effect.Min, PValue: ls.PValue, Rule: ls.Rule,
			Summary: fmt.Sprintf("%s %.3g → %.3g", ls.Statistic, ls.Reference, ls.Current)}})
	} else if !math.IsNaN(ls.PValue) {
		o.Stable = append(o.Stable, "label")
	}
	switch {
	case pv.Degraded:
		o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: pv.Metric, Detector: "performance",
			Score: pv.Value, Threshold: pv.Bound, PValue: math.NaN(), Rule: pv.Rule,
			Summary: fmt.Sprintf("%s %.3g, %s: %s of %s predictions labelled", pv.Metric, pv.Value, r.Status(),
				alerting.FormatCount(r.Labelled), alerting.FormatCount(r.Predictions))}})
	case r.Labelled >= minRows:
		o.Stable = append(o.Stable, pv.Metric)
	default:
		o.Insufficient = append(o.Insufficient, pv.Metric)
	}
	v.Decided = append(v.Decided, al.policy.Observe(v.State, o, time.Now())...)
}

// Record writes the stream's pending decisions and its policy state in tx: the audit
// entry of every decision and an outbox item per route that is told, and the silences.
// Once tx has committed, the caller calls Recorded.
func (al *Alerter) Record(tx *state.Tx, v *Verdicts) error {
	for _, d := range v.Decided {
		subject := audit.Of(d.Alert, al.configHash)
		if err := audit.Append(tx, audit.Entry{Event: audit.EventDecision, Subject: subject,
			Decision: string(d.Step), Muted: d.Muted, Features: d.New, Note: d.Reason}); err != nil {
			return err
		}
		if d.Muted != "" {
			continue
		}
		var it outbox.Item
		var err error
		switch {
		case d.Step == alerting.StepRetrain:
			n, ok := al.webhooks[d.Trigger]
			if !ok {
				return fmt.Errorf("BUG: no webhook for trigger %q", d.Trigger)
			}
			it, err = outbox.WebhookItem(webhookRoute(d.Trigger), n, d, subject)
		case al.hasSlack:
			it, err = outbox.SlackItem(slackRoute, d, subject)
		default:
			continue
		}
		if err != nil {
			return err
		}
		if err := al.outbox.Enqueue(tx, it); err != nil {
			return err
		}
	}
	b, err := json.Marshal(v.State)
	if err != nil {
		return fmt.Errorf("cannot encode the alert state of stream %s: %w", v.Stream, err)
	}
	if err := tx.Put(alertStateBucket, v.Stream, b); err != nil {
		return err
	}
	v.silencesSaving = al.silences.Changes()
	if err := al.silences.Save(tx, time.Now()); err != nil {
		return err
	}
	return tx.Put(lossSeenBucket, v.Stream, strconv.AppendInt(nil, v.LossSeen, 10))
}

// Recorded forgets the decisions a committed transaction holds and tells the outbox
// that it has new items.
func (al *Alerter) Recorded(v *Verdicts) {
	v.Decided = nil
	v.silencesSaved = v.silencesSaving
	al.wake()
}

// lossSeenBucket holds, per stream, the lost-message count the policy last looked at,
// so that a restart (or a new cluster leader) neither alerts again about a loss it
// has seen nor misses one it has not.
const lossSeenBucket = "alert_loss_seen"

// Restore loads a stream's alert state, and the silences, from store.
func (al *Alerter) Restore(store *state.Store, stream string) (*Verdicts, error) {
	v := &Verdicts{Stream: stream, State: &policy.State{}}
	err := store.View(func(tx *state.Tx) error {
		if b := tx.Get(alertStateBucket, stream); b != nil {
			if err := json.Unmarshal(b, v.State); err != nil {
				return fmt.Errorf("cannot read the alert state of stream %s: %w", stream, err)
			}
		}
		if b := tx.Get(lossSeenBucket, stream); b != nil {
			n, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return fmt.Errorf("cannot read the lost messages seen by the alerts of stream %s: %w", stream, err)
			}
			v.LossSeen = n
		}
		return al.silences.Restore(tx, time.Now())
	})
	return v, err
}

// observation is what the policy needs of a window result.
func observation(r engine.Result, dashboard string) policy.Observation {
	o := policy.Observation{Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Rows, Reference: r.Reference, DashboardURL: dashboard}
	for _, f := range r.Findings {
		switch f.Verdict {
		case detectors.Drift:
			o.Drifted = append(o.Drifted, policy.Drift{PSI: f.PSI, Change: alerting.Change{
				Feature: f.Feature, Detector: f.Detector, Score: f.Score,
				Threshold: f.Threshold, PValue: f.AdjustedP, Summary: f.Summary(), Rule: f.Rule,
				Distribution: r.Distribution(f.Feature)}})
		case detectors.Stable:
			if f.Segment != "" {
				o.Quiet = append(o.Quiet, f.Feature)
				continue
			}
			o.Stable = append(o.Stable, f.Feature)
		default:
			o.Insufficient = append(o.Insufficient, f.Feature)
		}
	}
	o.NoData = r.Rows == 0 || (len(o.Drifted)+len(o.Stable) == 0 && len(o.Insufficient) > 0)
	return o
}
