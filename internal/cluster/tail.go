package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/driftmon/driftmon/alerting"
)

// The tail reads the topic with kafka-go's Client.Fetch rather than a kafka.Reader for
// two reasons. A Reader returns an empty value as nil, so that an empty value could not
// be told from a tombstone. And a Reader goes on from the offset after the last record
// it returned, which on a compacted topic can be inside a batch whose last records
// compaction removed (Kafka keeps a batch's last offset when it rewrites it): a fetch
// there returns that batch again and nothing new, for ever when the batch ends a log
// segment, since a fetch reads one segment (segmentio/kafka-go#621, #1416). The tail
// finds the end of such a batch instead (nextBatch).

const (
	// fetchMaxBytes is how much one fetch asks for. A broker returns a batch bigger
	// than this whole when it is the first one.
	fetchMaxBytes = 4 << 20
	// fetchWait is how long a fetch waits at the end of the topic for a record.
	fetchWait = 3 * time.Second
	// tailBackoff is how long the tail waits after a failed fetch, tailLogEvery how
	// often it logs that fetches fail.
	tailBackoff  = 500 * time.Millisecond
	tailLogEvery = 30 * time.Second
)

// tail applies the topic's records until ctx is done, then closes l.done.
func (l *Log) tail(ctx context.Context) {
	defer close(l.done)
	var logged time.Time
	failing := false
	for ctx.Err() == nil {
		err := l.fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if time.Since(logged) >= tailLogEvery {
				l.opts.Logger.Warn("cannot read the cluster topic; retrying", "err", err)
				logged = time.Now()
			}
			failing = true
			_ = alerting.Sleep(ctx, tailBackoff)
		case failing:
			l.opts.Logger.Info("reading the cluster topic again")
			failing, logged = false, time.Time{}
		}
	}
}

// fetch fetches once from the next offset and applies what it gets.
func (l *Log) fetch(ctx context.Context) error {
	l.mu.RLock()
	next := l.next
	l.mu.RUnlock()
	res, err := l.client.Fetch(ctx, &kafka.FetchRequest{
		Topic:     l.opts.Topic,
		Partition: 0,
		Offset:    next,
		MinBytes:  1,
		MaxBytes:  fetchMaxBytes,
		MaxWait:   fetchWait,
	})
	if err != nil {
		return err
	}
	if errors.Is(res.Error, kafka.OffsetOutOfRange) {
		return l.restart(ctx, next)
	}
	if res.Error != nil {
		return res.Error
	}
	recs, err := decode(res.Records, next)
	if err != nil {
		return err
	}
	switch {
	case len(recs) > 0:
		l.apply(recs)
	case res.HighWatermark > next:
		// There is more, but not in the batch the broker returned: next is past its
		// last record.
		base := firstBatch(res.Records)
		if base < 0 {
			return fmt.Errorf("a fetch at offset %d returned no record batch, though the topic ends at %d", next, res.HighWatermark)
		}
		to, err := nextBatch(next, res.HighWatermark, base, func(p int64) (int64, error) { return l.batchAt(ctx, p) })
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.advance(to)
		l.mu.Unlock()
	}
	return nil
}

// restart reads the topic again from its first offset after a fetch at next found
// next outside the log: records were deleted before the tail read them (retention, or
// kafka-delete-records), or the topic was recreated. The map is rebuilt from what is
// left, as a process opening the topic now would.
func (l *Log) restart(ctx context.Context, next int64) error {
	first, err := l.offset(ctx, kafka.FirstOffset)
	if err != nil {
		return err
	}
	l.opts.Logger.Error("the cluster topic no longer holds the records the log was reading: records were deleted, or the topic recreated; reading it again from the start",
		"offset", next, "first_offset", first)
	l.mu.Lock()
	clear(l.entries)
	l.advance(first)
	l.mu.Unlock()
	l.notify()
	return nil
}

// record is a record as the tail applies it.
type record struct {
	offset int64
	key    string
	value  []byte // nil for a tombstone
}

