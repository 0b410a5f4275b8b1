package soak

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// feed is one stream of the campaign: its topics (the faulted run's and the
// reference's), its valid and bad messages, and what was produced.
type feed struct {
	stream     string // the stream's name in driftmon's config
	format     string
	topic      string
	windowRows int64
	rowsPerMsg int64   // events in one valid message (Arrow IPC carries several)
	msgRate    float64 // valid messages per second
	badTotal   int64   // bad messages over the fault phase
	good       func(n int64) []byte
	bad        func(n int64) badMessage

	mu        sync.Mutex
	goodMsgs  int64
	badMsgs   int64
	badBy     map[string]int64
	ref, soak *exactWriter
}

func (f *feed) refTopic() string { return f.topic + "-ref" }

// produced returns the valid events and the bad messages by reason written so far.
func (f *feed) produced() (events int64, badBy map[string]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	badBy = make(map[string]int64, len(f.badBy))
	for k, v := range f.badBy {
		badBy[k] = v
	}
	return f.goodMsgs * f.rowsPerMsg, badBy
}

func (f *feed) messages() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.goodMsgs + f.badMsgs
}

// due appends to msgs the messages due after elapsed of total, valid and bad
// interleaved in proportion, at most limit.
func (f *feed) due(msgs []kafka.Message, elapsed, total time.Duration, limit int) []kafka.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	wantGood := int64(elapsed.Seconds() * f.msgRate)
	wantBad := int64(float64(f.badTotal) * elapsed.Seconds() / total.Seconds())
	if elapsed >= total {
		wantBad = f.badTotal
	}
	goodTotal := total.Seconds() * f.msgRate
	for (f.goodMsgs < wantGood || f.badMsgs < wantBad) && len(msgs) < limit {
		if f.badMsgs < wantBad && (f.goodMsgs >= wantGood || float64(f.badMsgs)/float64(f.badTotal) <= float64(f.goodMsgs)/goodTotal) {
			m := f.bad(f.badMsgs)
			msgs = append(msgs, kafka.Message{Value: m.value, Time: traffic0})
			f.badBy[m.reason]++
			f.badMsgs++
		} else {
			msgs = append(msgs, kafka.Message{Value: f.good(f.goodMsgs), Time: traffic0.Add(time.Duration(f.goodMsgs) * 10 * time.Millisecond)})
			f.goodMsgs++
		}
	}
	return msgs
}

// produce writes the feeds' messages until the fault phase ends: each chunk to the
// reference topic first, then to the faulted one.
func (c *campaign) produce(ctx context.Context, until time.Time) {
	for _, f := range c.feeds {
		f.ref = &exactWriter{addr: c.broker.Addr(), topic: f.refTopic()}
		f.soak = &exactWriter{addr: c.broker.Addr(), topic: f.topic}
		defer f.ref.close()
		defer f.soak.close()
	}
	begin := time.Now()
	total := until.Sub(begin)
	var msgs []kafka.Message
	for {
		now := time.Now()
		elapsed := min(now.Sub(begin), total)
		wrote := false
		for _, f := range c.feeds {
			msgs = f.due(msgs[:0], elapsed, total, 2000)
			if len(msgs) == 0 {
				continue
			}
			wrote = true
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			err := f.ref.write(wctx, msgs)
			if err == nil {
				err = f.soak.write(wctx, msgs)
			}
			cancel()
			if err != nil {
				c.mu.Lock()
				c.prodErr = err
				c.mu.Unlock()
				c.logf("producer: %v", err)
				return
			}
			c.mu.Lock()
			c.retries = 0
			for _, f := range c.feeds {
				c.retries += f.ref.retries + f.soak.retries
			}
			c.mu.Unlock()
		}
		if wrote {
			continue
		}
		if elapsed >= total {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
