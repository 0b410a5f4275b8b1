package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/monitor"
)

// hangGuard is how long a raw client waits for an answer before the test calls the
// server stuck. It bounds a failing run only: a passing one never waits for it.
const hangGuard = 20 * time.Second

// long is a timeout that never fires in a test, for the bounds a test is not about.
const long = time.Hour

// serve runs s on a loopback listener (wrapped by wrap, if not nil) until the test
// ends and returns its address.
func serve(t *testing.T, s *Server, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

// dial opens a raw connection whose reads give up after hangGuard.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitClosed reads c until the server closes it, failing the test if hangGuard
// passes first.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_, err := io.Copy(io.Discard, c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("%s: the server still held the connection after %s", what, hangGuard)
	}
}

// limits are test bounds: every timeout long unless set.
func limits(h config.HTTP) config.HTTP {
	for _, d := range []*time.Duration{&h.ReadHeaderTimeout, &h.ReadTimeout, &h.WriteTimeout, &h.IdleTimeout} {
		if *d == 0 {
			*d = long
		}
	}
	return h
}

// TestSecurityHeaders: every answer, the dashboard's first, tells the browser not to
// sniff types, not to be framed, and to run only the server's own script and style.
func TestSecurityHeaders(t *testing.T) {
	h := New(Options{}).Handler()
	for _, target := range []string{"/", "/assets/app.js", "/api/v1/streams", "/metrics", "/api/v1/nope"} {
		_, hdr, _ := do(t, h, "GET", target, "", "")
		if got := hdr.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", target, got)
		}
		if got := hdr.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options %q, want DENY", target, got)
		}
		csp := hdr.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", target, csp, want)
			}
		}
	}
}

// countingReader counts the bytes a handler read of a request body.
type countingReader struct {
	mu sync.Mutex
	r  io.Reader
	n  int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestBodyLimit: a body over the limit is answered 413, unread when its length is
// declared (whoever sends it); a caller without the token is answered 401 before a
// byte of the body is read.
func TestBodyLimit(t *testing.T) {
	const limit = 4096
	s := New(Options{Token: testToken, Limits: config.HTTP{MaxBodyBytes: limit}})
	silence := `{"model":"car-loan","duration":"1h","comment":"` + strings.Repeat("x", 2*limit) + `"}`
	tests := []struct {
		name     string
		token    string
		body     string
		declared bool // Content-Length set; else the body is chunked
		code     int
		maxRead  int // bytes of the body the server may read
	}{
		{"declared too long", testToken, silence, true, 413, 0},
		{"chunked too long", testToken, silence, false, 413, limit + 1},
		{"no token, declared too long", "", silence, true, 413, 0},
		{"no token, declared", "", `{"model":"m","duration":"1h"}`, true, 401, 0},
		{"no token, chunked", "", silence, false, 401, 0},
		{"wrong token, short", "wrong", `{"model":"m","duration":"1h"}`, true, 401, 0},
		{"within the limit", testToken, `{"model":"m","duration":"1h","comment":"` + strings.Repeat("x", limit/2) + `"}`, true, 201, limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &countingReader{r: strings.NewReader(tt.body)}
			req := httptest.NewRequest("POST", "/api/v1/silences", body)
			req.ContentLength = int64(len(tt.body))
			if !tt.declared {
				req.ContentLength = -1
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("= %d %.200s, want %d", rec.Code, rec.Body, tt.code)
			}
			if n := body.read(); n > tt.maxRead {
				t.Errorf("the server read %d bytes of the body, want at most %d", n, tt.maxRead)
			}
			checkShape(t, "POST", "/api/v1/silences", rec.Code, rec.Body.Bytes())
		})
	}
}

// TestUnauthorizedAnsweredBeforeTheBody: a caller without the token that sends its
// headers and then nothing of its (declared) body gets 401 at once, on a connection
// the server then closes. net/http on its own would wait for up to 256 KiB of the
// body before answering, so that a slow client held the answer back.
func TestUnauthorizedAnsweredBeforeTheBody(t *testing.T) {
	s := New(Options{Token: testToken, Limits: limits(config.HTTP{})})
	addr := serve(t, s, nil)
	for _, tc := range []struct{ name, headers string }{
		{"declared", "Content-Length: 60000\r\n"},
		{"chunked", "Transfer-Encoding: chunked\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			write(t, c, "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+tc.headers+"\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("no answer within %s: the server waits for the body before answering 401", hangGuard)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || !resp.Close {
				t.Errorf("= %d (close %v), want 401 and the connection closed", resp.StatusCode, resp.Close)
			}
		})
	}
}

