package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newCluster starts an in-process Kafka of one broker that accepts short group
// sessions, and returns it and its addresses.
func newCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// open opens the log opts describe, to be closed when the test ends.
func open(t *testing.T, opts Options) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestOpenCreatesACompactedTopicWithOnePartition(t *testing.T) {
	_, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster", MaxMessageBytes: 1 << 20}
	open(t, opts)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"cluster"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) != 1 {
		t.Fatalf("topics %+v, want cluster with one partition", meta.Topics)
	}
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: "cluster",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]string{}
	for _, e := range res.Resources[0].ConfigEntries {
		config[e.ConfigName] = e.ConfigValue
	}
	if config["cleanup.policy"] != "compact" || config["max.message.bytes"] != "1048576" {
		t.Errorf("cleanup.policy=%q max.message.bytes=%q, want compact and 1048576", config["cleanup.policy"], config["max.message.bytes"])
	}

	// Another process finds the topic as it needs it.
	open(t, opts)
}

func TestOpenSaysWhyItCannotUseTheTopic(t *testing.T) {
	tests := []struct {
		name string
		seed kfake.Opt // nil: no topic
		opts func(brokers []string) Options
		want []string
	}{
		{
			name: "several partitions",
			seed: kfake.SeedTopics(3, "cluster"),
			opts: func(b []string) Options { return Options{Brokers: b, Topic: "cluster"} },
			want: []string{"cluster topic cluster has 3 partitions", "exactly one", "delete the topic"},
		},
		{
			name: "not compacted",
			seed: kfake.SeedTopics(1, "cluster"),
			opts: func(b []string) Options { return Options{Brokers: b, Topic: "cluster"} },
			want: []string{"cluster topic cluster has cleanup.policy=delete", "--add-config cleanup.policy=compact"},
		},
		{
			name: "no brokers or topic",
			opts: func([]string) Options { return Options{MaxMessageBytes: 100} },
			want: []string{"no brokers", "no topic", "max message bytes 100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seed []kfake.Opt
			if tt.seed != nil {
				seed = append(seed, tt.seed)
			}
			_, brokers := newCluster(t, seed...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := Open(ctx, tt.opts(brokers))
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
