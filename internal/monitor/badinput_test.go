package monitor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
)

// TestBadInputIsCountedSetAsideAndLosesNothing sends valid events mixed with every kind
// of bad message: each valid event is counted exactly once, each bad one lands in its
// reason's counter and, with its original bytes and the reason in headers, in the
// dead-letter topic.
func TestBadInputIsCountedSetAsideAndLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", "events-dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]

	const valid = 3000
	bad := map[string][]string{
		"malformed":  {`{"features": {"x": 1.5`, "\x00\x01\x02garbage", `{"features": {"x": 1}} trailing`},
		"wrong_type": {`{"ts":"2026-11-26T00:00:00Z","features":{"x":"high","c":"a"}}`, `{"features":{"x":1,"c":{"nested":true}}}`},
		"bad_time":   {`{"ts":"yesterday","features":{"x":1,"c":"a"}}`},
		"too_large":  {`{"features":{"x":1,"c":"` + strings.Repeat("a", 5000) + `"}}`},
		// A placeholder date and a producer's clock a day fast: refused, and they move
		// no clock (TestEventTimesOutOfBoundsMoveNoClock says what that saves).
		"event_time_future": {`{"ts":"2100-01-01T00:00:00Z","features":{"x":1,"c":"a"}}`, `{"ts":"` + time.Now().Add(25*time.Hour).UTC().Format(time.RFC3339) + `","features":{"x":2,"c":"b"}}`},
	}
	var values []string
	wantBad, rounds := 0, 0
	for i := 0; i < valid; i++ {
		x := fmt.Sprint(i % 100)
		switch i % 500 {
		case 7: // NaN and infinities travel as strings; they are values, not errors
			x = `"NaN"`
		case 8:
			x = `"Infinity"`
		case 9: // a missing field is a null, not an error
			values = append(values, fmt.Sprintf(`{"ts":"2026-11-26T00:00:%02dZ","features":{"c":"a"}}`, i%60))
			continue
		}
		values = append(values, fmt.Sprintf(`{"ts":"2026-11-26T00:00:%02dZ","features":{"x":%s,"c":"%c"}}`, i%60, x, 'a'+i%3))
		if i%600 == 0 {
			rounds++
			for _, msgs := range bad {
				values = append(values, msgs...)
				wantBad += len(msgs)
			}
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "events", BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	for _, v := range values {
		if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q], group_id: bad-input}
streams:
  - name: s
    topic: events
    event_time: ts
    max_message_bytes: 4096
    dead_letter: {topic: events-dlq}
    features: {x: {type: numeric}, c: {type: categorical}}
    window: {rows: 1000}
`, addr)), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mon.Run(runCtx) }()
	want := map[string]int64{}
	for reason, msgs := range bad {
		want[reason] = int64(len(msgs) * rounds)
	}
	for {
		st := mon.Stats()["s"]
		rejected := int64(0)
		for _, n := range st.Rejected {
			rejected += n
		}
		if st.Events+rejected >= int64(len(values)) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything counted twice shows now
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := mon.Stats()["s"]
	if st.Events != valid {
		t.Errorf("counted %d valid events, want %d", st.Events, valid)
	}
	for reason, n := range want {
		if st.Rejected[reason] != n {
			t.Errorf("rejected as %s: %d, want %d (all: %v)", reason, st.Rejected[reason], n, st.Rejected)
		}
	}

	// The dead-letter topic holds every bad message, byte for byte, with its reason.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "events-dlq", MaxWait: 2 * time.Second})
	defer r.Close()
	got := map[string]int64{}
	for i := 0; i < wantBad; i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("dead letter %d of %d: %v", i+1, wantBad, err)
		}
		var reason string
		for _, h := range m.Headers {
			if h.Key == ingest.HeaderReason {
				reason = string(h.Value)
			}
		}
		if !contains(bad[reason], string(m.Value)) {
			t.Errorf("dead letter with reason %q holds a message not sent as such: %.40q", reason, m.Value)
		}
		got[reason]++
	}
	for reason, n := range want {
		if got[reason] != n {
			t.Errorf("dead letters for %s: %d, want %d", reason, got[reason], n)
		}
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