// TestMaxHeaderBytes: headers beyond the bound are refused with 431.
func TestMaxHeaderBytes(t *testing.T) {
	s := New(Options{Limits: limits(config.HTTP{MaxHeaderBytes: 8 << 10})})
	addr := serve(t, s, nil)
	req, err := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers = %d, want 431", resp.StatusCode)
	}
}

// slowSource answers Stats only after delay, as a monitor under a lock would.
type slowSource struct {
	fakeSource
	delay time.Duration
}

func (s *slowSource) Stats() map[string]monitor.Stats {
	time.Sleep(s.delay)
	return s.fakeSource.Stats()
}

// TestSlowClientsAreCutOff: a client that sends its headers, its body or its next
// request too slowly has its connection closed, and so does a request not answered
// within the write timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	const short = 100 * time.Millisecond
	t.Run("headers", func(t *testing.T) {
		addr := serve(t, New(Options{Limits: limits(config.HTTP{ReadHeaderTimeout: short})}), nil)
		c := dial(t, addr)
		write(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		waitClosed(t, c, "half-sent headers")
	})
	t.Run("body", func(t *testing.T) {
		addr := serve(t, New(Options{Token: testToken, Limits: limits(config.HTTP{ReadTimeout: short})}), nil)
		c := dial(t, addr)
		write(t, c, "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testToken+
			"\r\nContent-Length: 50\r\n\r\n{\"model\":") // and never the rest
		waitClosed(t, c, "half-sent body")
	})
	t.Run("idle", func(t *testing.T) {
		addr := serve(t, New(Options{Limits: limits(config.HTTP{IdleTimeout: short})}), nil)
		c := dial(t, addr)
		write(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Close {
			t.Fatal("the first answer closed the connection; want it kept alive")
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the server sent more than the answer")
		} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("an idle connection was held longer than %s", hangGuard)
		}
	})
	t.Run("write", func(t *testing.T) {
		src := &slowSource{delay: 3 * short}
		addr := serve(t, New(Options{Source: src, Limits: limits(config.HTTP{WriteTimeout: short})}), nil)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("/metrics answered %d after its write timeout; want the connection cut", resp.StatusCode)
		}
	})
}

// trackingListener records, whenever it accepts a connection, how many of its
// connections are open.
type trackingListener struct {
	net.Listener
	mu               sync.Mutex
	open, max, total int
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open++
	l.total++
	l.max = max(l.max, l.open)
	return &trackedConn{Conn: c, l: l}, nil
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return err
}

// TestConnectionsAreCapped: past MaxConnections the server accepts no more
// connections (so it takes no more file descriptors) until one closes; the ones
// waiting are then served.
func TestConnectionsAreCapped(t *testing.T) {
	const capacity = 2
	s := New(Options{Limits: limits(config.HTTP{MaxConnections: capacity, ReadHeaderTimeout: 100 * time.Millisecond})})
	var tl *trackingListener
	addr := serve(t, s, func(ln net.Listener) net.Listener {
		tl = &trackingListener{Listener: ln}
		return tl
	})
	// Two clients that never send a request hold both places until the read-header
	// timeout closes them; a third client's request waits until then.
	idle := []net.Conn{dial(t, addr), dial(t, addr)}
	c := dial(t, addr)
	write(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the waiting client was not served: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the waiting client got %d", resp.StatusCode)
	}
	for _, c := range idle {
		waitClosed(t, c, "an idle client")
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.total != 3 || tl.max > capacity {
		t.Errorf("%d connections accepted, at most %d open at once; want 3, at most %d", tl.total, tl.max, capacity)
	}
}

// TestLimitsDefaultToTheConfigDefaults: a server built without limits (the demo's)
// has the bounds a config without an http section gets.
func TestLimitsDefaultToTheConfigDefaults(t *testing.T) {
	if got, want := New(Options{}).limits, (config.HTTP{}).WithDefaults(); got != want {
		t.Errorf("limits %+v, want the config defaults %+v", got, want)
	}
}
