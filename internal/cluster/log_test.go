package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func put(t *testing.T, l *Log, recs ...Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Put(ctx, recs...); err != nil {
		t.Fatal(err)
	}
}

func syncLog(t *testing.T, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// scan returns what Scan(prefix) calls back with, as "key=value" strings.
func scan(l *Log, prefix string) []string {
	var out []string
	l.Scan(prefix, func(k string, v []byte) { out = append(out, k+"="+string(v)) })
	return out
}

func TestPutGetScanAndTombstones(t *testing.T) {
	_, brokers := newCluster(t)
	l := open(t, Options{Brokers: brokers, Topic: "cluster"})
	put(t, l,
		Record{Key: "b/2", Value: []byte("two")},
		Record{Key: "a", Value: []byte("A")},
		Record{Key: "b/1", Value: []byte("one")},
		Record{Key: "b/3", Value: []byte("three")},
		Record{Key: "c", Value: []byte{}},
	)
	syncLog(t, l)
	if v, ok := l.Get("a"); !ok || string(v) != "A" {
		t.Errorf("Get(a) = %q, %v", v, ok)
	}
	if v, ok := l.Get("c"); !ok || v == nil || len(v) != 0 {
		t.Errorf("Get(c) = %#v, %v; want an empty value, not a deletion", v, ok)
	}
	if _, ok := l.Get("d"); ok {
		t.Error("Get(d) found a key never put")
	}
	if got, want := strings.Join(scan(l, "b/"), " "), "b/1=one b/2=two b/3=three"; got != want {
		t.Errorf("Scan(b/) = %s, want %s", got, want)
	}

	put(t, l, Record{Key: "b/2"}, Record{Key: "a"}, Record{Key: "b/3", Value: []byte("3")})
	syncLog(t, l)
	if got, want := strings.Join(scan(l, ""), " "), "b/1=one b/3=3 c="; got != want {
		t.Errorf("after deleting a and b/2, Scan() = %s, want %s", got, want)
	}
	// Keys 11+7 bytes, values 12+1.
	if recs, n := l.Written(); recs != 8 || n != 31 {
		t.Errorf("Written() = %d records, %d bytes; want 8, 31", recs, n)
	}
}

func TestScanMayCallTheLog(t *testing.T) {
	_, brokers := newCluster(t)
	l := open(t, Options{Brokers: brokers, Topic: "cluster"})
	put(t, l, Record{Key: "k1", Value: []byte("1")}, Record{Key: "k2", Value: []byte("2")})
	syncLog(t, l)
	var got []string
	l.Scan("k", func(k string, v []byte) {
		// Deleting what is scanned, as a leader cleaning up would.
		put(t, l, Record{Key: k})
		syncLog(t, l)
		_, ok := l.Get(k)
		got = append(got, fmt.Sprintf("%s=%s deleted=%v", k, v, !ok))
	})
	if want := "k1=1 deleted=true,k2=2 deleted=true"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestAnotherProcessSeesTheRecordsInOrderAfterSync(t *testing.T) {
	_, brokers := newCluster(t)
	// Small batches, so that a Put of many records takes several requests.
	opts := Options{Brokers: brokers, Topic: "cluster", MaxMessageBytes: 2048}
	writer := open(t, opts)

	reader := open(t, opts)
	syncLog(t, reader) // an empty topic
	if got := scan(reader, ""); len(got) != 0 {
		t.Fatalf("an empty topic gave %v", got)
	}

	put(t, writer, Record{Key: "k", Value: []byte("first")})
	put(t, writer, Record{Key: "k", Value: []byte("second")})
	var recs []Record
	for i := range 300 {
		recs = append(recs,
			Record{Key: "k", Value: fmt.Appendf(nil, "%03d", i)},
			Record{Key: fmt.Sprintf("n/%03d", i), Value: bytes.Repeat([]byte{'x'}, 50)})
	}
	put(t, writer, recs...)
	syncLog(t, reader)
	if v, _ := reader.Get("k"); string(v) != "299" {
		t.Errorf("k = %q, want the last value put, 299", v)
	}
	if n := len(scan(reader, "n/")); n != 300 {
		t.Errorf("%d keys n/..., want 300", n)
	}

	// A process that starts now reads the same.
	late := open(t, opts)
	syncLog(t, late)
	if got, want := strings.Join(scan(late, ""), " "), strings.Join(scan(reader, ""), " "); got != want {
		t.Error("a process opening the topic later has another map")
	}
}

func TestTooLargeRecordsAreRefusedAndNothingIsWritten(t *testing.T) {
	_, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster", MaxMessageBytes: 1024}
	l := open(t, opts)

	// The largest value that fits: the broker takes it, so the size Put counts is
	// not less than the real one.
	n := 1024
	for batchOverhead+recordSize(0, Record{Key: "edge", Value: make([]byte, n)}) > 1024 {
		n--
	}
	put(t, l, Record{Key: "edge", Value: make([]byte, n)})
	recs, _ := l.Written()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := l.Put(ctx, Record{Key: "small", Value: []byte("x")}, Record{Key: "edge", Value: make([]byte, n+1)}, Record{Value: []byte("y")})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{`record 1 (key "edge")`, "max.message.bytes 1024", "record 2: empty key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if after, _ := l.Written(); after != recs {
		t.Errorf("%d records written by the refused Put", after-recs)
	}
	other := open(t, opts)
	syncLog(t, other)
	if got := scan(other, ""); len(got) != 1 {
		t.Errorf("the topic holds %d keys, want only edge", len(got))
	}
}

func TestACompactedTopicGivesTheSameMap(t *testing.T) {
	c, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster", MaxMessageBytes: 4096}
	l := open(t, opts)
	for round := range 5 {
		var recs []Record
		for k := range 40 {
			switch {
			case k%7 == round:
				recs = append(recs, Record{Key: fmt.Sprintf("k%02d", k)})
			case k%3 != round%3:
				recs = append(recs, Record{Key: fmt.Sprintf("k%02d", k), Value: fmt.Appendf(nil, "%d-%d", k, round)})
			}
		}
		put(t, l, recs...)
	}
	put(t, l, Record{Key: "last", Value: []byte("!")})
	syncLog(t, l)
	want := strings.Join(scan(l, ""), " ")

	before := countRecords(t, brokers, "cluster")
	c.Compact()
	if after := countRecords(t, brokers, "cluster"); after >= before {
		t.Fatalf("compaction left %d of %d records", after, before)
	}
	fresh := open(t, opts)
	syncLog(t, fresh)
	if got := strings.Join(scan(fresh, ""), " "); got != want {
		t.Errorf("after compaction:\n%s\nwant\n%s", got, want)
	}
}

// countRecords returns how many records partition 0 of topic holds.
func countRecords(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	// kfake's compaction moves the log's start to the first batch left.
	n, next := 0, kafka.FirstOffset
	for {
		res, err := c.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Offset: next, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			t.Fatal(err)
		}
		recs, err := decode(res.Records, max(next, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return n
		}
		n += len(recs)
		next = recs[len(recs)-1].offset + 1
	}
}

func TestChangedSignalsNewRecords(t *testing.T) {
	_, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster"}
	l := open(t, opts)
	select {
	case <-l.Changed():
		t.Fatal("a change signalled on an empty topic")
	default:
	}
	put(t, open(t, opts), Record{Key: "k", Value: []byte("v")})
	select {
	case <-l.Changed():
	case <-time.After(20 * time.Second):
		t.Fatal("no change signalled")
	}
	if v, _ := l.Get("k"); string(v) != "v" {
		t.Errorf("after the signal k = %q, want v", v)
	}
}

func TestPutAndSyncFailAfterClose(t *testing.T) {
	_, brokers := newCluster(t)
	l := open(t, Options{Brokers: brokers, Topic: "cluster"})
	put(t, l, Record{Key: "k", Value: []byte("v")})
	syncLog(t, l)
	l.Close()
	ctx := context.Background()
	if err := l.Put(ctx, Record{Key: "k", Value: []byte("w")}); !errors.Is(err, errClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if err := l.Sync(ctx); !errors.Is(err, errClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if v, _ := l.Get("k"); string(v) != "v" {
		t.Errorf("Get after Close = %q, want what was applied", v)
	}
}
