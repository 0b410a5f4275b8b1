package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNextBatchFindsTheEndOfACompactedBatch checks the search the tail makes when a
// fetch returns only a batch whose remaining records all precede the offset it reads:
// it must land on the offset after that batch — not before, where it would be stuck,
// and not after, where it would skip the next batch's records — asking O(log n) times.
func TestNextBatchFindsTheEndOfACompactedBatch(t *testing.T) {
	type batch struct{ base, last int64 }
	tests := []struct {
		name    string
		batches []batch
		from    int64 // the tail's next offset, inside the first batch
		want    int64
	}{
		{"one offset left", []batch{{0, 9}, {10, 10}}, 9, 10},
		{"a long tail", []batch{{100, 1099}, {1100, 1200}}, 101, 1100},
		{"whole batches compacted away after it", []batch{{0, 49}, {80, 90}}, 30, 50},
		{"a batch of one after it", []batch{{0, 15}, {16, 16}, {17, 40}}, 3, 16},
		{"the last batch", []batch{{0, 63}}, 1, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := tt.batches[len(tt.batches)-1].last + 1
			asked := 0
			baseAt := func(p int64) (int64, error) {
				asked++
				if p <= tt.from || p >= end {
					t.Errorf("asked for offset %d, outside (%d, %d)", p, tt.from, end)
				}
				for _, b := range tt.batches {
					if b.last >= p {
						return b.base, nil
					}
				}
				return -1, nil
			}
			got, err := nextBatch(tt.from, end, tt.batches[0].base, baseAt)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("nextBatch = %d, want %d", got, tt.want)
			}
			if limit := 2*bits.Len64(uint64(tt.want-tt.from)) + 1; asked > limit {
				t.Errorf("asked %d times for a gap of %d offsets, want at most %d", asked, tt.want-tt.from, limit)
			}
		})
	}

	boom := errors.New("boom")
	if _, err := nextBatch(0, 10, 0, func(int64) (int64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("a failed fetch gave %v", err)
	}
}

// TestTailRereadsTheTopicWhenItsRecordsWereDeleted moves the topic's start past the
// tail's position, as kafka-delete-records (or kfake's compaction) does: the tail
// starts over from the first record left, with the map a process opening the topic
// now would have, instead of failing for ever.
func TestTailRereadsTheTopicWhenItsRecordsWereDeleted(t *testing.T) {
	_, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster"}
	w := open(t, opts)
	for i := range 10 {
		put(t, w, Record{Key: fmt.Sprintf("k%d", i), Value: []byte("v")})
	}
	deleteRecords(t, brokers, "cluster", 6)

	opts, err := opts.check()
	if err != nil {
		t.Fatal(err)
	}
	client, transport := newClient(opts)
	defer transport.CloseIdleConnections()
	l := newLog(opts, client, transport, opts.MaxMessageBytes) // no tail: the test fetches
	l.entries["stale"] = []byte("x")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for l.next < 10 {
		if err := l.fetch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := strings.Join(scan(l, ""), " "), "k6=v k7=v k8=v k9=v"; got != want {
		t.Errorf("map %s, want %s", got, want)
	}
}

// deleteRecords moves partition 0's log start to offset.
func deleteRecords(t *testing.T, brokers []string, topic string, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("delete records: error code %d", code)
	}
}
