package backtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// phaseStart is when the produced traffic starts: six hours like the reference, then
// six hours in which both features shift.
var phaseStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const (
	phaseHours    = 6
	eventsPerHour = 300
	malformed     = 3 // messages that are not JSON, in the first hour
)

// produce writes the two phases to topic in event-time order, each message stamped
// with its event time, plus a few malformed messages.
func produce(t *testing.T, brokers []string, topic string, seed int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	var msgs []kafka.Message
	for h := 0; h < 2*phaseHours; h++ {
		shifted := h >= phaseHours
		for i := 0; i < eventsPerHour; i++ {
			ts := phaseStart.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Hour/eventsPerHour)
			x, cat := rng.NormFloat64(), []string{"a", "b", "c"}[rng.Intn(3)]
			if shifted {
				x += 1.5
				if rng.Float64() < 0.6 {
					cat = "c"
				}
			}
			v := fmt.Sprintf(`{"ts":%q,"features":{"x":%g,"cat":%q}}`, ts.Format(time.RFC3339Nano), x, cat)
			msgs = append(msgs, kafka.Message{Value: []byte(v), Time: ts})
			if h == 0 && i < malformed {
				msgs = append(msgs, kafka.Message{Value: []byte("not json"), Time: ts})
			}
		}
	}
	// Round robin over the partitions, each written in order through its leader: a
	// kafka.Writer sends a partition's batches concurrently and may reorder them.
	parts := partitionCount(t, brokers, topic)
	for p := 0; p < parts; p++ {
		conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		var mine []kafka.Message
		for i := p; i < len(msgs); i += parts {
			mine = append(mine, msgs[i])
		}
		for len(mine) > 0 {
			n := min(len(mine), 500)
			if _, err := conn.WriteMessages(mine[:n]...); err != nil {
				t.Fatal(err)
			}
			mine = mine[n:]
		}
		conn.Close()
	}
}

func partitionCount(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ps, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

// topicCluster starts kfake with the topics "one" (1 partition) and "three" (3), both
// produced with the two phases, and returns the brokers.
func topicCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "one"), kfake.SeedTopics(3, "three"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	produce(t, brokers, "one", 1)
	produce(t, brokers, "three", 3)
	return brokers
}

// topicStream loads a config of hourly windows whose reference is the first two.
func topicStream(t *testing.T, brokers []string, topic string) *config.Stream {
	t.Helper()
	path := filepath.Join(t.TempDir(), "driftmon.yaml")
	yaml := fmt.Sprintf(`kafka:
  brokers: [%s]
streams:
  - name: loans
    topic: %s
    event_time: ts
    features:
      x: {type: numeric}
      cat: {type: categorical}
    window: {size: 1h}
    reference: {warmup_windows: 2, min_rows: 600}
`, strings.Join(brokers, ", "), topic)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Streams[0]
}

