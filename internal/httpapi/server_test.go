package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/internal/monitor"
)

// TestRun: Run binds the address, Addr reports it, requests are served, and
// cancelling the context shuts the server down without an error.
func TestRun(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, "127.0.0.1:0") }()
	addr := waitAddr(t, s, done)
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestRunBadAddress(t *testing.T) {
	err := New(Options{}).Run(context.Background(), "127.0.0.1:-1")
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Errorf("Run = %v, want a listen error", err)
	}
}

// waitAddr waits until Run has bound its listener.
func waitAddr(t *testing.T, s *Server, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := s.Addr(); a != "" {
			return a
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("Run did not bind within 10s")
	return ""
}

// TestConcurrentRecordAndRead: the monitor records from its goroutines while
// handlers and scrapes read; run with -race.
func TestConcurrentRecordAndRead(t *testing.T) {
	f := newFixture(t)
	res := results(t, 3, 3)
	a := f.lastAlert(t)
	h := f.srv.Handler()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the stream goroutine, which owns the profiles
		defer wg.Done()
		for i := range 50 {
			r := res[i%len(res)]
			r.Start = r.Start.Add(time.Duration(i) * time.Hour)
			r.End = r.End.Add(time.Duration(i) * time.Hour)
			f.srv.Record(r)
		}
	}()
	wg.Add(1)
	go func() { // the dispatcher
		defer wg.Done()
		for i := range 50 {
			var err error
			if i%3 == 0 {
				err = errors.New("timeout")
			}
			f.srv.RecordDelivery("slack", a, err)
		}
	}()
	for _, target := range []string{"/api/v1/streams", "/api/v1/windows?limit=20", "/api/v1/findings", "/api/v1/alerts", "/api/v1/deliveries", "/metrics"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				code, _, body := do(t, h, "GET", target, "", "")
				if code != 200 {
					t.Errorf("GET %s = %d %s", target, code, body)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			f.srv.Silenced("credit", "car-loan", "income", time.Now())
		}
	}()
	wg.Wait()
}

// TestDashboardAssets: the page and its assets come from the binary, and nothing
// in them reaches beyond this server (the dashboard works offline).
func TestDashboardAssets(t *testing.T) {
	h := New(Options{}).Handler()
	for _, tc := range []struct{ target, ctype, contains string }{
		{"/", "text/html", `src="assets/app.js"`},
		{"/assets/app.js", "javascript", "function heatmap"},
		{"/assets/style.css", "text/css", ".cell.drifted"},
	} {
		code, hdr, b := do(t, h, "GET", tc.target, "", "")
		body := string(b)
		if code != 200 || !strings.Contains(hdr.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s = %d %q, want 200 %s containing %q", tc.target, code, hdr.Get("Content-Type"), tc.ctype, tc.contains)
		}
		for _, ext := range []string{"http://", "https://", "//cdn", "@import"} {
			for _, line := range strings.Split(body, "\n") {
				if strings.Contains(line, ext) && !strings.Contains(line, "http://www.w3.org/2000/svg") {
					t.Errorf("%s reaches outside the server: %s", tc.target, strings.TrimSpace(line))
				}
			}
		}
	}
	if code, _, _ := do(t, h, "GET", "/assets/nope.js", "", ""); code != 404 {
		t.Errorf("GET /assets/nope.js = %d, want 404", code)
	}
	if code, _, _ := do(t, h, "GET", "/nope", "", ""); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

// The monitor is the source the server is wired to.
var _ Source = (*monitor.Monitor)(nil)
