package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
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
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

// alertStateBucket holds each stream's policy state, written in the stream's
// checkpoint transaction together with the outbox items its decisions made.
const alertStateBucket = "alert_state"

// slackRoute is the outbox route of the Slack notifier.
const slackRoute = "slack"

// alerter turns closed windows into policy decisions (fire, update, repeat, resolve,
// retrain) and those into outbox items, in the same transaction as the windows they
// come from. It is the one switch from alerting config to notifiers.
type alerter struct {
	log        *slog.Logger
	policy     *policy.Policy
	senders    map[string]outbox.Sender
	webhooks   map[string]*webhook.Notifier // by webhook (= trigger) name
	hasSlack   bool
	configHash string
	dashboard  string
	onDelivery func(route string, a alerting.Alert, err error)
	silences   *policy.Silences // saved and restored with the policy state

	outbox *outbox.Outbox // set by start; nil when nothing is notified
}

// wake tells the outbox that new items are committed.
func (al *alerter) wake() {
	if al.outbox != nil {
		al.outbox.Wake()
	}
}

// run delivers until ctx is done.
func (al *alerter) run(ctx context.Context) error {
	if al.outbox == nil {
		<-ctx.Done()
		return nil
	}
	return al.outbox.Run(ctx)
}

// newAlerter builds the notifiers and the policy from cfg; it sends nothing.
func newAlerter(cfg *config.Config, log *slog.Logger, silences *policy.Silences, onDelivery func(string, alerting.Alert, error)) (*alerter, error) {
	a := cfg.Alerting
	al := &alerter{
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
		triggers = append(triggers, policy.Trigger{Name: w.Name, MinFeatures: w.MinFeatures,
			KeyFeatures: w.KeyFeatures, ForWindows: w.ForWindows, Cooldown: w.Cooldown})
	}
	p, err := policy.New(policy.Rules{
		FireAfter: a.Policy.FireAfter, ResolveAfter: a.Policy.ResolveAfter, RepeatEvery: a.Policy.RepeatEvery,
		CriticalPSI: a.Policy.CriticalPSI, Retrain: triggers,
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

// start opens the outbox on store; with nothing to notify there is none, and
// decisions are only audited.
func (al *alerter) start(store *state.Store) error {
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
	ob, err := outbox.New(store, outbox.Options{Senders: senders, Logger: al.log})
	if err != nil {
		return err
	}
	al.outbox = ob
	return nil
}

// slackSender holds the Slack notifier until start knows the store.
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

// observe applies a closed window to the stream's policy state and keeps the decisions
// until they are recorded. With every compared window the stream as a whole is also
// observed for data loss: messages deleted from the topic before they were read fire a
// data-loss alert (which holds back the stream's drift alerts: its windows miss data),
// and windows without new loss resolve it.
func (al *alerter) observe(s *stream, r Result) {
	if r.Warmup {
		return
	}
	now := time.Now()
	s.mu.Lock()
	lost := s.pos.lost
	s.mu.Unlock()
	loss := policy.Observation{Stream: r.Stream, WindowStart: r.Start, WindowEnd: r.End,
		Reference: r.Reference, DashboardURL: al.dashboard, DataLoss: lost > s.lossSeen}
	s.lossSeen = lost
	s.decided = append(s.decided, al.policy.Observe(s.alerts, loss, now)...)
	s.decided = append(s.decided, al.policy.Observe(s.alerts, observation(r, al.dashboard), now)...)
}

// observePerformance applies a window's performance verdict to the stream's policy
// state, once per window (PerformanceResult.Decided).
func (al *alerter) observePerformance(s *stream, r PerformanceResult) {
	if !r.Decided {
		return
	}
	o := policy.Observation{Kind: policy.KindPerformance, Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Labelled, Reference: r.Reference, DashboardURL: al.dashboard}
	v := r.Verdict
	if ls := r.LabelShift; ls.Drifted {
		o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: "label", Detector: ls.Effect.Statistic,
			Score: ls.Effect.Value, Threshold: ls.Effect.Min, PValue: ls.PValue, Rule: ls.Rule,
			Summary: fmt.Sprintf("%s %.3g → %.3g", ls.Statistic, ls.Reference, ls.Current)}})
	} else if !math.IsNaN(ls.PValue) {
		o.Stable = append(o.Stable, "label")
	}
	switch {
	case v.Degraded:
		o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: v.Metric, Detector: "performance",
			Score: v.Value, Threshold: v.Bound, PValue: math.NaN(), Rule: v.Rule,
			Summary: fmt.Sprintf("%s %.3g, %s: %s of %s predictions labelled", v.Metric, v.Value, r.Status(),
				alerting.FormatCount(r.Labelled), alerting.FormatCount(r.Predictions))}})
	case r.Labelled >= s.cfg.Labels.MinRows:
		o.Stable = append(o.Stable, v.Metric)
	default:
		o.Insufficient = append(o.Insufficient, v.Metric)
	}
	s.decided = append(s.decided, al.policy.Observe(s.alerts, o, time.Now())...)
}

