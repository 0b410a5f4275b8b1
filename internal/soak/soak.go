// Package soak is driftmon's fault campaign: it builds the real driftmon binary, runs
// it as a separate process against a broker in a process of its own (Apache Kafka
// through .ci/kafka.sh, or kfake when Java is missing), with drifting traffic mixed
// with bad messages, a fake Slack and a retraining-webhook receiver, and injects faults
// at moments drawn from a printed seed: kill -9 of driftmon, broker restarts, a
// webhook receiver that is down, answers 500, 429 or too slowly, a Slack that answers
// 429 and 5xx, a read-only and a full state directory. Then it runs the same data
// through a driftmon that nothing disturbs and prints one table: events counted once,
// twice and lost, window results against that reference, alerts and webhooks
// delivered, bad messages rejected by reason, crashes, memory and secrets in logs.
// Run returns the report; a breach is any judged figure that does not hold.
package soak

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/driftmon/driftmon/alerting/webhook"
)

// Options shape a campaign.
type Options struct {
	// Profile is "short" (CI, under 5 minutes), "default" (under 15) or "long" (an
	// hour, a million bad messages).
	Profile string
	// Seed draws the traffic and every fault's moment; the report prints it.
	Seed uint64
	// Kafka is "auto" (Apache Kafka when Java is there, else kfake), "real" or "kfake".
	Kafka string
	// KafkaScript is .ci/kafka.sh; KafkaPort its client port (the controller's is the
	// next one), apart from the integration tests' 19092.
	KafkaScript string
	KafkaPort   int
	// WorkDir holds the binary, configs, state, results and logs; empty: a temporary
	// directory, removed afterwards unless Keep.
	WorkDir string
	Keep    bool
	// Skip names faults not to inject: kill, broker, webhook, slack, read-only,
	// disk-full. The report says which were skipped.
	Skip []string
	// Rev, when set, builds driftmon from that git revision (git archive) instead of
	// the work tree: a campaign of a commit while the tree is being edited.
	Rev string
	// Out receives progress lines and the table.
	Out io.Writer
}

// profile is the size of a campaign.
type profile struct {
	faultPhase     time.Duration // traffic and faults
	rate           int           // valid events per second
	bad            int64         // bad messages over the fault phase
	kills          int
	brokerRestarts int
	hookDown       time.Duration // the receiver's outage
	hookFault      time.Duration // each of the 500, 429 and slow spells; 0: the next request only
	hookFaultsBy   time.Duration // every webhook fault ends before this
	slackBursts    int
	diskFullWait   time.Duration
}

var profiles = map[string]profile{
	"short": {faultPhase: 110 * time.Second, rate: 500, bad: 20_000, kills: 8, brokerRestarts: 1,
		hookDown: 3 * time.Second, hookFault: 0, hookFaultsBy: 60 * time.Second, slackBursts: 2, diskFullWait: 60 * time.Second},
	"default": {faultPhase: 480 * time.Second, rate: 800, bad: 200_000, kills: 22, brokerRestarts: 3,
		hookDown: 2 * time.Minute, hookFault: 30 * time.Second, hookFaultsBy: 270 * time.Second, slackBursts: 6, diskFullWait: 60 * time.Second},
	"long": {faultPhase: 50 * time.Minute, rate: 800, bad: 1_000_000, kills: 100, brokerRestarts: 10,
		hookDown: 10 * time.Minute, hookFault: 2 * time.Minute, hookFaultsBy: 25 * time.Minute, slackBursts: 30, diskFullWait: 60 * time.Second},
}

// outboxWorst is how long after a webhook fault ends its deliveries may still wait:
// the outbox's third attempt comes 5 s + 5 min (+20% jitter) after the first, which a
// fault shorter than 5 minutes has let through.
const outboxWorst = 5*time.Second + 6*time.Minute + 30*time.Second

// campaign is one run of Run.
type campaign struct {
	opts  Options
	prof  profile
	out   io.Writer
	rng   *rand.Rand
	start time.Time
	work  string
	rep   *Report

	broker   broker
	bin      string
	feeds    []*feed
	registry *srfake.Registry

	slackToken, apiToken, hookSecret, hookBearer string

	soak, ref           *deployment
	soakHook, refHook   *hookSink
	soakSlack, refSlack *slackSink
	tmpfs               string // the soak's state directory when it is a tmpfs mount

	phaseBegin     time.Time
	refPending     int // what the reference's outbox held when it was stopped
	retries        int
	prodErr        error
	hold           atomic.Bool // a fault owns driftmon's restarts
	kills          atomic.Int64
	restarts       atomic.Int64
	brokerRestarts atomic.Int64
	crashes        []string
	mu             sync.Mutex
	notes          []string // what happened, for the report

	apiChecks map[string][2]int // check → {passed, made}
	apiSkip   int
}

