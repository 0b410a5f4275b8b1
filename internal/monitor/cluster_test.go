package monitor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftmon/driftmon/internal/resultfile"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// clusterBroker returns a broker with two topics of parts partitions: the real one
// that DRIFTMON_KAFKA_BROKERS names (make test-kafka), or a kfake broker in a process
// of its own.
func clusterBroker(t *testing.T, parts int) (addr, one, many string) {
	t.Helper()
	brokers := os.Getenv("DRIFTMON_KAFKA_BROKERS")
	if brokers == "" {
		return startBroker(t, fmt.Sprintf("one:%d,many:%d", parts, parts)).addr(), "one", "many"
	}
	addr = strings.Split(brokers, ",")[0]
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	one, many = "driftmon-one-"+suffix, "driftmon-many-"+suffix
	createTopics(t, addr, parts, one, many)
	t.Cleanup(func() { deleteTopics(addr, many+"-partials") })
	return addr, one, many
}

// leads reports whether d's current run is the cluster's leader, from its log.
func (d *deployment) leads() bool {
	b, _ := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("run-%d.log", d.runs)))
	log := string(b)
	return strings.LastIndex(log, "leading: judging windows") > strings.LastIndex(log, "no longer the leader")
}

// TestClusterGivesTheWindowsOfOneProcess runs three processes on one six-partition
// topic while traffic drifts, kills the leader with SIGKILL mid-stream and later a
// follower, restarting each: the cluster's windows and webhook ids are those of one
// process reading the same events (a window reported again after a kill the same as
// before), and no webhook-id reaches the receiver twice.
func TestClusterGivesTheWindowsOfOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it: not with -short")
	}
	driftmonBinary(t)
	const parts = 6
	addr, one, many := clusterBroker(t, parts)
	data := dataset{seed: 41, n: 48000, parts: parts, step: 50 * time.Millisecond, shiftAt: 24000, shift: 0.8, models: 2, badShare: 0.001}
	msgs := data.messages()

	// One process over the whole log.
	produceAll(t, addr, one, msgs)
	ref := newDeployment(t, "cluster-ref", addr, one, "{size: 1m}")
	ref.start()
	ref.waitConsumed(addr, one, parts, 90*time.Second)
	want := distinct(t, ref.lines(), 0)
	wantAlerts := settledDeliveries(ref.receiver)
	ref.stop()
	if len(want) < 40 || len(wantAlerts) < 3 {
		t.Fatalf("one process closed %d windows and raised %d alerts: the data does not exercise the cluster", len(want), len(wantAlerts))
	}

	// Three processes in one group, sharing one webhook receiver, while the events
	// are produced. Their webhook calls in every drifting window, as the reference's
	// (newDeployment) does: what is tested is that each call is delivered once.
	receiver, hookURL, secret := newReceiver(t)
	group := "cluster-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	nodes := make([]*deployment, 3)
	for i := range nodes {
		nodes[i] = newDeploymentWith(t, fmt.Sprintf("node%d", i), func(string, string, string) string {
			return fmt.Sprintf(`
kafka: {brokers: [%q], group_id: %q}
cluster: {partials_topic: %q, session_timeout: 6s}
state: {checkpoint_records: 1500, checkpoint_interval: 300ms}
%salerting:
  webhooks: [{name: retrain, url: %[5]q, secret: %[6]q, every_window: true},
             {name: rollback, url: %[5]q, secret: %[6]q, objectives: [x p90, c share of d]}]
`, addr, group, many+"-partials", segmentedStream(many, "{size: 1m}"), hookURL, secret)
		})
		nodes[i].start()
	}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for lo := 0; lo < len(msgs); lo += 1200 {
			if err := produceOrdered(addr, many, msgs[lo:min(lo+1200, len(msgs))]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	leader := func() *deployment {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for _, d := range nodes {
				if d.proc != nil && d.leads() {
					return d
				}
			}
		}
		t.Fatal("no process became the leader within a minute")
		return nil
	}
	seen := func() int {
		var lines []resultfile.Line
		for _, d := range nodes {
			lines = append(lines, d.lines()...)
		}
		return len(lines)
	}
	// The leader, once it has judged some windows.
	for deadline := time.Now().Add(60 * time.Second); seen() < 6 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	l := leader()
	t.Logf("kill -9 of the leader %s after %d windows", l.name, seen())
	l.kill()
	// Another process takes over once the group has given up on the dead one.
	took := time.Now()
	next := leader()
	t.Logf("%s leads %v after the kill", next.name, time.Since(took).Round(100*time.Millisecond))
	l.start()
	// Then a follower, once the new leader has judged more.
	for n, deadline := seen(), time.Now().Add(60*time.Second); seen() < n+6 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	l = leader()
	for _, d := range nodes {
		if d != l {
			t.Logf("kill -9 of the follower %s after %d windows (leader %s)", d.name, seen(), l.name)
			d.kill()
			time.Sleep(2 * time.Second)
			d.start()
			break
		}
	}
	<-produced
	terms := 0
	for _, d := range nodes {
		for run := 1; run <= d.runs; run++ {
			b, _ := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("run-%d.log", run)))
			terms += strings.Count(string(b), "leading: judging windows")
		}
	}
	t.Logf("%d leadership terms", terms)

	// Every window of the one process, from whichever process led when it closed.
	var lines []resultfile.Line
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lines = lines[:0]
		for _, d := range nodes {
			lines = append(lines, d.lines()...)
		}
		if len(distinct(t, lines, scoreTolerance)) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	got := distinct(t, lines, scoreTolerance)
	t.Logf("%d windows judged by the cluster, %d by one process; %d alerts", len(got), len(want), len(wantAlerts))
	if judged, drifted := segmentVerdicts(want); judged == 0 || drifted == 0 {
		t.Fatalf("one process judged %d segment findings, %d drifting: the data does not exercise the segments", judged, drifted)
	} else {
		t.Logf("%d segment findings judged, %d drifting; %d failed quality checks", judged, drifted, failedChecks(want))
	}
	// A window judged but not yet recorded when the leader was killed is judged
	// again by the next, the same (distinct checks), as one process does after a
	// kill -9; alerts and webhooks are recorded once whatever.
	t.Logf("%d windows reported again after a kill", len(lines)-len(got))
	compareResults(t, want, got)
	if ids, wantIDs := alertIDs(got), alertIDs(want); !slices.Equal(ids, wantIDs) {
		t.Errorf("the cluster's results call for alerts %v, one process's for %v", ids, wantIDs)
	}
	waitDelivered(t, receiver, wantAlerts)
	for _, d := range nodes {
		d.stop()
	}
	// Delivery is at least once with a stable webhook-id (README; RELIABILITY.md): a call
	// in flight when the leader is killed is made again, with its id, by the next
	// leader. So the one leader kill may repeat one call; the follower's kill none, and
	// no request may be refused.
	rejected := receiver.Rejected()
	dup := receiver.Requests() - rejected - len(receiver.Deliveries())
	t.Logf("%d webhook requests repeated a webhook-id", dup)
	if rejected != 0 || dup > 1 {
		t.Errorf("%d webhook requests refused by the receiver, %d repeated a webhook-id; want none and at most one (the call in flight at the leader's kill)", rejected, dup)
	}
	if t.Failed() {
		for _, d := range nodes {
			t.Logf("%s:\n%s", d.name, d.logTail())
		}
		// DRIFTMON_KEEP=dir keeps the processes' whole logs and results there.
		if keep := os.Getenv("DRIFTMON_KEEP"); keep != "" {
			os.MkdirAll(keep, 0o755)
			for _, d := range nodes {
				exec.Command("cp", "-r", d.dir, filepath.Join(keep, d.name)).Run()
			}
		}
	}
}

