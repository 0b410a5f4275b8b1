package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// brokerEnv names the broker the tests use; .ci/kafka.sh start prints it.
const brokerEnv = "DRIFTMON_KAFKA_BROKERS"

// scriptEnv names .ci/kafka.sh, for the tests that stop and start the broker.
const scriptEnv = "DRIFTMON_KAFKA_SCRIPT"

// oauthBrokerEnv names the broker's SASL OAUTHBEARER listener; .ci/kafka.sh start
// prints it. The listener wants unsigned JWS tokens with the scope kafka.
const oauthBrokerEnv = "DRIFTMON_KAFKA_OAUTH_BROKERS"

// broker returns the address of the real broker, or skips the test when there is none.
func broker(t *testing.T) string {
	t.Helper()
	return address(t, brokerEnv)
}

// oauthBroker returns the address of the real broker's OAUTHBEARER listener, or skips
// the test when there is none.
func oauthBroker(t *testing.T) string {
	t.Helper()
	return address(t, oauthBrokerEnv)
}

// address returns the first address the environment variable env lists, or skips the
// test when it lists none.
func address(t *testing.T, env string) string {
	t.Helper()
	addr := strings.TrimSpace(strings.Split(os.Getenv(env), ",")[0])
	if addr == "" {
		t.Skipf("%s is not set: start a broker with `export $(.ci/kafka.sh start)` (or run make test-kafka)", env)
	}
	return addr
}

// script returns the path of .ci/kafka.sh, or skips the test when it is not given.
// A relative path is taken from the repository's root, where make runs.
func script(t *testing.T) string {
	t.Helper()
	path := os.Getenv(scriptEnv)
	if path == "" {
		t.Skipf("%s is not set: this test stops and starts the broker with it (e.g. %s=$PWD/.ci/kafka.sh)", scriptEnv, scriptEnv)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join("..", "..", path)
	}
	return path
}

// runScript runs .ci/kafka.sh with one subcommand and fails the test when it fails.
func runScript(ctx context.Context, t *testing.T, path, cmd string) {
	t.Helper()
	start := time.Now()
	out, err := exec.CommandContext(ctx, path, cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", path, cmd, err, out)
	}
	t.Logf("kafka.sh %s took %s", cmd, time.Since(start).Round(100*time.Millisecond))
}

// newTopic creates a topic no other test or run uses and deletes it when the test ends.
func newTopic(ctx context.Context, t *testing.T, addr string, partitions int) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '-'
	}, t.Name())
	topic := fmt.Sprintf("driftmon-%s-%s", name, hex.EncodeToString(b[:]))

	admin := client(t, addr)
	res, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("cannot create topic %s: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("cannot create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A new transport: the test may have restarted the broker since.
		transport := &kafka.Transport{}
		defer transport.CloseIdleConnections()
		admin := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: transport}
		res, err := admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil {
			t.Logf("cannot delete topic %s: %v", topic, err)
		}
	})

	// The topic exists once every partition has a leader.
	waitFor(t, 30*time.Second, "topic "+topic+" to have a leader for each partition", func() bool {
		md, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != partitions {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Error != nil || p.Leader.ID < 0 {
				return false
			}
		}
		return true
	})
	return topic
}

// produce writes values to topic with kafka-go, spread over its partitions, and
// returns when the broker has acknowledged every one.
func produce(ctx context.Context, t *testing.T, addr, topic string, values [][]byte) {
	t.Helper()
	// A transport of its own: kafka-go's shared one keeps connections that a broker
	// restart broke and fails every write on them.
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Transport:    transport,
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 1000)
	for len(values) > 0 {
		n := min(1000, len(values))
		msgs = msgs[:0]
		for _, v := range values[:n] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			var failed kafka.WriteErrors
			if errors.As(err, &failed) {
				err = fmt.Errorf("%d of %d messages failed, first: %w", failed.Count(), len(failed), firstError(failed))
			}
			t.Fatalf("cannot produce to %s: %v", topic, err)
		}
		values = values[n:]
	}
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// client returns a kafka-go client with a transport of its own (see produce), closed
// when the test ends.
func client(t *testing.T, addr string) *kafka.Client {
	transport := &kafka.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: transport}
}

// stored is how many messages the broker holds for topic, summed over its partitions.
// Tests compare it with what they sent, so that a message a producer wrote twice is
// not taken for one the monitor counted twice.
func stored(ctx context.Context, t *testing.T, addr, topic string, partitions int) int64 {
	t.Helper()
	client := client(t, addr)
	reqs := make([]kafka.OffsetRequest, 0, 2*partitions)
	for p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("cannot list offsets of %s: %v", topic, err)
	}
	var n int64
	var errs []error
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p.Partition, p.Error))
		}
		n += p.LastOffset - p.FirstOffset
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("cannot list offsets of %s: %v", topic, err)
	}
	if got := len(res.Topics[topic]); got != partitions {
		t.Fatalf("offsets of %s: %d partitions, want %d", topic, got, partitions)
	}
	return n
}

// waitFor polls cond every 100ms until it holds, and fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
