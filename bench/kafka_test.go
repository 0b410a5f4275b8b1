package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/monitor"
)

// Environment variables of the Kafka benchmark.
const (
	// eventsEnv sets how many events the topic holds (default 200,000).
	eventsEnv = "DRIFTMON_BENCH_EVENTS"
	// brokerEnv names a real broker to measure against as well as kfake; .ci/kafka.sh
	// start prints it (see bench/README.md).
	brokerEnv = "DRIFTMON_KAFKA_BROKERS"
	// partitionsEnv sets the topic's partitions (default: as many as cores, so that
	// driftmon can decode on every core).
	partitionsEnv = "DRIFTMON_BENCH_PARTITIONS"
)

// benchPartitions is the number of partitions of the benchmark's topic.
func benchPartitions(b *testing.B) int {
	if v := os.Getenv(partitionsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", partitionsEnv, v)
		}
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// BenchmarkKafka is end-to-end throughput through Kafka: each iteration consumes a
// pre-filled topic (as many partitions as cores, DRIFTMON_BENCH_PARTITIONS) of workload events (JSON, 20 numeric and 5 categorical
// features) three ways, one after the other on the same topic, each as a new consumer
// group:
//
//   - kafka-go: a bare kafka-go group Reader that fetches batches of up to 1,000
//     messages (100 ms linger, as driftmon batches) and commits each batch;
//   - source: driftmon's ingest.Kafka (a consumer group that assigns partitions, one
//     pinned reader per partition) with a handler that only counts;
//   - driftmon: the whole monitor (internal/monitor) — source, JSON decoding, sketches,
//     10,000-row windows evaluated against a warm-up reference — until Monitor.Stats
//     counts every event.
//
// Rates are steady-state: from the first poll (every millisecond) that sees events
// counted to the one that sees all of them, so that joining the group is left out; the
// monitor's join time is reported apart. driftmon/kafka-go is the ratio that counts on
// a shared machine; CPU per event (the whole process's, during the same span) is
// steadier still when other work competes for the cores. kfake runs in the benchmark's
// process and shares its cores, and its CPU counts.
//
// It runs on kfake always, and on a real broker too when DRIFTMON_KAFKA_BROKERS is set.
func BenchmarkKafka(b *testing.B) {
	n := 200_000
	if v := os.Getenv(eventsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < batchRows {
			b.Fatalf("%s=%q: want a number ≥ %d", eventsEnv, v, batchRows)
		}
	}
	n -= n % batchRows
	values := make([][]byte, n)
	for i, e := range events(11, n) {
		values[i] = jsonEvent(nil, &e)
	}

	b.Run("broker=kfake", func(b *testing.B) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(benchPartitions(b)), "bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer cluster.Close()
		benchKafka(b, cluster.ListenAddrs()[0], "bench", values)
	})
	if addr := strings.TrimSpace(strings.Split(os.Getenv(brokerEnv), ",")[0]); addr != "" {
		b.Run("broker=kafka", func(b *testing.B) {
			topic := createTopic(b, addr)
			benchKafka(b, addr, topic, values)
		})
	}
}

func benchKafka(b *testing.B, addr, topic string, values [][]byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	produceAll(ctx, b, addr, topic, values)
	b.Logf("%s: produced %d events (%.1f MB) in %s", topic, len(values), float64(totalSize(values))/1e6, time.Since(start).Round(time.Millisecond))

	// Each consumer, given a group and a counter it may use, returns how to read its
	// count and the function that consumes until its context ends.
	consumers := []struct {
		name  string
		start func(group string, counted *atomic.Int64) (func() int64, func(context.Context) error)
	}{
		{"kafka-go", func(group string, counted *atomic.Int64) (func() int64, func(context.Context) error) {
			return counted.Load, func(ctx context.Context) error { return bareConsumer(ctx, addr, topic, group, counted) }
		}},
		{"source", func(group string, counted *atomic.Int64) (func() int64, func(context.Context) error) {
			src, err := ingest.NewKafka(ingest.KafkaOptions{Brokers: []string{addr}, Topic: topic, GroupID: group})
			if err != nil {
				b.Fatal(err)
			}
			return counted.Load, func(ctx context.Context) error {
				return src.Run(ctx, ingest.HandlerFunc(func(_ context.Context, batch []ingest.Message) error {
					counted.Add(int64(len(batch)))
					return nil
				}))
			}
		}},
		{"driftmon", func(group string, _ *atomic.Int64) (func() int64, func(context.Context) error) {
			mon := newBenchMonitor(b, addr, topic, group)
			return func() int64 { return mon.Stats()["bench"].Events }, mon.Run
		}},
	}

	type total struct {
		events            int64
		steady, join, cpu time.Duration
	}
	totals := make([]total, len(consumers))
	iter := 0
	for b.Loop() {
		for i, c := range consumers {
			var counted atomic.Int64
			group := fmt.Sprintf("bench-%s-%d-%d", c.name, iter, time.Now().UnixNano())
			count, consumer := c.start(group, &counted)
			r := consume(ctx, b, int64(len(values)), count, consumer)
			totals[i].events += r.events
			totals[i].steady += r.steady
			totals[i].join += r.join
			totals[i].cpu += r.cpu
			b.Logf("%s run %d: %.0f events/s steady (%d events in %s, %.2f µs CPU/event), first batch after %s",
				c.name, iter, float64(r.events)/r.steady.Seconds(), r.events, r.steady.Round(time.Millisecond),
				float64(r.cpu.Microseconds())/float64(r.events), r.join.Round(time.Millisecond))
		}
		iter++
	}
	rate := make([]float64, len(consumers))
	for i, c := range consumers {
		rate[i] = float64(totals[i].events) / totals[i].steady.Seconds()
		b.ReportMetric(rate[i], c.name+"-events/s")
		b.ReportMetric(float64(totals[i].cpu.Nanoseconds())/1e3/float64(totals[i].events), c.name+"-cpu-us/event")
	}
	b.ReportMetric(rate[2]/rate[0], "driftmon/kafka-go")
	b.ReportMetric(rate[1]/rate[0], "source/kafka-go")
	b.ReportMetric(totals[2].join.Seconds()/float64(iter), "driftmon-join-s")
}