// runClusterOfOne runs, until the test ends, one monitor in cluster mode (so it leads)
// on a kfake topic "ev" of the given partitions, with the data set's stream in
// 1-minute windows (1 s idle, one warm-up window) and onWindow as OnWindow.
func runClusterOfOne(t *testing.T, partitions int, onWindow func(engine.Result)) (*Monitor, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), "ev"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	cfg := testConfig(t, addr, "ev", "{size: 1m, idle: 1s}", `
cluster: {partials_topic: ev-partials, session_timeout: 6s}
state: {checkpoint_interval: 200ms}`)
	cfg.Streams[0].Reference.WarmupWindows = 1
	mon, err := New(cfg, Options{OnWindow: onWindow})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return mon, addr
}

// TestLeaderJudgesWithoutAnIdlePartitionAndCountsItsLateRows: a partition with no
// traffic goes idle, so the windows of the others are judged without it — and say
// so; rows it sends later for a judged window are counted as late, not lost.
func TestLeaderJudgesWithoutAnIdlePartitionAndCountsItsLateRows(t *testing.T) {
	var mu sync.Mutex
	var results []engine.Result
	mon, addr := runClusterOfOne(t, 3, func(r engine.Result) {
		mu.Lock()
		results = append(results, engine.Result{Start: r.Start, Rows: r.Rows, Missing: r.Missing, Warmup: r.Warmup})
		mu.Unlock()
	})

	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	event := func(p int, at time.Duration, off int64) ingest.Message {
		v := fmt.Sprintf(`{"ts":%q,"model":"m","model_version":"1","features":{"x":%d,"n":1,"c":"a"}}`,
			t0.Add(at).Format(time.RFC3339Nano), off%7)
		return ingest.Message{Value: []byte(v), Partition: p, Offset: off}
	}
	var msgs []ingest.Message
	for i := range 300 { // 5 minutes on partitions 0 and 1; partition 2 silent
		msgs = append(msgs, event(0, time.Duration(i)*time.Second, int64(i)), event(1, time.Duration(i)*time.Second, int64(i)))
	}
	produceAll(t, addr, "ev", msgs)
	judged := func(n int) []engine.Result {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			got := slices.Clone(results)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
		}
		t.Fatalf("fewer than %d windows judged in 30s: %v; stats %+v", n, results, mon.Stats())
		return nil
	}
	// Minutes 0–3 close on partitions 0 and 1; minute 4 stays open.
	got := judged(4)
	for i, r := range got {
		if want := t0.Add(time.Duration(i) * time.Minute); !r.Start.Equal(want) || r.Rows != 120 || !slices.Equal(r.Missing, []int32{2}) {
			t.Errorf("window %d: start %v, %d rows, missing %v; want %v, 120 rows, missing [2]", i, r.Start, r.Rows, r.Missing, want)
		}
	}
	// Partition 2 wakes up with an event of minute 0, judged already, and one that
	// closes that window on partition 2.
	produceAll(t, addr, "ev", []ingest.Message{event(2, 30*time.Second, 0), event(2, 10*time.Minute, 1)})
	for deadline := time.Now().Add(30 * time.Second); mon.Stats()["s"].Late != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("late rows %d, want 1 (the minute-0 row of partition 2)", mon.Stats()["s"].Late)
		}
	}
	if role := mon.Role(); role != "leader" {
		t.Errorf("role %q, want leader", role)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) != 4 {
		t.Errorf("%d windows judged, want still 4: %v", len(results), results)
	}
}

