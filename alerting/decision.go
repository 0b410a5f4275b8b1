package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Kind is what an alert is about; with the stream, model, version and feature it
// makes up the alert's identity.
type Kind string

// The kinds of alerts.
const (
	// KindDrift is a feature whose distribution moved away from the
	// reference.
	KindDrift Kind = "drift"
	// KindNoData is a model (or, with Model "", a whole stream) that sent no
	// data, or too little to judge, in a window.
	KindNoData Kind = "no_data"
	// KindDataLoss is a window known to miss data (skipped offsets,
	// undecodable messages…).
	KindDataLoss Kind = "data_loss"
	// KindBlind is a stream whose events are read but cannot be judged: no
	// window closed for several window lengths, or most of a window's events
	// were late or refused (a producer's clock, a bad deploy).
	KindBlind Kind = "blind"
	// KindPerformance is a model whose performance metric, from the labels
	// joined so far, broke its rule; its "features" (Alert.Drifted) are metric
	// names.
	KindPerformance Kind = "performance"
	// KindObjective is a model whose window breached an objective, a fixed bound on a
	// statistic of a field (p99 latency, a null share, rows per minute); its
	// "features" (Alert.Drifted) are the objectives' names.
	KindObjective Kind = "objective"
	// KindRetrain is a retraining webhook call; silences may match it.
	KindRetrain Kind = "retrain"
)

// Step is what a Decision does with an alert episode.
type Step string

// The steps of an episode, and the retraining call.
const (
	StepFire    Step = "fire"
	StepUpdate  Step = "update"
	StepRepeat  Step = "repeat"
	StepResolve Step = "resolve"
	StepRetrain Step = "retrain"
)

// Decision is what to do about one alert episode (or retraining trigger) after a
// window: the one value that travels from the policy (package policy decides it)
// through the outbox, which stores it, to the notifiers, which render it.
//
// Its JSON encoding is its struct tags (times in UTC, the Alert's and its Changes'
// own encodings); it is what the outbox stores.
type Decision struct {
	// ID identifies the decision and is stable: the same window observed
	// again from the same policy state gives the same ID, so deliveries
	// derived from it (DeliveryID) deduplicate after a crash and replay.
	ID string `json:"id"`
	// Step is StepFire, StepUpdate, StepRepeat, StepResolve or StepRetrain.
	Step Step `json:"step"`
	// Kind is what the alert is about; "" is taken for KindDrift.
	Kind Kind `json:"kind"`
	// Alert is the episode as of this window: its ID is the episode's ID,
	// stable from Fire to Resolve; Drifted holds the firing, unsilenced
	// features with their latest evidence, and Severity the episode's.
	Alert Alert `json:"alert"`
	// Started is the start of the window in which the episode fired.
	Started time.Time `json:"started,omitzero"`
	// Seq numbers the notifications of an episode: 0 for Fire.
	Seq int `json:"seq"`
	// New are the features that fired, and Resolved those that resolved,
	// since the last notification sent.
	New      []string `json:"new,omitempty"`
	Resolved []string `json:"resolved,omitempty"`
	// Silenced are firing features left out of Alert because a silence
	// matches them.
	Silenced []string `json:"silenced,omitempty"`
	// Muted says why nothing should be sent (one of package policy's Muted
	// constants); "" means send. Muted decisions exist so they can be audited.
	Muted string `json:"muted,omitempty"`
	// Trigger names the retraining trigger of a StepRetrain decision, and
	// Reason says why it fired, e.g. "3 features drifted for 2 windows". On a
	// StepResolve, Reason says why the episode ended when its features did not stop
	// drifting, e.g. "superseded by version 3.3.0"; "" when they did.
	Trigger string `json:"trigger,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// DeliveryID is the webhook-id of the decision sent to a route: stable
// across retries and restarts, and distinct per route.
func (d Decision) DeliveryID(route string) string {
	return StableID("msg_", d.ID, route)
}

// MarshalJSON encodes d by its struct tags, Started in UTC.
func (d Decision) MarshalJSON() ([]byte, error) {
	type plain Decision // without these methods
	d.Started = d.Started.UTC()
	return json.Marshal(plain(d))
}

// UnmarshalJSON replaces d by the encoded decision.
func (d *Decision) UnmarshalJSON(b []byte) error {
	type plain Decision
	var in plain
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decode decision: %w", err)
	}
	*d = Decision(in)
	return nil
}

// StableID is prefix followed by 32 hex digits of a SHA-256 over the parts,
// each length-prefixed so ("a","bc") and ("ab","c") differ: the IDs of episodes,
// decisions and deliveries, equal whenever their parts are.
func StableID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}
