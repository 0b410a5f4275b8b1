package backtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// TopicOptions says which part of a topic RunTopic replays. Each end is a time or an
// offset, applied to every partition; times are Kafka message timestamps (what
// ListOffsets searches), not the events' own event_time.
type TopicOptions struct {
	// Brokers and Topic are required.
	Brokers []string
	Topic   string
	// Dialer connects to the brokers (TLS, SASL); nil: kafka-go's default.
	Dialer *kafka.Dialer
	// From starts each partition at its first message stamped at or after From. Zero:
	// FromOffset, clamped to the partition's first offset (0, the default, is the
	// beginning of the log).
	From       time.Time
	FromOffset int64
	// To ends each partition before its first message stamped at or after To. Zero:
	// before ToOffset, or, when that is 0 too, at the partition's end when the run
	// starts, so that a backtest of a live topic terminates.
	To       time.Time
	ToOffset int64
	// MaxBatch is the most messages decoded and processed at once. Default 1000.
	MaxBatch int
	// OnWindow receives each window as it closes; an error stops the run.
	OnWindow func(Window) error
	// Progress, when set, is called after each batch with the messages read so far.
	Progress func(messages int64)
}

func (o TopicOptions) dialer() *kafka.Dialer {
	if o.Dialer == nil {
		return kafka.DefaultDialer
	}
	return o.Dialer
}

// PartitionRange is the offsets [From, To) RunTopic reads of one partition.
type PartitionRange struct {
	Partition int
	From, To  int64
}

// TopicSummary is what a run over a topic showed.
type TopicSummary struct {
	Summary
	// Ranges are the partitions' offset ranges, by partition; empty ones included.
	Ranges []PartitionRange
	// Messages is how many messages were read; Rows of them decoded, the others
	// Rejected, counted by reason.
	Messages int64
	Rejected map[ingest.Reason]int64
	// Late is how many events arrived after their window had closed.
	Late int64
	// Gaps are the partitions that stopped short of their end offset because the
	// offsets left hold no message (compaction, transaction markers): partition →
	// the offset it stopped at.
	Gaps map[int]int64
}

