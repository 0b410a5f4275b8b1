package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaOptions configure a Kafka source. Brokers, Topic and GroupID are required.
type KafkaOptions struct {
	Brokers []string
	Topic   string
	GroupID string
	// StartAtLatest makes a partition that neither the handler nor the group has an
	// offset for start at the end of the topic instead of its beginning.
	StartAtLatest bool
	// MaxBatch is the most messages handed over at once. Default 1000.
	MaxBatch int
	// Linger is how long a batch waits to fill once its first message is there.
	// Default 100ms.
	Linger time.Duration
	// Tick is how long the source waits without a message before it calls the
	// handler with an empty batch, so that time-based work (checkpoints, idle
	// partitions) happens on the handler's goroutine. Default 1s.
	Tick time.Duration
	// SessionTimeout is how long the group waits for a silent member before it
	// reassigns its partitions; RebalanceTimeout how long a rebalance waits for
	// members to rejoin. Default 10s each: a monitor restarted after a crash waits
	// about this long for its own previous incarnation to expire.
	SessionTimeout, RebalanceTimeout time.Duration
	// OnDataLoss, when set, is told about every range of offsets that was deleted
	// (by retention, usually) before it could be read. The source also logs it as an
	// error and goes on from the oldest offset still there. It may be called from any
	// goroutine.
	OnDataLoss func(DataLoss)
	// Logger receives connection problems, never a line per message.
	Logger *slog.Logger
	// Dialer makes every connection to the brokers (TLS, SASL; see Dialer). Default
	// kafka.DefaultDialer.
	Dialer *kafka.Dialer
}

// DataLoss is a range of a partition's offsets that the source should have read but
// that no longer exist.
type DataLoss struct {
	Topic     string
	Partition int
	// From and To bound the lost offsets: [From, To).
	From, To int64
}

// Handler is what a Kafka source feeds. The source calls it from one goroutine, one
// method at a time.
type Handler interface {
	// Assign says which partitions the source reads from now on: at the start and
	// after every rebalance, before any of their messages. It returns the next offset
	// to read of each partition the handler has a position for; the others start at
	// the group's committed offset, or, without one, at the beginning of the topic
	// (the end with StartAtLatest). Messages fetched before a rebalance but not yet
	// handed over are dropped: they are read again from these offsets.
	Assign(ctx context.Context, partitions []int) (next map[int]int64, err error)
	// Handle processes messages, in offset order within each partition. The batch is
	// empty when nothing arrived for KafkaOptions.Tick. It returns the next offset of
	// each partition whose processing is now durable (nil when nothing new is), which
	// the source commits to the group. The handler must not keep the batch.
	Handle(ctx context.Context, batch []Message) (durable map[int]int64, err error)
	// Close is called once when the run ends, after the last Handle; what it returns
	// as durable is committed to the group.
	Close(ctx context.Context) (durable map[int]int64, err error)
}

// Revoker is a Handler that must act when a rebalance takes its partitions away: the
// source calls Revoke when a generation ends (not when the run ends: that is Close),
// before the member rejoins the group, so what Revoke writes is there before any other
// member is assigned those partitions. What it returns as durable is committed.
type Revoker interface {
	Revoke(ctx context.Context) (durable map[int]int64, err error)
}

// HandlerFunc is a Handler with no position of its own: each batch is committed as
// soon as the function returns, so delivery is at least once. Empty batches are not
// passed on.
type HandlerFunc func(ctx context.Context, batch []Message) error

// Assign starts every partition at the group's committed offset.
func (f HandlerFunc) Assign(context.Context, []int) (map[int]int64, error) { return nil, nil }

// Handle calls f and returns the batch's next offsets.
func (f HandlerFunc) Handle(ctx context.Context, batch []Message) (map[int]int64, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if err := f(ctx, batch); err != nil {
		return nil, err
	}
	next := map[int]int64{}
	for _, m := range batch {
		next[m.Partition] = max(next[m.Partition], m.Offset+1)
	}
	return next, nil
}

