package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/alerting"
)

// Log is the cluster topic read as a key-value map: a tail reads every record from the
// first offset on and keeps the latest value of each key, so every process that opens
// the topic ends up with the same map. Put appends records; what a process sees of
// them, its own included, is what its tail has applied (Sync waits for that). It is
// safe for concurrent use.
//
// Unlike most of driftmon's parts, Open starts the tail itself and Close stops it: a
// Log is a handle on the topic, like an open file, and its readers and writers live in
// several of the monitor's goroutines.
type Log struct {
	opts   Options
	client *kafka.Client
	// transport holds the client's connections, closed by Close.
	transport *kafka.Transport
	// maxBytes is the largest record batch the topic takes.
	maxBytes int

	// putMu makes Puts take turns, so that the records of one Put are contiguous in
	// the topic.
	putMu          sync.Mutex
	records, bytes atomic.Int64

	mu      sync.RWMutex
	entries map[string][]byte
	// next is the offset after the last record applied (or skipped: see tail).
	next int64
	// progress is closed, and replaced, whenever next moves.
	progress chan struct{}

	changed chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
	closing sync.Once
}

// Open makes sure the cluster topic exists — creating it when it is missing, with one
// partition, cleanup.policy=compact and max.message.bytes; failing with what to do when
// it has several partitions, is not compacted, or cannot be created or described — and
// starts the tail that applies its records from the first offset on. It returns
// without waiting for the tail: call Sync for that.
func Open(ctx context.Context, opts Options) (*Log, error) {
	opts, err := opts.check()
	if err != nil {
		return nil, err
	}
	client, transport := newClient(opts)
	maxBytes, err := ensureTopic(ctx, client, opts)
	if err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}
	l := newLog(opts, client, transport, maxBytes)
	if l.next, err = l.offset(ctx, kafka.FirstOffset); err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("cannot read where cluster topic %s starts: %w", opts.Topic, err)
	}
	tctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	go l.tail(tctx)
	return l, nil
}

