package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
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

func write(t *testing.T, brokers []string, topic string, from, to int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: time.Millisecond}
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
	err := k.Run(ctx, func(ctx context.Context, batch []Message) error {
		for _, m := range batch {
			got = append(got, string(m.Value))
		}
		if len(got) >= n {
			cancel()
		}
		return nil
	})
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

func TestKafkaReadinessNamesTheProblem(t *testing.T) {
	brokers := newCluster(t, "events", 1)
	tests := []struct {
		name    string
		opts    KafkaOptions
		wantErr string // "" means ready
	}{
		{"reachable topic", KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g"}, ""},
		{"missing topic", KafkaOptions{Brokers: brokers, Topic: "no-such-topic", GroupID: "g"}, "no-such-topic"},
		{"broker down", KafkaOptions{Brokers: []string{"127.0.0.1:1"}, Topic: "events", GroupID: "g"}, "cannot reach broker 127.0.0.1:1"},
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
				_ = k.Run(ctx, func(context.Context, []Message) error { return nil })
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