// Close has nothing to add.
func (f HandlerFunc) Close(context.Context) (map[int]int64, error) { return nil, nil }

// Kafka consumes one topic as a member of a consumer group. The group only assigns
// partitions: each assigned partition is read by a reader of its own, pinned to it and
// started at the offset the handler says (its checkpoint), and all partitions' messages
// reach the handler on one goroutine. Offsets are committed to the group when the
// handler says they are durable.
type Kafka struct {
	opts KafkaOptions
	// health is the outcome of the latest probe of the brokers and the topic; Ready
	// reads it from other goroutines.
	health atomic.Pointer[error]
}

// errNotStarted is what Ready says before Run's first probe.
var errNotStarted = errors.New("not started")

// CheckTopic returns what is missing from the address of a topic: brokers, the topic's
// name. It is where every Options check of a Kafka client starts, so that each says the
// same.
func CheckTopic(brokers []string, topic string) []error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	return errs
}

// NewKafka checks opts and connects to nothing.
func NewKafka(opts KafkaOptions) (*Kafka, error) {
	errs := CheckTopic(opts.Brokers, opts.Topic)
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
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.RebalanceTimeout <= 0 {
		opts.RebalanceTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dialer == nil {
		opts.Dialer = kafka.DefaultDialer
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

// probe checks that a broker answers and the topic exists (TopicPartitions).
func (k *Kafka) probe(ctx context.Context) error {
	_, err := TopicPartitions(ctx, k.opts.Brokers, k.opts.Dialer, k.opts.Topic)
	return err
}

// TopicPartitions asks one broker after another how many partitions topic has; a
// topic that does not exist is an error that says so. It asks with a Metadata request
// that does not create topics: kafka-go's Conn.ReadPartitions (and so
// Dialer.LookupPartitions) asks brokers to create a missing topic, and Apache Kafka
// does by default (auto.create.topics.enable), so a misspelt topic would be created
// empty, with the broker's defaults.
func TopicPartitions(ctx context.Context, brokers []string, dialer *kafka.Dialer, topic string) (int, error) {
	transport := Transport(dialer)
	defer transport.CloseIdleConnections()
	var errs []error
	for _, b := range brokers {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// The dialer says plainly what went wrong (TLS, SASL); a Client through a
		// Transport reports a refused login as an unexpected EOF.
		conn, err := dialer.DialContext(pctx, "tcp", b)
		if err != nil {
			cancel()
			errs = append(errs, fmt.Errorf("cannot reach broker %s: %w", b, err))
			continue
		}
		conn.Close()
		c := &kafka.Client{Addr: kafka.TCP(b), Transport: transport, Timeout: 5 * time.Second}
		md, err := c.Metadata(pctx, &kafka.MetadataRequest{Topics: []string{topic}})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read the metadata of topic %s from %s: %w", topic, b, err))
			continue
		}
		for _, t := range md.Topics {
			switch {
			case t.Name != topic:
			case t.Error != nil && !errors.Is(t.Error, kafka.UnknownTopicOrPartition):
				return 0, fmt.Errorf("cannot read partitions of topic %s from %s: %w", topic, b, t.Error)
			case t.Error == nil && len(t.Partitions) > 0:
				return len(t.Partitions), nil
			}
		}
		return 0, fmt.Errorf("topic %s does not exist", topic)
	}
	return 0, errors.Join(errs...)
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

func (k *Kafka) kafkaLogger() kafka.Logger {
	log := k.opts.Logger
	return kafka.LoggerFunc(func(msg string, args ...any) {
		log.Warn("kafka", "detail", fmt.Sprintf(msg, args...))
	})
}

// Run consumes until ctx is done or the handler fails, and returns the handler's error
// (nil when ctx ended the run). It calls h.Close before returning.
func (k *Kafka) Run(ctx context.Context, h Handler) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go k.watch(wctx)

	// The group's assignment reads the topic's partitions the way that creates a
	// missing topic (see probe): join only once the topic is there.
	for k.probe(ctx) != nil {
		select {
		case <-ctx.Done():
			return k.finish(ctx, nil, &committer{k: k, durable: map[int]int64{}}, h)
		case <-time.After(time.Second):
		}
	}
	start := kafka.FirstOffset
	if k.opts.StartAtLatest {
		start = kafka.LastOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:          k.opts.GroupID,
		Brokers:     k.opts.Brokers,
		Topics:      []string{k.opts.Topic},
		StartOffset: start,
		// Keep rebalances short: a restarted monitor should not wait a minute for its
		// own previous member to expire.
		SessionTimeout:        k.opts.SessionTimeout,
		RebalanceTimeout:      k.opts.RebalanceTimeout,
		HeartbeatInterval:     time.Second,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           k.kafkaLogger(),
		Dialer:                k.opts.Dialer,
	})
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", k.opts.GroupID, err)
	}
	defer group.Close()
	c := &committer{k: k, durable: map[int]int64{}}
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return k.finish(ctx, nil, c, h)
			}
			k.opts.Logger.Warn("cannot join consumer group; retrying", "group", k.opts.GroupID, "topic", k.opts.Topic, "err", err)
			continue
		}
		stop, err := k.consume(ctx, gen, c, h)
		if stop || err != nil {
			return err
		}
	}
}

