// Package outbox delivers notifications at least once, surviving restarts.
//
// The monitor enqueues an Item inside the same state transaction that
// commits the window and the alert state it comes from, so a notification
// exists exactly when its decision was committed. Run then delivers each
// item through the Sender of its route, retrying along the Standard
// Webhooks schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
// with jitter, never sooner than a Retry-After), and moves it to the
// dead-letter list when a receiver refuses it for good or the schedule runs
// out. An item keeps its ID, the webhook-id, on every attempt and across
// restarts, so receivers deduplicate; Replay queues a dead (or delivered)
// item again. Every attempt is recorded in the audit trail.
//
// It owns delivery: the queue and its records, the one retry loop (notifiers
// make one attempt per call, so retries, Retry-After included, happen here and
// nowhere else), dead letters, and the Senders that map items onto the Slack and
// webhook notifiers. It keeps its records through alerting.Tx and
// alerting.Store, so it must not import internal/state or anything else under
// internal/; nor sketch or detectors; nor the policy, whose alerting.Decisions it
// stores as they encode themselves.
package outbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
)

// Buckets of the state store the outbox uses.
const (
	bucketPending   = "outbox_pending"
	bucketDelivered = "outbox_delivered"
	bucketDead      = "outbox_dead"
	bucketIndex     = "outbox_ids" // id → status ":" seq key
	bucketMeta      = "outbox_meta"
)

