package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/monitor"
)

// streamYAML is one stream of the churn model that traffic generates; %[1]s is the
// stream's name, %[2]s its topic, %[3]d its window rows.
const streamYAML = `
  - name: %[1]s
    topic: %[2]s
    event_time: ts
    model: model
    model_version: model_version
    features:
      x: {type: numeric}
      age: {type: numeric}
      segment: {type: categorical}
      channel: {type: categorical}
    predictions:
      score: {type: numeric}
    window: {rows: %[3]d}
`

// stream is a config stream of the churn model.
func stream(name, topic string, rows int) string { return fmt.Sprintf(streamYAML, name, topic, rows) }

// configYAML is a whole config: brokers, group, the given streams and alerting section.
func configYAML(addr, group string, streams []string, alerting string) string {
	return fmt.Sprintf("kafka: {brokers: [%q], group_id: %q}\nstreams:%s%s", addr, group, strings.Join(streams, ""), alerting)
}

// running is a monitor running in the background, as driftmon run would.
type running struct {
	mon    *monitor.Monitor
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	results []engine.Result
}

// startMonitor parses yaml, builds the monitor and runs it until stop or the end of the
// test. onWindow, when not nil, is called with each closed window after it is recorded.
func startMonitor(ctx context.Context, t *testing.T, yaml string, onWindow func(engine.Result)) *running {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), config.ParseOptions{})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	r := &running{done: make(chan error, 1)}
	r.mon, err = monitor.New(cfg, monitor.Options{OnWindow: func(res engine.Result) {
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
		if onWindow != nil {
			onWindow(res)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() { r.done <- r.mon.Run(runCtx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the run and waits for it; it fails the test if Run failed. Calling it
// again does nothing.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Errorf("monitor run: %v", err)
		}
	}
}

// events is how many events stream has decoded so far.
func (r *running) events(stream string) int64 { return r.mon.Stats()[stream].Events }

// windows returns the results of the windows closed so far.
func (r *running) windows() []engine.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.results)
}

// awaitEvents waits until the monitors have decoded want events of stream between
// them, then for settle more, so that a message delivered twice has time to show.
// It returns the final sum; the caller asserts on it.
func awaitEvents(t *testing.T, timeout, settle time.Duration, stream string, want int64, runs ...*running) int64 {
	t.Helper()
	sum := func() int64 {
		var n int64
		for _, r := range runs {
			n += r.events(stream)
		}
		return n
	}
	deadline := time.Now().Add(timeout)
	for sum() < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(settle)
	return sum()
}

// checkNoRejections fails the test when a stream rejected a message: every message the
// tests send is a valid event.
func checkNoRejections(t *testing.T, r *running) {
	t.Helper()
	for name, st := range r.mon.Stats() {
		if len(st.Rejected) > 0 {
			t.Errorf("stream %s rejected messages: %v", name, st.Rejected)
		}
	}
}
