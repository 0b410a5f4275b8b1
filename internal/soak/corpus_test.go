package soak

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/monitor"
)

// TestCorpusIsRejected sends every fixed corpus message and many generated bad ones of
// every kind, between valid events, through the monitor in-process: each bad message
// must be counted under the reason the campaign expects, and every valid event once.
// The campaign's "rejected by reason" check relies on these expectations.
func TestCorpusIsRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]

	const seed = 7
	mix := newBadMix(seed)
	var values []kafka.Message
	want := map[string]int64{}
	var good int64
	add := func(m badMessage) {
		values = append(values, kafka.Message{Value: goodEvent(seed, good)}, kafka.Message{Value: m.value})
		good++
		want[m.reason]++
	}
	for _, m := range mix.corpus {
		add(m)
	}
	perKind := map[string]int{}
	for n := int64(0); n < 3000; n++ {
		m := mix.message(n)
		perKind[m.kind]++
		add(m)
	}
	for _, g := range generated {
		if perKind[g.kind] == 0 {
			t.Errorf("3000 messages of the mix hold no %s", g.kind)
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "events", BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 4 << 20}
	if err := w.WriteMessages(ctx, values...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	cfg, err := config.Parse([]byte(fmt.Sprintf("kafka: {brokers: [%q], group_id: corpus}\nstreams:%s", addr, streamConfig("events"))), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mon.Run(runCtx) }()
	total := func(st monitor.Stats) int64 {
		n := st.Events
		for _, v := range st.Rejected {
			n += v
		}
		return n
	}
	for total(mon.Stats()["churn"]) < int64(len(values)) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := mon.Stats()["churn"]
	if st.Events != good {
		t.Errorf("%d events counted, want the %d valid ones", st.Events, good)
	}
	if !maps.Equal(st.Rejected, want) {
		t.Errorf("rejected by reason: %v, want %v", st.Rejected, want)
	}
}

// TestGoodEventsAreReproducible checks that an event is a function of the seed and its
// number alone: the reference run depends on it.
func TestGoodEventsAreReproducible(t *testing.T) {
	if a, b := goodEvent(3, 12345), goodEvent(3, 12345); string(a) != string(b) {
		t.Fatalf("two calls differ:\n%s\n%s", a, b)
	}
	if a, b := goodEvent(3, 1), goodEvent(4, 1); string(a) == string(b) {
		t.Fatalf("seeds 3 and 4 give the same event %s", a)
	}
	mix := newBadMix(3)
	if a, b := mix.message(77), newBadMix(3).message(77); string(a.value) != string(b.value) {
		t.Fatalf("bad message 77 differs between two mixes of one seed")
	}
}

// TestFormatCorpusIsRejected does for the Avro and Arrow IPC streams what
// TestCorpusIsRejected does for JSON: bad schema ids, bad magic bytes, truncated and
// trailing Avro, truncated and garbage IPC streams and IPC of the wrong type, between
// valid messages, each counted under its reason and every valid row once.
func TestFormatCorpusIsRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "avro", "ipc"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]
	reg := srfake.New()
	defer reg.Close()
	id, _, err := reg.RegisterSchema("soak-value", sr.Schema{Schema: avroSchema})
	if err != nil {
		t.Fatal(err)
	}

	const seed, n = 9, 600
	var avroMsgs, ipcMsgs []kafka.Message
	wantAvro, wantIPC := map[string]int64{}, map[string]int64{}
	for i := int64(0); i < n; i++ {
		avroMsgs = append(avroMsgs, kafka.Message{Value: avroMessage(seed, id, i)})
		ipcMsgs = append(ipcMsgs, kafka.Message{Value: ipcMessage(seed, i)})
		a, p := badAvro(seed, id, i), badIPC(seed, i)
		avroMsgs = append(avroMsgs, kafka.Message{Value: a.value})
		ipcMsgs = append(ipcMsgs, kafka.Message{Value: p.value})
		wantAvro[a.reason]++
		wantIPC[p.reason]++
	}
	for topic, msgs := range map[string][]kafka.Message{"avro": avroMsgs, "ipc": ipcMsgs} {
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 4 << 20}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	yaml := fmt.Sprintf("kafka: {brokers: [%q], group_id: formats}\nstreams:%s%s", addr,
		formatStreamConfig("churn-avro", "avro", "avro", reg.URL()), formatStreamConfig("churn-ipc", "ipc", "arrow_ipc", ""))
	cfg, err := config.Parse([]byte(yaml), config.ParseOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mon.Run(runCtx) }()
	handled := func(st monitor.Stats, rows int64) int64 {
		n := st.Events / rows
		for _, v := range st.Rejected {
			n += v
		}
		return n
	}
	for ctx.Err() == nil && (handled(mon.Stats()["churn-avro"], 1) < 2*n || handled(mon.Stats()["churn-ipc"], ipcRowsPerMsg) < 2*n) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		events int64
		want   map[string]int64
	}{"churn-avro": {n, wantAvro}, "churn-ipc": {n * ipcRowsPerMsg, wantIPC}} {
		st := mon.Stats()[name]
		if st.Events != c.events {
			t.Errorf("%s: %d events counted, want %d", name, st.Events, c.events)
		}
		if !maps.Equal(st.Rejected, c.want) {
			t.Errorf("%s: rejected by reason %v, want %v", name, st.Rejected, c.want)
		}
	}
}
