package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the demo's goroutines can write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoShowsTheAlertAndExitsAfterIt runs the demo as `make demo -exit-after-alert`
// does, faster and for three windows more, and reads its output as a person would:
// one retraining call for the episode, however many windows drift after it.
func TestDemoShowsTheAlertAndExitsAfterIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out syncBuffer
	err := Run(ctx, Options{Rate: 2000, ShiftAfter: 5 * time.Second, Window: 2 * time.Second,
		ExitAfterAlert: true, WindowsAfterAlert: 3, Out: &out, Seed: 7, HTTPAddr: "127.0.0.1:0"})
	text := out.String()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, text)
	}
	if ctx.Err() != nil {
		t.Fatalf("demo did not exit after the alert:\n%s", text)
	}
	if !strings.Contains(text, "exiting (--exit-after-alert)") {
		t.Errorf("no exit line:\n%s", text)
	}

	// The Slack message as rendered: one "**feature** — detector score" line per drifted
	// feature, then a line of the stable ones.
	drifted := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\*\*([a-z_]+)\*\* — `).FindAllStringSubmatch(text, -1) {
		drifted[m[1]] = true
	}
	for _, f := range Shifted {
		if !drifted[f] {
			t.Errorf("shifted feature %s not named as drifted in the Slack message:\n%s", f, text)
		}
	}
	for _, f := range Stable {
		if drifted[f] {
			t.Errorf("stable feature %s named as drifted in the Slack message:\n%s", f, text)
		}
	}
	if !regexp.MustCompile(`Stable \(checked, no drift\): .*debt_to_income_ratio`).MatchString(text) {
		t.Errorf("the Slack message does not list the stable features:\n%s", text)
	}
	if !regexp.MustCompile(`\[retraining webhook\] POST /retrain  webhook-id \S+  signature verified ✓  drifted: .*car_value.*\n  one call for alert episode ep_[0-9a-f]{32} of car-loan 3\.2\.0 \(drifting since the window \S+, reference ref_[0-9a-f]{32}\)`).MatchString(text) {
		t.Errorf("the webhook receiver did not report a verified retraining call for the episode:\n%s", text)
	}
	// One call for the episode: the windows that drift after it call no more.
	if n := strings.Count(text, "[retraining webhook]"); n != 1 {
		t.Errorf("%d retraining calls, want one for the episode:\n%s", n, text)
	}
	call := strings.Index(text, "[retraining webhook]")
	if after := strings.Count(text[max(call, 0):], "DRIFT:"); after < 3 {
		t.Errorf("%d drifting windows after the retraining call, want the 3 the demo waited for:\n%s", after, text)
	}
}

// TestDemoAlertsTheSlowDown runs the demo with its model slowing down for two windows
// after the shift, through the real alert path (the policy, the outbox, the Slack sink
// that checks its token, the rollback receiver that checks the signature): the p99
// objective's alert fires in the first slow window, the rollback webhook is called
// once for it, and the alert resolves after the slow-down ends.
func TestDemoAlertsTheSlowDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Rate: 2000, ShiftAfter: 5 * time.Second, Window: 2 * time.Second,
			SlowAfter: 11 * time.Second, SlowFor: 4 * time.Second, Out: &out, Seed: 7, HTTPAddr: "127.0.0.1:0"})
	}()
	resolved := regexp.MustCompile(`Objectives met again: car-loan 3\.2\.0`)
	for !resolved.MatchString(out.String()) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	if !resolved.MatchString(text) {
		t.Fatalf("the objective's alert did not resolve within 90 s:\n%s", text)
	}
	// The slow-down's first window, as the demo announced it.
	m := regexp.MustCompile(`the model slows down \(p99 ≈ 360 ms\) from (\d\d:\d\d:\d\d) to (\d\d:\d\d:\d\d)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the demo did not say when the model slows down:\n%s", text)
	}
	first := regexp.MustCompile(`(?m)^ +` + m[1] + `–\d\d:\d\d:\d\d  objective breached: latency_ms p99 (\d+) ms > 250 ms`).FindStringSubmatch(text)
	if first == nil {
		t.Errorf("the first slow window (from %s) did not breach the p99 objective:\n%s", m[1], text)
	}
	// Slack: the episode fired on that window and resolved; the parent names the breach.
	fire := strings.Index(text, "Objective breached: car-loan 3.2.0")
	if fire < 0 || !regexp.MustCompile(`\*\*latency_ms p99\*\* — \d+ ms > 250 ms`).MatchString(text[fire:]) {
		t.Errorf("no Slack message of the breach:\n%s", text)
	}
	// The demo prints local times, Slack UTC ones.
	if _, off := time.Now().Zone(); off == 0 && fire >= 0 {
		if w := regexp.MustCompile(`\*\*Window\*\* \S+ (\d\d:\d\d:\d\d) →`).FindStringSubmatch(text[fire:]); w == nil || w[1] != m[1] {
			t.Errorf("the Slack message of the breach is about the window %v, want the first slow one, from %s", w, m[1])
		}
		end := resolved.FindStringIndex(text)
		if w := regexp.MustCompile(`\*\*Window\*\* \S+ (\d\d:\d\d:\d\d) →`).FindStringSubmatch(text[end[0]:]); w == nil || w[1] < m[2] {
			t.Errorf("the breach resolved in the window %v, before the slow-down ended at %s", w, m[2])
		}
	}
	if n := strings.Count(text, "[rollback webhook]"); n != 1 || !strings.Contains(text, "type driftmon.objective: objective breached: latency_ms p99") {
		t.Errorf("%d rollback calls, want one of type driftmon.objective:\n%s", n, text)
	}
	if first != nil {
		t.Logf("first slow window's p99: %s ms", first[1])
	}
}
