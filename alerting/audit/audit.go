// Package audit is the trail of what driftmon decided and delivered: every
// alert decision (fired, updated, silenced, inhibited…) and every delivery
// attempt, each with the model version, reference, window and config hash
// it was made with, so "why did (or didn't) we page at 3 am?" has an answer.
//
// Entries live in a bucket of the state store and are appended inside the
// caller's transaction, so an entry exists exactly when the change it
// records was committed.
//
// It owns the trail's records and their bucket, and imports only alerting (for
// the transaction it writes in and the Alert it describes): not the policy, the
// outbox or any notifier, which append to it, and nothing under internal/.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// Buckets of the state store the trail uses.
const (
	bucket     = "audit"
	bucketMeta = "audit_meta"
)

// The events of Entry.Event.
const (
	// EventDecision is an alert decision of the policy, muted or not.
	EventDecision = "decision"
	// EventEnqueue is a delivery put in the outbox.
	EventEnqueue = "enqueue"
	// EventAttempt is one delivery attempt and its outcome.
	EventAttempt = "attempt"
	// EventReplay is a dead or delivered call queued again by an operator.
	EventReplay = "replay"
)

// Subject is what an entry is about: the alert and the evidence behind it.
type Subject struct {
	// Alert is the alert's (episode's) ID.
	Alert        string `json:"alert,omitempty"`
	Stream       string `json:"stream,omitempty"`
	Model        string `json:"model,omitempty"`
	ModelVersion string `json:"model_version,omitempty"`
	// Reference identifies what the window was compared with.
	Reference   string    `json:"reference,omitempty"`
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	// ConfigHash identifies the configuration the decision was made under
	// (see Hash).
	ConfigHash string `json:"config_hash,omitempty"`
}

// Of is the subject of an alert decided under the given config hash.
func Of(a alerting.Alert, configHash string) Subject {
	return Subject{
		Alert: a.ID, Stream: a.Stream, Model: a.Model, ModelVersion: a.ModelVersion,
		Reference: a.Reference, WindowStart: a.WindowStart, WindowEnd: a.WindowEnd,
		ConfigHash: configHash,
	}
}

// Hash is the config hash of a configuration file's bytes: the first 16
// hex digits of its SHA-256.
func Hash(config []byte) string {
	sum := sha256.Sum256(config)
	return hex.EncodeToString(sum[:8])
}

// Entry is one record of the trail. Its JSON encoding, what the trail stores and
// the API returns, is its struct tags.
type Entry struct {
	// Time is when it happened; Seq orders entries of the same instant.
	// Append sets Seq.
	Time time.Time `json:"time"`
	Seq  uint64    `json:"seq"`
	// Event is one of the Event constants.
	Event string `json:"event"`
	// Subject is what the entry is about; its fields are promoted (e.Model).
	Subject `json:"subject"`
	// Decision is the policy's step ("fire", "update", "repeat",
	// "resolve", "retrain") and Muted why it was not sent ("silenced",
	// "inhibited", "cooldown"…), for EventDecision.
	Decision string `json:"decision,omitempty"`
	Muted    string `json:"muted,omitempty"`
	// Features are the features concerned, e.g. the ones that fired.
	Features []string `json:"features,omitempty"`
	// Note is a free-form explanation, e.g. "3 features drifted for 2
	// windows".
	Note string `json:"note,omitempty"`
	// Delivery is the outbox item (webhook-id) and Route its destination,
	// for EventEnqueue, EventAttempt and EventReplay.
	Delivery string `json:"delivery,omitempty"`
	Route    string `json:"route,omitempty"`
	// Attempt numbers an attempt from 1; Outcome is "delivered", "retry"
	// or "dead"; Error says why it failed (without secrets); Next is when
	// a retry is due.
	Attempt int       `json:"attempt,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
	Error   string    `json:"error,omitempty"`
	Next    time.Time `json:"next,omitzero"`
}

// UnmarshalJSON decodes an entry. Entries written before the subject was nested
// under "subject" (driftmon up to 9f2f0e6) hold its fields at the top level; they
// decode alike.
func (e *Entry) UnmarshalJSON(b []byte) error {
	type plain Entry // without this method
	var in struct {
		plain
		Subject // the top-level subject of earlier entries
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*e = Entry(in.plain)
	if e.Subject == (Subject{}) {
		e.Subject = in.Subject
	}
	return nil
}

// Append records e inside tx, numbering it after every earlier entry.
func Append(tx alerting.Tx, e Entry) error {
	var seq uint64
	if b := tx.Get(bucketMeta, "seq"); len(b) == 8 {
		seq = binary.BigEndian.Uint64(b)
	}
	seq++
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cannot encode audit entry: %w", err)
	}
	if err := tx.Put(bucketMeta, "seq", binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return err
	}
	return tx.Put(bucket, key(seq), v)
}

// key orders entries by sequence number, which follows commit order.
func key(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// Query selects entries; zero fields select everything.
type Query struct {
	// After returns entries with Seq > After, for paging.
	After uint64
	// Alert, Delivery and Model keep only entries about them.
	Alert, Delivery, Model string
	// Limit caps the number of entries returned; 0 → 1000.
	Limit int
}

// List returns the entries that match q, oldest first.
func List[T alerting.Tx](s alerting.Store[T], q Query) ([]Entry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []Entry
	errStop := fmt.Errorf("stop")
	err := s.View(func(tx T) error {
		err := tx.ForEach(bucket, key(q.After+1), func(_ string, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry: %w", err)
			}
			if (q.Alert != "" && e.Alert != q.Alert) || (q.Delivery != "" && e.Delivery != q.Delivery) || (q.Model != "" && e.Model != q.Model) {
				return nil
			}
			out = append(out, e)
			if len(out) >= limit {
				return errStop
			}
			return nil
		})
		if err == errStop {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the audit trail: %w", err)
	}
	return out, nil
}

// Prune deletes the entries older than before, at most limit of them (0:
// all), and returns how many it deleted. Call it now and then to bound the
// trail.
func Prune[T alerting.Tx](s alerting.Store[T], before time.Time, limit int) (int, error) {
	n := 0
	err := s.Update(func(tx T) error {
		var old []string
		errStop := fmt.Errorf("stop")
		err := tx.ForEach(bucket, "", func(k string, v []byte) error {
			var e struct {
				Time time.Time `json:"time"`
			}
			if err := json.Unmarshal(v, &e); err != nil || !e.Time.Before(before) || (limit > 0 && len(old) >= limit) {
				return errStop
			}
			old = append(old, k)
			return nil
		})
		if err != nil && err != errStop {
			return err
		}
		for _, k := range old {
			if err := tx.Delete(bucket, k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot prune the audit trail: %w", err)
	}
	return n, nil
}
