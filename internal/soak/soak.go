// Package soak is driftmon's fault campaign: it builds the real driftmon binary, runs
// it as a separate process against a broker in a process of its own (Apache Kafka
// through .ci/kafka.sh, or kfake when Java is missing), with drifting traffic mixed
// with bad messages, a fake Slack and a retraining-webhook receiver, and injects faults
// at moments drawn from a printed seed: kill -9 of driftmon, broker restarts, a
// webhook receiver that is down, answers 500, 429, too slowly or with a redirect to
// another host, a Slack that answers 429 and 5xx, a read-only and a full state
// directory, a state file cut short between runs, and bad messages among them event
// times far in the future or past and a flood of model names. Then it runs the same data
// through a driftmon that nothing disturbs and prints one table: events counted once,
// twice and lost, window results against that reference, alerts and webhooks
// delivered, bad messages rejected by reason, crashes, memory and secrets in logs.
// Run returns the report; a breach is any judged figure that does not hold.
//
// It judges the binary from outside — its topics, HTTP API, results file, logs and the
// receivers — so it imports no package of the pipeline (ingest, sketch, detectors,
// internal/monitor); of alerting only the test receivers (slack/slacktest) and the
// webhook signature check. Only cmd/soak imports it.
package soak

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
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
	// disk-full, truncated-state. The report says which were skipped.
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
	hookFault      time.Duration // each of the 500, 429, slow and redirect spells; 0: the next request only
	hookFaultsBy   time.Duration // every webhook fault ends before this
	slackBursts    int
	diskFullWait   time.Duration
}

var profiles = map[string]profile{
	"short": {faultPhase: 110 * time.Second, rate: 500, bad: 20_000, kills: 8, brokerRestarts: 1,
		hookDown: 3 * time.Second, hookFault: 0, hookFaultsBy: 60 * time.Second, slackBursts: 2, diskFullWait: 60 * time.Second},
	"default": {faultPhase: 480 * time.Second, rate: 800, bad: 200_000, kills: 22, brokerRestarts: 3,
		hookDown: 2 * time.Minute, hookFault: 30 * time.Second, hookFaultsBy: 330 * time.Second, slackBursts: 6, diskFullWait: 60 * time.Second},
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
	secrets

	soak, ref *deployment
	receivers
	tmpfs string // the soak's state directory when it is a tmpfs mount

	phaseBegin time.Time
	refPending int // what the reference's outbox held when it was stopped
	faultCounts
	tally
}

// secrets are what the campaign gives both deployments to authenticate with, and
// what its receivers check.
type secrets struct {
	slackToken, apiToken, hookSecret, hookBearer string
}

// receivers are the Slack and webhook receivers of each deployment.
type receivers struct {
	soakHook, refHook   *hookSink
	soakSlack, refSlack *slackSink
}

// faultCounts are the fault runner's: whether a fault owns driftmon's restarts (the
// supervisor then leaves them alone), and what it did, for the report.
type faultCounts struct {
	hold           atomic.Bool
	kills          atomic.Int64
	restarts       atomic.Int64
	brokerRestarts atomic.Int64
}

// tally is what the campaign's goroutines (producers, faults, API checks, the
// supervisor) report as they go, guarded by mu; the report (and c.rep while they
// run) is written under it too.
type tally struct {
	mu        sync.Mutex
	retries   int   // writes the producers repeated after a failure
	prodErr   error // the producer error that ended the traffic
	crashes   []string
	notes     []string          // what happened, for the report
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
		if !slices.Contains([]string{"kill", "broker", "webhook", "slack", "read-only", "disk-full", "truncated-state"}, k) {
			return nil, fmt.Errorf("cannot skip %q: want kill, broker, webhook, slack, read-only, disk-full or truncated-state", k)
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
		rep: &Report{Seed: opts.Seed, Profile: opts.Profile}, tally: tally{apiChecks: map[string][2]int{}}}
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

// configYAML is the campaign's driftmon.yaml. Its webhook calls in every drifting
// window (every_window), not once per episode: the campaign measures delivery under
// webhook faults, which needs calls throughout the run.
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
      every_window: true
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
