package soak

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a campaign measured: one row per figure, and the breaches, the rows
// whose figure is not what it must be.
type Report struct {
	Seed    uint64
	Profile string
	Setup   []string // what ran, in words: broker, scale-downs, faults not injected
	Rows    []Row
}

// Row is one figure of the table. Want is empty for figures that are reported, not
// judged; OK says whether a judged figure holds.
type Row struct {
	What, Value, Want string
	OK                bool
}

func (r *Report) add(what string, value any, want string, ok bool) {
	r.Rows = append(r.Rows, Row{What: what, Value: fmt.Sprint(value), Want: want, OK: ok})
}

// info adds a figure that is reported but not judged.
func (r *Report) info(what string, value any) {
	r.Rows = append(r.Rows, Row{What: what, Value: fmt.Sprint(value), OK: true})
}

// must adds a figure that must equal want.
func (r *Report) must(what string, got, want int64) {
	r.add(what, got, fmt.Sprint(want), got == want)
}

// Breaches are the judged rows that do not hold.
func (r *Report) Breaches() []Row {
	var out []Row
	for _, row := range r.Rows {
		if !row.OK {
			out = append(out, row)
		}
	}
	return out
}

// Print writes the setup and the table, then a verdict line.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\ndriftmon soak campaign — profile %s, seed %d\n", r.Profile, r.Seed)
	for _, s := range r.Setup {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| figure\t| measured\t| must be\t| |")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---|")
	for _, row := range r.Rows {
		mark := ""
		switch {
		case row.Want == "":
		case row.OK:
			mark = "ok"
		default:
			mark = "BREACH"
		}
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s |\n", row.What, strings.ReplaceAll(row.Value, "|", "/"), row.Want, mark)
	}
	tw.Flush()
	if b := r.Breaches(); len(b) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d breach(es):", len(b))
		for _, row := range b {
			fmt.Fprintf(w, " %s;", row.What)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "\nPASS: no breach")
	}
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
	for _, id := range slices.Sorted(maps.Keys(bursts)) {
		c.note("webhook-id %s was delivered %d times within %s", id, bursts[id], burstWindow)
	}
	c.soakHook.mu.Lock()
	r.info("webhook requests by answer", formatCounts(c.soakHook.byOutcome))
	r.must("webhook requests without the bearer token", int64(c.soakHook.badAuth), 0)
	r.must("webhook requests refused by the signature check", int64(c.soakHook.badSig), 0)
	c.soakHook.mu.Unlock()
	c.reportHookFaults()
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
		for _, k := range slices.Sorted(maps.Keys(reasons)) {
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
		r.info("webhook faults", fmt.Sprintf("down %s; one request each answered 500, 429, too slowly; two redirected (307, 302)", c.prof.hookDown))
	} else {
		f := c.prof.hookFault
		r.info("webhook faults", fmt.Sprintf("down %s, 500 for %s, 429 for %s, slow for %s, redirect (307/302) for %s", c.prof.hookDown, f, f, f, f))
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
	checks := slices.Sorted(maps.Keys(c.apiChecks))
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

// reportHookFaults adds a row per webhook fault that answers requests: the webhook-ids
// it met must each be delivered after it (the outbox retried them), and a redirect's
// target must never be reached: driftmon follows no redirect, so the bearer token and
// signature go to the configured host only, and a 3xx is a failed attempt, not a
// delivery.
func (c *campaign) reportHookFaults() {
	r := c.rep
	for _, m := range []hookMode{hook500, hook429, hookSlow, hookRedirect} {
		ids, after, repeats := c.soakHook.metFault(m)
		want, ok := "all", after == ids
		if m == hookRedirect && !c.skipped("webhook") {
			// The fault the campaign must have tried: a run that met no redirect says
			// nothing about them.
			want, ok = "all, ≥ 1", ok && ids > 0
		}
		r.add(fmt.Sprintf("webhook %s: webhook-ids answered so, delivered after it (deliveries repeated)", m),
			fmt.Sprintf("%d of %d (%d)", after, ids, repeats), want, ok)
	}
	reached, creds := c.soakHook.trap.reached()
	c.soakHook.mu.Lock()
	redirected := c.soakHook.redirects
	c.soakHook.mu.Unlock()
	r.must(fmt.Sprintf("webhook redirect: requests reaching the other listener, of %d redirected (with a bearer token or signature: %d)", redirected, creds), int64(reached), 0)
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
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %v", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
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
