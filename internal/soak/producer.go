package soak

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// exactWriter appends batches to partition 0 of a topic exactly once and in order,
// across broker restarts: when a write fails it reads the partition's end offset to
// learn whether the batch landed (a record batch is appended whole or not at all)
// before writing it again. A message a producer retried into the log twice would
// otherwise be taken for one the monitor counted twice.
type exactWriter struct {
	addr, topic string
	next        int64 // the offset the next message gets
	conn        *kafka.Conn
	retries     int // writes repeated after a failure
}

func (w *exactWriter) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// maxBatchBytes keeps a produce request under the broker's default message.max.bytes.
const maxBatchBytes = 800 << 10

// write appends msgs, split into batches of at most maxBatchBytes, retrying until ctx
// is done.
func (w *exactWriter) write(ctx context.Context, msgs []kafka.Message) error {
	for len(msgs) > 0 {
		n, size := 0, 0
		for n < len(msgs) && (n == 0 || size+len(msgs[n].Value) < maxBatchBytes) {
			size += len(msgs[n].Value) + 64
			n++
		}
		if err := w.writeBatch(ctx, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

func (w *exactWriter) writeBatch(ctx context.Context, msgs []kafka.Message) error {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return fmt.Errorf("cannot write to %s: %w (last error: %v)", w.topic, ctx.Err(), lastErr)
		}
		if attempt > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		if w.conn == nil {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := kafka.DialLeader(dctx, "tcp", w.addr, w.topic, 0)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			w.conn = c
		}
		if attempt > 0 {
			// Did the failed write land?
			_ = w.conn.SetDeadline(time.Now().Add(5 * time.Second))
			end, err := w.conn.ReadLastOffset()
			if err != nil {
				lastErr = err
				w.close()
				continue
			}
			switch {
			case end == w.next+int64(len(msgs)):
				w.next = end
				return nil
			case end != w.next:
				return fmt.Errorf("BUG: %s ends at offset %d, want %d or %d", w.topic, end, w.next, w.next+int64(len(msgs)))
			}
			w.retries++
		}
		_ = w.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.conn.WriteMessages(msgs...); err != nil {
			lastErr = err
			w.close()
			continue
		}
		w.next += int64(len(msgs))
		return nil
	}
}
