package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/references"
	"github.com/driftmon/driftmon/internal/state"
	"github.com/driftmon/driftmon/sketch"
)

var handoverT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// versionEvents are per events a minute of model "a", minutes [from, to) after
// handoverT0, on partition p: for each version in turn, x ~ N(mu[version], 1), n
// uniform in 0..9, c uniform in a..d.
func versionEvents(seed uint64, p, from, to, per int, mu map[string]float64) []ingest.Message {
	r := rand.New(rand.NewPCG(seed, uint64(from)))
	versions := make([]string, 0, len(mu))
	for v := range mu {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	var out []ingest.Message
	for m := from; m < to; m++ {
		for i := range per {
			ts := handoverT0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(per))
			for _, v := range versions {
				value := fmt.Sprintf(`{"ts":%q,"model":"a","model_version":%q,"features":{"x":%.6f,"n":%d,"c":%q}}`,
					ts.Format(time.RFC3339Nano), v, mu[v]+r.NormFloat64(), r.IntN(10), string(rune('a'+r.IntN(4))))
				out = append(out, ingest.Message{Value: []byte(value), Partition: p})
			}
		}
	}
	return out
}

// profileOf is the profile file `driftmon baseline` would write of msgs' rows for sc:
// a version's training data.
func profileOf(t *testing.T, sc *config.Stream, msgs []ingest.Message) []byte {
	t.Helper()
	run := newEngineRun(t, sc)
	p := sketch.NewProfile(run.e.Fields(), sketch.Options{})
	bd := &batchDecoder{decs: []messageDecoder{run.dec}, log: slog.New(slog.DiscardHandler)}
	for _, d := range bd.decode(msgs) {
		p.Update(d.rec, nil)
		d.rec.Release()
	}
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// windowLog collects the results a monitor reports.
type windowLog struct {
	mu      sync.Mutex
	results []engine.Result
}

func (l *windowLog) add(r engine.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Profile, r.ReferenceProfile = nil, nil // not valid after the call
	l.results = append(l.results, r)
}

// wait returns the results of version's windows that start at minute from or later,
// once it has n of them.
func (l *windowLog) wait(t *testing.T, version string, from, n int) []engine.Result {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		var got []engine.Result
		for _, r := range l.results {
			if r.ModelVersion == version && !r.Start.Before(handoverT0.Add(time.Duration(from)*time.Minute)) {
				got = append(got, r)
			}
		}
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d windows of version %s from minute %d judged in 30s, want %d", len(got), version, from, n)
		}
	}
}