// Run runs a campaign and returns its report; err is for a campaign that could not
// run (no broker, no build), not for breaches.
func Run(ctx context.Context, opts Options) (*Report, error) {
	prof, ok := profiles[opts.Profile]
	if !ok {
		return nil, fmt.Errorf("unknown profile %q: want short, default or long", opts.Profile)
	}
	for _, k := range opts.Skip {
		if !slices.Contains([]string{"kill", "broker", "webhook", "slack", "read-only", "disk-full"}, k) {
			return nil, fmt.Errorf("cannot skip %q: want kill, broker, webhook, slack, read-only or disk-full", k)
		}
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.KafkaPort == 0 {
		opts.KafkaPort = 19192
	}
	if opts.KafkaScript == "" {
		opts.KafkaScript = ".ci/kafka.sh"
	}
	c := &campaign{opts: opts, prof: prof, out: opts.Out, rng: rand.New(rand.NewPCG(opts.Seed, 0x50a4)),
		rep: &Report{Seed: opts.Seed, Profile: opts.Profile}, apiChecks: map[string][2]int{}}
	defer c.cleanup()
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	if err := c.faultPhase(ctx); err != nil {
		return nil, err
	}
	if err := c.finish(ctx); err != nil {
		return nil, err
	}
	return c.rep, nil
}

func (c *campaign) logf(format string, args ...any) {
	fmt.Fprintf(c.out, "[%6.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

func (c *campaign) note(format string, args ...any) {
	c.mu.Lock()
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func (c *campaign) setup(ctx context.Context) error {
	c.start = time.Now()
	var err error
	if c.work = c.opts.WorkDir; c.work == "" {
		if c.work, err = os.MkdirTemp("", "driftmon-soak-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	if c.work, err = filepath.Abs(c.work); err != nil {
		return err
	}
	_ = os.Chmod(c.work, 0o755)
	c.logf("profile %s, seed %d, work directory %s", c.opts.Profile, c.opts.Seed, c.work)

	c.bin = filepath.Join(c.work, "driftmon")
	if err := c.build(ctx); err != nil {
		return err
	}

	if err := c.startBroker(ctx); err != nil {
		return err
	}
	if err := c.newFeeds(); err != nil {
		return err
	}
	for _, f := range c.feeds {
		for _, t := range []string{f.topic, f.refTopic()} {
			if err := createTopic(ctx, c.broker.Addr(), t); err != nil {
				return err
			}
		}
	}

	c.slackToken = "xoxb-soak-" + randomHex(12)
	c.apiToken = randomHex(16)
	c.hookBearer = "bearer-" + randomHex(12)
	if c.hookSecret, err = webhook.GenerateSecret(); err != nil {
		return err
	}
	if c.soakHook, err = newHookSink(c.hookSecret, c.hookBearer); err != nil {
		return err
	}
	if c.refHook, err = newHookSink(c.hookSecret, c.hookBearer); err != nil {
		return err
	}
	c.soakSlack, c.refSlack = newSlackSink(c.slackToken), newSlackSink(c.slackToken)

	if c.soak, err = c.newDeployment("soak", false, c.soakHook, c.soakSlack, true); err != nil {
		return err
	}
	if c.ref, err = c.newDeployment("ref", true, c.refHook, c.refSlack, false); err != nil {
		return err
	}
	user := "the current user"
	if c.soak.cred != nil {
		user = "nobody (uid 65534), so that a read-only state directory binds as it would for an operator"
	}
	c.rep.Setup = append(c.rep.Setup,
		"broker: "+c.broker.Describe(),
		fmt.Sprintf("driftmon: run as %s; three streams of count windows, each on a one-partition topic: JSON (%d rows a window), Avro with a schema registry and Arrow IPC (%d rows)", user, WindowRows, formatWindowRows),
		fmt.Sprintf("traffic: %d valid JSON events/s and %d each of Avro and Arrow IPC for %s, a drift episode every %d windows, %d bad messages mixed in", c.prof.rate, c.prof.rate/8, c.prof.faultPhase, cycleWindows, c.prof.bad),
		"reference: the same messages (a second topic) through a driftmon that nothing disturbs",
	)
	return nil
}

// build builds driftmon from the work tree, or from Options.Rev.
func (c *campaign) build(ctx context.Context) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/driftmon")
	what := "the work tree"
	if c.opts.Rev != "" {
		src := filepath.Join(c.work, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		archive := exec.CommandContext(ctx, "sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", c.opts.Rev, src)
		if out, err := archive.CombinedOutput(); err != nil {
			return fmt.Errorf("git archive %s: %w\n%s", c.opts.Rev, err, out)
		}
		rev, _ := exec.CommandContext(ctx, "git", "rev-parse", "--short", c.opts.Rev).Output()
		what = "revision " + c.opts.Rev + " (" + strings.TrimSpace(string(rev)) + ")"
		build.Dir = src
	}
	c.logf("building driftmon from %s", what)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	c.rep.Setup = append(c.rep.Setup, "driftmon built from "+what)
	return nil
}

func (c *campaign) startBroker(ctx context.Context) error {
	mode := c.opts.Kafka
	if mode == "" {
		mode = "auto"
	}
	if mode == "auto" {
		if _, err := exec.LookPath("java"); err != nil {
			c.logf("java not found: falling back to kfake")
			c.rep.Setup = append(c.rep.Setup, "NOTE: Java is missing, so the broker is kfake, not Apache Kafka")
			mode = "kfake"
		} else {
			mode = "real"
		}
	}
	var err error
	switch mode {
	case "real":
		c.logf("starting Apache Kafka through %s on 127.0.0.1:%d", c.opts.KafkaScript, c.opts.KafkaPort)
		script, aerr := filepath.Abs(c.opts.KafkaScript)
		if aerr != nil {
			return aerr
		}
		c.broker, err = startRealBroker(ctx, script, c.opts.KafkaPort, filepath.Join(c.work, "kafka"))
		if err != nil && c.opts.Kafka == "auto" {
			c.logf("Apache Kafka did not start (%v): falling back to kfake", firstLine(err.Error()))
			c.rep.Setup = append(c.rep.Setup, "NOTE: Apache Kafka did not start here ("+firstLine(err.Error())+"), so the broker is kfake")
			c.broker, err = startKfakeBroker(filepath.Join(c.work, "kfake"), c.opts.KafkaPort)
		}
	case "kfake":
		c.logf("starting kfake on 127.0.0.1:%d", c.opts.KafkaPort)
		c.broker, err = startKfakeBroker(filepath.Join(c.work, "kfake"), c.opts.KafkaPort)
	default:
		return fmt.Errorf("kafka %q: want auto, real or kfake", mode)
	}
	if err != nil {
		return err
	}
	c.rep.Setup = append(c.rep.Setup, "a single broker: a broker restart moves no partition leader (that needs a second broker)")
	return nil
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

const configYAML = `kafka: {brokers: [%q], group_id: "${DRIFTMON_SOAK_GROUP}"}
state: {path: %q, checkpoint_records: 5000, checkpoint_interval: 1s}
streams:%s
alerting:
  dashboard_url: http://127.0.0.1:8080/
  slack:
    token: ${SOAK_SLACK_TOKEN}
    channel: "#ml-soak"
    api_url: %q
  webhooks:
    - name: retrain
      url: %q
      secret: ${SOAK_WEBHOOK_SECRET}
      bearer_token: ${SOAK_WEBHOOK_BEARER}
      min_features: 2
`

// newFeeds makes the campaign's streams: JSON with most of the traffic and the bad
// messages, Avro and Arrow IPC with an eighth of the events and a twentieth of the bad
// messages each.
func (c *campaign) newFeeds() error {
	c.registry = srfake.New()
	id, _, err := c.registry.RegisterSchema("soak-value", sr.Schema{Schema: avroSchema})
	if err != nil {
		return fmt.Errorf("cannot register the Avro schema: %w", err)
	}
	seed, p := c.opts.Seed, c.prof
	base := fmt.Sprintf("soak-%d-%s", seed, randomHex(3))
	mix := newBadMix(seed)
	c.feeds = []*feed{
		{stream: "churn", format: "json", topic: base, windowRows: WindowRows, rowsPerMsg: 1, msgRate: float64(p.rate),
			badTotal: p.bad - 2*(p.bad/20), good: func(n int64) []byte { return goodEvent(seed, n) }, bad: mix.message},
		{stream: "churn-avro", format: "avro", topic: base + "-avro", windowRows: formatWindowRows, rowsPerMsg: 1, msgRate: float64(p.rate) / 8,
			badTotal: p.bad / 20, good: func(n int64) []byte { return avroMessage(seed, id, n) }, bad: func(n int64) badMessage { return badAvro(seed, id, n) }},
		{stream: "churn-ipc", format: "arrow_ipc", topic: base + "-ipc", windowRows: formatWindowRows, rowsPerMsg: ipcRowsPerMsg, msgRate: float64(p.rate) / 8 / ipcRowsPerMsg,
			badTotal: p.bad / 20, good: func(n int64) []byte { return ipcMessage(seed, n) }, bad: func(n int64) badMessage { return badIPC(seed, n) }},
	}
	for _, f := range c.feeds {
		f.badBy = map[string]int64{}
	}
	return nil
}

func (c *campaign) streamsYAML(ref bool) string {
	var b strings.Builder
	for _, f := range c.feeds {
		topic := f.topic
		if ref {
			topic = f.refTopic()
		}
		switch f.format {
		case "json":
			b.WriteString(streamConfig(topic))
		case "avro":
			b.WriteString(formatStreamConfig(f.stream, topic, "avro", c.registry.URL()))
		default:
			b.WriteString(formatStreamConfig(f.stream, topic, f.format, ""))
		}
	}
	return b.String()
}

func (c *campaign) newDeployment(name string, ref bool, hook *hookSink, slack *slackSink, mayMount bool) (*deployment, error) {
	d := &deployment{name: name, bin: c.bin, dir: filepath.Join(c.work, name)}
	d.state = filepath.Join(d.dir, "state")
	d.cfg = filepath.Join(d.dir, "driftmon.yaml")
	d.results = filepath.Join(d.dir, "results.jsonl")
	d.env = []string{"SOAK_SLACK_TOKEN=" + c.slackToken, "SOAK_WEBHOOK_SECRET=" + c.hookSecret, "SOAK_WEBHOOK_BEARER=" + c.hookBearer}
	if err := os.MkdirAll(d.state, 0o755); err != nil {
		return nil, err
	}
	if mayMount && os.Geteuid() == 0 {
		// A tmpfs of its own lets the campaign fill the disk under the state file only.
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", d.state).CombinedOutput(); err == nil {
			c.tmpfs = d.state
		} else {
			c.logf("cannot mount a tmpfs for the state (%s): the disk-full fault is not injected", strings.TrimSpace(string(out)))
		}
	}
	if os.Geteuid() == 0 {
		d.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for _, p := range []string{d.dir, d.state} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				return nil, err
			}
		}
	}
	yaml := fmt.Sprintf(configYAML, c.broker.Addr(), filepath.Join(d.state, "state.db"), c.streamsYAML(ref), slack.URL(), hook.URL())
	return d, os.WriteFile(d.cfg, []byte(yaml), 0o644)
}

func (c *campaign) cleanup() {
	for _, d := range []*deployment{c.soak, c.ref} {
		if d != nil {
			d.kill()
		}
	}
	for _, h := range []*hookSink{c.soakHook, c.refHook} {
		if h != nil {
			h.close()
		}
	}
	for _, s := range []*slackSink{c.soakSlack, c.refSlack} {
		if s != nil {
			s.Close()
		}
	}
	if c.broker != nil {
		c.broker.Close()
	}
	if c.registry != nil {
		c.registry.Close()
	}
	if c.tmpfs != "" {
		_ = os.Chmod(c.tmpfs, 0o755)
		_ = exec.Command("umount", c.tmpfs).Run()
	}
	if c.opts.WorkDir == "" && !c.opts.Keep && c.work != "" {
		_ = os.RemoveAll(c.work)
	} else if c.work != "" {
		fmt.Fprintf(c.out, "kept %s (binary, configs, state, results, logs)\n", c.work)
	}
}

// faultKind is the Options.Skip name of an action.
func faultKind(name string) string {
	for _, k := range []string{"kill", "broker", "webhook", "slack", "read-only", "disk"} {
		if strings.HasPrefix(name, k) {
			if k == "disk" {
				return "disk-full"
			}
			return k
		}
	}
	return name
}

func (c *campaign) skipped(kind string) bool { return slices.Contains(c.opts.Skip, kind) }

// action is one scheduled fault.
type action struct {
	at   time.Duration
	name string
	do   func(ctx context.Context)
}

// schedule draws the faults' moments from the seed.
func (c *campaign) schedule() []action {
	p := c.prof
	var acts []action
	spread := func(n int, from, to, gap time.Duration) []time.Duration {
		var out []time.Duration
		for tries := 0; len(out) < n && tries < 10000; tries++ {
			t := from + time.Duration(c.rng.Int64N(int64(to-from)))
			ok := true
			for _, u := range out {
				if (t - u).Abs() < gap {
					ok = false
					break
				}
			}
			if ok {
				out = append(out, t)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	end := p.faultPhase - 5*time.Second
	kills := spread(p.kills, 3*time.Second, end, min(5*time.Second, p.faultPhase/time.Duration(2*p.kills)))
	noToken := c.rng.IntN(len(kills))
	for i, t := range kills {
		withToken := i != noToken
		acts = append(acts, action{t, "kill -9", func(ctx context.Context) { c.killAndRestart(withToken) }})
	}
	for _, t := range spread(p.brokerRestarts, 10*time.Second, end-20*time.Second, 40*time.Second) {
		acts = append(acts, action{t, "broker restart", c.restartBroker})
	}
	// Webhook faults, one after another, all over by hookFaultsBy: the outage first.
	t := 5*time.Second + time.Duration(c.rng.Int64N(int64(10*time.Second)))
	for _, f := range []struct {
		mode hookMode
		d    time.Duration
	}{{hookDown, p.hookDown}, {hook500, p.hookFault}, {hook429, p.hookFault}, {hookSlow, p.hookFault}} {
		mode, d := f.mode, f.d
		if d == 0 {
			// One request, whenever it comes: a spell of seconds may meet none.
			acts = append(acts, action{t, "webhook next request " + mode.String(), func(context.Context) {
				c.soakHook.failNext(mode)
				c.logf("webhook receiver: the next request: %s", mode)
			}})
			t += 5 * time.Second
			continue
		}
		acts = append(acts, action{t, "webhook " + mode.String(), func(context.Context) { c.setHook(mode) }})
		acts = append(acts, action{t + d, "webhook ok", func(context.Context) { c.setHook(hookOK) }})
		gap := max(0, p.hookFaultsBy-t-d-2*p.hookFault) / 3
		t += d + time.Duration(c.rng.Int64N(int64(gap)+1)) + 5*time.Second
	}
	for _, t := range spread(p.slackBursts, 5*time.Second, p.hookFaultsBy, 5*time.Second) {
		rate := c.rng.IntN(2) == 0
		acts = append(acts, action{t, "slack failures", func(context.Context) {
			c.soakSlack.failBurst(2, rate)
			c.logf("slack: the next 2 requests answer %s", map[bool]string{true: "429 Retry-After: 2", false: "503"}[rate])
		}})
	}
	acts = append(acts, action{time.Duration(c.rng.Int64N(int64(end))), "read-only state", c.readOnlyState})
	if c.tmpfs != "" {
		acts = append(acts, action{time.Duration(c.rng.Int64N(int64(end))), "disk full", c.diskFull})
	}
	kept := acts[:0]
	for _, a := range acts {
		if !c.skipped(faultKind(a.name)) {
			kept = append(kept, a)
		}
	}
	acts = kept
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].at < acts[j].at })
	return acts
}

func (c *campaign) faultPhase(ctx context.Context) error {
	if _, err := c.soak.start(true, c.apiToken); err != nil {
		return err
	}
	begin := time.Now()
	c.phaseBegin = begin
	until := begin.Add(c.prof.faultPhase)
	acts := c.schedule()
	c.logf("fault phase: %s, %d scheduled faults", c.prof.faultPhase, len(acts))
	if len(c.opts.Skip) > 0 {
		c.rep.Setup = append(c.rep.Setup, "NOTE: faults skipped on request: "+strings.Join(c.opts.Skip, ", "))
	}

	var wg sync.WaitGroup
	produced := make(chan struct{})
	go func() { defer close(produced); c.produce(ctx, until) }()
	superCtx, stopSuper := context.WithCancel(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); c.supervise(superCtx) }()
	go func() { defer wg.Done(); c.checkAPI(superCtx) }()

	var faults sync.WaitGroup
	for _, a := range acts {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(begin.Add(a.at))):
		}
		if ctx.Err() != nil {
			break
		}
		if a.name == "broker restart" || a.name == "read-only state" || a.name == "disk full" {
			// These take a while; kills go on meanwhile.
			faults.Add(1)
			go func() { defer faults.Done(); a.do(ctx) }()
			continue
		}
		a.do(ctx)
	}
	faults.Wait()
	// The producer ends by itself at until, once it has written what is due.
	<-produced
	stopSuper()
	wg.Wait()
	if c.prodErr != nil {
		return c.prodErr
	}
	c.setHook(hookOK)
	var msgs int64
	for _, f := range c.feeds {
		msgs += f.messages()
	}
	c.logf("fault phase over: %d messages produced to each of the faulted and the reference topics (%d writes repeated after a failure)", msgs, c.retries)
	return ctx.Err()
}