// consume reads the partitions gen assigns until the generation or the run ends. stop
// is true when the run is over.
func (k *Kafka) consume(ctx context.Context, gen *kafka.Generation, c *committer, h Handler) (stop bool, err error) {
	assigned := gen.Assignments[k.opts.Topic]
	ids := make([]int, len(assigned))
	for i, a := range assigned {
		ids[i] = a.ID
	}
	sort.Ints(ids)
	k.opts.Logger.Info("partitions assigned", "topic", k.opts.Topic, "generation", gen.ID, "partitions", ids)
	next, err := h.Assign(ctx, ids)
	if err != nil {
		return true, err
	}
	// A new generation (perhaps of a new group) learns at once where the handler's
	// durable state is.
	c.start(gen, ids)

	gctx, cancel := context.WithCancel(ctx)
	var readers sync.WaitGroup
	stopped := make(chan struct{})
	defer func() {
		cancel()
		readers.Wait()
		close(stopped)
	}()
	// The generation ends on a rebalance (or when the group is closed): stop, and only
	// then let the group move on, so that no partition is read by two members at once.
	gen.Start(func(genCtx context.Context) {
		<-genCtx.Done()
		cancel()
		<-stopped
	})
	msgs := make(chan kafka.Message, k.opts.MaxBatch)
	for _, a := range assigned {
		offset, ok := next[a.ID]
		if !ok {
			// The group's committed offset, or kafka.FirstOffset/LastOffset without one.
			offset = a.Offset
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			k.read(gctx, a.ID, offset, msgs)
		}()
	}

	batch := make([]Message, 0, k.opts.MaxBatch)
	tick := time.NewTimer(k.opts.Tick)
	defer tick.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return true, k.finish(ctx, gen, c, h)
		case <-gctx.Done():
			if ctx.Err() != nil {
				return true, k.finish(ctx, gen, c, h)
			}
			// A rebalance. What the readers fetched and the handler did not get is
			// dropped; the next generation starts from the handler's offsets.
			k.opts.Logger.Info("consumer group generation ended", "topic", k.opts.Topic, "generation", gen.ID)
			if r, ok := h.(Revoker); ok {
				durable, err := r.Revoke(ctx)
				if err != nil {
					return true, err
				}
				c.commit(durable)
			}
			return false, nil
		case <-tick.C:
		case m := <-msgs:
			batch = append(batch, message(m))
			if !k.linger(gctx, msgs, &batch) {
				continue // the run or the generation ended: the batch is read again later
			}
		}
		durable, err := h.Handle(ctx, batch)
		if err != nil {
			return true, err
		}
		c.commit(durable)
		tick.Reset(k.opts.Tick)
	}
}