// runMonitor runs a monitor of cfg until the returned stop is called (or the test
// ends), reporting windows to log.
func runMonitor(t *testing.T, cfg *config.Config, log *windowLog) (*Monitor, func()) {
	t.Helper()
	mon, err := New(cfg, Options{OnWindow: log.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := mon.Reference("", "a", "x"); !errors.Is(err, references.ErrNotRunning) {
			return mon, stop
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor did not start in 10s")
		}
	}
}

// TestHandedOverReferenceInTheStateFile: a reference handed over for version 2 before
// its traffic starts is kept in the state file, once, and judges version 2's windows —
// quiet against its own training data, drifting (and audited so) when its traffic
// moves away from it — while version 1 warms up and says it has none; after a restart
// it still judges version 2, and deleted, version 2 falls back.
func TestHandedOverReferenceInTheStateFile(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ev"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	path := filepath.Join(t.TempDir(), "state.db")
	cfg := testConfig(t, addr, "ev", "{size: 1m, idle: 1s}", fmt.Sprintf(`state: {path: %q, checkpoint_interval: 100ms}
`, path))
	sc := &cfg.Streams[0]
	// Version 2 was trained on data 1.2σ away from version 1's.
	mu := map[string]float64{"1": 0, "2": 1.2}
	training := profileOf(t, sc, versionEvents(5, 0, 0, 20, 300, map[string]float64{"2": 1.2}))

	var log windowLog
	mon, stop := runMonitor(t, cfg, &log)
	ctx := context.Background()
	// What the API refuses, and says why.
	if _, err := mon.HandOver(ctx, "", "a", "2", []byte("x,n,c\n1,2,a\n")); !errors.Is(err, engine.ErrNotProfile) {
		t.Errorf("a CSV handed over: %v", err)
	}
	other := sketch.NewProfile([]sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}, sketch.Options{})
	if b, _ := other.MarshalBinary(); true {
		if _, err := mon.HandOver(ctx, "", "a", "2", b); !errors.Is(err, engine.ErrProfileFields) || !strings.Contains(err.Error(), "no feature c, n") {
			t.Errorf("a profile of other fields: %v", err)
		}
	}
	if _, err := mon.HandOver(ctx, "nope", "a", "2", training); !errors.Is(err, references.ErrUnknownStream) || !strings.Contains(err.Error(), "streams s") {
		t.Errorf("an unknown stream: %v", err)
	}
	if _, err := mon.Withdraw(ctx, "", "a", "2"); !errors.Is(err, references.ErrNoHandover) {
		t.Errorf("withdrew a reference never handed over: %v", err)
	}

	ref, err := mon.HandOver(ctx, "", "a", "2", training)
	if err != nil {
		t.Fatal(err)
	}
	if want := "handed over for 2 by PUT at "; !strings.HasPrefix(ref.Name, want) || !strings.HasSuffix(ref.Name, ": 6,000 rows") {
		t.Errorf("handed over as %q", ref.Name)
	}
	produceAll(t, addr, "ev", versionEvents(1, 0, 0, 6, 300, mu))
	for _, r := range log.wait(t, "2", 0, 5) {
		if r.Reference != ref.Name || r.Warmup || len(r.Findings) == 0 || len(r.Drifted()) > 0 {
			t.Errorf("version 2 at %v: %q, warm-up %v, drifted %v; want judged against %q and quiet", r.Start, r.Reference, r.Warmup, r.Drifted(), ref.Name)
		}
	}
	if r := log.wait(t, "1", 1, 1)[0]; !r.Warmup || r.Reference != "no reference handed over for 1: warm-up: 1 of 2 windows" {
		t.Errorf("version 1: %q, warm-up %v", r.Reference, r.Warmup)
	}
	// Version 2's traffic moves 1.5σ away from its training data: it drifts against
	// it, and the audit trail names the reference that judged the window.
	produceAll(t, addr, "ev", versionEvents(2, 0, 6, 9, 300, map[string]float64{"1": 0, "2": 2.7}))
	for _, r := range log.wait(t, "2", 6, 2) {
		if r.Reference != ref.Name || !slices.Contains(r.Drifted(), "x") {
			t.Errorf("version 2 at %v after its shift: %q, drifted %v", r.Start, r.Reference, r.Drifted())
		}
	}
	var fired []audit.Entry
	for deadline := time.Now().Add(10 * time.Second); len(fired) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		entries, _ := mon.Audit(audit.Query{})
		for _, e := range entries {
			if e.Event == audit.EventDecision && e.Decision == "fire" && e.ModelVersion == "2" {
				fired = append(fired, e)
			}
		}
	}
	if len(fired) == 0 || fired[0].Reference != ref.Name {
		t.Errorf("audit of version 2's alert: %+v; want its reference %q", fired, ref.Name)
	}
	stop()

	// The state file holds the reference once, beside a checkpoint that names no
	// profile of it.
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := references.Records(st, "s")
	if err != nil {
		t.Fatal(err)
	}
	stored := len(recs)
	var checkpoint []byte
	st.View(func(tx *state.Tx) error {
		checkpoint = bytes.Clone(tx.Get(checkpointBucket, "s"))
		return nil
	})
	st.Close()
	if stored != 1 || len(checkpoint) == 0 || bytes.Contains(checkpoint, training) {
		t.Errorf("the state holds %d references and a checkpoint of %d bytes (holding the profile: %v); want 1, and a checkpoint without it",
			stored, len(checkpoint), bytes.Contains(checkpoint, training))
	}

	// Restarted, the monitor judges version 2 against it still.
	mon, stop = runMonitor(t, cfg, &log)
	if got, err := mon.Reference("", "a", "2"); err != nil || got.Name != ref.Name || got.Handover == nil || got.Handover.Profile.Rows != 6000 {
		t.Errorf("after a restart: %+v, %v", got, err)
	}
	produceAll(t, addr, "ev", versionEvents(3, 0, 9, 12, 300, mu))
	for _, r := range log.wait(t, "2", 9, 2) {
		if r.Reference != ref.Name || len(r.Drifted()) > 0 {
			t.Errorf("version 2 at %v after the restart: %q, drifted %v", r.Start, r.Reference, r.Drifted())
		}
	}
	// Deleted, version 2 falls back to a warm-up of its own.
	got, err := mon.Withdraw(ctx, "", "a", "2")
	if err != nil || got.Handover != nil || got.Name != "no reference handed over for 2: warm-up: the version's first 2 whole windows" {
		t.Errorf("withdrawn: %+v, %v", got, err)
	}
	time.Sleep(1500 * time.Millisecond) // the stream's next step (an idle tick at least) takes it
	produceAll(t, addr, "ev", versionEvents(4, 0, 12, 15, 300, mu))
	for _, r := range log.wait(t, "2", 12, 2) {
		if r.Reference == ref.Name || !r.Warmup {
			t.Errorf("version 2 at %v after the deletion: %q, warm-up %v; want a warm-up", r.Start, r.Reference, r.Warmup)
		}
	}
	stop()
}

