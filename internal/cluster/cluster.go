// Package cluster lets several driftmon processes share one stream, with Kafka as the
// only coordinator: the processes never talk to each other. It owns the cluster topic,
// a compacted topic with a single partition used as a replicated key-value log (Log);
// leader election through a consumer group on that topic (Election); a process's share
// of a stream's partitions, which publishes each closed window's partial profile and
// each partition's checkpoint to the log (Worker); the leader's merge and judgement of
// the windows every partition has closed (Judge); and the leader's state, kept in the
// log so that the next leader goes on from it (Log.LeaderState).
//
// It runs the window engine (internal/engine) and reads and writes Kafka through
// ingest; it must not import internal/monitor, which starts the workers and the leader
// and owns the alerting around them, nor internal/httpapi.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/ingest"
)

// Options say where the cluster topic is. Brokers and Topic are required.
type Options struct {
	// Brokers are the addresses to bootstrap from.
	Brokers []string
	// Topic is the cluster topic: compacted, exactly one partition, so that every
	// process reads the same records in the same order.
	Topic string
	// Dialer protects every connection (TLS, SASL): the election's directly, the log's
	// through ingest.Transport. Default kafka.DefaultDialer.
	Dialer *kafka.Dialer
	// Logger receives topic creation, leadership changes and connection problems,
	// never a line per record. Default: discard.
	Logger *slog.Logger
	// ReplicationFactor is the replication factor of a topic created here. Default
	// min(3, number of brokers).
	ReplicationFactor int
	// MaxMessageBytes is the largest record batch, in bytes as Kafka counts them
	// (max.message.bytes): a topic created here gets it as its max.message.bytes, and
	// Put refuses a record that does not fit in a batch of this size on its own.
	// Default 16 MiB.
	MaxMessageBytes int
	// SessionTimeout is how long the election's group waits for a silent member (a
	// killed process) before it makes another the leader; RebalanceTimeout how long a
	// rebalance waits for the members to rejoin, which bounds how long the leader's
	// function may take to return once its context ends. Default 10s each.
	SessionTimeout, RebalanceTimeout time.Duration
}

// Record is one key and its value. A nil Value is a tombstone: it deletes the key, and
// compaction eventually removes it from the topic. An empty non-nil Value is a value.
type Record struct {
	Key   string
	Value []byte
}

// ErrTooLarge is wrapped by Put's error when a record cannot fit in a record batch of
// the topic's max.message.bytes. Putting it again cannot succeed.
var ErrTooLarge = errors.New("record too large for the cluster topic")

// defaultMaxMessageBytes is Options.MaxMessageBytes' default; minMaxMessageBytes the
// least it may be, so that a record with a short key and value fits.
const (
	defaultMaxMessageBytes = 16 << 20
	minMaxMessageBytes     = 1 << 10
)

// check returns opts with its defaults filled in, or every problem with it.
func (opts Options) check() (Options, error) {
	errs := ingest.CheckTopic(opts.Brokers, opts.Topic)
	if opts.ReplicationFactor < 0 {
		errs = append(errs, fmt.Errorf("replication factor %d is negative", opts.ReplicationFactor))
	}
	if opts.MaxMessageBytes != 0 && opts.MaxMessageBytes < minMaxMessageBytes {
		errs = append(errs, fmt.Errorf("max message bytes %d is less than %d", opts.MaxMessageBytes, minMaxMessageBytes))
	}
	if opts.SessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("session timeout %s is negative", opts.SessionTimeout))
	}
	if opts.RebalanceTimeout < 0 {
		errs = append(errs, fmt.Errorf("rebalance timeout %s is negative", opts.RebalanceTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return opts, fmt.Errorf("cannot configure the cluster topic: %w", err)
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = defaultMaxMessageBytes
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.RebalanceTimeout == 0 {
		opts.RebalanceTimeout = 10 * time.Second
	}
	if opts.Dialer == nil {
		opts.Dialer = kafka.DefaultDialer
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = opts.Logger.With("topic", opts.Topic)
	return opts, nil
}

// requestTimeout bounds every request of the log's client; the broker is given half of
// it (kafka-go's Client) to answer a produce or a fetch.
const requestTimeout = 10 * time.Second

// newClient returns a client whose connections opts.Dialer protects, and the transport
// to close when done with it. Its metadata covers the cluster topic only.
func newClient(opts Options) (*kafka.Client, *kafka.Transport) {
	t := ingest.Transport(opts.Dialer)
	t.MetadataTopics = []string{opts.Topic}
	return &kafka.Client{Addr: kafka.TCP(opts.Brokers...), Timeout: requestTimeout, Transport: t}, t
}

// kafkaLogger passes kafka-go's log lines on at level.
func kafkaLogger(log *slog.Logger, level slog.Level) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		log.Log(context.Background(), level, "kafka", "detail", fmt.Sprintf(msg, args...))
	})
}