// pass is one consumer's pass over the topic.
type pass struct {
	// events are those counted between the first and the last poll; steady is the
	// time between them; join is the time from start to the first counted batch.
	events       int64
	steady, join time.Duration
	// cpu is the process's CPU time (user and system) during steady: the consumer's,
	// the Go runtime's and, on kfake, the broker's.
	cpu time.Duration
}

// consume starts run and polls count every millisecond until it reaches n, then stops
// run and waits for it.
func consume(ctx context.Context, b *testing.B, n int64, count func() int64, runFn func(context.Context) error) pass {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- runFn(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("consumer: %v", err)
		}
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var first time.Time
	var c0 int64
	var cpu0 time.Duration
	for {
		select {
		case <-ctx.Done():
			b.Fatalf("timed out with %d of %d events counted", count(), n)
		case err := <-done:
			done <- err
			b.Fatalf("consumer stopped with %d of %d events counted: %v", count(), n, err)
		case now := <-tick.C:
			c := count()
			if c > 0 && first.IsZero() {
				first, c0, cpu0 = now, c, cpuTime()
			}
			if c >= n {
				if c > n {
					b.Fatalf("counted %d events, the topic holds %d", c, n)
				}
				return pass{events: n - c0, steady: now.Sub(first), join: first.Sub(t0), cpu: cpuTime() - cpu0}
			}
		}
	}
}

// bareConsumer is driftmon's consumer loop (ingest.Kafka.Run) without driftmon: fetch
// up to 1,000 messages with a 100 ms linger, commit them, count them.
func bareConsumer(ctx context.Context, addr, topic, group string, counted *atomic.Int64) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 3 * time.Second,
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second, HeartbeatInterval: time.Second,
	})
	defer r.Close()
	batch := make([]kafka.Message, 0, batchRows)
	for {
		batch = batch[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		batch = append(batch, m)
		lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		for len(batch) < batchRows {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		if err := r.CommitMessages(context.WithoutCancel(ctx), batch...); err != nil {
			return err
		}
		counted.Add(int64(len(batch)))
	}
}

// newBenchMonitor is a monitor of the workload on topic, as a user would configure it.
func newBenchMonitor(b *testing.B, addr, topic, group string) *monitor.Monitor {
	mon, err := monitor.New(workloadConfig(b, addr, topic, group, "{rows: 10000}", ""), monitor.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return mon
}

// workloadConfig is the config of one stream "bench" of the workload's features on
// topic, with the YAML window and extra top-level YAML.
func workloadConfig(b *testing.B, addr, topic, group, window, extra string) *config.Config {
	var y strings.Builder
	fmt.Fprintf(&y, "kafka: {brokers: [%q], group_id: %q}\n%s\n", addr, group, extra)
	fmt.Fprintf(&y, "streams:\n  - name: bench\n    topic: %q\n    event_time: ts\n    model: model\n    model_version: version\n", topic)
	fmt.Fprintf(&y, "    window: %s\n    features:\n", window)
	for i := 0; i < numeric; i++ {
		fmt.Fprintf(&y, "      n%02d: {type: numeric}\n", i)
	}
	for i := 0; i < categorical; i++ {
		fmt.Fprintf(&y, "      c%d: {type: categorical}\n", i)
	}
	cfg, err := config.Parse([]byte(y.String()), config.ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// produceAll writes values to topic and returns when the broker has acknowledged all.
func produceAll(ctx context.Context, b *testing.B, addr, topic string, values [][]byte) {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Transport: transport, Topic: topic,
		RequiredAcks: kafka.RequireAll, BatchSize: batchRows, BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, batchRows)
	for len(values) > 0 {
		k := min(batchRows, len(values))
		msgs = msgs[:0]
		for _, v := range values[:k] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatalf("cannot produce to %s: %v", topic, err)
		}
		values = values[k:]
	}
}

// createTopic creates the benchmark's topic on a real broker, deleted when b ends.
func createTopic(b *testing.B, addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	transport := &kafka.Transport{}
	b.Cleanup(transport.CloseIdleConnections)
	admin := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: transport}
	topic := fmt.Sprintf("driftmon-bench-%d", time.Now().UnixNano())
	res, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: benchPartitions(b), ReplicationFactor: 1}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		b.Fatalf("cannot create topic %s on %s: %v", topic, addr, err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
			b.Logf("cannot delete topic %s: %v", topic, err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		md, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == benchPartitions(b) &&
			!slices.ContainsFunc(md.Topics[0].Partitions, func(p kafka.Partition) bool { return p.Leader.ID < 0 }) {
			return topic
		}
		if time.Now().After(deadline) {
			b.Fatalf("topic %s has no leader after 30s", topic)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func totalSize(values [][]byte) int {
	n := 0
	for _, v := range values {
		n += len(v)
	}
	return n
}
