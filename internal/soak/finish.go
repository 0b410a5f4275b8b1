package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

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
