package bench

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/monitor"
)

// clusterPartitions is the topic's partitions in BenchmarkCluster: enough for three
// instances to get two each.
const clusterPartitions = 6

// BenchmarkCluster is scale-out through Kafka: each iteration consumes a pre-filled
// six-partition topic of the workload (JSON, 25 features, 10 s event-time windows)
// with one monitor alone ("single", no cluster) and then with 1, 2 and 3 instances in
// one group sharing a partials topic (cluster), each as a new group. The instances
// run in the benchmark's process, as separate monitors with their own connections,
// and kfake with them: on a 2-core machine they share those cores, so the figure is
// the cost of splitting the work, not the speed-up of more machines. Rates are
// steady-state, as in BenchmarkKafka, over the events all instances count.
//
// It also reports what the partials topic carried per judged window: the partials
// (w/), the partition records (p/) and the leader's state (s/), in bytes.
func BenchmarkCluster(b *testing.B) {
	const n = 600_000
	values := make([][]byte, n)
	for i, e := range events(13, n) {
		values[i] = jsonEvent(nil, &e)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(clusterPartitions, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	produceAll(ctx, b, addr, "bench", values)

	setups := []struct {
		name      string
		instances int
		cluster   bool
	}{{"single", 1, false}, {"cluster-1", 1, true}, {"cluster-2", 2, true}, {"cluster-3", 3, true}}
	rates := make([]float64, len(setups))
	var judged, traffic [3]int64 // of the last cluster setup: windows; bytes of w/, p/, s/
	iter := 0
	for b.Loop() {
		for i, s := range setups {
			suffix := fmt.Sprintf("%s-%d-%d", s.name, iter, time.Now().UnixNano())
			var windows atomic.Int64
			mons := make([]*monitor.Monitor, s.instances)
			for k := range mons {
				mons[k] = newClusterMonitor(b, addr, "bench", "bench-"+suffix, "partials-"+suffix, s.cluster, &windows)
			}
			r := consumeAll(ctx, b, n, mons, &windows)
			rate := float64(r.events) / r.steady.Seconds()
			rates[i] += rate
			b.Logf("%s run %d: %.0f events/s steady (%d events in %s, %.2f µs CPU/event) once every instance read, after %s; %d windows judged",
				s.name, iter, rate, r.events, r.steady.Round(time.Millisecond), float64(r.cpu.Microseconds())/float64(r.events),
				r.join.Round(time.Millisecond), windows.Load())
			if s.cluster && s.instances == 3 {
				judged[0] = windows.Load()
				traffic = topicBytes(b, addr, "partials-"+suffix)
			}
		}
		iter++
	}
	for i, s := range setups {
		b.ReportMetric(rates[i]/float64(iter), s.name+"-events/s")
		if i > 0 {
			b.ReportMetric(rates[i]/rates[0], s.name+"/single")
		}
	}
	if judged[0] > 0 {
		b.ReportMetric(float64(traffic[0])/float64(judged[0]), "partial-B/window")
		b.ReportMetric(float64(traffic[1])/float64(judged[0]), "record-B/window")
		b.ReportMetric(float64(traffic[2])/float64(judged[0]), "state-B/window")
	}
}

// consumeAll runs the monitors until they have counted all n events (runCounting) and
// the windows judged have stopped coming. The steady span starts once every instance
// has counted events (the group has settled) and ends when all n are counted.
func consumeAll(ctx context.Context, b *testing.B, n int64, mons []*monitor.Monitor, windows *atomic.Int64) pass {
	c, stop := runCounting(ctx, b, n, mons)
	defer stop()
	p := pass{events: n - c.c0, steady: c.end.Sub(c.all), join: c.all.Sub(c.t0), cpu: c.cpuEnd - c.cpuAll}
	// The last windows are judged after the next checkpoint publishes them
	// (state.checkpoint_interval, 5 s by default).
	for last := int64(-1); windows.Load() != last; time.Sleep(6 * time.Second) {
		last = windows.Load()
	}
	return p
}

// newClusterMonitor is a monitor of the workload with 10 s event-time windows, in a
// cluster on partials when cluster is set; it counts the windows it judges.
func newClusterMonitor(b *testing.B, addr, topic, group, partials string, cluster bool, windows *atomic.Int64) *monitor.Monitor {
	extra := ""
	if cluster {
		extra = fmt.Sprintf("cluster: {partials_topic: %q, session_timeout: 6s}", partials)
	}
	cfg := workloadConfig(b, addr, topic, group, "{size: 10s}", extra)
	mon, err := monitor.New(cfg, monitor.Options{OnWindow: func(engine.Result) { windows.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	return mon
}

// topicBytes reads a cluster topic from its start and adds up the bytes (key and
// value) of the partials, the partition records and the leader's state.
func topicBytes(b *testing.B, addr, topic string) (sums [3]int64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		b.Fatal(err)
	}
	last, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		b.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxBytes: 64 << 20})
	defer r.Close()
	for off := int64(0); off < last; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		off = m.Offset + 1
		size := int64(len(m.Key) + len(m.Value))
		switch {
		case strings.HasPrefix(string(m.Key), "w/"):
			sums[0] += size
		case strings.HasPrefix(string(m.Key), "p/"):
			sums[1] += size
		default:
			sums[2] += size
		}
	}
	return sums
}
