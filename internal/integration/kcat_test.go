package integration

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol/fetch"
)

// TestKcatCompressedMessages has kcat (librdkafka, a non-Go producer) write events
// compressed with each codec Kafka knows, one topic per codec, checks that the broker
// stored them compressed, and that the monitor decodes and counts every one.
func TestKcatCompressedMessages(t *testing.T) {
	addr := broker(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/kafka.sh start does it as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const perCodec, rows = 2000, 500
	codecs := []struct {
		name  string
		codec compress.Compression
	}{
		{"gzip", compress.Gzip},
		{"snappy", compress.Snappy},
		{"lz4", compress.Lz4},
		{"zstd", compress.Zstd},
	}
	g := newTraffic(3)
	var streams []string
	topics := map[string]string{}
	for _, c := range codecs {
		topic := newTopic(ctx, t, addr, 1)
		topics[c.name] = topic
		streams = append(streams, stream(c.name, topic, rows))
		lines := bytes.Join(g.events(t, perCodec, false), []byte("\n"))
		cmd := exec.CommandContext(ctx, kcat, "-P", "-b", addr, "-t", topic, "-z", c.name, "-X", "linger.ms=20")
		cmd.Stdin = bytes.NewReader(append(lines, '\n'))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -z %s: %v\n%s", c.name, err, out)
		}
		if got := stored(ctx, t, addr, topic, 1); got != perCodec {
			t.Fatalf("kcat -z %s: the broker holds %d messages, want %d", c.name, got, perCodec)
		}
		if got := storedCompression(ctx, t, addr, topic); got != c.codec {
			t.Fatalf("kcat -z %s: the broker stored batches compressed with %v", c.name, got)
		}
	}

	run := startMonitor(ctx, t, configYAML(addr, "group-"+topics["gzip"], streams, ""), nil)
	deadline := time.Now().Add(45 * time.Second)
	for _, c := range codecs {
		awaitEvents(t, time.Until(deadline), 0, c.name, perCodec, run)
	}
	time.Sleep(2 * time.Second)
	run.stop(t)

	for _, c := range codecs {
		if got := run.events(c.name); got != perCodec {
			t.Errorf("%s: monitor counted %d events, want %d", c.name, got, perCodec)
		}
	}
	checkNoRejections(t, run)
	if got, want := len(run.windows()), len(codecs)*perCodec/rows; got != want {
		t.Errorf("%d windows closed, want %d", got, want)
	}
}

// storedCompression fetches the start of a one-partition topic the way a consumer
// does and returns the compression of the record batches the broker hands out. Kafka
// keeps each batch as its producer compressed it.
func storedCompression(ctx context.Context, t *testing.T, addr, topic string) compress.Compression {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	res, err := transport.RoundTrip(ctx, kafka.TCP(addr), &fetch.Request{
		ReplicaID:    -1,
		MaxWaitTime:  1000,
		MaxBytes:     1 << 20,
		SessionID:    -1,
		SessionEpoch: -1,
		Topics: []fetch.RequestTopic{{Topic: topic, Partitions: []fetch.RequestPartition{{
			CurrentLeaderEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20,
		}}}},
	})
	if err != nil {
		t.Fatalf("cannot fetch from %s: %v", topic, err)
	}
	r := res.(*fetch.Response)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch from %s: unexpected response %+v", topic, r)
	}
	p := r.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch from %s: error code %d", topic, p.ErrorCode)
	}
	// Attributes are those of all the batches fetched, or-ed: one codec when every
	// batch has the same.
	return p.RecordSet.Attributes.Compression()
}
