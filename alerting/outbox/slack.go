package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/slack"
)

// Buckets the Slack sender keeps its threads in.
const (
	bucketThreads = "slack_threads" // episode ID → parent ts
	bucketReplies = "slack_replies" // episode ID "/" item ID → reply ts
)

// SlackItem encodes a decision for a Slack route. Items of one episode
// share a Key, so its follow-ups are delivered after its parent, in order.
func SlackItem(route string, d alerting.Decision, subject audit.Subject) (Item, error) {
	body, err := json.Marshal(d)
	if err != nil {
		return Item{}, fmt.Errorf("cannot encode the %s message: %w", route, err)
	}
	return Item{ID: d.DeliveryID(route), Route: route, Key: d.Alert.ID, Body: body, ContentType: "application/json",
		Subject: subject, Decision: listed(d)}, nil
}

// Slack returns the Sender of a Slack route. With a bot token, a Fire
// posts the episode's parent message, and every later step replies in its
// thread and then rewrites the parent with the current status (a Resolve
// included, so the channel shows it resolved). The parent's timestamp is
// kept in store, so threads survive restarts; a reply already posted is
// not posted again when the parent's update is retried. Through an
// incoming webhook every step is a message of its own.
//
// Each call is one attempt of the notifier's; a 429's Retry-After is returned as
// the wait, so the outbox tries again no sooner.
//
// In bot-token mode a new parent also gets a PNG chart of the drifted features'
// reference and current distributions in its thread, when the alert carries them. The
// chart is best effort: a failed upload is logged to log (nil: discarded), the
// notification still counts as delivered.
func Slack[T alerting.Tx](n *slack.Notifier, store alerting.Store[T], log *slog.Logger) Sender {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &slackSender[T]{n: n, store: store, log: log}
}

type slackSender[T alerting.Tx] struct {
	n     *slack.Notifier
	store alerting.Store[T]
	log   *slog.Logger
}

func (s *slackSender[T]) Send(ctx context.Context, it Item) (time.Duration, error) {
	var d alerting.Decision
	if err := json.Unmarshal(it.Body, &d); err != nil {
		return 0, alerting.Permanent(err)
	}
	if !s.n.Threaded() {
		_, err := s.n.Open(ctx, d)
		return slack.RetryAfter(err), err
	}
	episode := d.Alert.ID
	parent, err := s.get(bucketThreads, episode)
	if err != nil {
		return 0, err
	}
	if parent == "" {
		// A Fire, or a follow-up whose parent is unknown (its Fire died):
		// a new parent showing the current status starts the thread.
		ts, err := s.n.Open(ctx, d)
		if err != nil {
			return slack.RetryAfter(err), err
		}
		if d.Step == alerting.StepResolve {
			return 0, nil
		}
		if err := s.put(bucketThreads, episode, ts); err != nil {
			return 0, err
		}
		if err := s.n.UploadChart(ctx, "", ts, d.Alert); err != nil {
			s.log.Warn("cannot attach the distribution chart", "alert", episode, "err", err)
		}
		return 0, nil
	}
	if d.Step == alerting.StepFire {
		return 0, nil // posted before; only the outbox's record of it was lost
	}
	replyKey := episode + "/" + it.ID
	replied, err := s.get(bucketReplies, replyKey)
	if err != nil {
		return 0, err
	}
	if replied == "" {
		ts, err := s.n.Reply(ctx, parent, d)
		if err != nil {
			return slack.RetryAfter(err), err
		}
		if err := s.put(bucketReplies, replyKey, ts); err != nil {
			return 0, err
		}
	}
	if err := s.n.Refresh(ctx, parent, d); err != nil {
		return slack.RetryAfter(err), err
	}
	if d.Step == alerting.StepResolve {
		return 0, s.forget(episode)
	}
	return 0, nil
}

func (s *slackSender[T]) get(bucket, key string) (string, error) {
	var v string
	err := s.store.View(func(tx T) error {
		v = string(tx.Get(bucket, key))
		return nil
	})
	return v, err
}

func (s *slackSender[T]) put(bucket, key, value string) error {
	return s.store.Update(func(tx T) error { return tx.Put(bucket, key, []byte(value)) })
}

// forget drops a resolved episode's thread and reply marks.
func (s *slackSender[T]) forget(episode string) error {
	return s.store.Update(func(tx T) error {
		if err := tx.DeleteIf(bucketReplies, episode+"/", func(string, []byte) bool { return true }); err != nil {
			return err
		}
		return tx.Delete(bucketThreads, episode)
	})
}
