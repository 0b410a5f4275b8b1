package outbox

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/alerting/slack"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
	"github.com/driftmon/driftmon/internal/state"
)

const slackToken = "xoxb-1234-test"

var w0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// observation is the i-th hourly window of car-loan v3, spec as in the
// policy tests: "a,b|c" means a and b drifted, c was stable.
func observation(i int, spec string) policy.Observation {
	o := policy.Observation{
		Stream: "loan-applications", Model: "car-loan", Version: "v3",
		WindowStart: w0.Add(time.Duration(i) * time.Hour), WindowEnd: w0.Add(time.Duration(i+1) * time.Hour),
		Rows: 12000 + int64(i), Reference: "baseline reference.parquet (50,000 rows)",
	}
	drifted, stable, _ := strings.Cut(spec, "|")
	for _, f := range strings.Split(drifted, ",") {
		if f != "" {
			o.Drifted = append(o.Drifted, policy.Drift{Change: alerting.Change{Feature: f, Detector: "ks", Score: 0.3, Threshold: 0.1, PValue: 1e-6, Summary: "p50 29.6k → 47.1k"}, PSI: 0.4})
		}
	}
	for _, f := range strings.Split(stable, ",") {
		if f != "" {
			o.Stable = append(o.Stable, f)
		}
	}
	return o
}