// record writes the stream's pending decisions and its policy state in tx: the audit
// entry of every decision and an outbox item per route that is told, and the silences.
func (al *alerter) record(tx *state.Tx, s *stream) error {
	for _, d := range s.decided {
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
		case d.Step == policy.Retrain:
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
	b, err := json.Marshal(s.alerts)
	if err != nil {
		return fmt.Errorf("cannot encode the alert state of stream %s: %w", s.cfg.Name, err)
	}
	if err := tx.Put(alertStateBucket, s.cfg.Name, b); err != nil {
		return err
	}
	if err := al.silences.Save(tx, time.Now()); err != nil {
		return err
	}
	return tx.Put(lossSeenBucket, s.cfg.Name, strconv.AppendInt(nil, s.lossSeen, 10))
}

// lossSeenBucket holds, per stream, the lost-message count the policy last looked at,
// so that a restart (or a new cluster leader) neither alerts again about a loss it
// has seen nor misses one it has not.
const lossSeenBucket = "alert_loss_seen"

// restore loads the stream's policy state and the silences from store.
func (al *alerter) restore(store *state.Store, s *stream) error {
	s.alerts = &policy.State{}
	return store.View(func(tx *state.Tx) error {
		if b := tx.Get(alertStateBucket, s.cfg.Name); b != nil {
			if err := json.Unmarshal(b, s.alerts); err != nil {
				return fmt.Errorf("cannot read the alert state of stream %s: %w", s.cfg.Name, err)
			}
		}
		if b := tx.Get(lossSeenBucket, s.cfg.Name); b != nil {
			n, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return fmt.Errorf("cannot read the lost messages seen by the alerts of stream %s: %w", s.cfg.Name, err)
			}
			s.lossSeen = n
		}
		return al.silences.Restore(tx, time.Now())
	})
}

// observation is what the policy needs of a window result.
func observation(r Result, dashboard string) policy.Observation {
	o := policy.Observation{Stream: r.Stream, Model: r.Model, Version: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Rows, Reference: r.Reference, DashboardURL: dashboard}
	for _, f := range r.Findings {
		switch f.Verdict {
		case detectors.Drift:
			o.Drifted = append(o.Drifted, policy.Drift{PSI: f.PSI, Change: alerting.Change{
				Feature: f.Feature, Detector: f.Detector, Score: f.Score,
				Threshold: f.Threshold, PValue: f.AdjustedP, Summary: f.Summary(), Rule: f.Rule,
				Distribution: distribution(r.ReferenceProfile, r.Profile, f.Feature)}})
		case detectors.Stable:
			o.Stable = append(o.Stable, f.Feature)
		default:
			o.Insufficient = append(o.Insufficient, f.Feature)
		}
	}
	o.NoData = r.Rows == 0 || (len(o.Drifted)+len(o.Stable) == 0 && len(o.Insufficient) > 0)
	return o
}