// decode returns the records of a fetch response at or after offset from, in order.
// It reads every record, so that kafka-go can reuse their buffers.
func decode(rr kafka.RecordReader, from int64) ([]record, error) {
	var recs []record
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot decode a record: %w", err)
		}
		key, kerr := kafka.ReadAll(r.Key)
		value, verr := kafka.ReadAll(r.Value)
		closeBytes(r.Key, r.Value)
		if err := errors.Join(kerr, verr); err != nil {
			return nil, fmt.Errorf("cannot read the record at offset %d: %w", r.Offset, err)
		}
		if r.Offset >= from {
			recs = append(recs, record{r.Offset, string(key), value})
		}
	}
}

// apply makes recs, in order, the map's latest values.
func (l *Log) apply(recs []record) {
	l.mu.Lock()
	for _, r := range recs {
		if r.value == nil {
			delete(l.entries, r.key)
		} else {
			l.entries[r.key] = r.value
		}
	}
	l.advance(recs[len(recs)-1].offset + 1)
	l.mu.Unlock()
	l.notify()
}

// advance moves next to offset and wakes Sync's waiters. l.mu must be held.
func (l *Log) advance(offset int64) {
	l.next = offset
	close(l.progress)
	l.progress = make(chan struct{})
}

// notify tells Changed's reader that the map changed.
func (l *Log) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// batchAt returns the base offset of the first batch a fetch at offset p returns (the
// batch that holds p, or the first after it), or -1 when there is none. It asks for as
// little as possible: the broker still returns that first batch whole.
func (l *Log) batchAt(ctx context.Context, p int64) (int64, error) {
	res, err := l.client.Fetch(ctx, &kafka.FetchRequest{
		Topic:     l.opts.Topic,
		Partition: 0,
		Offset:    p,
		MinBytes:  1,
		MaxBytes:  1,
		MaxWait:   100 * time.Millisecond,
	})
	if err != nil {
		return 0, err
	}
	if res.Error != nil {
		return 0, res.Error
	}
	base := firstBatch(res.Records)
	discard(res.Records)
	return base, nil
}

// discard releases the buffers of a fetch response's records without reading them.
func discard(rr kafka.RecordReader) {
	for {
		r, err := rr.ReadRecord()
		if err != nil {
			return
		}
		closeBytes(r.Key, r.Value)
	}
}

// closeBytes gives the buffers of a record's key and value back to kafka-go.
func closeBytes(bs ...kafka.Bytes) {
	for _, b := range bs {
		if b != nil {
			b.Close()
		}
	}
}

// firstBatch returns the base offset of the first batch of a fetch response, or -1.
func firstBatch(rr kafka.RecordReader) int64 {
	s, ok := rr.(*protocol.RecordStream)
	if !ok || len(s.Records) == 0 {
		return -1
	}
	switch b := s.Records[0].(type) {
	case *protocol.RecordBatch:
		return b.BaseOffset
	case *protocol.ControlBatch:
		return b.BaseOffset
	case *protocol.MessageSet:
		return b.BaseOffset
	}
	return -1
}

// nextBatch returns the offset after the batch that starts at base and holds offset
// from but no record at or after it (compaction removed the batch's last records). A
// fetch at offset p returns first the batch that holds p, or the first one after it:
// baseAt(p), that batch's base offset, grows with p, and the answer is the least p in
// (from, end] for which it is not base, end being the log's end. nextBatch gallops
// from from and then bisects, so it asks O(log n) times for a gap of n offsets.
func nextBatch(from, end, base int64, baseAt func(p int64) (int64, error)) (int64, error) {
	lo, hi := from, end // baseAt(lo) is base; hi is past the batch
	for step := int64(1); lo+step < hi; step *= 2 {
		b, err := baseAt(lo + step)
		if err != nil {
			return 0, err
		}
		if b != base {
			hi = lo + step
			break
		}
		lo += step
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		b, err := baseAt(mid)
		if err != nil {
			return 0, err
		}
		if b != base {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}