// TestClusterLeaderJudgesWithHandedOverReferences: in a cluster of two processes, a
// reference handed over to the follower reaches the leader through the cluster topic,
// and one read from a reference.per_version file is stored there by the leader; each
// judges its version, and after the leader stops, the new leader judges with both —
// the file deleted meanwhile — and with one handed over to it.
func TestClusterLeaderJudgesWithHandedOverReferences(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ev"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	dir := t.TempDir()
	cfg := testConfig(t, addr, "ev", "{size: 1m, idle: 1s}", `
cluster: {partials_topic: ev-partials, session_timeout: 6s}
state: {checkpoint_interval: 100ms}`)
	sc := &cfg.Streams[0]
	sc.Reference.PerVersion = filepath.Join(dir, "{model}-{version}.profile")
	mu := map[string]float64{"1": 0, "2": 1.2, "4": -1}
	profile := func(version string) []byte {
		return profileOf(t, sc, versionEvents(11, 0, 0, 20, 300, map[string]float64{version: mu[version]}))
	}
	file := filepath.Join(dir, "a-4.profile")
	if err := engine.WriteProfile(file, mustProfile(t, profile("4"))); err != nil {
		t.Fatal(err)
	}

	logs := []*windowLog{{}, {}}
	mons := make([]*Monitor, 2)
	stops := make([]func(), 2)
	for i := range mons {
		mons[i], stops[i] = runMonitor(t, cfg, logs[i])
	}
	leader := func() int {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for i, m := range mons {
				if stops[i] != nil && m.Role() == "leader" {
					return i
				}
			}
		}
		t.Fatal("no leader in 30s")
		return -1
	}
	l := leader()
	f := 1 - l
	ref2, err := mons[f].HandOver(context.Background(), "s", "a", "2", profile("2"))
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, addr, "ev", versionEvents(1, 0, 0, 5, 300, mu))
	for _, r := range logs[l].wait(t, "2", 0, 4) {
		if r.Reference != ref2.Name || len(r.Drifted()) > 0 {
			t.Errorf("the leader judged version 2 at %v against %q, drifted %v; want %q", r.Start, r.Reference, r.Drifted(), ref2.Name)
		}
	}
	wantFile := "handed over for 4 in " + file + " at "
	for _, r := range logs[l].wait(t, "4", 0, 4) {
		if !strings.HasPrefix(r.Reference, wantFile) || len(r.Drifted()) > 0 {
			t.Errorf("the leader judged version 4 at %v against %q, drifted %v; want its file", r.Start, r.Reference, r.Drifted())
		}
	}
	if got, err := mons[f].Reference("", "a", "4"); err != nil || got.Handover == nil || got.Handover.Via != file {
		t.Errorf("the follower's view of version 4's reference: %+v, %v", got, err)
	}

	// The leader stops; the follower leads, with the file gone.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	stops[l]()
	stops[l] = nil
	if next := leader(); next != f {
		t.Fatalf("process %d leads, want %d", next, f)
	}
	mu["3"] = 0.6
	ref3, err := mons[f].HandOver(context.Background(), "", "a", "3", profile("3"))
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, addr, "ev", versionEvents(2, 0, 5, 9, 300, mu))
	for version, want := range map[string]string{"2": ref2.Name, "3": ref3.Name, "4": wantFile} {
		for _, r := range logs[f].wait(t, version, 5, 3) {
			if !strings.HasPrefix(r.Reference, want) || len(r.Drifted()) > 0 {
				t.Errorf("the new leader judged version %s at %v against %q, drifted %v; want %q", version, r.Start, r.Reference, r.Drifted(), want)
			}
		}
	}
}

func mustProfile(t *testing.T, data []byte) *sketch.Profile {
	t.Helper()
	var p sketch.Profile
	if err := p.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return &p
}
