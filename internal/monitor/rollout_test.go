package monitor

// The version roll-out acceptance test (issue 22): the real binary sees version 1 of a
// model drift and calls the retraining webhook once; the pipeline hands version 2's
// training profile over through the API; version 2's traffic replaces version 1's, is
// judged against its training data and stays quiet, and version 1's episode ends as
// superseded. The binary is killed with SIGKILL three times on the way, which changes
// none of it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/resultfile"
)

// The roll-out's event time: windows of rolloutWindow, each with rolloutRows events of
// every version that flows in it.
var rolloutT0 = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

const (
	rolloutWindow = 5 * time.Second
	rolloutRows   = 400
)

// The roll-out's windows, by index from rolloutT0: version 1 is like its training data
// in [0, v1Drift) and drifts from v1Drift until it stops at v1End; version 2 flows from
// v2Start to v2End, like its training data (which is like version 1's drifted traffic).
// v2End's last window never closes: no later event moves the watermark past it.
const (
	v1Drift = 4
	v2Start = 10 // the pipeline's PUT is done before this window's events are produced
	v1End   = 12
	v2End   = 20
)

// rolloutRow is one row of features: x ~ N(0, 1), n uniform in 0..9 and c uniform in
// a..d, or, shifted, x ~ N(1, 1) and c "d" 30% more often.
func rolloutRow(r *rand.Rand, shifted bool) (x float64, n int, c string) {
	x, n, c = r.NormFloat64(), r.IntN(10), string(rune('a'+r.IntN(4)))
	if shifted {
		x++
		if r.Float64() < 0.3 {
			c = "d"
		}
	}
	return x, n, c
}

// rolloutEvents are the events of windows [from, to) of version v1 (if it flows then)
// and v2 (likewise), interleaved in time order on partition 0.
func rolloutEvents(from, to int) []ingest.Message {
	var out []ingest.Message
	step := rolloutWindow / rolloutRows
	for w := from; w < to; w++ {
		r1 := rand.New(rand.NewPCG(1, uint64(w)))
		r2 := rand.New(rand.NewPCG(2, uint64(w)))
		for i := range rolloutRows {
			ts := rolloutT0.Add(time.Duration(w)*rolloutWindow + time.Duration(i)*step).Format(time.RFC3339Nano)
			event := func(version string, r *rand.Rand, shifted bool) {
				x, n, c := rolloutRow(r, shifted)
				out = append(out, ingest.Message{Value: fmt.Appendf(nil,
					`{"ts":%q,"model":"a","model_version":%q,"features":{"x":%.6f,"n":%d,"c":%q}}`, ts, version, x, n, c)})
			}
			if w < v1End {
				event("1", r1, w >= v1Drift)
			}
			if w >= v2Start {
				event("2", r2, true)
			}
		}
	}
	return out
}

// trainingFile writes rows of a version's training data, a JSON lines file with a
// column per feature, and returns its path.
func trainingFile(t *testing.T, dir, name string, seed uint64, rows int, shifted bool) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	var b bytes.Buffer
	for range rows {
		x, n, c := rolloutRow(r, shifted)
		fmt.Fprintf(&b, "{\"x\":%.6f,\"n\":%d,\"c\":%q}\n", x, n, c)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// baseline runs `driftmon baseline` of d's config on input, writing the profile out.
func (d *deployment) baseline(input, out string) {
	d.t.Helper()
	cmd := exec.Command(driftmonBinary(d.t), "baseline", "-c", d.cfg, "--input", input, "-o", out)
	cmd.Env = append(os.Environ(), "DRIFTMON_TEST_GROUP="+d.group()) // the config names it
	if b, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("driftmon baseline: %v\n%s", err, b)
	}
}

// apiURL is the base URL of the current run's HTTP server, read from the address its
// "driftmon started" log line gives (it listens on port 0).
func (d *deployment) apiURL() string {
	d.t.Helper()
	path := filepath.Join(d.dir, fmt.Sprintf("run-%d.log", d.runs))
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		f, err := os.Open(path)
		if err != nil {
			d.t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Msg, HTTP string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "driftmon started" && l.HTTP != "" {
				f.Close()
				return "http://" + l.HTTP
			}
		}
		f.Close()
		select {
		case <-d.exited:
			d.t.Fatalf("%s run %d exited:\n%s", d.name, d.runs, d.logTail())
		default:
		}
	}
	d.t.Fatalf("%s run %d did not say where it listens in 20s:\n%s", d.name, d.runs, d.logTail())
	return ""
}

// call makes an API call to the current run and returns the status and body.
func (d *deployment) call(method, path, token string, body []byte) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.apiURL()+path, bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return res.StatusCode, b
}

// rolloutKey is the results' key of window w of version.
func rolloutKey(version string, w int) string {
	start := rolloutT0.Add(time.Duration(w) * rolloutWindow)
	return windowKey(resultfile.Line{Stream: "s", Model: "a", Version: version, Start: start, End: start.Add(rolloutWindow)})
}