// runTopic backtests opts with the stream of topic and returns the windows.
func runTopic(t *testing.T, brokers []string, opts TopicOptions) ([]Window, TopicSummary) {
	t.Helper()
	e, err := engine.New(topicStream(t, brokers, opts.Topic), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Window
	opts.Brokers = brokers
	opts.OnWindow = func(w Window) error { got = append(got, w); return nil }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := RunTopic(ctx, e, opts)
	if err != nil {
		t.Fatal(err)
	}
	return got, sum
}

// checkPhases asserts one window per hour from firstHour, the first three of them the
// warm-up (the first window, never part of a reference, then two), and drift in both
// features exactly in the shifted hours.
func checkPhases(t *testing.T, got []Window, firstHour, hours int) {
	t.Helper()
	if len(got) != hours {
		t.Fatalf("%d windows, want %d", len(got), hours)
	}
	for i, w := range got {
		h := firstHour + i
		if want := phaseStart.Add(time.Duration(h) * time.Hour); !w.Start.Equal(want) {
			t.Errorf("window %d starts %s, want %s", i+1, w.Start, want)
		}
		if w.Rows != eventsPerHour {
			t.Errorf("window %d has %d rows, want %d", i+1, w.Rows, eventsPerHour)
		}
		drifted := w.Drifted()
		switch {
		case i < 3:
			if !w.Warmup {
				t.Errorf("window %d is not warm-up", i+1)
			}
		case h < phaseHours:
			if len(drifted) > 0 {
				t.Errorf("window %d (hour %d, reference phase) drifted %v", i+1, h, drifted)
			}
		default:
			if !slices.Contains(drifted, "x") || !slices.Contains(drifted, "cat") {
				t.Errorf("window %d (hour %d, shifted phase) drifted %v, want x and cat", i+1, h, drifted)
			}
		}
	}
}

func TestRunTopicWholeRange(t *testing.T) {
	brokers := topicCluster(t)
	for _, tc := range []struct {
		topic      string
		partitions int
	}{{"one", 1}, {"three", 3}} {
		t.Run(tc.topic, func(t *testing.T) {
			got, sum := runTopic(t, brokers, TopicOptions{Topic: tc.topic})
			checkPhases(t, got, 0, 2*phaseHours)
			if len(sum.Ranges) != tc.partitions {
				t.Errorf("ranges %+v, want %d partitions", sum.Ranges, tc.partitions)
			}
			if want := int64(2*phaseHours*eventsPerHour + malformed); sum.Messages != want {
				t.Errorf("%d messages, want %d", sum.Messages, want)
			}
			if sum.Rows != 2*phaseHours*eventsPerHour || sum.Rejected[ingest.ReasonMalformed] != malformed || sum.Late != 0 {
				t.Errorf("rows %d, rejected %v, late %d; want %d, %d malformed, 0", sum.Rows, sum.Rejected, sum.Late, 2*phaseHours*eventsPerHour, malformed)
			}
		})
	}
	// The runs joined no group and committed nothing: the live monitor's group has no
	// offsets, and no group exists at all.
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: config.DefaultGroupID, Topics: map[string][]int{"three": {0, 1, 2}, "one": {0}}})
	if err != nil {
		t.Fatal(err)
	}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.CommittedOffset >= 0 {
				t.Errorf("%s/%d: committed offset %d, want none", topic, p.Partition, p.CommittedOffset)
			}
		}
	}
	groups, err := c.ListGroups(context.Background(), &kafka.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.Groups) > 0 {
		t.Errorf("groups %+v, want none", groups.Groups)
	}
}

func TestRunTopicTimeAndOffsetSubRanges(t *testing.T) {
	brokers := topicCluster(t)
	// Hours 3 to 8: the first window and two warm-up hours of the reference phase,
	// then three shifted hours.
	from, to := phaseStart.Add(3*time.Hour), phaseStart.Add(9*time.Hour)
	for _, topic := range []string{"one", "three"} {
		t.Run(topic, func(t *testing.T) {
			got, sum := runTopic(t, brokers, TopicOptions{Topic: topic, From: from, To: to})
			checkPhases(t, got, 3, 6)
			if sum.Rejected[ingest.ReasonMalformed] != 0 {
				t.Errorf("rejected %v: the malformed messages are outside the range", sum.Rejected)
			}
		})
	}
	t.Run("offsets", func(t *testing.T) {
		// Partition 0 of "one" holds hour h at offsets malformed + h×eventsPerHour on.
		got, _ := runTopic(t, brokers, TopicOptions{Topic: "one", FromOffset: malformed + 3*eventsPerHour, ToOffset: malformed + 9*eventsPerHour})
		checkPhases(t, got, 3, 6)
	})
}

func TestRunTopicErrors(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "one"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	e, err := engine.New(topicStream(t, brokers, "one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = RunTopic(ctx, e, TopicOptions{Brokers: brokers, Topic: "nope"})
	if !errors.Is(err, ErrUnknownTopic) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown topic: %v", err)
	}
	_, err = RunTopic(ctx, e, TopicOptions{Brokers: brokers, Topic: "one", From: phaseStart.Add(time.Hour), To: phaseStart})
	if want := "from 2026-11-01T01:00:00Z is not before to 2026-11-01T00:00:00Z"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("from after to: %v, want %q", err, want)
	}
	_, err = RunTopic(ctx, e, TopicOptions{Brokers: brokers, Topic: "one", FromOffset: 10, ToOffset: 5})
	if want := "from offset 10 is not before to offset 5"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("from offset after to offset: %v, want %q", err, want)
	}
}