// supervise restarts driftmon when it exits on its own (a crash unless a fault
// expects it), while no fault holds the restarts.
func (c *campaign) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		if c.hold.Load() || c.soak.current() != nil {
			continue
		}
		c.soak.mu.Lock()
		var e exit
		if n := len(c.soak.exits); n > 0 {
			e = c.soak.exits[n-1]
		}
		c.soak.mu.Unlock()
		if !e.killed && !e.stopped && !c.hold.Load() {
			c.mu.Lock()
			c.crashes = append(c.crashes, fmt.Sprintf("run %d exited with code %d %s: %s", e.run, e.code, e.signal, e.lastLog))
			c.mu.Unlock()
			c.logf("CRASH: driftmon run %d exited by itself (code %d): %s", e.run, e.code, e.lastLog)
		}
		if c.hold.Load() {
			continue
		}
		if _, err := c.soak.start(true, c.apiToken); err != nil {
			c.logf("cannot restart driftmon: %v", err)
		} else {
			c.restarts.Add(1)
		}
	}
}

func (c *campaign) killAndRestart(withToken bool) {
	c.waitHold() // after a state fault that owns the process now
	defer c.hold.Store(false)
	if c.soak.kill() {
		c.kills.Add(1)
	}
	time.Sleep(time.Duration(c.rng.Int64N(int64(1500 * time.Millisecond))))
	if _, err := c.soak.start(withToken, c.apiToken); err != nil {
		c.logf("cannot restart driftmon: %v", err)
		return
	}
	c.restarts.Add(1)
	if !withToken {
		c.logf("kill -9 #%d; restarted WITHOUT DRIFTMON_API_TOKEN (the API must be read-only)", c.kills.Load())
		// Keep the other faults off this run until the API has been tried on it: a
		// state fault right after (as the timing of one short run had it) ended it
		// before any check, and the campaign reported the check as not made.
		c.awaitAPICheck(noTokenCheck, 30*time.Second)
	} else {
		c.logf("kill -9 #%d; restarted", c.kills.Load())
	}
}