// StandardSchedule is the Standard Webhooks retry schedule: the wait before
// each attempt, the first immediate. After the last attempt fails the item
// is dead.
func StandardSchedule() []time.Duration {
	return []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// ChatSchedule is the retry schedule of messages people read (Slack): a rate limit or
// a brief outage is retried within seconds, Retry-After permitting, rather than after
// the webhook schedule's 5 minutes, and the item is kept as long as a webhook's.
func ChatSchedule() []time.Duration {
	return []time.Duration{0, time.Second, 5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// Item is one notification to deliver.
type Item struct {
	// ID identifies the item in the outbox and is the webhook-id its
	// receiver deduplicates on; enqueueing an ID again is a no-op.
	ID string `json:"id"`
	// Route names the Sender that delivers it.
	Route string `json:"route"`
	// Key orders deliveries: items of one route with the same Key are
	// delivered in enqueue order, each only after the one before succeeded
	// or died (a Slack thread's follow-ups after its parent). "" means the
	// item is independent.
	Key string `json:"key,omitempty"`
	// Body is what is sent, ContentType its media type and Header any
	// format-specific headers. They are stored as is, so they must not hold
	// secrets: senders add credentials and signatures.
	Body        []byte            `json:"body"`
	ContentType string            `json:"content_type,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	// Subject is what the audit trail records about the item.
	Subject audit.Subject `json:"subject"`
	// Decision is the policy decision the item announces, its chart data left out:
	// what the API shows of a delivery (rows, severity, drifted features and the rule
	// that fired), whatever format Body is rendered in. Items stored before it existed
	// have none.
	Decision *alerting.Decision `json:"decision,omitempty"`
}

// Status is where an item stands.
type Status string

// The statuses of items.
const (
	Pending   Status = "pending"
	Delivered Status = "delivered"
	Dead      Status = "dead"
)

// Record is an item with its delivery state, as List and Get return it.
type Record struct {
	Item
	// Seq orders the items by enqueue (or replay).
	Seq    uint64 `json:"seq"`
	Status Status `json:"status"`
	// Enqueued is when it was enqueued or replayed.
	Enqueued time.Time `json:"enqueued"`
	// Attempts counts the attempts made since then.
	Attempts int `json:"attempts"`
	// NextAttempt is when a pending item is due.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastAttempt and LastError describe the latest attempt.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Sender delivers items of one route: one attempt per call, without retries of
// its own, so the schedule is the only retry loop. It returns how long the
// receiver asked to wait (Retry-After) when it did; an
// *alerting.PermanentError (alerting.Permanent) dead-letters the item at once,
// any other error is retried along the schedule.
type Sender interface {
	Send(ctx context.Context, it Item) (retryAfter time.Duration, err error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, it Item) (time.Duration, error)

// Send calls f(ctx, it).
func (f SenderFunc) Send(ctx context.Context, it Item) (time.Duration, error) { return f(ctx, it) }

// Errors of Replay and Get.
var (
	ErrNotFound = errors.New("outbox: no such item")
	ErrPending  = errors.New("outbox: the item is still pending")
)

// Options configures an Outbox.
type Options struct {
	// Senders deliver the items of each route, by route name; required.
	Senders map[string]Sender
	// Schedule is the wait before each attempt; its length is the number of
	// attempts. nil → StandardSchedule. Tests use milliseconds.
	Schedule []time.Duration
	// Schedules are the schedules of routes that do not use Schedule, by route
	// name (ChatSchedule for Slack, say).
	Schedules map[string][]time.Duration
	// Jitter adds up to this fraction of each wait, at random, so retries
	// of many items spread out. 0 → 0.2; negative → none.
	Jitter float64
	// Poll is how often Run looks for due items when nothing wakes it.
	// 0 → 1 s.
	Poll time.Duration
	// KeepDelivered is how many delivered items are kept for List and
	// deduplication. 0 → 10,000.
	KeepDelivered int
	// Now returns the current time; default time.Now. Waits still run on
	// real timers.
	Now func() time.Time
	// Logger reports retries and dead letters; default discards.
	Logger *slog.Logger
}

// Outbox is a durable delivery queue on a state store. Its methods are
// safe for concurrent use.
type Outbox struct {
	// update and view run transactions on the store (its Update and View).
	update    func(fn func(tx alerting.Tx) error) error
	view      func(fn func(tx alerting.Tx) error) error
	senders   map[string]Sender
	routes    []string
	schedule  []time.Duration
	schedules map[string][]time.Duration // by route; the others use schedule
	jitter    float64
	poll      time.Duration
	keep      int
	now       func() time.Time
	log       *slog.Logger
	wake      map[string]chan struct{}
	running   atomic.Bool

	// record writes an attempt's outcome: update, replaced in tests.
	record func(fn func(tx alerting.Tx) error) error
	// held keeps items whose attempt could not be recorded (a full disk) from being
	// sent again before the wait the schedule gives: the store still says they are
	// due. By delivery ID; lost at a restart, which sends them again once.
	heldMu sync.Mutex
	held   map[string]heldItem
}

// heldItem is an item whose attempts could not be recorded: not to be sent before
// until, and attempts made so far (the store's count lags behind).
type heldItem struct {
	until    time.Time
	attempts int
}

// New checks opts and returns an Outbox on store, which must outlive Run (the
// state store, internal/state's *Store); it starts nothing.
func New[T alerting.Tx](store alerting.Store[T], opts Options) (*Outbox, error) {
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("outbox: a store is required"))
	}
	if len(opts.Senders) == 0 {
		errs = append(errs, errors.New("outbox: at least one sender is required"))
	}
	for name, s := range opts.Senders {
		if name == "" || s == nil {
			errs = append(errs, fmt.Errorf("outbox.senders[%q]: a named, non-nil sender is required", name))
		}
	}
	checkSchedule := func(path string, sched []time.Duration) {
		for i, d := range sched {
			if d < 0 {
				errs = append(errs, fmt.Errorf("%s[%d]: must not be negative", path, i))
			}
		}
		if sched != nil && len(sched) == 0 {
			errs = append(errs, fmt.Errorf("%s: at least one attempt is required", path))
		}
	}
	checkSchedule("outbox.schedule", opts.Schedule)
	for route, sched := range opts.Schedules {
		checkSchedule(fmt.Sprintf("outbox.schedules[%q]", route), sched)
		if sched == nil {
			errs = append(errs, fmt.Errorf("outbox.schedules[%q]: at least one attempt is required", route))
		}
	}
	if opts.Poll < 0 || opts.KeepDelivered < 0 {
		errs = append(errs, errors.New("outbox: poll and keep_delivered must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o := &Outbox{
		update:  func(fn func(alerting.Tx) error) error { return store.Update(func(tx T) error { return fn(tx) }) },
		view:    func(fn func(alerting.Tx) error) error { return store.View(func(tx T) error { return fn(tx) }) },
		senders: opts.Senders, schedule: slices.Clone(opts.Schedule), schedules: maps.Clone(opts.Schedules),
		jitter: opts.Jitter, poll: opts.Poll, keep: opts.KeepDelivered, now: opts.Now, log: opts.Logger,
		wake: map[string]chan struct{}{}, held: map[string]heldItem{},
	}
	o.record = o.update
	if o.schedule == nil {
		o.schedule = StandardSchedule()
	}
	if o.jitter == 0 {
		o.jitter = 0.2
	}
	if o.poll == 0 {
		o.poll = time.Second
	}
	if o.keep == 0 {
		o.keep = 10000
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.log = o.log.With("component", "outbox")
	for name := range o.senders {
		o.routes = append(o.routes, name)
		o.wake[name] = make(chan struct{}, 1)
	}
	slices.Sort(o.routes)
	return o, nil
}

// Enqueue adds it to the outbox inside the caller's transaction; it is
// delivered once the transaction commits (call Wake then to skip the poll
// wait). An ID already in the outbox, pending, delivered or dead, is left
// alone, so replaying a window after a crash enqueues nothing twice.
func (o *Outbox) Enqueue(tx alerting.Tx, it Item) error {
	if it.ID == "" {
		return errors.New("cannot enqueue: the item has no ID")
	}
	if _, ok := o.senders[it.Route]; !ok {
		return fmt.Errorf("cannot enqueue %s: no sender for route %q", it.ID, it.Route)
	}
	if tx.Get(bucketIndex, it.ID) != nil {
		return nil
	}
	seq, err := nextSeq(tx)
	if err != nil {
		return fmt.Errorf("cannot enqueue %s: %w", it.ID, err)
	}
	now := o.now()
	r := Record{Item: it, Seq: seq, Status: Pending, Enqueued: now, NextAttempt: now.Add(o.delay(it.Route, 0))}
	if err := put(tx, r); err != nil {
		return fmt.Errorf("cannot enqueue %s: %w", it.ID, err)
	}
	return audit.Append(tx, audit.Entry{Time: now, Event: audit.EventEnqueue, Subject: it.Subject, Delivery: it.ID, Route: it.Route})
}

// Wake makes Run look for due items now, e.g. after a transaction that
// enqueued some committed.
func (o *Outbox) Wake() {
	for _, c := range o.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run delivers due items, one route per goroutine, until ctx is done. An
// attempt cut short by ctx is not counted: the item stays due and the next
// Run sends it again with the same ID. Run must not be called twice at
// once.
func (o *Outbox) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("outbox: Run is already running")
	}
	defer o.running.Store(false)
	done := make(chan struct{}, len(o.routes))
	for _, route := range o.routes {
		go func() {
			defer func() { done <- struct{}{} }()
			o.work(ctx, route)
		}()
	}
	for range o.routes {
		<-done
	}
	return nil
}

// work delivers one route's items until ctx is done.
func (o *Outbox) work(ctx context.Context, route string) {
	sender := o.senders[route]
	timer := time.NewTimer(o.poll)
	defer timer.Stop()
	for ctx.Err() == nil {
		due, next, err := o.due(route)
		if err != nil {
			o.log.Error("cannot read the outbox", "route", route, "err", err)
		}
		for _, r := range due {
			if ctx.Err() != nil {
				return
			}
			o.attempt(ctx, sender, r)
		}
		if len(due) > 0 {
			continue // the next item of a key may be due now
		}
		wait := o.poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(o.now()), 0))
		}
		timer.Reset(wait) // no stale tick survives Reset since Go 1.23
		select {
		case <-ctx.Done():
		case <-o.wake[route]:
		case <-timer.C:
		}
	}
}

// due returns the route's items that are due now, at most one per Key
// (the oldest), and when the next one not yet due will be.
func (o *Outbox) due(route string) (due []Record, next time.Time, err error) {
	now := o.now()
	err = o.view(func(tx alerting.Tx) error {
		seen := map[string]bool{}
		return tx.ForEach(bucketPending, "", func(_ string, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode outbox record: %w", err)
			}
			if r.Route != route {
				return nil
			}
			key := r.Key
			if key == "" {
				key = "\x00" + r.ID
			}
			if seen[key] {
				return nil
			}
			seen[key] = true
			if h, ok := o.heldFor(r.ID); ok {
				if h.until.After(now) {
					if next.IsZero() || h.until.Before(next) {
						next = h.until
					}
					return nil
				}
				r.Attempts = max(r.Attempts, h.attempts)
			}
			if !r.NextAttempt.After(now) {
				due = append(due, r)
			} else if next.IsZero() || r.NextAttempt.Before(next) {
				next = r.NextAttempt
			}
			return nil
		})
	})
	return due, next, err
}

// attempt makes one delivery attempt and records its outcome.
func (o *Outbox) attempt(ctx context.Context, s Sender, r Record) {
	start := o.now()
	retryAfter, err := s.Send(ctx, r.Item)
	if err != nil && ctx.Err() != nil {
		return // shutting down: the outcome is unknown, so the item stays due
	}
	now := o.now()
	r.Attempts++
	r.LastAttempt = start
	e := audit.Entry{Time: now, Event: audit.EventAttempt, Subject: r.Subject, Delivery: r.ID, Route: r.Route, Attempt: r.Attempts}
	var perm *alerting.PermanentError
	switch {
	case err == nil:
		r.Status, r.LastError, r.NextAttempt = Delivered, "", time.Time{}
		e.Outcome = "delivered"
	case errors.As(err, &perm) || r.Attempts >= len(o.scheduleOf(r.Route)):
		r.Status, r.LastError, r.NextAttempt = Dead, err.Error(), time.Time{}
		e.Outcome, e.Error = "dead", err.Error()
	default:
		wait := max(o.delay(r.Route, r.Attempts), retryAfter)
		r.LastError, r.NextAttempt = err.Error(), now.Add(wait)
		e.Outcome, e.Error, e.Next = "retry", err.Error(), r.NextAttempt
	}
	uerr := o.record(func(tx alerting.Tx) error {
		if tx.Get(bucketPending, seqKey(r.Seq)) == nil {
			return nil // replayed or moved meanwhile; nothing to record
		}
		if err := move(tx, Pending, r); err != nil {
			return err
		}
		if r.Status == Delivered {
			if err := o.prune(tx); err != nil {
				return err
			}
		}
		return audit.Append(tx, e)
	})
	log := o.log.With("id", r.ID, "route", r.Route, "attempt", r.Attempts)
	if uerr != nil {
		// The store still says the item is due: without a hold it would be sent
		// again at once, over and over while the disk stays full. Hold it for the
		// schedule's wait after this attempt (at least the retry's own), counting the
		// attempts here, and send it again then, with the same ID: at least once, on
		// the schedule, never in a loop.
		until := now.Add(o.delay(r.Route, r.Attempts))
		if r.NextAttempt.After(until) {
			until = r.NextAttempt
		}
		o.hold(r.ID, heldItem{until, r.Attempts})
		log.Error("cannot record a delivery attempt; the item will be sent again", "outcome", e.Outcome,
			"not_before", until, "err", uerr)
		return
	}
	o.hold(r.ID, heldItem{})
	switch {
	case r.Status == Dead:
		log.Error("delivery failed for good; dead-lettered (replay it once the receiver is fixed)", "err", err)
	case r.Status == Pending:
		log.Warn("delivery failed; will retry", "next", r.NextAttempt, "err", err)
	case r.Attempts > 1:
		log.Info("delivered after retries")
	}
}

// hold keeps the item id from being sent before h.until; a zero h releases it.
func (o *Outbox) hold(id string, h heldItem) {
	o.heldMu.Lock()
	defer o.heldMu.Unlock()
	if h.until.IsZero() {
		delete(o.held, id)
	} else {
		o.held[id] = h
	}
}

// heldFor says whether the item id is held, and how.
func (o *Outbox) heldFor(id string) (heldItem, bool) {
	o.heldMu.Lock()
	defer o.heldMu.Unlock()
	h, ok := o.held[id]
	return h, ok
}

// scheduleOf is the retry schedule of route's items.
func (o *Outbox) scheduleOf(route string) []time.Duration {
	if s, ok := o.schedules[route]; ok {
		return s
	}
	return o.schedule
}

// delay is the jittered wait before attempt n+1 (n attempts made) of an item of route.
func (o *Outbox) delay(route string, n int) time.Duration {
	sched := o.scheduleOf(route)
	d := sched[min(n, len(sched)-1)]
	if d <= 0 || o.jitter <= 0 {
		return max(d, 0)
	}
	return d + rand.N(time.Duration(float64(d)*o.jitter)+1)
}

// prune drops the oldest delivered items beyond KeepDelivered.
func (o *Outbox) prune(tx alerting.Tx) error {
	// Counted with the cursor: tx.Len reads committed pages only, so it
	// misses this transaction's own writes.
	n := 0
	if err := tx.ForEach(bucketDelivered, "", func(string, []byte) error { n++; return nil }); err != nil {
		return err
	}
	extra := n - o.keep
	if extra <= 0 {
		return nil
	}
	var old []Record
	errStop := errors.New("stop")
	err := tx.ForEach(bucketDelivered, "", func(_ string, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode outbox record: %w", err)
		}
		old = append(old, r)
		if len(old) >= extra {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	for _, r := range old {
		if err := tx.Delete(bucketDelivered, seqKey(r.Seq)); err != nil {
			return err
		}
		if err := tx.Delete(bucketIndex, r.ID); err != nil {
			return err
		}
	}
	return nil
}

// Replay queues a dead or delivered item again, due now, with its attempts
// reset and the same ID (so a receiver that did get it deduplicates). It
// returns ErrNotFound for an unknown ID and ErrPending for one still
// pending.
func (o *Outbox) Replay(id string) error {
	err := o.update(func(tx alerting.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		if r.Status == Pending {
			return ErrPending
		}
		from := r.Status
		if err := tx.Delete(bucketFor(from), seqKey(r.Seq)); err != nil {
			return err
		}
		seq, err := nextSeq(tx)
		if err != nil {
			return err
		}
		now := o.now()
		r.Seq, r.Status, r.Enqueued, r.Attempts, r.NextAttempt = seq, Pending, now, 0, now
		if err := put(tx, r); err != nil {
			return err
		}
		return audit.Append(tx, audit.Entry{Time: now, Event: audit.EventReplay, Subject: r.Subject, Delivery: r.ID, Route: r.Route, Note: "was " + string(from)})
	})
	if err != nil {
		return fmt.Errorf("cannot replay %s: %w", id, err)
	}
	o.Wake()
	return nil
}

// Get returns the item with the given ID, or ErrNotFound.
func (o *Outbox) Get(id string) (Record, error) {
	var r Record
	err := o.view(func(tx alerting.Tx) error {
		var err error
		r, err = get(tx, id)
		return err
	})
	return r, err
}

// Counts returns how many items are pending and dead, e.g. for the
// driftmon_outbox_depth metric.
func (o *Outbox) Counts() (pending, dead int, err error) {
	err = o.view(func(tx alerting.Tx) error {
		pending, dead = tx.Len(bucketPending), tx.Len(bucketDead)
		return nil
	})
	return pending, dead, err
}

// List returns the items with the given status, oldest first.
func (o *Outbox) List(status Status) ([]Record, error) {
	var out []Record
	err := o.view(func(tx alerting.Tx) error {
		return tx.ForEach(bucketFor(status), "", func(_ string, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode outbox record: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list the outbox: %w", err)
	}
	return out, nil
}

func bucketFor(s Status) string {
	switch s {
	case Pending:
		return bucketPending
	case Delivered:
		return bucketDelivered
	case Dead:
		return bucketDead
	}
	panic("BUG: unknown outbox status " + string(s))
}

func seqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// nextSeq numbers a new or replayed record.
func nextSeq(tx alerting.Tx) (uint64, error) {
	var seq uint64
	if b := tx.Get(bucketMeta, "seq"); len(b) == 8 {
		seq = binary.BigEndian.Uint64(b)
	}
	seq++
	return seq, tx.Put(bucketMeta, "seq", binary.BigEndian.AppendUint64(nil, seq))
}

// put writes r into the bucket of its status and indexes its ID.
func put(tx alerting.Tx, r Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode outbox record: %w", err)
	}
	if err := tx.Put(bucketFor(r.Status), seqKey(r.Seq), v); err != nil {
		return err
	}
	return tx.Put(bucketIndex, r.ID, []byte(string(r.Status)+":"+seqKey(r.Seq)))
}

// move takes r out of the bucket of status from and writes it as it is now.
func move(tx alerting.Tx, from Status, r Record) error {
	if err := tx.Delete(bucketFor(from), seqKey(r.Seq)); err != nil {
		return err
	}
	return put(tx, r)
}

func get(tx alerting.Tx, id string) (Record, error) {
	ref := tx.Get(bucketIndex, id)
	if ref == nil {
		return Record{}, ErrNotFound
	}
	status, key, ok := strings.Cut(string(ref), ":")
	if !ok || (Status(status) != Pending && Status(status) != Delivered && Status(status) != Dead) {
		return Record{}, fmt.Errorf("outbox index entry %q is corrupt", ref)
	}
	v := tx.Get(bucketFor(Status(status)), key)
	if v == nil {
		return Record{}, ErrNotFound
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("decode outbox record: %w", err)
	}
	return r, nil
}

// listed is d as an item keeps it for listing: without the chart data of its changes,
// which only the Slack sender draws (from the item's Body).
func listed(d alerting.Decision) *alerting.Decision {
	d.Alert = d.Alert.WithoutDistributions()
	return &d
}