// Validate reports every problem of opts at once.
func (o TopicOptions) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if o.FromOffset < 0 || o.ToOffset < 0 {
		errs = append(errs, errors.New("offsets must not be negative"))
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		errs = append(errs, fmt.Errorf("from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339)))
	}
	if o.From.IsZero() && o.To.IsZero() && o.ToOffset > 0 && o.FromOffset >= o.ToOffset {
		errs = append(errs, fmt.Errorf("from offset %d is not before to offset %d", o.FromOffset, o.ToOffset))
	}
	return errors.Join(errs...)
}

// RunTopic replays the range of opts.Topic that opts describe through e, then flushes e,
// and calls opts.OnWindow with each window in the order they closed.
//
// Every partition is read by its own partition-pinned reader, concurrently, and each
// batch is fed to e as it arrives, tagged with its partition: nothing is buffered per
// partition. Event-time windows do not depend on that interleaving, since e's watermark
// is the minimum over the partitions still being read (a partition stops counting once
// read to its end). Count windows over several partitions do: which rows share a window
// depends on the order in which batches arrived.
//
// RunTopic never joins a consumer group nor commits an offset, so it cannot move a live
// monitor's position.
func RunTopic(ctx context.Context, e *engine.Engine, opts TopicOptions) (TopicSummary, error) {
	sum := TopicSummary{Rejected: map[ingest.Reason]int64{}, Gaps: map[int]int64{}}
	if err := opts.Validate(); err != nil {
		return sum, fmt.Errorf("topic range: %w", err)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	ranges, err := resolveRanges(ctx, opts)
	if err != nil {
		return sum, err
	}
	sum.Ranges = ranges
	dec, err := ingest.NewJSONDecoder(e.DecoderSpec(), memory.DefaultAllocator)
	if err != nil {
		return sum, fmt.Errorf("decoder: %w", err)
	}
	defer dec.Release()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan topicBatch, len(ranges))
	reading := map[int32]bool{}
	for _, r := range ranges {
		if r.From < r.To {
			reading[int32(r.Partition)] = true
			go readPartition(ctx, opts, r, batches)
		}
	}
	assign := func() []engine.Result {
		parts := make([]int32, 0, len(reading))
		for p := range reading {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		return e.Assign(parts)
	}

	index := map[[2]string]int{}
	emit := func(results []engine.Result) error {
		for _, r := range results {
			k := [2]string{r.Model, r.ModelVersion}
			index[k]++
			sum.Windows++
			if len(r.Drifted()) > 0 {
				sum.Drifted++
			}
			if opts.OnWindow != nil {
				if err := opts.OnWindow(Window{Result: r, Index: index[k], Timed: true}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := emit(assign()); err != nil {
		return sum, err
	}
	var parts []int32
	for len(reading) > 0 {
		var b topicBatch
		select {
		case b = <-batches:
		case <-ctx.Done():
			return sum, ctx.Err()
		}
		if b.err != nil {
			return sum, b.err
		}
		if len(b.msgs) > 0 {
			rec, rejected := dec.Decode(b.msgs)
			parts = parts[:0]
			for i := 0; i < int(rec.NumRows()); i++ {
				parts = append(parts, int32(b.partition))
			}
			err := emit(e.ProcessPartitions(rec, parts))
			sum.Rows += rec.NumRows()
			rec.Release()
			if err != nil {
				return sum, err
			}
			sum.Messages += int64(len(b.msgs))
			for _, r := range rejected {
				sum.Rejected[r.Reason]++
			}
			if opts.Progress != nil {
				opts.Progress(sum.Messages)
			}
		}
		if b.done {
			if b.gapAt >= 0 {
				sum.Gaps[b.partition] = b.gapAt
			}
			delete(reading, int32(b.partition))
			if err := emit(assign()); err != nil {
				return sum, err
			}
		}
	}
	sum.Late = e.Late()
	return sum, emit(e.Flush())
}

// topicBatch is what a partition's reader hands over: messages, and whether the
// partition is done (or failed).
type topicBatch struct {
	partition int
	msgs      []ingest.Message
	done      bool
	gapAt     int64 // with done: the offset the reader stopped short at, or -1
	err       error
}

// readerIdle is how long a reader waits for a message before it concludes that the
// rest of its range holds none: everything in the range was written before the run.
const readerIdle = 10 * time.Second

// readPartition reads r's offsets and sends them in batches, the last one done.
func readPartition(ctx context.Context, opts TopicOptions, r PartitionRange, out chan<- topicBatch) {
	send := func(b topicBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	rd := kafka.NewReader(ingest.PartitionReaderConfig(opts.Brokers, opts.Topic, r.Partition, opts.dialer()))
	defer rd.Close()
	if err := rd.SetOffset(r.From); err != nil {
		send(topicBatch{partition: r.Partition, err: fmt.Errorf("partition %d: cannot seek to offset %d: %w", r.Partition, r.From, err)})
		return
	}
	batch := make([]ingest.Message, 0, opts.MaxBatch)
	for {
		fctx, cancel := context.WithTimeout(ctx, readerIdle)
		m, err := rd.FetchMessage(fctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			send(topicBatch{partition: r.Partition, msgs: batch, done: true, gapAt: r.From})
			return
		case err != nil:
			send(topicBatch{partition: r.Partition, err: fmt.Errorf("partition %d: cannot read: %w", r.Partition, err)})
			return
		}
		if m.Offset >= r.To {
			send(topicBatch{partition: r.Partition, msgs: batch, done: true, gapAt: -1})
			return
		}
		r.From = m.Offset + 1
		batch = append(batch, ingest.Message{Value: m.Value, Time: m.Time, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
		last := r.From >= r.To
		if len(batch) == opts.MaxBatch || last {
			if !send(topicBatch{partition: r.Partition, msgs: batch, done: last, gapAt: -1}) || last {
				return
			}
			batch = make([]ingest.Message, 0, opts.MaxBatch) // the last one is being decoded
		}
	}
}

// ErrUnknownTopic is returned by RunTopic when the brokers do not know the topic.
var ErrUnknownTopic = errors.New("unknown topic")

// resolveRanges finds each partition's offsets to read.
func resolveRanges(ctx context.Context, opts TopicOptions) ([]PartitionRange, error) {
	parts, err := topicPartitions(ctx, opts.dialer(), opts.Brokers, opts.Topic)
	if err != nil {
		return nil, err
	}
	var ranges []PartitionRange
	for _, p := range parts {
		r, err := partitionRange(ctx, opts, p)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: cannot find the offsets to read: %w", opts.Topic, p, err)
		}
		ranges = append(ranges, r)
	}
	return ranges, nil
}

// topicPartitions lists the partitions of topic, asking each broker in turn.
func topicPartitions(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string) ([]int, error) {
	var errs []error
	for _, b := range brokers {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := dialer.DialContext(dctx, "tcp", b)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		ps, err := conn.ReadPartitions(topic)
		conn.Close()
		if errors.Is(err, kafka.UnknownTopicOrPartition) || err == nil && len(ps) == 0 {
			return nil, fmt.Errorf("%w %q on %v", ErrUnknownTopic, topic, brokers)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var out []int
		for _, p := range ps {
			out = append(out, p.ID)
		}
		sort.Ints(out)
		return out, nil
	}
	return nil, fmt.Errorf("cannot list the partitions of topic %s: %w", topic, errors.Join(errs...))
}

// partitionRange asks partition p's leader where opts' range lies in it.
func partitionRange(ctx context.Context, opts TopicOptions, p int) (PartitionRange, error) {
	var errs []error
	for _, b := range opts.Brokers {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := opts.dialer().DialLeader(dctx, "tcp", b, opts.Topic, p)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := readRange(conn, opts, p)
		conn.Close()
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return PartitionRange{}, errors.Join(errs...)
}

func readRange(conn *kafka.Conn, opts TopicOptions, p int) (PartitionRange, error) {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return PartitionRange{}, err
	}
	// at is the first offset stamped at or after t; the end when there is none.
	at := func(t time.Time) (int64, error) {
		o, err := conn.ReadOffset(t)
		if err != nil || o < 0 || o > last {
			return last, err
		}
		return o, nil
	}
	r := PartitionRange{Partition: p, From: max(first, opts.FromOffset), To: last}
	if !opts.From.IsZero() {
		if r.From, err = at(opts.From); err != nil {
			return r, err
		}
	}
	switch {
	case !opts.To.IsZero():
		if r.To, err = at(opts.To); err != nil {
			return r, err
		}
	case opts.ToOffset > 0:
		r.To = min(last, opts.ToOffset)
	}
	r.From = min(r.From, last)
	r.To = max(r.To, r.From) // an empty range, not a negative one
	return r, nil
}