// noTokenCheck is the API check of a run without DRIFTMON_API_TOKEN.
const noTokenCheck = "no DRIFTMON_API_TOKEN: POST with a token → 403"

// awaitAPICheck waits until checkAPI has made check once more, or timeout.
func (c *campaign) awaitAPICheck(check string, timeout time.Duration) {
	made := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.apiChecks[check][1]
	}
	before := made()
	for deadline := time.Now().Add(timeout); made() == before && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *campaign) restartBroker(ctx context.Context) {
	c.logf("broker: stop (data kept) and start")
	t0 := time.Now()
	if err := c.broker.Restart(ctx); err != nil {
		c.logf("broker restart failed: %v", err)
		c.note("broker restart failed: %v", firstLine(err.Error()))
		return
	}
	c.brokerRestarts.Add(1)
	c.logf("broker: back after %s", time.Since(t0).Round(100*time.Millisecond))
}

func (c *campaign) setHook(m hookMode) {
	if err := c.soakHook.setMode(m); err != nil {
		c.logf("webhook receiver: %v", err)
		return
	}
	c.logf("webhook receiver: %s", m)
}

// readOnlyState kills driftmon, makes its state directory and file read-only and
// starts it: it must refuse to run, say why, and run again once they are writable.
func (c *campaign) readOnlyState(ctx context.Context) {
	c.waitHold()
	defer c.hold.Store(false)
	if c.soak.kill() {
		c.kills.Add(1)
	}
	db := filepath.Join(c.soak.state, "state.db")
	_ = os.Chmod(db, 0o444)
	_ = os.Chmod(c.soak.state, 0o555)
	c.logf("state: read-only; starting driftmon on it")
	outcome := c.expectStop("read-only state", 30*time.Second)
	_ = os.Chmod(c.soak.state, 0o755)
	_ = os.Chmod(db, 0o644)
	if _, err := c.soak.start(true, c.apiToken); err == nil {
		c.restarts.Add(1)
	}
	c.logf("state: writable again; restarted (%s)", outcome)
}

