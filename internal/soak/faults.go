package soak

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// faultKind is the Options.Skip name of an action.
func faultKind(name string) string {
	for _, k := range []string{"kill", "broker", "webhook", "slack", "read-only", "disk", "truncated"} {
		if strings.HasPrefix(name, k) {
			switch k {
			case "disk":
				return "disk-full"
			case "truncated":
				return "truncated-state"
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
	hookFaults := []struct {
		mode hookMode
		d    time.Duration
	}{{hookDown, p.hookDown}, {hook500, p.hookFault}, {hook429, p.hookFault}, {hookSlow, p.hookFault}, {hookRedirect, p.hookFault}}
	for i, f := range hookFaults {
		mode, d := f.mode, f.d
		if d == 0 {
			// One request, whenever it comes: a spell of seconds may meet none. The
			// redirect takes two, a 307 and a 302.
			n := 1
			if mode == hookRedirect {
				n = 2
			}
			acts = append(acts, action{t, "webhook next request " + mode.String(), func(context.Context) {
				for range n {
					c.soakHook.failNext(mode)
				}
				c.logf("webhook receiver: the next %d request(s): %s", n, mode)
			}})
			t += 5 * time.Second
			continue
		}
		acts = append(acts, action{t, "webhook " + mode.String(), func(context.Context) { c.setHook(mode) }})
		acts = append(acts, action{t + d, "webhook ok", func(context.Context) { c.setHook(hookOK) }})
		left := time.Duration(len(hookFaults) - 1 - i)
		gap := max(0, p.hookFaultsBy-t-d-left*(p.hookFault+5*time.Second)) / (left + 1)
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
	// After the first checkpoints, so that there is a file to cut.
	acts = append(acts, action{15*time.Second + time.Duration(c.rng.Int64N(int64(end-15*time.Second))), "truncated state", c.truncatedState})
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
		if a.name == "broker restart" || a.name == "read-only state" || a.name == "disk full" || a.name == "truncated state" {
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

// truncatedState kills driftmon, copies its state file aside, cuts the file to half
// of what its last commit uses (a copy that did not finish, a disk that filled) and
// starts driftmon on it: it must exit non-zero by itself, saying the file is damaged
// and what the operator can do, without a crash. Then the copy goes back and driftmon
// resumes from it; the counts and windows of the report show that nothing was lost.
func (c *campaign) truncatedState(ctx context.Context) {
	c.waitHold()
	defer c.hold.Store(false)
	const fault, want = "state fault: truncated state file", "exits non-zero by itself, says what is wrong and what to do; resumes from the copy"
	if c.soak.kill() {
		c.kills.Add(1)
	}
	db := filepath.Join(c.soak.state, "state.db")
	saved, err := os.ReadFile(db)
	var cut int64
	if err == nil {
		cut, err = cutShort(saved)
	}
	if err == nil {
		err = os.Truncate(db, cut)
	}
	if err != nil {
		c.logf("state: cannot cut the state file: %v", err)
		c.note("the truncated-state fault was not injected: %v", err)
		if _, err := c.soak.start(true, c.apiToken); err == nil {
			c.restarts.Add(1)
		}
		return
	}
	c.logf("state: %s cut from %d to %d bytes (a copy kept); starting driftmon on it", db, len(saved), cut)
	outcome, ok := "", false
	r, err := c.soak.start(true, c.apiToken)
	if err != nil {
		outcome = "cannot start: " + err.Error()
	} else {
		select {
		case <-r.done:
			c.soak.mu.Lock()
			e := c.soak.exits[len(c.soak.exits)-1]
			c.soak.mu.Unlock()
			outcome, ok = damagedOutcome(e)
		case <-time.After(30 * time.Second):
			c.soak.kill()
			outcome = "kept running for 30s on a state file cut short"
		}
	}
	// Back as it was: WriteFile keeps the file's owner and mode.
	if err := os.WriteFile(db, saved, 0o600); err != nil {
		outcome += "; cannot put the copy back: " + err.Error()
		ok = false
	}
	if _, err := c.soak.start(true, c.apiToken); err != nil {
		outcome += "; cannot restart: " + err.Error()
		ok = false
	} else {
		c.restarts.Add(1)
		// Resumed: serving its API from the restored file within 30 s.
		deadline := time.Now().Add(30 * time.Second)
		_, serr := c.soak.stats()
		for ; serr != nil && c.soak.current() != nil && time.Now().Before(deadline); _, serr = c.soak.stats() {
			time.Sleep(200 * time.Millisecond)
		}
		if serr != nil {
			outcome += "; did not resume from the copy: " + serr.Error()
			ok = false
		} else {
			outcome += "; the copy put back: resumed"
		}
	}
	c.mu.Lock()
	c.rep.add(fault, fmt.Sprintf("cut %d → %d bytes: %s", len(saved), cut, outcome), want, ok)
	c.mu.Unlock()
	c.logf("state: the copy put back (%s)", outcome)
}

// cutShort returns the length to cut a bbolt file to: half of the pages its last
// commit uses (the high-water mark of the valid meta page with the higher
// transaction id), so that the file is damaged whatever room bbolt had allocated past
// them. The meta layout is internal/state/verify.go's.
func cutShort(b []byte) (int64, error) {
	const hdr = 16
	meta := func(off int) (pageSize, hwm, txid uint64, ok bool) {
		if off+hdr+64 > len(b) {
			return 0, 0, 0, false
		}
		m := b[off+hdr:]
		ok = binary.NativeEndian.Uint32(m[0:]) == 0xED0CDAED
		return uint64(binary.NativeEndian.Uint32(m[8:])), binary.NativeEndian.Uint64(m[40:]), binary.NativeEndian.Uint64(m[48:]), ok
	}
	ps, hwm, tx, ok := meta(0)
	if !ok || ps == 0 {
		return 0, fmt.Errorf("%d bytes with no valid first meta page", len(b))
	}
	if _, hwm1, tx1, ok1 := meta(int(ps)); ok1 && tx1 > tx {
		hwm = hwm1
	}
	used := int64(hwm * ps)
	if used < 4*int64(ps) || used > int64(len(b)) {
		return 0, fmt.Errorf("%d bytes whose last commit uses %d", len(b), used)
	}
	return used / 2, nil
}

// damagedAdviceStart is how the product's advice for a damaged state file begins
// (internal/state: damagedAdvice): the exit must tell the operator what to do.
const damagedAdviceStart = "Restore the file from a backup, or move it away to start without it"

// damagedOutcome judges how a run on a damaged state file ended: by itself, non-zero,
// no crash, saying the file is damaged, why and what to do.
func damagedOutcome(e exit) (string, bool) {
	var line string
	for _, l := range strings.Split(e.lastLog, "\n") {
		if strings.HasPrefix(l, "driftmon run: ") {
			line = l
		}
	}
	what, advice, _ := strings.Cut(line, damagedAdviceStart)
	if i := strings.Index(what, "the state file is damaged"); i >= 0 {
		what = what[i:]
	}
	switch {
	case e.panicked || e.signal != "":
		return "crashed: " + tail(e.lastLog, 240), false
	case e.code == 0:
		return "exited 0", false
	case line == "":
		return fmt.Sprintf("exited %d without saying why: %s", e.code, tail(e.lastLog, 240)), false
	case !strings.Contains(line, "the state file is damaged") || advice == "":
		return fmt.Sprintf("exited %d without saying what to do: %s", e.code, tail(line, 300)), false
	}
	return fmt.Sprintf("stopped (exit %d): %s%s…", e.code, strings.TrimSpace(what), damagedAdviceStart), true
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