// TestClusterLeaderSaysWhenTheStreamIsBlind: in a cluster the workers read the events
// and the leader judges; the partition records carry how many events each partition
// read and how many came late or were refused, so the leader raises the blind alert
// when a window it judges was mostly late, as one process does.
func TestClusterLeaderSaysWhenTheStreamIsBlind(t *testing.T) {
	var judged atomic.Int64
	mon, addr := runClusterOfOne(t, 2, func(engine.Result) { judged.Add(1) })
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	offs := []int64{0, 0}
	event := func(p int, at time.Duration) ingest.Message {
		v := fmt.Sprintf(`{"ts":%q,"model":"m","model_version":"1","features":{"x":%d,"n":1,"c":"a"}}`,
			t0.Add(at).Format(time.RFC3339Nano), offs[p]%7)
		offs[p]++
		return ingest.Message{Value: []byte(v), Partition: p, Offset: offs[p] - 1}
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not within 30s; stats %+v", what, mon.Stats())
			}
		}
	}
	var msgs []ingest.Message
	for i := range 240 { // minutes 0–3 on both partitions, on time
		msgs = append(msgs, event(0, time.Duration(i)*time.Second), event(1, time.Duration(i)*time.Second))
	}
	produceAll(t, addr, "ev", msgs)
	wait("3 windows judged", func() bool { return judged.Load() >= 3 })
	if mon.Stats()["s"].Blind {
		t.Fatal("blind while every event is on time")
	}
	// Minute 3's window gets 20 events in time and 400 of minute 0 (late), then
	// minute 4 closes it.
	msgs = msgs[:0]
	for i := range 200 {
		msgs = append(msgs, event(i%2, time.Duration(i)*100*time.Millisecond))
	}
	for i := range 20 {
		msgs = append(msgs, event(i%2, 3*time.Minute+time.Duration(i)*time.Second))
	}
	for i := range 200 {
		msgs = append(msgs, event(i%2, time.Duration(i)*100*time.Millisecond))
	}
	msgs = append(msgs, event(0, 5*time.Minute), event(1, 5*time.Minute))
	produceAll(t, addr, "ev", msgs)
	wait("the leader's blind alert", func() bool { return mon.Stats()["s"].Blind })
	if late := mon.Stats()["s"].Late; late < 400 {
		t.Errorf("%d late events, want the 400 of minute 0", late)
	}
}