// diskFull fills the tmpfs that holds the state file while driftmon runs.
func (c *campaign) diskFull(ctx context.Context) {
	c.waitHold()
	defer c.hold.Store(false)
	filler := filepath.Join(c.tmpfs, "filler")
	f, err := os.Create(filler)
	if err != nil {
		c.logf("disk full: %v", err)
		return
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	c.logf("state: the disk under the state file is full")
	outcome := c.expectStop("disk full", c.prof.diskFullWait)
	_ = os.Remove(filler)
	if c.soak.current() == nil {
		if _, err := c.soak.start(true, c.apiToken); err == nil {
			c.restarts.Add(1)
		}
	}
	c.logf("state: space freed (%s)", outcome)
}

func (c *campaign) waitHold() {
	for !c.hold.CompareAndSwap(false, true) {
		time.Sleep(50 * time.Millisecond)
	}
}

// expectStop starts driftmon when it is not running and waits for it to stop by
// itself within timeout, with a log line that says why. It records the outcome.
func (c *campaign) expectStop(fault string, timeout time.Duration) string {
	r := c.soak.current()
	if r == nil {
		var err error
		if r, err = c.soak.start(true, c.apiToken); err != nil {
			return "cannot start: " + err.Error()
		}
	}
	select {
	case <-r.done:
	case <-time.After(timeout):
		// A full disk matters once a write needs new space; a read-only state file at
		// once.
		outcome := fmt.Sprintf("kept running for %s: no write needed new space", timeout)
		if fault == "read-only state" {
			outcome = fmt.Sprintf("kept running for %s on a state file it cannot write", timeout)
		}
		c.faultOutcome(fault, outcome, fault == "read-only state")
		return outcome
	}
	c.soak.mu.Lock()
	e := c.soak.exits[len(c.soak.exits)-1]
	c.soak.mu.Unlock()
	why := reasonLine(e.lastLog)
	switch {
	case e.panicked:
		c.faultOutcome(fault, "crashed: "+why, true)
		return "crashed"
	case e.code == 0 || why == "":
		c.faultOutcome(fault, fmt.Sprintf("exited %d without saying why", e.code), true)
		return "exited without a reason"
	}
	outcome := fmt.Sprintf("stopped (exit %d): %s", e.code, why)
	c.faultOutcome(fault, outcome, false)
	return outcome
}

func (c *campaign) faultOutcome(fault, outcome string, breach bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.add("state fault: "+fault, outcome, "stops, says why, resumes", !breach)
}

// reasonLine finds the error driftmon printed last: "driftmon run: …" or the last
// JSON log line's msg and err.
func reasonLine(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.HasPrefix(l, "driftmon run: ") {
			return tail(l, 240)
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		var m struct{ Level, Msg, Err string }
		if json.Unmarshal([]byte(lines[i]), &m) == nil && m.Level == "ERROR" {
			return tail(m.Msg+": "+m.Err, 240)
		}
	}
	return ""
}

// checkAPI checks the API's token rules while driftmon works: no token and a wrong one
// are refused with 401, the right one may create and delete a silence (of a model that
// does not exist, so that it mutes nothing), and a run without DRIFTMON_API_TOKEN
// refuses every change with 403.
func (c *campaign) checkAPI(ctx context.Context) {
	body := `{"model":"soak-no-such-model","duration":"1m","comment":"soak API check"}`
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		r := c.soak.current()
		if r == nil {
			continue
		}
		if _, err := c.soak.stats(); err != nil {
			continue // not serving yet
		}
		try := func(check string, token string, want ...int) (int, []byte) {
			code, b, err := c.soak.api("POST", "/api/v1/silences", token, strings.NewReader(body))
			if err != nil || c.soak.current() != r {
				c.mu.Lock()
				c.apiSkip++
				c.mu.Unlock()
				return 0, nil
			}
			c.mu.Lock()
			v := c.apiChecks[check]
			v[1]++
			for _, w := range want {
				if code == w {
					v[0]++
				}
			}
			c.apiChecks[check] = v
			c.mu.Unlock()
			return code, b
		}
		if !r.token {
			try(noTokenCheck, c.apiToken, 403)
			continue
		}
		try("POST /api/v1/silences without a token → 401", "", 401)
		try("POST /api/v1/silences with a wrong token → 401", c.apiToken+"x", 401)
		code, b := try("POST /api/v1/silences with the token → 201", c.apiToken, 201)
		if code == 201 {
			var s struct{ ID string }
			if json.Unmarshal(b, &s) == nil && s.ID != "" {
				_, _, _ = c.soak.api("DELETE", "/api/v1/silences/"+s.ID, c.apiToken, nil)
			}
		}
	}
}

