package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaOptions configure a Kafka source. Brokers, Topic and GroupID are required.
type KafkaOptions struct {
	Brokers []string
	Topic   string
	GroupID string
	// StartAtLatest makes a group with no committed offset start at the end of the
	// topic instead of its beginning.
	StartAtLatest bool
	// MaxBatch is the most messages handed over at once. Default 1000.
	MaxBatch int
	// Linger is how long a batch waits to fill once its first message is there.
	// Default 100ms.
	Linger time.Duration
	// Logger receives connection problems, never a line per message.
	Logger *slog.Logger
}

// Kafka consumes one topic as a member of a consumer group and hands messages over in
// batches. Offsets are committed to Kafka after the handler has returned, so delivery is
// at least once.
//
// TODO(exactly-once): the group Reader re-delivers stale messages after a rebalance and
// has no revocation hook; the checkpointed design (DESIGN §6) replaces it with
// ConsumerGroup/Generation and partition-pinned readers.
type Kafka struct {
	opts KafkaOptions
	// health is the outcome of the latest probe of the brokers and the topic; Ready
	// reads it from other goroutines.
	health atomic.Pointer[error]
}

// errNotStarted is what Ready says before Run's first probe.
var errNotStarted = errors.New("not started")

// NewKafka checks opts and connects to nothing.
func NewKafka(opts KafkaOptions) (*Kafka, error) {
	var errs []error
	if len(opts.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if opts.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if opts.GroupID == "" {
		errs = append(errs, errors.New("no group id"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cannot configure kafka source: %w", err)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Linger <= 0 {
		opts.Linger = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Kafka{opts: opts}
	k.setHealth(errNotStarted)
	return k, nil
}

func (k *Kafka) setHealth(err error) { k.health.Store(&err) }

// Ready says whether the latest probe reached a broker and found the topic: nil when
// it did, the reason otherwise. Safe to call from any goroutine.
func (k *Kafka) Ready() error { return *k.health.Load() }

// probeEvery is how often Run checks that the brokers answer and the topic exists.
const probeEvery = 10 * time.Second

// probe asks one broker after another for the topic's partitions.
func (k *Kafka) probe(ctx context.Context) error {
	var errs []error
	for _, b := range k.opts.Brokers {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := kafka.DialContext(pctx, "tcp", b)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot reach broker %s: %w", b, err))
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		parts, err := conn.ReadPartitions(k.opts.Topic)
		conn.Close()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cannot read partitions of topic %s from %s: %w", k.opts.Topic, b, err))
			continue
		case len(parts) == 0:
			return fmt.Errorf("topic %s does not exist", k.opts.Topic)
		}
		return nil
	}
	return errors.Join(errs...)
}

// watch probes until ctx is done, logging each change of health once.
func (k *Kafka) watch(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	var last string
	for {
		err := k.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		k.setHealth(err)
		now := fmt.Sprint(err)
		switch {
		case err != nil && now != last:
			k.opts.Logger.Warn("kafka source not ready; retrying", "topic", k.opts.Topic, "err", err)
		case err == nil && last != "" && last != "<nil>":
			k.opts.Logger.Info("kafka source ready again", "topic", k.opts.Topic)
		}
		last = now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run consumes until ctx is done or handle fails, and returns handle's error (nil when
// ctx ended the run). handle owns nothing it is given beyond the call.
func (k *Kafka) Run(ctx context.Context, handle func(ctx context.Context, batch []Message) error) error {
	start := kafka.FirstOffset
	if k.opts.StartAtLatest {
		start = kafka.LastOffset
	}
	log := k.opts.Logger
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go k.watch(wctx)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     k.opts.Brokers,
		GroupID:     k.opts.GroupID,
		Topic:       k.opts.Topic,
		StartOffset: start,
		// kafka-go sets the socket deadline to MaxWait and asks the broker to wait
		// MaxWait minus an RTT allowance of min(1s, MaxWait/4): a short MaxWait leaves too
		// small a margin and fetches time out. Latency does not suffer: a fetch returns as
		// soon as there is one message.
		MaxWait: 3 * time.Second,
		// Keep rebalances short: a restarted monitor should not wait a minute for its
		// own previous member to expire.
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		HeartbeatInterval: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka", "detail", fmt.Sprintf(msg, args...))
		}),
	})
	defer r.Close()

	raw := make([]kafka.Message, 0, k.opts.MaxBatch)
	batch := make([]Message, 0, k.opts.MaxBatch)
	for {
		raw = raw[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot fetch from %s: %w", k.opts.Topic, err)
		}
		raw = append(raw, m)
		lctx, cancel := context.WithTimeout(ctx, k.opts.Linger)
		for len(raw) < k.opts.MaxBatch {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			raw = append(raw, m)
		}
		cancel()

		batch = batch[:0]
		for _, m := range raw {
			batch = append(batch, Message{Value: m.Value, Time: m.Time, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
		}
		if err := handle(ctx, batch); err != nil {
			return err
		}
		// Commit even when ctx has just ended: the batch is processed, and an
		// uncommitted batch would be delivered again after a restart.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = r.CommitMessages(cctx, raw...)
		cancel()
		if err != nil {
			// A failed commit only means some events may be seen again after a restart.
			log.Warn("cannot commit offsets", "topic", k.opts.Topic, "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