// TestVersionRollOut: version 1 of model a is judged against its training profile (a
// fixed baseline written by `driftmon baseline`), is quiet, then drifts for eight
// windows: exactly one retraining webhook, naming version 1, its episode and its first
// drifting window. The binary is killed (SIGKILL) while that call waits for its answer,
// and makes it again after the restart, with the same webhook-id; the pipeline then
// hands version 2's training profile over by PUT. Version 2 takes over the traffic
// (two windows beside version 1, then alone): its windows name the handed-over
// reference and none drifts, though the baseline would find all of them drifting; in
// version 2's third window after version 1's last, version 1's episode resolves as
// superseded by version 2, in the audit trail. Two more SIGKILLs amid version 2's
// windows (one right after a checkpoint that holds part of the count to three) change
// nothing: every window reported again is reported the same, the verdicts are those
// above, and the receiver sees one webhook-id in all.
func TestVersionRollOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it: not with -short")
	}
	driftmonBinary(t)
	const token = "rollout-test-token"
	t.Setenv("DRIFTMON_API_TOKEN", token) // the binary's API accepts PUTs with it
	br := startBroker(t, "rollout:1")
	// The retraining pipeline's receiver holds its first call until the binary that
	// made it has been killed: the binary never sees the call answered, and must make
	// it again, with the same webhook-id, after the restart.
	hook, killed := make(chan struct{}), make(chan struct{})
	var first sync.Once
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret, OnDelivery: func(webhook.Delivery) {
		first.Do(func() {
			close(hook)
			select {
			case <-killed:
			case <-time.After(30 * time.Second):
			}
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)
	d := newDeploymentWith(t, "rollout", func(dir, _, _ string) string {
		return fmt.Sprintf(`
kafka: {brokers: [%q], group_id: "${DRIFTMON_TEST_GROUP}"}
state: {path: %q, checkpoint_records: 1500, checkpoint_interval: 300ms}
streams:
  - name: s
    topic: rollout
    event_time: ts
    model: model
    model_version: model_version
    features:
      x: {type: numeric}
      n: {type: numeric}
      c: {type: categorical}
    window: {size: %s}
    reference: {baseline: v1.profile}
alerting:
  webhooks: [{name: retrain, url: %q, secret: %q}]
`, br.addr(), filepath.Join(dir, "state.db"), rolloutWindow, srv.URL, secret)
	})
	d.receiver = receiver
	// Each version's training data, summarised as the pipeline does.
	d.baseline(trainingFile(t, d.dir, "v1-train.jsonl", 101, 4000, false), filepath.Join(d.dir, "v1.profile"))
	v2Profile := filepath.Join(d.dir, "v2.profile")
	d.baseline(trainingFile(t, d.dir, "v2-train.jsonl", 102, 4000, true), v2Profile)

	// Version 1: quiet, then drifting. Killed while its webhook call is unanswered.
	produceAll(t, br.addr(), "rollout", rolloutEvents(0, v2Start))
	d.start()
	select {
	case <-hook:
	case <-d.exited:
		t.Fatalf("run %d exited:\n%s", d.runs, d.logTail())
	case <-time.After(30 * time.Second):
		t.Fatalf("no retraining webhook in 30s:\n%s", d.logTail())
	}
	d.kill()
	close(killed)
	t.Logf("kill 1: during the webhook call, %d windows reported", len(distinct(t, d.lines(), scoreTolerance)))
	d.start()
	d.waitConsumed(br.addr(), "rollout", 1, 30*time.Second)

	// The pipeline hands version 2's reference over.
	profile, err := os.ReadFile(v2Profile)
	if err != nil {
		t.Fatal(err)
	}
	const refPath = "/api/v1/models/a/versions/2/reference"
	code, body := d.call(http.MethodPut, refPath, "", profile)
	if code != http.StatusUnauthorized {
		t.Errorf("PUT without the token: %d %s", code, body)
	}
	code, body = d.call(http.MethodPut, refPath, token, profile)
	var put struct {
		Reference string `json:"reference"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &put) != nil || !strings.HasPrefix(put.Reference, "handed over for 2 by PUT at ") {
		t.Fatalf("PUT of version 2's reference: %d %s", code, body)
	}

	// Version 2's traffic starts and version 1's stops. Killed once a checkpoint holds
	// version 2's first window after version 1's last (one of the three that
	// supersede version 1) and the next one open.
	produceAll(t, br.addr(), "rollout", rolloutEvents(v2Start, v1End+2))
	d.waitConsumed(br.addr(), "rollout", 1, 30*time.Second)
	d.kill()
	t.Logf("kill 2: amid version 2's windows, after a checkpoint; %d windows reported", len(distinct(t, d.lines(), scoreTolerance)))

	// The rest, a window at a time, killed again when two more windows are reported.
	d.start()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for w := v1End + 2; w < v2End; w++ {
			if err := produceOrdered(br.addr(), "rollout", rolloutEvents(w, w+1)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for k := range distinct(t, d.lines(), scoreTolerance) {
			if strings.HasPrefix(k, "s/a/2 ") {
				n++
			}
		}
		if n >= v1End+4-v2Start {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d windows of version 2 in 30s:\n%s", n, d.logTail())
		}
	}
	d.kill()
	t.Logf("kill 3: amid version 2's windows; %d windows reported", len(distinct(t, d.lines(), scoreTolerance)))
	<-produced
	d.start()
	d.waitConsumed(br.addr(), "rollout", 1, 30*time.Second)
	for deadline := time.Now().Add(30 * time.Second); d.receiver.Requests() < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the call left unanswered by kill 1, made again
	}
	deliveries := settledDeliveries(d.receiver)
	code, body = d.call(http.MethodGet, "/api/v1/audit?model=a", "", nil)
	d.stop()

	// The windows: each reported the same each time, as expected.
	lines := d.lines()
	got := distinct(t, lines, scoreTolerance)
	t.Logf("%d windows, %d reported again after a kill", len(got), len(lines)-len(got))
	want := map[string]bool{}
	for w := 0; w < v1End; w++ {
		want[rolloutKey("1", w)] = true
	}
	for w := v2Start; w < v2End-1; w++ {
		want[rolloutKey("2", w)] = true
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected window %s", k)
		}
	}
	baseline := ""
	for w := 0; w < v1End; w++ {
		r, ok := got[rolloutKey("1", w)]
		if !ok {
			t.Errorf("version 1's window %d missing", w)
			continue
		}
		if w == 0 {
			baseline = r.Reference
		}
		drifted := len(r.Drifted) > 0
		if r.Warmup || !strings.HasSuffix(r.Reference, baseline) || drifted != (w >= v1Drift) {
			t.Errorf("version 1's window %d: reference %q, warm-up %v, drifted %v; want the baseline %q, drifted %v",
				w, r.Reference, r.Warmup, r.Drifted, baseline, w >= v1Drift)
		}
	}
	for w := v2Start; w < v2End-1; w++ {
		r, ok := got[rolloutKey("2", w)]
		if !ok {
			t.Errorf("version 2's window %d missing", w)
			continue
		}
		if r.Warmup || r.Reference != put.Reference || len(r.Drifted) > 0 {
			t.Errorf("version 2's window %d: reference %q, warm-up %v, drifted %v; want %q and quiet",
				w, r.Reference, r.Warmup, r.Drifted, put.Reference)
		}
	}

	// One retraining call, for version 1's episode, from its first drifting window.
	firstDrift := rolloutT0.Add(v1Drift * rolloutWindow)
	episode := alerting.StableID("ep_", "s", "a", "1", string(alerting.KindDrift), firstDrift.Format(time.RFC3339Nano))
	if len(deliveries) != 1 || d.receiver.Requests() != 2 {
		t.Fatalf("webhook-ids delivered: %v in %d requests; want one, called again after the kill", deliveries, d.receiver.Requests())
	}
	var p webhook.Payload
	if err := json.Unmarshal(d.receiver.Deliveries()[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != webhook.EventRetrain || p.Model != "a" || p.ModelVersion != "1" || p.EpisodeID != episode ||
		!p.FirstWindow.Start.Equal(firstDrift) || !p.FirstWindow.End.Equal(firstDrift.Add(rolloutWindow)) ||
		p.Window != p.FirstWindow || p.Reference != baseline || p.ReferenceID == "" {
		t.Errorf("webhook payload: %s of model %q version %q episode %q first window %v–%v, window %v–%v, reference %q (id %q); "+
			"want %s of a, 1, %s, %v, the first window, %q",
			p.Type, p.Model, p.ModelVersion, p.EpisodeID, p.FirstWindow.Start, p.FirstWindow.End, p.Window.Start, p.Window.End,
			p.Reference, p.ReferenceID, webhook.EventRetrain, episode, firstDrift, baseline)
	}

	// The audit trail: version 1's episode resolved as superseded by version 2, and
	// nothing decided about version 2.
	var trail struct{ Entries []audit.Entry }
	if code != http.StatusOK || json.Unmarshal(body, &trail) != nil {
		t.Fatalf("GET /api/v1/audit: %d %s", code, body)
	}
	// Version 2's third window after version 1's last (supersede_after's default)
	// supersedes it, whether or not the counts of the windows before it were
	// restored from a checkpoint.
	supersededIn := rolloutT0.Add((v1End + 2) * rolloutWindow)
	superseded, retrained := 0, 0
	for _, e := range trail.Entries {
		if e.Event != audit.EventDecision {
			continue
		}
		t.Logf("audit: %s %s v%s %s muted %q: %s", e.Decision, e.Alert, e.ModelVersion, e.WindowStart.Format(time.TimeOnly), e.Muted, e.Note)
		switch {
		case e.ModelVersion == "2":
			t.Errorf("a decision about version 2: %+v", e)
		case e.Decision == string(alerting.StepRetrain) && e.Muted == "":
			retrained++
		case e.Decision == string(alerting.StepResolve) && e.Alert == episode && strings.HasPrefix(e.Note, "superseded by version 2: ") &&
			e.WindowStart.Equal(supersededIn):
			superseded++
		}
	}
	if superseded != 1 || retrained != 1 {
		t.Errorf("the audit trail records %d resolve(s) as superseded by version 2 in the window from %v and %d retraining call(s); want 1 and 1",
			superseded, supersededIn, retrained)
	}
}