// finish lets the faulted driftmon catch up, runs the reference, waits for the
// deliveries and fills the report.
func (c *campaign) finish(ctx context.Context) error {
	if c.soak.current() == nil {
		if _, err := c.soak.start(true, c.apiToken); err != nil {
			return err
		}
	}
	c.logf("reference: starting a driftmon that nothing disturbs on the reference topics")
	if _, err := c.ref.start(true, c.apiToken); err != nil {
		return err
	}
	// handled is how many messages a deployment has decoded or rejected, and how many
	// it must, stream by stream.
	caughtUp := func(d *deployment, timeout time.Duration) error {
		deadline := time.Now().Add(timeout)
		for {
			all, err := d.stats()
			behind := ""
			for _, f := range c.feeds {
				st := all[f.stream]
				if got := st.Events/f.rowsPerMsg + sum(st.DecodeErrors); got < f.messages() {
					behind += fmt.Sprintf(" %s %d of %d;", f.stream, got, f.messages())
				}
			}
			if err == nil && behind == "" {
				return nil
			}
			if d.current() == nil {
				return fmt.Errorf("%s driftmon exited while catching up", d.name)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s driftmon has not handled every message after %s:%s (%v)", d.name, timeout, behind, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := caughtUp(c.ref, 10*time.Minute); err != nil {
		return err
	}
	refIDs, refPending := c.settle(c.ref, c.refHook, 15*time.Minute)
	c.refPending = refPending
	c.logf("reference: every message handled, %d webhook deliveries", len(refIDs))
	refExit, _ := c.ref.stop(30 * time.Second)

	if err := caughtUp(c.soak, 10*time.Minute); err != nil {
		c.logf("%v", err)
	}
	// The deliveries that waited out a webhook fault come on the outbox's schedule.
	deadline := c.phaseBegin.Add(c.prof.hookFaultsBy + outboxWorst)
	if c.prof.hookFault == 0 {
		// A one-request fault may meet a delivery late in the phase: one more attempt
		// after the slow answer's timeout.
		deadline = c.phaseBegin.Add(c.prof.faultPhase + slowAnswer + 30*time.Second)
	}
	deadline = later(deadline, time.Now().Add(30*time.Second))
	c.logf("waiting for the faulted run's deliveries (at most until %s)", deadline.Sub(c.start).Round(time.Second))
	for time.Now().Before(deadline) {
		ids, _ := c.soakHook.ids()
		if len(setDiff(refIDs, ids)) == 0 && c.pending(c.soak) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second) // a repeat would show now
	st, statsErr := c.soak.stats()
	c.logf("stopping driftmon with SIGTERM")
	soakExit, _ := c.soak.stop(30 * time.Second)
	c.report(st, statsErr, refIDs, soakExit, refExit)
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pending is how many notifications d's outbox still holds; -1 when unknown.
func (c *campaign) pending(d *deployment) int {
	code, b, err := d.api("GET", "/api/v1/outbox?status=pending", "", nil)
	if err != nil || code != 200 {
		return -1
	}
	var body struct{ Items []json.RawMessage }
	if json.Unmarshal(b, &body) != nil {
		return -1
	}
	return len(body.Items)
}

// settle waits until d's outbox is empty and its receiver has had nothing new for
// 3 s, or until the outbox has not shrunk for 30 s, or timeout. It returns the ids
// delivered and what the outbox still held. Slack takes about a message a second, so
// a long run's reference needs minutes to drain.
func (c *campaign) settle(d *deployment, h *hookSink, timeout time.Duration) (ids []string, pending int) {
	since := time.Now()
	lowest, shrunk := -1, time.Now()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		got, _ := h.ids()
		if len(got) != len(ids) {
			ids, since = got, time.Now()
		}
		pending = c.pending(d)
		if pending >= 0 && (lowest < 0 || pending < lowest) {
			lowest, shrunk = pending, time.Now()
		}
		if time.Since(since) > 3*time.Second && (pending == 0 || time.Since(shrunk) > 30*time.Second) {
			break
		}
	}
	return ids, pending
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func (c *campaign) report(st map[string]streamStats, statsErr error, refIDs []string, soakExit, refExit exit) {
	r := c.rep
	r.info("duration of the campaign", time.Since(c.start).Round(time.Second))
	if statsErr != nil {
		r.add("counters (API /api/v1/streams)", statsErr.Error(), "readable", false)
	}
	var good, counted int64
	for _, f := range c.feeds {
		events, _ := f.produced()
		good += events
		counted += st[f.stream].Events
	}
	r.info("valid events produced (JSON, Avro, Arrow IPC)", fmt.Sprintf("%d (%s)", good, c.perFeed(func(f *feed) int64 { e, _ := f.produced(); return e })))
	r.info("events counted (API /api/v1/streams, from the checkpoint)", fmt.Sprintf("%d (%s)", counted, c.perFeed(func(f *feed) int64 { return st[f.stream].Events })))
	var once, twice, lost int64
	for _, f := range c.feeds {
		events, _ := f.produced()
		got := st[f.stream].Events
		once += min(got, events)
		twice += max(0, got-events)
		lost += max(0, events-got)
	}
	r.must("events counted once", once, good)
	r.must("events counted twice", twice, 0)
	r.must("events lost", lost, 0)

	soakW, err1 := readWindows(c.soak.results)
	refW, err2 := readWindows(c.ref.results)
	if err := errors.Join(err1, err2); err != nil {
		r.add("window results", err.Error(), "readable", false)
	} else {
		missing, extra, differ, bits := soakW.compare(refW)
		r.must("windows closed (reference run)", int64(len(soakW.order)), int64(len(refW.order)))
		r.info("windows reported again after a kill, same results", soakW.repeats)
		r.must("windows reported again differently", int64(len(soakW.conflicts)), 0)
		r.must("windows missing vs the reference", int64(len(missing)), 0)
		r.must("windows not in the reference", int64(len(extra)), 0)
		r.must("windows with other results than the reference (rows, reference, verdicts; scores to 1e-9)", int64(len(differ)), 0)
		r.add("digest of all window results, scores to 1e-9 (reference)", soakW.digest(true)+" ("+refW.digest(true)+")", "equal", soakW.digest(true) == refW.digest(true))
		r.info("windows whose scores differ from the reference by less than 1e-9 (float summation order)", len(bits))
		r.info("bit-exact digest (reference)", soakW.digest(false)+" ("+refW.digest(false)+")")
		r.must("rows in closed windows (reference)", soakW.rows(), refW.rows())
		a, b := soakW.driftingWindows(), refW.driftingWindows()
		r.add("windows in which a feature drifted (reference)", fmt.Sprintf("%d (%d)", len(a), len(b)), "equal sets", strings.Join(a, ",") == strings.Join(b, ","))
		for i, k := range differ {
			if i < 3 {
				c.note("window %s differs from the reference", k)
			}
		}
		for i, k := range missing {
			if i < 3 {
				c.note("window %s missing", k)
			}
		}
	}

	ids, repeats := c.soakHook.ids()
	r.info("webhook deliveries in the reference run", len(refIDs))
	r.info("webhook ids delivered", len(ids))
	r.must("webhook ids missing (in the reference, never delivered)", int64(len(setDiff(refIDs, ids))), 0)
	r.must("webhook ids not in the reference", int64(len(setDiff(ids, refIDs))), 0)
	r.info("webhook deliveries repeated with the same webhook-id (allowed)", repeats)
	bursts := c.soakHook.bursts()
	r.must(fmt.Sprintf("webhook-ids re-sent more than %d times within %s (a retry loop without the outbox's waits)", burstMax, burstWindow), int64(len(bursts)), 0)
	for _, id := range sortedKeys(bursts) {
		c.note("webhook-id %s was delivered %d times within %s", id, bursts[id], burstWindow)
	}
	c.soakHook.mu.Lock()
	r.info("webhook requests by answer", formatCounts(c.soakHook.byOutcome))
	r.must("webhook requests without the bearer token", int64(c.soakHook.badAuth), 0)
	r.must("webhook requests refused by the signature check", int64(c.soakHook.badSig), 0)
	c.soakHook.mu.Unlock()
	var drifting []string
	if soakW != nil {
		drifting = soakW.driftingWindows()
	}
	rows := map[string]int64{}
	for _, f := range c.feeds {
		rows[f.stream] = f.windowRows
	}
	bad2 := c.soakHook.checkPayloads(drifting, rows)
	r.must("webhook payloads of the wrong shape", int64(len(bad2)), 0)
	for i, b := range bad2 {
		if i < 3 {
			c.note("webhook payload: %s", b)
		}
	}
	soakParents, refParents := c.soakSlack.parents(), c.refSlack.parents()
	missing := multisetDiff(refParents, soakParents)
	r.info("Slack messages (reference)", fmt.Sprintf("%d (%d), %d alert threads (%d)", len(c.soakSlack.Messages()), len(c.refSlack.Messages()), len(soakParents), len(refParents)))
	if c.refPending == 0 {
		r.must("Slack alerts missing vs the reference", int64(len(missing)), 0)
	} else {
		r.info("Slack alerts missing vs the reference", fmt.Sprintf("%d, not judged: the reference's outbox still held %d items when it was stopped", len(missing), c.refPending))
	}
	r.info("Slack alerts posted twice (allowed: Slack has no idempotency key)", len(soakParents)-len(distinct(soakParents)))
	r.info("Slack failures injected", formatCounts(c.soakSlack.injected))

	var badTotal int64
	for _, f := range c.feeds {
		_, badBy := f.produced()
		badTotal += sum(badBy)
	}
	r.info("bad messages produced (JSON, Avro, Arrow IPC)", fmt.Sprintf("%d (%s)", badTotal, c.perFeed(func(f *feed) int64 { _, b := f.produced(); return sum(b) })))
	for _, f := range c.feeds {
		_, badBy := f.produced()
		reasons := map[string]bool{}
		for k := range badBy {
			reasons[k] = true
		}
		for k := range st[f.stream].DecodeErrors {
			reasons[k] = true
		}
		for _, k := range sortedKeys(reasons) {
			r.must(fmt.Sprintf("%s messages rejected as %s", f.format, k), st[f.stream].DecodeErrors[k], badBy[k])
		}
	}
	wantKills, wantBroker := c.prof.kills, c.prof.brokerRestarts
	if c.skipped("kill") {
		wantKills = 0
	}
	if c.skipped("broker") {
		wantBroker = 0
	}
	r.add("kill -9 of driftmon", c.kills.Load(), fmt.Sprintf("≥ %d", wantKills), c.kills.Load() >= int64(wantKills))
	r.info("driftmon restarts", c.restarts.Load())
	r.add("broker restarts (stop, data kept, start)", c.brokerRestarts.Load(), fmt.Sprint(wantBroker), c.brokerRestarts.Load() == int64(wantBroker))
	if c.prof.hookFault == 0 {
		r.info("webhook faults", fmt.Sprintf("down %s; one request each answered 500, 429, too slowly", c.prof.hookDown))
	} else {
		r.info("webhook faults", fmt.Sprintf("down %s, 500 for %s, 429 for %s, slow for %s", c.prof.hookDown, c.prof.hookFault, c.prof.hookFault, c.prof.hookFault))
	}
	c.mu.Lock()
	r.must("crashes (exits that were not our kill -9 or a state fault)", int64(len(c.crashes)), 0)
	for _, cr := range c.crashes {
		c.notes = append(c.notes, "crash: "+cr)
	}
	c.mu.Unlock()
	cleanStop := func(e exit) bool { return e.code == 0 && !e.panicked && e.signal == "" }
	r.add("final SIGTERM: exit code (reference)", fmt.Sprintf("%d (%d)", soakExit.code, refExit.code), "0 (0)", cleanStop(soakExit) && cleanStop(refExit))
	r.info("max RSS of a driftmon run (VmHWM)", fmt.Sprintf("%.0f MiB (reference %.0f MiB)", float64(c.soak.maxRSS)/1024, float64(c.ref.maxRSS)/1024))

	c.mu.Lock()
	checks := sortedKeys(c.apiChecks)
	for _, k := range checks {
		v := c.apiChecks[k]
		r.add("API: "+k, fmt.Sprintf("%d of %d", v[0], v[1]), "all, ≥ 1", v[1] > 0 && v[0] == v[1])
	}
	if len(checks) < 4 {
		r.add("API token checks made", len(checks), "4 kinds", false)
	}
	r.info("API checks skipped (driftmon restarting)", c.apiSkip)
	c.mu.Unlock()

	found := 0
	var logs []byte
	for _, d := range []*deployment{c.soak, c.ref} {
		b, _ := d.logs()
		logs = append(logs, b...)
	}
	secrets := []string{c.slackToken, c.apiToken, c.hookBearer, c.hookSecret, strings.TrimPrefix(c.hookSecret, "whsec_")}
	for _, s := range secrets {
		found += bytes.Count(logs, []byte(s))
	}
	r.must(fmt.Sprintf("secrets found in driftmon's logs (%d KiB of logs, %d secrets)", len(logs)/1024, len(secrets)-1), int64(found), 0)
	for _, n := range c.notes {
		r.Setup = append(r.Setup, "note: "+n)
	}
}

// perFeed formats a figure of each feed, "a, b, c".
func (c *campaign) perFeed(v func(*feed) int64) string {
	var parts []string
	for _, f := range c.feeds {
		parts = append(parts, fmt.Sprint(v(f)))
	}
	return strings.Join(parts, ", ")
}

func formatCounts[V any](m map[string]V) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %v", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func distinct(xs []string) map[string]bool {
	out := map[string]bool{}
	for _, x := range xs {
		out[x] = true
	}
	return out
}

// multisetDiff returns the elements of a left after taking away those of b, counting
// repeats.
func multisetDiff(a, b []string) []string {
	n := map[string]int{}
	for _, x := range b {
		n[x]++
	}
	var out []string
	for _, x := range a {
		if n[x] > 0 {
			n[x]--
			continue
		}
		out = append(out, x)
	}
	return out
}
