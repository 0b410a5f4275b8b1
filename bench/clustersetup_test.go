package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/internal/monitor"
)

// BenchmarkClusterSetup runs one setup of BenchmarkCluster, to compare two builds
// side by side: DRIFTMON_BENCH_INSTANCES monitors in one cluster (default 3; 0 is one
// monitor without a cluster), with the joint finding off when DRIFTMON_BENCH_JOINT is
// "off". It uses nothing but monitor.New and Stats, so the file can be copied into
// an older checkout as it is.
//
// Besides BenchmarkCluster's steady rate it reports the rate of the whole pass and the
// CPU per event. The steady span starts once every instance reads, and with three
// instances that is 1 s or 2 s after the start, as the group's heartbeats fall: which
// one moves the steady rate by 10–20%, more than a build does. On a 2-core machine the
// instances are bound by CPU, and the CPU per event does not depend on when the group
// settled, so that is the figure to compare.
func BenchmarkClusterSetup(b *testing.B) {
	const n = 600_000
	instances, cluster := 3, true
	if v := os.Getenv("DRIFTMON_BENCH_INSTANCES"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 {
			b.Fatalf("DRIFTMON_BENCH_INSTANCES=%q: want 0 (no cluster) or more", v)
		}
		instances, cluster = max(k, 1), k > 0
	}
	window := "{size: 10s}"
	if os.Getenv("DRIFTMON_BENCH_JOINT") == "off" {
		window += "\n    detectors: {joint: {disable: true}}"
	}
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

	var steady, whole, cpu, join float64
	iter := 0
	for b.Loop() {
		suffix := fmt.Sprintf("setup-%d-%d", iter, time.Now().UnixNano())
		mons := make([]*monitor.Monitor, instances)
		for k := range mons {
			extra := ""
			if cluster {
				extra = fmt.Sprintf("cluster: {partials_topic: %q, session_timeout: 6s}", "partials-"+suffix)
			}
			mon, err := monitor.New(workloadConfig(b, addr, "bench", "bench-"+suffix, window, extra), monitor.Options{})
			if err != nil {
				b.Fatal(err)
			}
			mons[k] = mon
		}
		p := passOf(ctx, b, n, mons)
		b.Logf("run %d: %d instance(s), every one reading after %s: %.0f events/s steady, %.0f for the whole pass, %.2f µs CPU/event",
			iter, instances, p.join.Round(time.Millisecond), float64(p.events)/p.steady.Seconds(), n/p.whole.Seconds(), float64(p.cpu.Nanoseconds())/1e3/n)
		steady += float64(p.events) / p.steady.Seconds()
		whole += n / p.whole.Seconds()
		cpu += float64(p.cpu.Nanoseconds()) / 1e3 / n
		join += p.join.Seconds()
		iter++
	}
	b.ReportMetric(steady/float64(iter), "steady-events/s")
	b.ReportMetric(whole/float64(iter), "events/s")
	b.ReportMetric(cpu/float64(iter), "cpu-µs/event")
	b.ReportMetric(join/float64(iter), "join-s")
}

// setupPass is one pass of BenchmarkClusterSetup: the steady span as consumeAll
// measures it, and the whole pass with the CPU it took.
type setupPass struct {
	events              int64 // counted in the steady span
	steady, whole, join time.Duration
	cpu                 time.Duration // of the whole pass
}

// passOf runs the monitors until their counts add up to n events, as consumeAll
// does, without waiting for the last windows.
func passOf(ctx context.Context, b *testing.B, n int64, mons []*monitor.Monitor) setupPass {
	c, stop := runCounting(ctx, b, n, mons)
	stop()
	return setupPass{events: max(n-c.c0, 1), steady: c.end.Sub(c.all), whole: c.end.Sub(c.t0), join: c.all.Sub(c.t0), cpu: c.cpuEnd - c.cpu0}
}

// counting is when a pass of runCounting started, when every instance was reading
// (having counted c0 events by then) and when all events were counted, with the
// process's CPU time at each.
type counting struct {
	t0, all, end         time.Time
	c0                   int64
	cpu0, cpuAll, cpuEnd time.Duration
}

// runCounting runs the monitors until they have counted all n events, each partition
// once: a partition's count moves to its new owner in a rebalance, and for a moment
// both count it, which it waits out (for 30 s at most). It returns with the monitors
// still running; stop cancels them and reports their errors. BenchmarkCluster
// (consumeAll) and BenchmarkClusterSetup share it; it lives here so that this file
// still runs as it is in an older checkout.
func runCounting(ctx context.Context, b *testing.B, n int64, mons []*monitor.Monitor) (counting, func()) {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, len(mons))
	c := counting{t0: time.Now(), cpu0: cpuTime()}
	for _, m := range mons {
		go func() { errc <- m.Run(ctx) }()
	}
	stop := func() {
		cancel()
		for range mons {
			if err := <-errc; err != nil {
				b.Errorf("monitor: %v", err)
			}
		}
	}
	fail := func(format string, args ...any) {
		cancel() // the monitors stop; the benchmark does not wait for them
		b.Fatalf(format, args...)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var over time.Time
	for {
		select {
		case <-ctx.Done():
			fail("timed out")
		case err := <-errc:
			fail("a monitor stopped: %v", err)
		case now := <-tick.C:
			var sum int64
			reading := 0
			for _, m := range mons {
				k := m.Stats()["bench"].Events
				sum += k
				if k > 0 {
					reading++
				}
			}
			if c.all.IsZero() && reading == len(mons) {
				c.all, c.c0, c.cpuAll = now, sum, cpuTime()
			}
			switch {
			case sum <= n:
				over = time.Time{}
			case over.IsZero():
				over = now
			case now.Sub(over) > 30*time.Second:
				fail("counted %d events of %d for 30 s with %d of %d instances reading", sum, n, reading, len(mons))
			}
			if sum != n {
				continue // above n: a rebalance's old owner still counts a partition
			}
			if c.all.IsZero() {
				fail("counted all %d events before all %d instances read", n, len(mons))
			}
			c.end, c.cpuEnd = now, cpuTime()
			return c, stop
		}
	}
}
