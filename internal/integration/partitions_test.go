package integration

import (
	"context"
	"testing"
	"time"
)

// TestEveryPartitionCountedOnce reads a topic of eight partitions and checks that every
// event is counted exactly once and lands in exactly one window.
func TestEveryPartitionCountedOnce(t *testing.T) {
	addr := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const partitions, rows = 8, 5000
	topic := newTopic(ctx, t, addr, partitions)
	sent := newTraffic(2).events(t, 8*rows, false)
	produce(ctx, t, addr, topic, sent)
	want := int64(len(sent))
	if got := stored(ctx, t, addr, topic, partitions); got != want {
		t.Fatalf("the broker holds %d messages, want the %d sent", got, want)
	}

	run := startMonitor(ctx, t, configYAML(addr, topic, []string{stream("churn", topic, rows)}, ""), nil)
	got := awaitEvents(t, 45*time.Second, 2*time.Second, "churn", want, run)
	run.stop(t)

	if got != want {
		t.Errorf("monitor counted %d events, want %d (%+d)", got, want, got-want)
	}
	checkNoRejections(t, run)
	windows := run.windows()
	if len(windows) != int(want)/rows {
		t.Errorf("%d windows closed, want %d", len(windows), int(want)/rows)
	}
	for i, w := range windows {
		if w.Rows != rows {
			t.Errorf("window %d has %d rows, want %d", i, w.Rows, rows)
		}
		if i > 0 && len(w.Drifted()) > 0 {
			t.Errorf("window %d of unshifted traffic flags %v", i, w.Drifted())
		}
	}
}