// scratchStore opens a state file that lives as long as the process, for the outbox
// of a monitor configured without state: deliveries are retried while it runs, and
// forgotten when it stops.
func scratchStore() (*state.Store, func(), error) {
	dir, err := os.MkdirTemp("", "driftmon-outbox-")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make a scratch outbox: %w", err)
	}
	st, err := state.Open(filepath.Join(dir, "outbox.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}

// chartBins is how many equal-width bins a numeric feature's chart has.
const chartBins = 16

// distribution is what a chart draws of one feature: shares per bin in the reference
// and in the window. Numeric features get equal-width bins over both sides' p1..p99
// (outer bins open), so the picture is a true histogram; categorical ones their
// categories. It reads the profiles, so it runs on the stream's goroutine.
func distribution(ref, cur *sketch.Profile, feature string) *alerting.Distribution {
	if ref == nil || cur == nil {
		return nil
	}
	rf, cf := ref.Feature(feature), cur.Feature(feature)
	if rf == nil || cf == nil {
		return nil
	}
	switch {
	case rf.Num != nil && cf.Num != nil:
		rn, cn := rf.Num, cf.Num
		if rn.Count() == 0 || cn.Count() == 0 {
			return nil
		}
		lo := min(rn.Quantile(0.01), cn.Quantile(0.01))
		hi := max(rn.Quantile(0.99), cn.Quantile(0.99))
		if !(hi > lo) {
			return nil
		}
		d := &alerting.Distribution{Edges: make([]float64, chartBins+1)}
		for i := range d.Edges {
			d.Edges[i] = lo + (hi-lo)*float64(i)/chartBins
		}
		share := func(n *sketch.Numeric) []float64 {
			out := make([]float64, chartBins)
			prev := 0.0
			for i := 1; i <= chartBins; i++ {
				c := 1.0
				if i < chartBins {
					c = n.CDF(d.Edges[i])
				}
				out[i-1] = max(0, c-prev)
				prev = c
			}
			return out
		}
		d.Reference, d.Current = share(rn), share(cn)
		return d
	case rf.Cat != nil && cf.Cat != nil:
		b := detectors.CategoricalBins(rf.Cat, cf.Cat)
		rt, ct := 0.0, 0.0
		for i := range b.Labels {
			rt += b.Ref[i]
			ct += b.Cur[i]
		}
		if rt == 0 || ct == 0 {
			return nil
		}
		d := &alerting.Distribution{Labels: b.Labels}
		for i := range b.Labels {
			d.Reference = append(d.Reference, b.Ref[i]/rt)
			d.Current = append(d.Current, b.Cur[i]/ct)
		}
		return d
	}
	return nil
}

// Deliveries is the monitor's outbox as the HTTP API sees it: listing, replaying and
// counting notifications. It answers once Run has opened the outbox.
type Deliveries struct{ m *Monitor }

// Deliveries returns the view of the outbox for the API.
func (m *Monitor) Deliveries() Deliveries { return Deliveries{m} }

// ErrNoOutbox is wrapped by the errors of Deliveries and Audit when there is no outbox
// to read: the monitor is not running, has nothing to notify, or is a cluster's
// follower (the leader has the outbox). The API answers it with 503.
var ErrNoOutbox = errors.New("the outbox is not open")

// noOutbox says why there is no outbox; the caller holds m.mu.
func (m *Monitor) noOutbox() error {
	if m.cfg.Cluster != nil {
		return fmt.Errorf("%w: this process does not lead the cluster; the leader has the outbox and the audit trail (GET /api/v1/cluster on each process says which leads)", ErrNoOutbox)
	}
	return fmt.Errorf("%w: the monitor is not running, or has nothing to notify", ErrNoOutbox)
}

func (d Deliveries) outbox() (*outbox.Outbox, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if d.m.running == nil {
		return nil, d.m.noOutbox()
	}
	return d.m.running, nil
}

// List returns the notifications with the given status.
func (d Deliveries) List(status outbox.Status) ([]outbox.Record, error) {
	ob, err := d.outbox()
	if err != nil {
		return nil, err
	}
	return ob.List(status)
}

// Replay queues a dead (or delivered) notification again.
func (d Deliveries) Replay(id string) error {
	ob, err := d.outbox()
	if err != nil {
		return err
	}
	return ob.Replay(id)
}

// Counts returns how many notifications are pending and dead.
func (d Deliveries) Counts() (pending, dead int, err error) {
	ob, err := d.outbox()
	if err != nil {
		return 0, 0, err
	}
	return ob.Counts()
}

// Audit reads the audit trail: every alert decision and delivery attempt.
func (m *Monitor) Audit(q audit.Query) ([]audit.Entry, error) {
	m.mu.Lock()
	st, noOutbox := m.obStore, m.noOutbox()
	m.mu.Unlock()
	if st == nil {
		return nil, noOutbox
	}
	return audit.List(st, q)
}
