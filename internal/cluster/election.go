package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Election makes one of the processes that run it with the same group the leader: the
// member of consumer group `group` that the group assigns the cluster topic's only
// partition. The group is used for that assignment alone: no member reads a record of
// the topic or commits an offset for it.
type Election struct {
	opts  Options
	group string
	// err is what checking the options found, returned by Run.
	err error

	leader atomic.Bool

	mu sync.Mutex
	// member and generation are this process's in the group's latest generation.
	member     string
	generation int32
}

// NewElection checks opts and connects to nothing; Run returns what is wrong with
// them.
func NewElection(opts Options, group string) *Election {
	opts, err := opts.check()
	if err == nil && group == "" {
		err = errors.New("cannot configure the leader election: no group")
	}
	return &Election{opts: opts, group: group, err: err}
}

// Leader says whether this process is the leader now, that is whether Run's fn is
// running. Safe to call from any goroutine.
func (e *Election) Leader() bool { return e.leader.Load() }

// Run joins the group (creating the topic first if it is missing, as Open does) and,
// whenever this process is the leader, calls fn with a context that ends when it stops
// being the leader: at a rebalance (a process joins or leaves the group, or its
// session expires), or when ctx is done. Another process becomes the leader only
// after fn has returned: fn runs inside the group's generation (kafka-go's
// Generation.Start), and the generation cannot end, nor this member rejoin the group,
// before fn returns. So, when processes come and go gracefully, two leaders never
// overlap — provided fn returns within the RebalanceTimeout once its context ends;
// a leader the group cannot reach any more (a network partition) also stops, when its
// heartbeat fails, about when the group gives up on it after the SessionTimeout.
// While another process leads, Run waits for the next generation.
//
// Run returns nil when ctx is done. When fn returns before its context ends, Run
// leaves the group and returns what fn returned. An error fn returns as its context
// ends is logged.
func (e *Election) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	if e.err != nil {
		return e.err
	}
	// The group's leader lists the topic's partitions with a metadata request that
	// lets a broker create a missing topic with its defaults: make sure it exists.
	client, transport := newClient(e.opts)
	_, err := ensureTopic(ctx, client, e.opts)
	transport.CloseIdleConnections()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:      e.group,
		Brokers: e.opts.Brokers,
		Dialer:  e.opts.Dialer,
		Topics:  []string{e.opts.Topic},
		// One partition: whichever member the range balancer lists first gets it.
		GroupBalancers:   []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		SessionTimeout:   e.opts.SessionTimeout,
		RebalanceTimeout: e.opts.RebalanceTimeout,
		// A leader learns of a rebalance at its next heartbeat, and of a lost
		// connection when a heartbeat times out: both well within the session timeout,
		// after which another member may lead.
		HeartbeatInterval: max(e.opts.SessionTimeout/10, 100*time.Millisecond),
		Timeout:           e.opts.SessionTimeout / 2,
		JoinGroupBackoff:  min(time.Second, e.opts.SessionTimeout/4),
		ErrorLogger:       kafkaLogger(e.opts.Logger, slog.LevelDebug),
	})
	if err != nil {
		return fmt.Errorf("cannot join leader election group %s: %w", e.group, err)
	}
	defer group.Close() // leaves the group, after fn has returned
	var logged time.Time
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, kafka.RebalanceInProgress) && time.Since(logged) >= tailLogEvery {
				e.opts.Logger.Warn("cannot join leader election group; retrying", "group", e.group, "err", err)
				logged = time.Now()
			}
			continue
		}
		leads := false
		for _, a := range gen.Assignments[e.opts.Topic] {
			leads = leads || a.ID == 0
		}
		e.mu.Lock()
		e.member, e.generation = gen.MemberID, gen.ID
		e.mu.Unlock()
		e.opts.Logger.Debug("joined leader election group", "group", e.group, "generation", gen.ID, "leader", leads)
		if !leads {
			continue // Next returns once this generation is over
		}
		own, err := e.lead(ctx, gen, fn)
		if own {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// lead runs fn while gen lasts and ctx is not done. own says that fn returned while
// this process was still the leader; err is then what it returned.
func (e *Election) lead(ctx context.Context, gen *kafka.Generation, fn func(context.Context) error) (own bool, err error) {
	type result struct {
		own bool
		err error
	}
	done := make(chan result, 1)
	gen.Start(func(genCtx context.Context) {
		if genCtx.Err() != nil {
			// The generation ended before it began, and Start does not wait for this
			// function then: lead nothing.
			done <- result{}
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-genCtx.Done():
				cancel()
			case <-lctx.Done():
			}
		}()
		e.leader.Store(true)
		e.opts.Logger.Info("this process leads the cluster", "group", e.group, "generation", gen.ID)
		err := fn(lctx)
		e.leader.Store(false)
		own := lctx.Err() == nil
		switch {
		case own:
		case err != nil && !errors.Is(err, context.Canceled):
			e.opts.Logger.Warn("this process no longer leads the cluster; the leader's work ended with an error", "group", e.group, "generation", gen.ID, "err", err)
		default:
			e.opts.Logger.Info("this process no longer leads the cluster", "group", e.group, "generation", gen.ID)
		}
		done <- result{own, err}
	})
	r := <-done
	return r.own, r.err
}

// state returns this process's member id and generation in the group's latest
// generation it joined.
func (e *Election) state() (member string, generation int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.member, e.generation
}
