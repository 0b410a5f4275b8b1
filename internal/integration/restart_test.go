package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/internal/engine"
)

// TestBrokerRestart stops the broker (keeping its data) and starts it again while the
// monitor runs, and checks that no event is lost or counted twice and that the windows
// are those of an uninterrupted run: the drift scenario of TestDriftDetectedAndAlerted,
// split around the restart.
func TestBrokerRestart(t *testing.T) {
	addr := broker(t)
	kafkaSh := script(t)
	// Whatever happens here, leave a running broker to the tests after this one.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		runScript(ctx, t, kafkaSh, "start")
	})

	// Between batches: the monitor has handled and committed everything sent so far and
	// waits in a fetch when the broker goes away; the rest is sent after the restart.
	t.Run("idle", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic := newTopic(ctx, t, addr, 1)
		g := newTraffic(4)
		before := g.events(t, driftReference*driftRows, false)
		after := g.events(t, driftShifted*driftRows, true)
		want := int64(len(before) + len(after))

		produce(ctx, t, addr, topic, before)
		run := startMonitor(ctx, t, configYAML(addr, topic, []string{stream("churn", topic, driftRows)}, ""), nil)
		if got := awaitEvents(t, 45*time.Second, 0, "churn", int64(len(before)), run); got != int64(len(before)) {
			t.Fatalf("before the restart the monitor counted %d events, want %d", got, len(before))
		}
		runScript(ctx, t, kafkaSh, "stop-keep-data")
		time.Sleep(2 * time.Second) // let the monitor notice
		runScript(ctx, t, kafkaSh, "start")
		produce(ctx, t, addr, topic, after)
		if got := stored(ctx, t, addr, topic, 1); got != want {
			t.Fatalf("the broker holds %d messages, want the %d sent", got, want)
		}

		got := awaitEvents(t, 90*time.Second, 3*time.Second, "churn", want, run)
		run.stop(t)
		if got != want {
			t.Errorf("monitor counted %d events, want %d (%+d)", got, want, got-want)
		}
		checkNoRejections(t, run)
		checkWindows(t, run.windows(), driftRows, driftReference, driftShifted)
	})

	// During a batch: the broker goes away while the monitor is handling a batch, before
	// its offsets are committed, with more of the topic still to read.
	t.Run("in-flight batch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic := newTopic(ctx, t, addr, 1)
		g := newTraffic(5)
		sent := append(g.events(t, driftReference*driftRows, false), g.events(t, driftShifted*driftRows, true)...)
		want := int64(len(sent))
		produce(ctx, t, addr, topic, sent)

		// The first window closes inside a batch; OnWindow holds that batch until the
		// broker has been restarted.
		inBatch, release := make(chan struct{}), make(chan struct{})
		run := startMonitor(ctx, t, configYAML(addr, topic, []string{stream("churn", topic, driftRows)}, ""), func(engine.Result) {
			select {
			case inBatch <- struct{}{}:
				<-release
			default:
			}
		})
		// Should the test stop early, let the held batch go so that the monitor can stop.
		unblock := sync.OnceFunc(func() { close(release) })
		t.Cleanup(unblock)
		select {
		case <-inBatch:
		case <-time.After(45 * time.Second):
			t.Fatal("timed out waiting for the first closed window")
		}
		held := run.events("churn")
		t.Logf("holding a batch with %d of %d events counted", held, want)
		runScript(ctx, t, kafkaSh, "stop-keep-data")
		runScript(ctx, t, kafkaSh, "start")
		unblock()

		got := awaitEvents(t, 90*time.Second, 3*time.Second, "churn", want, run)
		run.stop(t)
		if got < want {
			t.Errorf("monitor counted %d events, want %d: %d lost", got, want, want-got)
		}
		checkNoRejections(t, run)
		if got > want {
			t.Errorf("%d events counted twice across the broker restart; windows: %d closed, want %d",
				got-want, len(run.windows()), driftReference+driftShifted)
		}
		checkWindows(t, run.windows(), driftRows, driftReference, driftShifted)
	})
}
