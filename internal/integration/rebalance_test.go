package integration

import (
	"context"
	"testing"
	"time"
)

// TestRebalanceSecondMonitorJoins runs one monitor on a topic of eight partitions while
// events arrive, starts a second one in the same consumer group halfway through, and
// checks that the two together counted every event exactly once.
func TestRebalanceSecondMonitorJoins(t *testing.T) {
	addr := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const partitions, bursts, perBurst = 8, 30, 1000
	topic := newTopic(ctx, t, addr, partitions)
	g := newTraffic(6)
	yaml := configYAML(addr, "group-"+topic, []string{stream("churn", topic, 1000)}, "")

	first := startMonitor(ctx, t, yaml, nil)
	var second *running
	for i := range bursts {
		if i == bursts/2 {
			// The first monitor is busy with the stream when the second joins.
			waitFor(t, 30*time.Second, "the first monitor to count events", func() bool { return first.events("churn") > 0 })
			second = startMonitor(ctx, t, yaml, nil)
		}
		produce(ctx, t, addr, topic, g.events(t, perBurst, false))
		time.Sleep(200 * time.Millisecond)
	}
	want := int64(bursts * perBurst)
	if got := stored(ctx, t, addr, topic, partitions); got != want {
		t.Fatalf("the broker holds %d messages, want the %d sent", got, want)
	}

	got := awaitEvents(t, 60*time.Second, 3*time.Second, "churn", want, first, second)
	a, b := first.events("churn"), second.events("churn")
	first.stop(t)
	second.stop(t)
	t.Logf("first monitor counted %d events, second %d, together %d of %d", a, b, got, want)
	checkNoRejections(t, first)
	checkNoRejections(t, second)
	if b == 0 {
		t.Errorf("the second monitor counted nothing: the group did not rebalance")
	}
	if got < want {
		t.Errorf("the monitors counted %d events, want %d: %d lost", got, want, want-got)
	}
	if got > want {
		t.Errorf("the monitors counted %d events, want %d: %d counted twice", got, want, got-want)
	}
}