// linger fills batch from msgs for up to Linger. It returns false when ctx ended
// first.
func (k *Kafka) linger(ctx context.Context, msgs <-chan kafka.Message, batch *[]Message) bool {
	t := time.NewTimer(k.opts.Linger)
	defer t.Stop()
	for len(*batch) < k.opts.MaxBatch {
		select {
		case m := <-msgs:
			*batch = append(*batch, message(m))
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func message(m kafka.Message) Message {
	return Message{Value: m.Value, Time: m.Time, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
}

// finish closes the handler when the run ends and commits what it made durable, while
// the generation (if any) still stands.
func (k *Kafka) finish(ctx context.Context, gen *kafka.Generation, c *committer, h Handler) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	durable, err := h.Close(cctx)
	if gen != nil {
		c.commit(durable)
	}
	return err
}

// committer tells the group where the handler's durable state is. A failed commit is
// tried again with the next batch or tick, and at the next generation; it costs only
// the accuracy of lag tools (and, for a handler without a position of its own, some
// messages seen again after a restart).
type committer struct {
	k       *Kafka
	gen     *kafka.Generation
	owned   map[int]bool
	durable map[int]int64 // the handler's durable offsets, all partitions
	dirty   bool          // durable has offsets the group has not taken
	failed  time.Time     // when a failure was last logged
}

// start commits the durable offsets of the partitions gen assigns.
func (c *committer) start(gen *kafka.Generation, partitions []int) {
	c.gen, c.owned = gen, map[int]bool{}
	for _, p := range partitions {
		c.owned[p] = true
	}
	c.dirty = len(c.durable) > 0
	c.commit(nil)
}

// commit adds durable to what is durable and commits what the group lacks.
func (c *committer) commit(durable map[int]int64) {
	for p, o := range durable {
		if o != c.durable[p] {
			c.durable[p], c.dirty = o, true
		}
	}
	if !c.dirty || c.gen == nil {
		return
	}
	offsets := map[int]int64{}
	for p, o := range c.durable {
		if c.owned[p] {
			offsets[p] = o
		}
	}
	if len(offsets) == 0 {
		c.dirty = false
		return
	}
	if err := c.gen.CommitOffsets(map[string]map[int]int64{c.k.opts.Topic: offsets}); err != nil {
		if time.Since(c.failed) > 10*time.Second {
			c.k.opts.Logger.Warn("cannot commit offsets; will retry", "topic", c.k.opts.Topic, "err", err)
			c.failed = time.Now()
		}
		return
	}
	c.dirty = false
}

// read fetches partition p from offset (absolute, or kafka.FirstOffset/LastOffset)
// and sends each message once, in order, to out until ctx is done.
func (k *Kafka) read(ctx context.Context, p int, offset int64, out chan<- kafka.Message) {
	if offset >= 0 {
		offset = k.checkRange(ctx, p, offset)
	}
	r := k.reader(p, offset)
	defer func() { r.Close() }()
	pr := partitionReader{k: k, p: p, next: offset, gapFrom: -1}
	var lastErr time.Time
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafka.OffsetOutOfRange) && pr.next >= 0 {
				// Deleted (or not yet written) while this reader was starting.
				pr.next = k.checkRange(ctx, p, pr.next)
				r.Close()
				r = k.reader(p, pr.next)
			} else if time.Since(lastErr) > 10*time.Second {
				k.opts.Logger.Warn("cannot fetch; retrying", "topic", k.opts.Topic, "partition", p, "err", err)
				lastErr = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if !pr.accept(ctx, m.Offset) {
			continue
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// reader returns a reader of partition p that starts at offset (absolute, or
// kafka.FirstOffset/LastOffset).
func (k *Kafka) reader(p int, offset int64) *kafka.Reader {
	cfg := PartitionReaderConfig(k.opts.Brokers, k.opts.Topic, p, k.opts.Dialer)
	cfg.ErrorLogger = k.kafkaLogger()
	r := kafka.NewReader(cfg)
	_ = r.SetOffset(offset)
	return r
}

// PartitionReaderConfig is how driftmon reads one partition of a topic: no consumer
// group (nothing is joined or committed), fetches of up to 10 MiB that return as soon
// as there is a message, and an error for a start offset outside the log.
func PartitionReaderConfig(brokers []string, topic string, partition int, dialer *kafka.Dialer) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:   brokers,
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		// kafka-go sets the socket deadline to MaxWait and asks the broker to wait
		// MaxWait minus an RTT allowance of min(1s, MaxWait/4): a short MaxWait leaves too
		// small a margin and fetches time out. Latency does not suffer: a fetch returns as
		// soon as there is one message.
		MaxWait:        3 * time.Second,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		// Report a start offset outside the log instead of waiting for it forever.
		OffsetOutOfRangeError: true,
		Dialer:                dialer,
	}
}

// partitionReader is a reader's bookkeeping: the next offset it expects and the gaps
// it has yet to explain.
type partitionReader struct {
	k       *Kafka
	p       int
	next    int64 // -1 or -2 (kafka.LastOffset/FirstOffset) before the first message
	gapFrom int64 // the start of the oldest unexplained gap, or -1
	checked time.Time
}

// gapCheckEvery limits how often a reader asks where the log starts when offsets skip:
// transaction markers and compaction make small gaps all the time.
const gapCheckEvery = 5 * time.Second

// accept reports whether the message at offset is new, and checks skipped offsets:
// kafka-go silently jumps to the log start when the offset it reads has been deleted,
// which must not go unreported.
func (pr *partitionReader) accept(ctx context.Context, offset int64) bool {
	if pr.next >= 0 && offset < pr.next {
		return false // delivered twice
	}
	if pr.next >= 0 && offset > pr.next && (pr.gapFrom < 0 || pr.next < pr.gapFrom) {
		pr.gapFrom = pr.next
	}
	pr.next = offset + 1
	if pr.gapFrom >= 0 && time.Since(pr.checked) >= gapCheckEvery {
		pr.checked = time.Now()
		if first, _, err := pr.k.logRange(ctx, pr.p); err == nil {
			if first > pr.gapFrom {
				pr.k.lost(pr.p, pr.gapFrom, min(first, offset))
			}
			pr.gapFrom = -1
		}
	}
	return true
}

// checkRange returns where to read partition p from when offset is where the handler
// (or the group) left off: offset itself when it is still in the log, the log's start
// when retention has deleted it — a data loss, reported — and the log's end when the
// log no longer reaches it (a recreated topic, an unclean leader election).
func (k *Kafka) checkRange(ctx context.Context, p int, offset int64) int64 {
	first, last, err := k.logRange(ctx, p)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			k.opts.Logger.Warn("cannot check the partition's offsets; reading on from the stored one",
				"topic", k.opts.Topic, "partition", p, "offset", offset, "err", err)
		}
		return offset
	case offset < first:
		k.lost(p, offset, first)
		return first
	case offset > last:
		k.opts.Logger.Error("stored offset is past the end of the partition: the topic was recreated or its log truncated; reading from the end",
			"topic", k.opts.Topic, "partition", p, "offset", offset, "end", last)
		return last
	}
	return offset
}

// lost reports that offsets [from, to) of partition p were deleted before they were
// read.
func (k *Kafka) lost(p int, from, to int64) {
	k.opts.Logger.Error("DATA LOSS: messages were deleted from the topic before driftmon read them (retention); their events are missing from the windows",
		"topic", k.opts.Topic, "partition", p, "from_offset", from, "to_offset", to, "lost", to-from)
	if k.opts.OnDataLoss != nil {
		k.opts.OnDataLoss(DataLoss{Topic: k.opts.Topic, Partition: p, From: from, To: to})
	}
}

// logRange asks partition p's leader for its first and next-to-be-written offsets.
func (k *Kafka) logRange(ctx context.Context, p int) (first, last int64, err error) {
	var errs []error
	for _, b := range k.opts.Brokers {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := k.opts.Dialer.DialLeader(dctx, "tcp", b, k.opts.Topic, p)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		first, last, err = conn.ReadOffsets()
		conn.Close()
		if err == nil {
			return first, last, nil
		}
		errs = append(errs, err)
	}
	return 0, 0, errors.Join(errs...)
}
