package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers of a dead letter, next to the rejected message's original bytes.
const (
	HeaderReason          = "driftmon-reason"           // Rejected.Reason
	HeaderError           = "driftmon-error"            // Rejected.Err, which never holds field values
	HeaderSourceTopic     = "driftmon-source-topic"     // Message.Topic
	HeaderSourcePartition = "driftmon-source-partition" // Message.Partition, decimal
	HeaderSourceOffset    = "driftmon-source-offset"    // Message.Offset, decimal
)

// DeadLetterOptions configure a DeadLetter. Brokers and Topic are required.
type DeadLetterOptions struct {
	// Brokers are the bootstrap addresses ("host:port") of the cluster holding Topic.
	Brokers []string
	// Topic receives the dead letters. It must exist: the writer does not create topics.
	Topic string
	// Dialer connects to the brokers (TLS, SASL); nil: kafka-go's default.
	Dialer *kafka.Dialer
	// SampleEvery writes one rejection in SampleEvery of each reason (the first, then
	// every SampleEvery-th), so that a flood of one kind neither floods the topic nor
	// hides the others. 0 or 1 writes every rejection.
	SampleEvery int
	// Logger receives write failures, at most one line per minute.
	Logger *slog.Logger
}

// DeadLetter copies rejected messages to a Kafka topic, with why and where from in the
// headers, so that they can be inspected and replayed. It is safe for concurrent use.
type DeadLetter struct {
	opts DeadLetterOptions
	w    *kafka.Writer

	mu       sync.Mutex
	seen     map[Reason]uint64 // rejections offered per reason, for sampling
	failures int               // failed writes since the last log line
	lastLog  time.Time
}

// deadLetterLogEvery is the least time between two log lines about failed writes.
const deadLetterLogEvery = time.Minute

// NewDeadLetter checks opts and connects to nothing; the first write does.
func NewDeadLetter(opts DeadLetterOptions) (*DeadLetter, error) {
	errs := CheckTopic(opts.Brokers, opts.Topic)
	if opts.SampleEvery < 0 {
		errs = append(errs, fmt.Errorf("sample_every %d is negative", opts.SampleEvery))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cannot configure dead-letter topic: %w", err)
	}
	if opts.SampleEvery == 0 {
		opts.SampleEvery = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = opts.Logger.With("component", "deadletter", "topic", opts.Topic)
	var transport kafka.RoundTripper
	if opts.Dialer != nil {
		transport = Transport(opts.Dialer)
	}
	return &DeadLetter{
		opts: opts,
		w: &kafka.Writer{
			Addr:  kafka.TCP(opts.Brokers...),
			Topic: opts.Topic,
			// A write is a batch of rejections from one decode call; do not hold it back
			// waiting for more.
			BatchTimeout: 10 * time.Millisecond,
			RequiredAcks: kafka.RequireAll,
			Transport:    transport,
		},
		seen: make(map[Reason]uint64),
	}, nil
}

// Write copies msg, rejected for r, to the dead-letter topic unless sampling skips it,
// and returns once the brokers have it (at least 10ms: the writer's batch timeout).
func (d *DeadLetter) Write(ctx context.Context, msg Message, r Rejected) error {
	if !d.sample(r.Reason) {
		return nil
	}
	return d.send(ctx, []kafka.Message{letter(&msg, r)})
}

// WriteAll copies the sampled rejections of one Decode call (msgs and the rejections
// Decode returned for them) in a single round trip.
func (d *DeadLetter) WriteAll(ctx context.Context, msgs []Message, rejected []Rejected) error {
	var out []kafka.Message
	for _, r := range rejected {
		if d.sample(r.Reason) {
			out = append(out, letter(&msgs[r.Index], r))
		}
	}
	return d.send(ctx, out)
}

// sample counts a rejection of reason and says whether to write it.
func (d *DeadLetter) sample(reason Reason) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.seen[reason]
	d.seen[reason] = n + 1
	return n%uint64(d.opts.SampleEvery) == 0
}

func (d *DeadLetter) send(ctx context.Context, letters []kafka.Message) error {
	if len(letters) == 0 {
		return nil
	}
	if err := d.w.WriteMessages(ctx, letters...); err != nil {
		d.logFailure(len(letters), err)
		return fmt.Errorf("cannot write %d dead letters to %s: %w", len(letters), d.opts.Topic, err)
	}
	return nil
}

// letter builds the dead letter of m.
func letter(m *Message, r Rejected) kafka.Message {
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	return kafka.Message{
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(r.Reason)},
			{Key: HeaderError, Value: []byte(errText)},
			{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
		},
	}
}

func (d *DeadLetter) logFailure(n int, err error) {
	d.mu.Lock()
	d.failures += n
	now := time.Now()
	if now.Sub(d.lastLog) < deadLetterLogEvery {
		d.mu.Unlock()
		return
	}
	failures := d.failures
	d.failures, d.lastLog = 0, now
	d.mu.Unlock()
	d.opts.Logger.Warn("cannot write dead letters", "letters", failures, "err", err)
}

// Close flushes pending writes and closes the connections.
func (d *DeadLetter) Close() error {
	if err := d.w.Close(); err != nil {
		return fmt.Errorf("cannot close dead-letter writer: %w", err)
	}
	return nil
}