// commitWindow is what the monitor does with each closed window: decide,
// then in one transaction store the policy state, audit every decision and
// enqueue the ones to send; wake the outbox once committed.
func commitWindow(t *testing.T, store *state.Store, ob *Outbox, p *policy.Policy, st *policy.State, o policy.Observation) []alerting.Decision {
	t.Helper()
	next := st.Clone()
	ds := p.Observe(next, o, w0)
	err := store.Update(func(tx *state.Tx) error {
		for _, d := range ds {
			subject := audit.Of(d.Alert, "cfg-test")
			if err := audit.Append(tx, audit.Entry{Event: audit.EventDecision, Subject: subject, Decision: string(d.Step), Muted: d.Muted, Features: d.New}); err != nil {
				return err
			}
			if d.Muted != "" || d.Step == alerting.StepRetrain {
				continue
			}
			it, err := SlackItem("slack", d, subject)
			if err != nil {
				return err
			}
			if err := ob.Enqueue(tx, it); err != nil {
				return err
			}
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return tx.Put("alert_state", o.Stream, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	*st = *next
	ob.Wake()
	return ds
}

func loadState(t *testing.T, store *state.Store, stream string) *policy.State {
	t.Helper()
	st := &policy.State{}
	err := store.View(func(tx *state.Tx) error {
		if b := tx.Get("alert_state", stream); b != nil {
			return json.Unmarshal(b, st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func slackNotifier(t *testing.T, opts slack.Options) *slack.Notifier {
	t.Helper()
	n, err := slack.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A drift episode (fire, persist, grow, resolve) in bot-token mode is one
// parent message, its follow-ups in the thread, and a parent rewritten to
// show the current status, resolved at the end; driftmon restarts in the
// middle without breaking the thread.
func TestSlackEpisodeIsOneThread(t *testing.T) {
	srv := slacktest.NewServer(slacktest.Options{Token: slackToken, RateLimit: 200 * time.Millisecond})
	defer srv.Close()
	n := slackNotifier(t, slack.Options{Token: slackToken, Channel: "C0DRIFT", APIURL: srv.URL(), MinInterval: 250 * time.Millisecond})
	pol, err := policy.New(policy.Rules{RepeatEvery: 2 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.db")

	life := func(windows map[int]string, order []int, wantDelivered int) {
		store := openStore(t, path)
		defer store.Close()
		ob := newOutbox(t, store, Options{Senders: map[string]Sender{"slack": Slack(n, store, nil)}})
		st := loadState(t, store, "loan-applications")
		stop := start(t, ob)
		for _, i := range order {
			commitWindow(t, store, ob, pol, st, observation(i, windows[i]))
		}
		waitFor(t, "the deliveries", func() bool { return len(list(t, ob, Delivered)) == wantDelivered })
		stop()
		if len(list(t, ob, Pending))+len(list(t, ob, Dead)) != 0 {
			t.Fatalf("pending %v, dead %v", list(t, ob, Pending), list(t, ob, Dead))
		}
	}
	windows := map[int]string{0: "a,b|c", 1: "a,b|c", 2: "a,b|c", 3: "a,b,c|", 4: "|a,b,c"}
	life(windows, []int{0, 1, 2}, 2) // fire, (nothing), repeat
	life(windows, []int{3, 4}, 4)    // after a restart: update, resolve

	var parents []slacktest.Message
	for _, m := range srv.Messages() {
		if m.ThreadTS == "" && !m.Updated {
			parents = append(parents, m)
		}
	}
	if len(parents) != 1 {
		t.Fatalf("%d top-level messages, want 1 parent:\n%+v", len(parents), parents)
	}
	parent := parents[0].TS
	replies := srv.Thread(parent)
	var got []string
	for _, r := range replies {
		got = append(got, strings.SplitN(slacktest.Render(r.Blocks), " — ", 2)[0])
	}
	if want := []string{"**Still drifting**", "**Update**", "**Resolved**"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("thread replies %q, want %q", got, want)
	}
	cur, updates, _ := srv.Current(parent)
	rendered := slacktest.Render(cur.Blocks)
	if updates != 3 || !strings.Contains(rendered, "Resolved: drift in car-loan v3") || !strings.Contains(rendered, "No longer drifting: a, b, c") {
		t.Errorf("parent after %d updates:\n%s", updates, rendered)
	}

	store := openStore(t, path)
	defer store.Close()
	decisions, err := audit.List(store, audit.Query{Alert: parentEpisode(t, store)})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range decisions {
		if e.Event == audit.EventDecision {
			steps = append(steps, e.Decision)
		}
		if e.ConfigHash != "cfg-test" || e.Model != "car-loan" {
			t.Errorf("audit entry without its subject: %+v", e)
		}
	}
	if strings.Join(steps, " ") != "fire repeat update resolve" {
		t.Errorf("audited decisions %v", steps)
	}
	if eps := loadState(t, store, "loan-applications").Episodes(); len(eps) != 0 {
		t.Errorf("episodes still open after the resolve: %+v", eps)
	}
}

// parentEpisode finds the episode ID in the delivered Slack items.
func parentEpisode(t *testing.T, store *state.Store) string {
	t.Helper()
	ob := newOutbox(t, store, Options{Senders: map[string]Sender{"slack": SenderFunc(nil)}})
	d := list(t, ob, Delivered)
	if len(d) == 0 {
		t.Fatal("nothing delivered")
	}
	return d[0].Key
}

// Through an incoming webhook there are no threads: each step is a new
// message showing the episode's status.
func TestSlackWebhookModePostsEachStep(t *testing.T) {
	srv := slacktest.NewServer(slacktest.Options{RateLimit: 200 * time.Millisecond})
	defer srv.Close()
	n := slackNotifier(t, slack.Options{WebhookURL: srv.WebhookURL(), MinInterval: 250 * time.Millisecond})
	pol, err := policy.New(policy.Rules{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	ob := newOutbox(t, store, Options{Senders: map[string]Sender{"slack": Slack(n, store, nil)}})
	st := &policy.State{}
	start(t, ob)
	for i, spec := range []string{"a|b", "a,b|", "|a,b"} {
		commitWindow(t, store, ob, pol, st, observation(i, spec))
	}
	waitFor(t, "3 messages", func() bool { return len(list(t, ob, Delivered)) == 3 })
	var heads []string
	for _, m := range srv.Messages() {
		if m.ThreadTS != "" || m.Updated || !m.Webhook {
			t.Errorf("message %+v is threaded or updated", m)
		}
		heads = append(heads, strings.SplitN(slacktest.Render(m.Blocks), "\n", 2)[0])
	}
	want := []string{"**🚨 Drift in car-loan v3 — critical**", "**🚨 Drift in car-loan v3 — critical**", "**✅ Resolved: drift in car-loan v3**"}
	if fmt.Sprint(heads) != fmt.Sprint(want) {
		t.Errorf("messages %q, want %q", heads, want)
	}
}

// The fake Slack answers a post within a second of the previous one with
// 429 and Retry-After; that attempt fails, the outbox waits the Retry-After out
// (its own schedule says 5 ms) and the follow-up still lands.
func TestSlackRateLimitIsWaitedOut(t *testing.T) {
	srv := slacktest.NewServer(slacktest.Options{Token: slackToken, RateLimit: time.Second})
	defer srv.Close()
	n := slackNotifier(t, slack.Options{Token: slackToken, Channel: "C0DRIFT", APIURL: srv.URL(), MinInterval: time.Millisecond})
	pol, err := policy.New(policy.Rules{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer store.Close()
	ob := newOutbox(t, store, Options{Senders: map[string]Sender{"slack": Slack(n, store, nil)}})
	st := &policy.State{}
	start(t, ob)
	commitWindow(t, store, ob, pol, st, observation(0, "a|b"))
	commitWindow(t, store, ob, pol, st, observation(1, "|a,b"))
	waitFor(t, "2 deliveries", func() bool { return len(list(t, ob, Delivered)) == 2 })
	if srv.RateLimited() == 0 {
		t.Error("the fake never rate-limited; the test proves nothing")
	}
	parent := srv.Messages()[0].TS
	if len(srv.Thread(parent)) != 1 {
		t.Errorf("thread %+v, want the resolve reply", srv.Thread(parent))
	}
	r, err := ob.Get(list(t, ob, Delivered)[1].ID)
	if err != nil || r.Attempts != 2 {
		t.Fatalf("resolve record %+v, %v: want the 429 to cost one attempt and the next to deliver", r, err)
	}
	entries, err := audit.List(store, audit.Query{Delivery: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	var retried bool
	for _, e := range entries {
		if e.Event == audit.EventAttempt && e.Attempt == 1 {
			retried = e.Outcome == "retry"
			if wait := e.Next.Sub(e.Time); wait < time.Second {
				t.Errorf("after the 429 the next attempt was due in %s, before its Retry-After (1s)", wait)
			}
		}
	}
	if !retried {
		t.Errorf("audit %+v: want the first attempt retried", entries)
	}
}
