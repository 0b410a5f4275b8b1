package ingest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newCluster(t *testing.T, topic string, partitions int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// write sends messages from..to-1 (values {"i":n}), spread over the partitions by the
// writer's default balancer, or all to one partition when partition ≥ 0.
func write(t *testing.T, brokers []string, topic string, from, to int, partition ...int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	if len(partition) == 1 {
		p := partition[0]
		w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return p })
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// consume runs a source until it has seen n messages and returns them.
func consume(t *testing.T, k *Kafka, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	err := k.Run(ctx, HandlerFunc(func(ctx context.Context, batch []Message) error {
		for _, m := range batch {
			got = append(got, string(m.Value))
		}
		if len(got) >= n {
			cancel()
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < n {
		t.Fatalf("got %d messages before the timeout, want %d", len(got), n)
	}
	return got
}

func TestKafkaDeliversEveryMessageAndResumesAfterCommittedOffsets(t *testing.T) {
	brokers := newCluster(t, "events", 3)
	write(t, brokers, "events", 0, 500)
	opts := KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", MaxBatch: 64}
	k, err := NewKafka(opts)
	if err != nil {
		t.Fatal(err)
	}
	first := consume(t, k, 500)
	seen := map[string]bool{}
	for _, v := range first {
		seen[v] = true
	}
	if len(seen) != 500 {
		t.Fatalf("%d distinct messages, want 500", len(seen))
	}

	// A new member of the same group starts after what the first one committed.
	write(t, brokers, "events", 500, 600)
	k2, err := NewKafka(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range consume(t, k2, 100) {
		if seen[v] {
			t.Errorf("message %s delivered again after its offset was committed", v)
		}
	}
}

// positioned is a handler with a position of its own, as the monitor's streams have:
// it says where each partition starts, records what it gets, and makes its offsets
// durable only every durableEvery messages.
type positioned struct {
	mu           sync.Mutex
	start        map[int]int64
	next         map[int]int64
	got          map[int][]int64
	assigns      int
	durableEvery int
	sinceDurable int
	stop         func(h *positioned) bool
	cancel       func()
	errs         []string
}

func newPositioned(start map[int]int64) *positioned {
	return &positioned{start: start, next: map[int]int64{}, got: map[int][]int64{}, durableEvery: 1}
}

func (h *positioned) Assign(_ context.Context, parts []int) (map[int]int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigns++
	out := map[int]int64{}
	for _, p := range parts {
		if o, ok := h.next[p]; ok {
			out[p] = o
		} else if o, ok := h.start[p]; ok {
			out[p] = o
		}
	}
	return out, nil
}

func (h *positioned) Handle(_ context.Context, batch []Message) (map[int]int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range batch {
		if n, ok := h.next[m.Partition]; ok && m.Offset != n {
			h.errs = append(h.errs, fmt.Sprintf("partition %d: offset %d after %d", m.Partition, m.Offset, n-1))
		}
		h.next[m.Partition] = m.Offset + 1
		h.got[m.Partition] = append(h.got[m.Partition], m.Offset)
	}
	h.sinceDurable += len(batch)
	if h.stop != nil && h.stop(h) {
		h.cancel()
	}
	if h.sinceDurable < h.durableEvery {
		return nil, nil
	}
	h.sinceDurable = 0
	return copyOffsets(h.next), nil
}

func (h *positioned) Close(context.Context) (map[int]int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return copyOffsets(h.next), nil
}

func copyOffsets(m map[int]int64) map[int]int64 {
	out := make(map[int]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (h *positioned) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, offs := range h.got {
		n += len(offs)
	}
	return n
}

func run(t *testing.T, k *Kafka, h *positioned, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h.cancel = cancel
	if err := k.Run(ctx, h); err != nil {
		t.Fatal(err)
	}
}

// committed returns the group's committed offsets of topic's partitions 0..n-1.
func committed(t *testing.T, brokers []string, group, topic string, n int) map[int]int64 {
	t.Helper()
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func TestKafkaStartsWhereTheHandlerSaysAndCommitsWhatIsDurable(t *testing.T) {
	brokers := newCluster(t, "events", 2)
	write(t, brokers, "events", 0, 300, 0)
	write(t, brokers, "events", 300, 400, 1)
	k, err := NewKafka(KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", MaxBatch: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The handler's checkpoint says partition 0 is done up to 250; it knows nothing
	// of partition 1, which starts at the beginning (nothing is committed yet).
	h := newPositioned(map[int]int64{0: 250})
	h.durableEvery = 1 << 30 // only Close makes anything durable
	h.stop = func(h *positioned) bool { return len(h.got[0]) >= 50 && len(h.got[1]) >= 100 }
	run(t, k, h, 30*time.Second)
	if len(h.errs) > 0 {
		t.Errorf("offsets out of order: %v", h.errs)
	}
	if got := h.got[0][0]; got != 250 {
		t.Errorf("partition 0 started at %d, want the handler's 250", got)
	}
	if got := h.got[1][0]; got != 0 {
		t.Errorf("partition 1 started at %d, want 0", got)
	}
	if got, want := committed(t, brokers, "g", "events", 2), map[int]int64{0: 300, 1: 100}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("committed %v, want %v (what Close made durable)", got, want)
	}

	// A second run whose handler has no position starts at the committed offsets...
	write(t, brokers, "events", 400, 410, 0)
	h2 := newPositioned(nil)
	h2.stop = func(h *positioned) bool { return len(h.got[0]) >= 10 }
	run(t, k, h2, 30*time.Second)
	if got := h2.got[0][0]; got != 300 {
		t.Errorf("without a handler position partition 0 started at %d, want the committed 300", got)
	}
	// ...and one whose handler has a position ignores them.
	h3 := newPositioned(map[int]int64{0: 5, 1: 7})
	h3.stop = func(h *positioned) bool { return len(h.got[0]) > 0 && len(h.got[1]) > 0 }
	run(t, k, h3, 30*time.Second)
	if h3.got[0][0] != 5 || h3.got[1][0] != 7 {
		t.Errorf("started at %d and %d, want the handler's 5 and 7", h3.got[0][0], h3.got[1][0])
	}
}

// deleteRecords moves partition p's log start to offset, as retention would.
func deleteRecords(t *testing.T, brokers []string, topic string, p int32, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = p, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("delete records: error code %d", code)
	}
}

func TestKafkaReportsOffsetsDeletedBeforeTheyWereRead(t *testing.T) {
	brokers := newCluster(t, "events", 1)
	write(t, brokers, "events", 0, 200)
	deleteRecords(t, brokers, "events", 0, 120)

	var mu sync.Mutex
	var losses []DataLoss
	k, err := NewKafka(KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", OnDataLoss: func(l DataLoss) {
		mu.Lock()
		defer mu.Unlock()
		losses = append(losses, l)
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := newPositioned(map[int]int64{0: 10})
	h.stop = func(h *positioned) bool { return len(h.got[0]) >= 80 }
	run(t, k, h, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if want := (DataLoss{Topic: "events", Partition: 0, From: 10, To: 120}); len(losses) != 1 || losses[0] != want {
		t.Errorf("losses %v, want [%v]", losses, want)
	}
	if got := h.got[0][0]; got != 120 {
		t.Errorf("read from %d, want the log start 120", got)
	}
}

// TestKafkaReportsOffsetsSkippedWhileReading checks what a reader does when offsets
// jump: kafka-go moves silently to the log start when retention deletes what it was
// about to read, which is a loss; compaction and transaction markers leave gaps that
// are not.
func TestKafkaReportsOffsetsSkippedWhileReading(t *testing.T) {
	brokers := newCluster(t, "events", 1)
	write(t, brokers, "events", 0, 200)
	deleteRecords(t, brokers, "events", 0, 120)
	var losses []DataLoss
	k, err := NewKafka(KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", OnDataLoss: func(l DataLoss) { losses = append(losses, l) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pr := partitionReader{k: k, p: 0, next: 50, gapFrom: -1}
	if !pr.accept(ctx, 50) || !pr.accept(ctx, 51) || pr.accept(ctx, 51) {
		t.Fatal("in-order offsets refused, or a repeated one accepted")
	}
	pr.accept(ctx, 120) // 52..119 were deleted
	pr.checked = time.Time{}
	pr.accept(ctx, 130) // 121..129: a gap the log still covers
	if want := []DataLoss{{Topic: "events", Partition: 0, From: 52, To: 120}}; len(losses) != 1 || losses[0] != want[0] {
		t.Errorf("losses %v, want %v", losses, want)
	}
}

// TestKafkaRebalanceResumesAtTheHandlersOffsets starts a second member while the
// first is busy: at the new generation the first member's readers restart at its
// handler's offsets, so it sees every offset of the partitions it keeps exactly once
// and in order, and the two members together see every message.
func TestKafkaRebalanceResumesAtTheHandlersOffsets(t *testing.T) {
	brokers := newCluster(t, "events", 4)
	const total = 4000
	write(t, brokers, "events", 0, total)
	opts := KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", MaxBatch: 10,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second}
	k1, _ := NewKafka(opts)
	k2, _ := NewKafka(opts)
	h1, h2 := newPositioned(nil), newPositioned(nil)
	slow := make(chan struct{})
	h1.stop = func(*positioned) bool {
		select {
		case <-slow:
		default:
			time.Sleep(20 * time.Millisecond) // be mid-stream when the second member joins
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	h1.cancel, h2.cancel = cancel, cancel
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = k1.Run(ctx, h1) }()
	for h1.total() < 200 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = k2.Run(ctx, h2) }()
	for ctx.Err() == nil {
		h2.mu.Lock()
		n := h2.assigns
		h2.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(slow)
	seen := func() int {
		h1.mu.Lock()
		h2.mu.Lock()
		defer h1.mu.Unlock()
		defer h2.mu.Unlock()
		offs := map[[2]int64]bool{}
		for _, h := range []*positioned{h1, h2} {
			for p, os := range h.got {
				for _, o := range os {
					offs[[2]int64{int64(p), o}] = true
				}
			}
		}
		return len(offs)
	}
	for seen() < total && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := seen(); n != total {
		t.Errorf("the members saw %d distinct messages, want %d", n, total)
	}
	if h2.total() == 0 {
		t.Errorf("the second member read nothing")
	}
	if h1.assigns < 2 {
		t.Errorf("the first member was assigned partitions %d time(s), want a rebalance", h1.assigns)
	}
	for i, h := range []*positioned{h1, h2} {
		if len(h.errs) > 0 {
			t.Errorf("member %d: %v", i+1, h.errs)
		}
	}
}

func TestKafkaReadinessNamesTheProblem(t *testing.T) {
	brokers := newCluster(t, "events", 1)
	tests := []struct {
		name    string
		opts    KafkaOptions
		wantErr string // "" means ready
	}{
		{"reachable topic", KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g"}, ""},
		{"missing topic", KafkaOptions{Brokers: brokers, Topic: "no-such-topic", GroupID: "g"}, "no-such-topic"},
		{"broker down", KafkaOptions{Brokers: []string{closedAddr(t)}, Topic: "events", GroupID: "g"}, "cannot reach broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKafka(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if k.Ready() == nil {
				t.Fatal("ready before Run")
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = k.Run(ctx, HandlerFunc(func(context.Context, []Message) error { return nil }))
			}()
			defer func() { cancel(); wg.Wait() }()
			deadline := time.Now().Add(15 * time.Second)
			for {
				err := k.Ready()
				done := errorsMatch(err, tt.wantErr)
				if done {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("Ready() = %v, want %q", err, tt.wantErr)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func errorsMatch(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && err != errNotStarted && strings.Contains(err.Error(), want)
}

func TestNewKafkaReportsEveryMissingOption(t *testing.T) {
	_, err := NewKafka(KafkaOptions{})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"no brokers", "no topic", "no group id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestKafkaDoesNotCreateAMissingTopic: on a broker that creates topics on request (as
// Apache Kafka does by default), a source of a topic that does not exist leaves it
// missing and says so, and reads it once someone creates it.
func TestKafkaDoesNotCreateAMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	admin := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	exists := func() bool {
		md, err := admin.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{"typo"}})
		return err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil
	}
	k, err := NewKafka(KafkaOptions{Brokers: brokers, Topic: "typo", GroupID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- k.Run(ctx, HandlerFunc(func(_ context.Context, batch []Message) error {
			for _, m := range batch {
				got <- string(m.Value)
			}
			return nil
		}))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !errorsMatch(k.Ready(), "typo does not exist"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want the topic named missing", k.Ready())
		}
	}
	time.Sleep(2 * time.Second) // several probes and attempts to join
	if exists() {
		t.Fatal("the source created the topic it was told to read")
	}
	if _, err := admin.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: "typo", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	write(t, brokers, "typo", 0, 1)
	select {
	case v := <-got:
		if v != `{"i":0}` {
			t.Errorf("read %s", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing read 20s after the topic was created; Ready() = %v", k.Ready())
	}
}
