package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/driftmon/driftmon/alerting/slack/slacktest"
	"github.com/driftmon/driftmon/alerting/webhook"
)

// hookMode is how the webhook receiver answers.
type hookMode int

const (
	hookOK   hookMode = iota
	hookDown          // nothing listens: connection refused
	hook500           // 500 Internal Server Error
	hook429           // 429 Too Many Requests with Retry-After
	hookSlow          // answers after driftmon's 30 s client timeout
	// hookRedirect answers 307 and 302 in turn, pointing at another listener (the
	// trap) that must never be reached: a delivery that followed it would take the
	// bearer token and signature to a host nobody configured, and after a 302 arrive
	// as a GET without its body.
	hookRedirect
)

func (m hookMode) String() string {
	return [...]string{"ok", "down (connection refused)", "500", "429 Retry-After: 7", "slow (35 s, past driftmon's 30 s timeout)",
		"redirect (307 and 302 to another listener)"}[m]
}

// slowAnswer is how long hookSlow waits: longer than the webhook client's timeout.
const slowAnswer = 35 * time.Second

// hookSink is the retraining-webhook receiver: webhook.Receiver (which verifies the
// Standard Webhooks signature and answers 401 when it is wrong) behind a bearer-token
// check, a payload check and a fault switch, on a fixed port that it can stop
// listening on and listen on again.
type hookSink struct {
	bearer   string
	receiver *webhook.Receiver
	addr     string

	mu        sync.Mutex
	mode      hookMode
	next      []hookMode      // answers for the next first attempts, before mode
	seen      map[string]bool // webhook-ids that have reached the sink
	upAt      time.Time       // when the sink last came back from hookDown
	srv       *http.Server
	delivered map[string]int         // webhook-id → times answered 2xx
	times     map[string][]time.Time // webhook-id → when it was answered 2xx
	requests  int
	byOutcome map[string]int
	badAuth   int // requests without the bearer token
	badSig    int // requests the receiver refused (signature, not JSON)
	badShape  []string
	// met holds, by fault, the webhook-ids answered with it and when first.
	met       map[hookMode]map[string]time.Time
	redirects int
	trap      *trap
}

// trap is the listener the redirects point at. It counts what reaches it and answers
// 200, as a careless host would: a client that followed a redirect would then count
// the delivery as done.
type trap struct {
	srv                 *http.Server
	url                 string
	mu                  sync.Mutex
	requests, withCreds int
}

func newTrap() (*trap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &trap{url: "http://" + ln.Addr().String() + "/elsewhere"}
	t.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		t.requests++
		if r.Header.Get("Authorization") != "" || r.Header.Get(webhook.HeaderSignature) != "" {
			t.withCreds++
		}
		t.mu.Unlock()
	})}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

// reached returns the requests the trap got, and how many carried a bearer token or
// a signature.
func (t *trap) reached() (requests, withCreds int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests, t.withCreds
}

func newHookSink(secret, bearer string) (*hookSink, error) {
	r, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t, err := newTrap()
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &hookSink{bearer: bearer, receiver: r, addr: ln.Addr().String(), delivered: map[string]int{}, times: map[string][]time.Time{},
		seen: map[string]bool{}, byOutcome: map[string]int{}, met: map[hookMode]map[string]time.Time{}, trap: t}
	s.serve(ln)
	return s, nil
}

// URL is where driftmon posts.
func (s *hookSink) URL() string { return "http://" + s.addr + "/retrain" }

