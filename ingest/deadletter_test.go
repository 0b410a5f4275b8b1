package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newDeadLetterCluster starts an in-process Kafka with the dead-letter topic.
func newDeadLetterCluster(t *testing.T, topic string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// readDeadLetters reads n messages from the start of topic's only partition.
func readDeadLetters(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letter %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, m)
	}
	return out
}

func headers(m kafka.Message) map[string]string {
	h := make(map[string]string, len(m.Headers))
	for _, kv := range m.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

func TestDeadLetterWritesRejectedMessagesWithHeaders(t *testing.T) {
	brokers := newDeadLetterCluster(t, "dlq")
	dl, err := NewDeadLetter(DeadLetterOptions{Brokers: brokers, Topic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}

	// Real rejections from the JSON decoder.
	d, mem := newTestDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	msgs := []Message{
		{Value: []byte(`{"features":{"car_value":1}}`), Topic: "events", Partition: 2, Offset: 40},
		{Value: []byte(`{"features":{"car_value":"high"}}`), Topic: "events", Partition: 2, Offset: 41},
		{Value: []byte("\x00\x01 not json"), Topic: "events", Partition: 2, Offset: 42},
		{Value: []byte(`{"ts":"soon"}`), Topic: "events", Partition: 2, Offset: 43},
	}
	rec, rejected := d.Decode(msgs)
	rec.Release()
	if len(rejected) != 3 {
		t.Fatalf("rejected %v", rejected)
	}
	ctx := context.Background()
	if err := dl.WriteAll(ctx, msgs, rejected[:2]); err != nil {
		t.Fatal(err)
	}
	if err := dl.Write(ctx, msgs[3], rejected[2]); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}

	got := readDeadLetters(t, brokers, "dlq", 3)
	for i, r := range rejected {
		m := got[i]
		src := msgs[r.Index]
		if string(m.Value) != string(src.Value) {
			t.Errorf("dead letter %d: value %q, want the original bytes %q", i, m.Value, src.Value)
		}
		want := map[string]string{
			"driftmon-reason":           string(r.Reason),
			"driftmon-error":            r.Err.Error(),
			"driftmon-source-topic":     "events",
			"driftmon-source-partition": "2",
			"driftmon-source-offset":    strconv.FormatInt(src.Offset, 10),
		}
		h := headers(m)
		for k, v := range want {
			if h[k] != v {
				t.Errorf("dead letter %d: header %s = %q, want %q", i, k, h[k], v)
			}
		}
		if len(h) != len(want) {
			t.Errorf("dead letter %d: headers %v", i, h)
		}
	}
	if h := headers(got[0]); h["driftmon-reason"] != "wrong_type" || !strings.Contains(h["driftmon-error"], "features.car_value") {
		t.Errorf("first dead letter: %v", h)
	}
}

func TestDeadLetterSamplesEachReason(t *testing.T) {
	brokers := newDeadLetterCluster(t, "dlq")
	dl, err := NewDeadLetter(DeadLetterOptions{Brokers: brokers, Topic: "dlq", SampleEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	var rejected []Rejected
	reasons := []Reason{ReasonMalformed, ReasonMalformed, ReasonWrongType, ReasonMalformed, ReasonMalformed, ReasonMalformed, ReasonMalformed, ReasonBadTime}
	for i, reason := range reasons {
		msgs = append(msgs, Message{Value: []byte(strconv.Itoa(i)), Offset: int64(i)})
		rejected = append(rejected, Rejected{Index: i, Reason: reason, Err: errors.New("x")})
	}
	if err := dl.WriteAll(context.Background(), msgs, rejected); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range readDeadLetters(t, brokers, "dlq", 4) {
		got = append(got, string(m.Value))
	}
	if strings.Join(got, " ") != "0 2 4 7" {
		t.Errorf("sampled %v, want 0 2 4 7 (the 1st and 4th malformed, the 1st wrong_type and bad_time)", got)
	}
}

func TestDeadLetterReportsWriteFailures(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	dl, err := NewDeadLetter(DeadLetterOptions{Brokers: []string{"127.0.0.1:1"}, Topic: "dlq", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		err = dl.Write(ctx, Message{Value: []byte("x")}, Rejected{Reason: ReasonMalformed, Err: errors.New("bad")})
		if err == nil || !strings.Contains(err.Error(), "cannot write 1 dead letters to dlq") {
			t.Errorf("Write to a broker nobody listens on: %v", err)
		}
	}
	// One log line for the three failures, not one per failure.
	if n := strings.Count(logs.String(), "cannot write dead letters"); n != 1 || !strings.Contains(logs.String(), "component=deadletter") {
		t.Errorf("%d log lines:\n%s", n, logs.String())
	}
}

func TestNewDeadLetterReportsEveryProblem(t *testing.T) {
	_, err := NewDeadLetter(DeadLetterOptions{SampleEvery: -1})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"cannot configure dead-letter topic", "no brokers", "no topic", "sample_every -1 is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