// newLog returns a log of an empty map whose tail is not running.
func newLog(opts Options, client *kafka.Client, transport *kafka.Transport, maxBytes int) *Log {
	return &Log{
		opts:      opts,
		client:    client,
		transport: transport,
		maxBytes:  maxBytes,
		entries:   map[string][]byte{},
		progress:  make(chan struct{}),
		changed:   make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// Close stops the tail and closes the connections. Put and Sync fail afterwards; Get
// and Scan go on answering from what was applied.
func (l *Log) Close() error {
	l.closing.Do(func() {
		l.stop()
		<-l.done
		l.transport.CloseIdleConnections()
	})
	return nil
}

// errClosed is returned by Put and Sync after Close.
var errClosed = errors.New("the cluster log is closed")

func (l *Log) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Get returns key's latest value as applied by the tail. The slice is shared with
// other readers and never changed by the Log: do not modify it.
func (l *Log) Get(key string) ([]byte, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok := l.entries[key]
	return v, ok
}

// Scan calls fn with each key that starts with prefix and its value, in key order, as
// they were at one moment (fn may call the Log: it runs after the Log's lock is
// released). Values are shared as with Get: fn must not modify them, and may keep them.
func (l *Log) Scan(prefix string, fn func(key string, value []byte)) {
	type entry struct {
		key   string
		value []byte
	}
	var snapshot []entry
	l.mu.RLock()
	for k, v := range l.entries {
		if strings.HasPrefix(k, prefix) {
			snapshot = append(snapshot, entry{k, v})
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(snapshot, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range snapshot {
		fn(e.key, e.value)
	}
}

// Changed returns a channel that receives a value after the tail has applied new
// records, so that a loop can wait for news with select. Values do not pile up: the
// channel holds at most one, for however many records arrived since it was last read.
func (l *Log) Changed() <-chan struct{} { return l.changed }

// Written returns how many records, and bytes of keys and values, this process's Puts
// have had acknowledged: the cluster's traffic, from this side.
func (l *Log) Written() (records, bytes int64) { return l.records.Load(), l.bytes.Load() }

// Sync returns once the tail has applied every record that was in the topic when Sync
// was called: the records other processes had acknowledged by then, and this
// process's own.
func (l *Log) Sync(ctx context.Context) error {
	if l.closed() {
		return errClosed
	}
	end, err := l.offset(ctx, kafka.LastOffset)
	if err != nil {
		return fmt.Errorf("cannot read the end of cluster topic %s: %w", l.opts.Topic, err)
	}
	for {
		l.mu.RLock()
		next, progress := l.next, l.progress
		l.mu.RUnlock()
		if next >= end {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot sync with cluster topic %s: %w (read up to offset %d of %d)", l.opts.Topic, ctx.Err(), next, end)
		case <-l.done:
			return errClosed
		case <-progress:
		}
	}
}

// offset asks the partition's leader for its first offset (kafka.FirstOffset) or the
// offset the next record will get (kafka.LastOffset).
func (l *Log) offset(ctx context.Context, which int64) (int64, error) {
	var offset int64
	err := retry(ctx, func() error {
		res, err := l.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			l.opts.Topic: {{Partition: 0, Timestamp: which}},
		}})
		if err != nil {
			return err
		}
		for _, p := range res.Topics[l.opts.Topic] {
			if p.Partition != 0 {
				continue
			}
			if p.Error != nil {
				return p.Error
			}
			offset = p.FirstOffset
			if which == kafka.LastOffset {
				offset = p.LastOffset
			}
			return nil
		}
		return errors.New("no answer for partition 0")
	})
	return offset, err
}

// Put appends recs to the topic, in order, and returns once every one is acknowledged
// by all in-sync replicas; it does not wait for the tail, so Get may show the old
// values until Sync has returned. recs go in as few produce requests as the topic's
// max.message.bytes allows, one after the other, and the records of concurrent Puts
// in this process do not interleave. A Put that fails may have written the requests
// before the failing one (and, when the failure is a lost answer, that one too), which
// a later Put of the same keys corrects. Put checks every record before it writes
// any: a key must not be empty, and a record must fit in a batch on its own
// (ErrTooLarge otherwise).
func (l *Log) Put(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	var errs []error
	for i, r := range recs {
		switch n := batchOverhead + recordSize(0, r); {
		case r.Key == "":
			errs = append(errs, fmt.Errorf("record %d: empty key", i))
		case n > l.maxBytes:
			errs = append(errs, fmt.Errorf("record %d (key %q): %w: %d bytes of key and value make a batch of %d bytes, more than the topic's max.message.bytes %d",
				i, r.Key, ErrTooLarge, len(r.Key)+len(r.Value), n, l.maxBytes))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot put %d records to cluster topic %s: %w", len(recs), l.opts.Topic, err)
	}
	l.putMu.Lock()
	defer l.putMu.Unlock()
	if l.closed() {
		return errClosed
	}
	for start := 0; start < len(recs); {
		end, size := start, batchOverhead
		for end < len(recs) {
			n := recordSize(end-start, recs[end])
			if end > start && size+n > l.maxBytes {
				break
			}
			size += n
			end++
		}
		if err := l.produce(ctx, recs[start:end]); err != nil {
			return fmt.Errorf("cannot put records %d to %d of %d to cluster topic %s: %w", start, end-1, len(recs), l.opts.Topic, err)
		}
		l.records.Add(int64(end - start))
		for _, r := range recs[start:end] {
			l.bytes.Add(int64(len(r.Key) + len(r.Value)))
		}
		start = end
	}
	return nil
}

// produce writes recs to partition 0 in one request — one record batch, which the
// broker appends whole or not at all — retrying what may succeed on a second try.
func (l *Log) produce(ctx context.Context, recs []Record) error {
	return retry(ctx, func() error {
		// A record's bytes are read as they are sent: build them again for each try.
		krecs := make([]kafka.Record, len(recs))
		for i, r := range recs {
			krecs[i] = kafka.Record{Key: kafka.NewBytes([]byte(r.Key)), Value: kafka.NewBytes(r.Value)}
		}
		res, err := l.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        l.opts.Topic,
			Partition:    0,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(krecs...),
		})
		if err == nil {
			err = res.Error
		}
		if errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge) {
			return permanent{fmt.Errorf("%w: the broker refused a batch of %d records: %w", ErrTooLarge, len(recs), err)}
		}
		return err
	})
}

// The size of a record batch in bytes as brokers count them for max.message.bytes,
// as kafka-go writes it (protocol/record_v2.go): batchOverhead for the batch, plus
// recordSize for each record.
const batchOverhead = 61

// recordSize is the size of r as the i-th record of a batch whose records all have the
// batch's timestamp (kafka-go gives the time it writes the batch to each).
func recordSize(i int, r Record) int {
	value := 1 // a null value's length, -1
	if r.Value != nil {
		value = varintSize(int64(len(r.Value))) + len(r.Value)
	}
	body := 1 + // attributes
		1 + // timestamp delta, 0
		varintSize(int64(i)) + // offset delta
		varintSize(int64(len(r.Key))) + len(r.Key) +
		value +
		1 // header count, 0
	return varintSize(int64(body)) + body
}

// varintSize is the length of v as a zig-zag varint.
func varintSize(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for ; u >= 0x80; u >>= 7 {
		n++
	}
	return n
}

// retryAttempts and the backoff bound how long a request is tried again.
const (
	retryAttempts   = 10
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 2 * time.Second
)

// permanent marks an error that retry must not try again.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry calls fn until it succeeds, fails with an error that another try cannot mend
// (a Kafka error that is not temporary, or a permanent one), ctx is done, or it has
// tried retryAttempts times; it returns fn's last error. Network errors are tried
// again: the request may not have reached the broker.
func retry(ctx context.Context, fn func() error) error {
	backoff := retryBackoffMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var kerr kafka.Error
		var perm permanent
		if errors.As(err, &perm) {
			return perm.error
		}
		if (errors.As(err, &kerr) && !kerr.Temporary()) || attempt == retryAttempts || ctx.Err() != nil {
			return err
		}
		if alerting.Sleep(ctx, backoff) != nil {
			return err
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}
