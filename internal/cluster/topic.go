package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/alerting"
)

// ensureTopic makes sure the cluster topic exists as the log needs it — one partition,
// compacted — creating it when it is missing, and returns the largest record batch it
// takes: the least of opts.MaxMessageBytes and its max.message.bytes.
//
// It never asks for metadata in a way that lets a broker create the topic on its own
// (auto.create.topics.enable would make it with the broker's defaults: several
// partitions, retention that deletes).
func ensureTopic(ctx context.Context, c *kafka.Client, opts Options) (int, error) {
	for attempt := 1; ; attempt++ {
		meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{opts.Topic}})
		if err != nil {
			return 0, fmt.Errorf("cannot describe cluster topic %s: %w", opts.Topic, err)
		}
		var topic *kafka.Topic
		for i := range meta.Topics {
			if meta.Topics[i].Name == opts.Topic {
				topic = &meta.Topics[i]
			}
		}
		switch {
		case topic == nil || errors.Is(topic.Error, kafka.UnknownTopicOrPartition):
			err := createTopic(ctx, c, opts, len(meta.Brokers))
			if errors.Is(err, kafka.TopicAlreadyExists) && attempt < createAttempts {
				// Another process created it first; the client's metadata, which it
				// refreshes every few seconds, will show it.
				if err := alerting.Sleep(ctx, time.Second); err != nil {
					return 0, err
				}
				continue
			}
			if err != nil {
				return 0, err
			}
		case topic.Error != nil:
			return 0, fmt.Errorf("cannot describe cluster topic %s: %w", opts.Topic, topic.Error)
		case len(topic.Partitions) != 1:
			return 0, fmt.Errorf("cluster topic %s has %d partitions, but it must have exactly one: "+
				"the order of its records is the cluster's state, and Kafka orders records only "+
				"within a partition; delete the topic so that driftmon creates it, or name another one",
				opts.Topic, len(topic.Partitions))
		}
		return checkConfig(ctx, c, opts)
	}
}

// createAttempts is how many times ensureTopic looks for a topic another process is
// creating at the same moment.
const createAttempts = 10

// createTopic creates the cluster topic on a cluster of n brokers.
func createTopic(ctx context.Context, c *kafka.Client, opts Options, brokers int) error {
	rf := opts.ReplicationFactor
	if rf == 0 {
		rf = max(1, min(3, brokers))
	}
	settings := fmt.Sprintf("1 partition, replication factor %d, cleanup.policy=compact, max.message.bytes=%d", rf, opts.MaxMessageBytes)
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             opts.Topic,
		NumPartitions:     1,
		ReplicationFactor: rf,
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(opts.MaxMessageBytes)},
		},
	}}})
	if err == nil {
		err = res.Errors[opts.Topic]
	}
	if errors.Is(err, kafka.TopicAlreadyExists) {
		return err
	}
	if err != nil {
		return fmt.Errorf("cannot create cluster topic %s (%s): %w; create it with these settings, "+
			"or allow this client to create topics", opts.Topic, settings, err)
	}
	opts.Logger.Info("created the cluster topic", "settings", settings)
	return nil
}

// checkConfig checks that the topic is compacted and returns the largest record batch
// it takes.
func checkConfig(ctx context.Context, c *kafka.Client, opts Options) (int, error) {
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic,
		ResourceName: opts.Topic,
		ConfigNames:  []string{"cleanup.policy", "max.message.bytes"},
	}}})
	if err == nil && len(res.Resources) != 1 {
		err = fmt.Errorf("%d resources in the answer, want 1", len(res.Resources))
	}
	if err == nil {
		err = res.Resources[0].Error
	}
	if err != nil {
		return 0, fmt.Errorf("cannot describe the configuration of cluster topic %s: %w", opts.Topic, err)
	}
	config := map[string]string{}
	for _, e := range res.Resources[0].ConfigEntries {
		config[e.ConfigName] = e.ConfigValue
	}
	policy := config["cleanup.policy"]
	if !compactOnly(policy) {
		return 0, fmt.Errorf("cluster topic %s has cleanup.policy=%s, but it must be compact: retention "+
			"would delete the cluster's state; set it with kafka-configs --alter --entity-type topics "+
			"--entity-name %s --add-config cleanup.policy=compact", opts.Topic, policy, opts.Topic)
	}
	limit := opts.MaxMessageBytes
	if v, err := strconv.Atoi(config["max.message.bytes"]); err == nil && v < limit {
		opts.Logger.Warn("the cluster topic takes smaller records than configured; larger ones are refused",
			"max_message_bytes", v, "configured", opts.MaxMessageBytes)
		limit = v
	}
	return limit, nil
}

// compactOnly says whether a cleanup.policy value compacts and never deletes.
func compactOnly(policy string) bool {
	compact := false
	for p := range strings.SplitSeq(policy, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			return false
		}
	}
	return compact
}