func (s *hookSink) serve(ln net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// setMode switches how the sink answers; hookDown closes the listener and any other
// mode opens it again on the same port.
func (s *hookSink) setMode(m hookMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m == hookDown && s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
		_ = s.srv.Close()
		s.srv = nil
	}
	if m != hookDown && s.srv == nil {
		s.upAt = time.Now()
		var ln net.Listener
		var err error
		for i := 0; i < 50; i++ { // the port may linger for a moment
			if ln, err = net.Listen("tcp", s.addr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("cannot listen on %s again: %w", s.addr, err)
		}
		s.serve(ln)
	}
	s.mode = m
	return nil
}

// failNext makes the next first attempt of a webhook-id answer as m, then the mode
// goes on.
func (s *hookSink) failNext(m hookMode) {
	s.mu.Lock()
	s.next = append(s.next, m)
	s.mu.Unlock()
}

func (s *hookSink) close() {
	_ = s.setMode(hookDown)
	_ = s.trap.srv.Close()
}

func (s *hookSink) count(outcome string) {
	s.mu.Lock()
	s.byOutcome[outcome]++
	s.mu.Unlock()
}

func (s *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	mode := s.mode
	// A one-request fault takes an item's first attempt only, so that its retry 5 s
	// later goes through: a second failure would put it off by 5 minutes. An id not
	// seen yet soon after an outage may be a retry of an attempt that met the outage.
	id := r.Header.Get(webhook.HeaderID)
	if len(s.next) > 0 && !s.seen[id] && time.Since(s.upAt) > 10*time.Second {
		mode, s.next = s.next[0], s.next[1:]
	}
	s.seen[id] = true
	if mode != hookOK {
		if s.met[mode] == nil {
			s.met[mode] = map[string]time.Time{}
		}
		if _, ok := s.met[mode][id]; !ok {
			s.met[mode][id] = time.Now()
		}
	}
	redirect := http.StatusTemporaryRedirect
	if mode == hookRedirect {
		if s.redirects%2 == 1 {
			redirect = http.StatusFound
		}
		s.redirects++
	}
	s.mu.Unlock()
	switch mode {
	case hookRedirect:
		s.count(fmt.Sprint(redirect))
		http.Redirect(w, r, s.trap.url, redirect)
		return
	case hook500:
		s.count("500")
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	case hook429:
		s.count("429")
		w.Header().Set("Retry-After", "7")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	case hookSlow:
		s.count("slow")
		select {
		case <-time.After(slowAnswer):
		case <-r.Context().Done():
			return // driftmon gave up: its timeout works
		}
	}
	if r.Header.Get("Authorization") != "Bearer "+s.bearer {
		s.mu.Lock()
		s.badAuth++
		s.mu.Unlock()
		s.count("401 bearer")
		http.Error(w, "bad bearer token", http.StatusUnauthorized)
		return
	}
	rec := httptest.NewRecorder()
	s.receiver.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if rec.Code/100 != 2 {
		s.mu.Lock()
		s.badSig++
		s.mu.Unlock()
		s.count(fmt.Sprint(rec.Code))
		return
	}
	id = r.Header.Get(webhook.HeaderID)
	s.mu.Lock()
	s.delivered[id]++
	s.times[id] = append(s.times[id], time.Now())
	s.mu.Unlock()
	s.count("2xx")
}

// metFault is, for one fault, how many webhook-ids were answered with it, how many of
// those were delivered (answered 2xx) after it first met them, and how many
// deliveries of them repeated an id.
func (s *hookSink) metFault(m hookMode) (ids, deliveredAfter, repeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.met[m] {
		ids++
		after := 0
		for _, t := range s.times[id] {
			if t.After(at) {
				after++
			}
		}
		if after > 0 {
			deliveredAfter++
		}
		repeats += max(0, s.delivered[id]-1)
	}
	return ids, deliveredAfter, repeats
}

// checkPayloads checks the shape of every verified delivery: a generic JSON payload
// of type driftmon.retrain with an id, naming one of the drifting windows (see
// windows.driftingWindows) of one of the streams, with that stream's window rows and
// at least two drifted features (min_features: 2).
func (s *hookSink) checkPayloads(drifting []string, rows map[string]int64) (bad []string) {
	for _, d := range s.receiver.Deliveries() {
		var p webhook.Payload
		err := json.Unmarshal(d.Payload, &p)
		switch {
		case err != nil:
		case p.Type != webhook.EventRetrain && p.Type != webhook.EventDrift && p.Type != webhook.EventObjective:
			err = fmt.Errorf("type %q", p.Type)
		case p.ID == "":
			err = errors.New("no id")
		case !slices.Contains(drifting, windowStart(p.Stream, p.Model, p.ModelVersion, p.Window.Start)):
			err = fmt.Errorf("window %s is none of the drifting windows", windowStart(p.Stream, p.Model, p.ModelVersion, p.Window.Start))
		case rows[p.Stream] == 0 || p.Model == "":
			err = fmt.Errorf("model %q of stream %q", p.Model, p.Stream)
		case p.Rows != rows[p.Stream]:
			err = fmt.Errorf("%d rows, the stream's windows have %d", p.Rows, rows[p.Stream])
		case len(p.Drifted) < 2:
			err = fmt.Errorf("%d drifted features, the trigger wants 2", len(p.Drifted))
		case p.Window.Start.IsZero() || !p.Window.End.After(p.Window.Start):
			err = errors.New("no window")
		}
		if err != nil {
			bad = append(bad, d.ID+": "+err.Error())
		}
	}
	return bad
}

// ids returns the webhook-ids delivered (answered 2xx), sorted, and how many
// deliveries repeated an id.
func (s *hookSink) ids() (ids []string, repeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.delivered {
		ids = append(ids, id)
		repeats += n - 1
	}
	sort.Strings(ids)
	return ids, repeats
}

// bursts returns the webhook-ids delivered more than burstMax times within
// burstWindow, with their largest such burst. The outbox re-sends a delivered item
// when it could not record the delivery, and a kill -9 can make that happen once per
// restart (restarts are seconds apart); a burst means a retry loop without the
// schedule's waits.
func (s *hookSink) bursts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, ts := range s.times {
		lo := 0
		for hi := range ts {
			for ts[hi].Sub(ts[lo]) > burstWindow {
				lo++
			}
			if n := hi - lo + 1; n > burstMax && n > out[id] {
				out[id] = n
			}
		}
	}
	return out
}

const (
	burstWindow = 10 * time.Second
	burstMax    = 5
)

// slackSink is slacktest's fake Slack (token, channel and Block Kit checks) with
// bursts of 429 and 5xx answers queued on it.
type slackSink struct {
	*slacktest.Server
	injected map[string]int
}

func newSlackSink(token string) *slackSink {
	return &slackSink{Server: slacktest.NewServer(slacktest.Options{Token: token}), injected: map[string]int{}}
}

// failBurst makes the next n requests fail: 429 with Retry-After, or a 5xx.
func (s *slackSink) failBurst(n int, rateLimit bool) {
	var f []slacktest.Failure
	for range n {
		if rateLimit {
			f = append(f, slacktest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second})
		} else {
			f = append(f, slacktest.Failure{Status: http.StatusServiceUnavailable})
		}
	}
	s.FailNext(f...)
	if rateLimit {
		s.injected["429"] += n
	} else {
		s.injected["503"] += n
	}
}

// parents returns the texts of the top-level messages (not thread replies, not
// updates): one per alert episode.
func (s *slackSink) parents() []string {
	var out []string
	for _, m := range s.Messages() {
		if m.ThreadTS == "" && !m.Updated {
			out = append(out, m.Text)
		}
	}
	return out
}
