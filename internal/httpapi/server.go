// Package httpapi serves what people and machines read about a running monitor:
// Prometheus metrics, liveness and readiness, a JSON API under /api/v1 (the
// process's role in a cluster, streams, windows, findings, performance, alerts,
// deliveries, silences, the references handed over per model version) described by an
// OpenAPI document, and a dashboard page
// with a features × windows heat map, per-feature distributions and, for streams
// that join labels, each window's model performance.
//
// The monitor pushes into a Server from its own goroutines (Record from
// monitor.Options.OnWindow, RecordPerformance from OnPerformance, RecordDelivery
// from OnDelivery); the Server copies what it needs and never keeps the monitor's
// sketches. Handlers read those copies under a mutex, so they never touch a sketch
// either.
//
// It reads the monitor and alerting's stores and imports them; nothing of the pipeline
// imports it (only cmd/driftmon and internal/demo do), and it never imports
// internal/demo or internal/backtest.
package httpapi

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/driftmon/driftmon/alerting/policy"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/version"
)

// Source is what the server reads from the running monitor at request time.
// *monitor.Monitor implements it.
type Source interface {
	// Stats returns each stream's counters by stream name; it must be safe to call
	// while the monitor runs.
	Stats() map[string]monitor.Stats
	// LabelStats returns the label join's counters by stream name, for the streams
	// that join labels; it must be safe to call while the monitor runs.
	LabelStats() map[string]labels.Stats
	// Ready returns nil when the monitor can consume, or the reason it cannot.
	Ready() error
	// Role returns what the process does: "single" (one process reads every
	// partition), or in a cluster "leader" (it also judges the windows and alerts)
	// or "follower" (it reads its share of the partitions only). It must be safe to
	// call while the monitor runs, and may change while it runs.
	Role() string
}

// Options configure a Server.
type Options struct {
	// Logger receives the server's logs (start, stop, failures); nil discards them.
	Logger *slog.Logger
	// Token is the bearer token that mutating API calls (creating and deleting
	// silences) must present. Empty disables them: they answer 403.
	Token string
	// Source is the monitor whose counters, readiness and role are served; nil
	// serves no stream counters, is always ready and has the role "single".
	Source Source
	// History is how many windows, and how many windows' performance results, are
	// kept per (stream, model, version); default 200.
	History int
	// Now is the clock of silences and deliveries; default time.Now.
	Now func() time.Time
	// Outbox is the durable delivery outbox served under /api/v1/outbox and read
	// by the driftmon_outbox_* gauges; nil answers those routes with 503.
	Outbox Outbox
	// Audit reads the audit trail served at /api/v1/audit; nil answers 503.
	Audit AuditFunc
	// References takes the reference profiles training pipelines hand over per model
	// version (/api/v1/models/{model}/versions/{version}/reference); nil answers 503.
	References References
	// Silences are the silences /api/v1/silences lists, creates and deletes: the
	// monitor's policy.Silences, which it saves with the alert state. nil keeps
	// them in this server's memory only.
	Silences *policy.Silences
	// Build is the build exported as driftmon_build_info; the zero Info means
	// this binary's (version.Read).
	Build version.Info
	// Limits bound what one client may hold: timeouts, header and body sizes, and
	// connections. Zero fields take config.HTTP's defaults.
	Limits config.HTTP
}

// DefaultHistory is the number of windows kept per model when Options.History is 0.
const DefaultHistory = 200

// How many alerts and delivery attempts are kept, newest first.
const (
	maxAlerts     = 500
	maxDeliveries = 1000
)

//go:embed assets
var assets embed.FS

// kept is what the server has been told and answers from (Server.mu guards it).
type kept struct {
	models     map[modelKey]*modelHistory
	alerts     map[string]*alertRecord
	alertOrder []string // alert IDs, oldest first
	deliveries []delivery
	sent       map[string]int64 // deliveries by route
	failed     map[string]int64
}

// Server is the HTTP face of a monitor. Its methods are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	token   string
	src     Source
	history int
	now     func() time.Time
	reg     *prometheus.Registry
	mux     *http.ServeMux
	table   []route
	outbox  Outbox
	audit   AuditFunc
	// references is Options.References.
	references References
	build      version.Info
	limits     config.HTTP
	handler    http.Handler // mux behind guard

	// mu guards kept.
	mu       sync.Mutex
	kept     kept
	silences *policy.Silences

	addrMu sync.Mutex
	addr   string
}

// New builds a server; it starts nothing and listens nowhere (see Run and Serve).
func New(opts Options) *Server {
	s := &Server{
		log:        opts.Logger,
		token:      opts.Token,
		src:        opts.Source,
		history:    opts.History,
		now:        opts.Now,
		outbox:     opts.Outbox,
		audit:      opts.Audit,
		references: opts.References,
		build:      opts.Build,
		limits:     opts.Limits.WithDefaults(),
		kept: kept{models: map[modelKey]*modelHistory{}, alerts: map[string]*alertRecord{},
			sent: map[string]int64{}, failed: map[string]int64{}},
		silences: opts.Silences,
	}
	if s.silences == nil {
		s.silences = &policy.Silences{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.history <= 0 {
		s.history = DefaultHistory
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.build == (version.Info{}) {
		s.build = version.Read()
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(
		&collector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.mux = http.NewServeMux()
	s.table = s.routes()
	for _, r := range s.table {
		s.mux.Handle(r.method+" "+r.path, r.handler)
	}
	// Anything else under /api/v1 answers in JSON too.
	s.mux.HandleFunc("/api/v1/", s.apiFallback)
	s.handler = s.guard(s.mux)
	return s
}

// route is one entry of the mux; the OpenAPI document must describe every one.
type route struct {
	method, path string
	handler      http.Handler
}

func (s *Server) routes() []route {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("BUG: " + err.Error())
	}
	h := func(f http.HandlerFunc) http.Handler { return f }
	return []route{
		{"GET", "/{$}", h(s.dashboard)},
		{"GET", "/assets/{file}", http.StripPrefix("/assets/", http.FileServerFS(static))},
		{"GET", "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})},
		{"GET", "/healthz", h(s.healthz)},
		{"GET", "/readyz", h(s.readyz)},
		{"GET", "/api/v1/openapi.json", h(s.openAPI)},
		{"GET", "/api/v1/cluster", h(s.cluster)},
		{"GET", "/api/v1/streams", h(s.listStreams)},
		{"GET", "/api/v1/windows", h(s.listWindows)},
		{"GET", "/api/v1/findings", h(s.listFindings)},
		{"GET", "/api/v1/performance", h(s.listPerformance)},
		{"GET", "/api/v1/alerts", h(s.listAlerts)},
		{"GET", "/api/v1/deliveries", h(s.listDeliveries)},
		{"GET", "/api/v1/silences", s.leaderOnly(h(s.listSilences))},
		{"POST", "/api/v1/silences", s.authorized(s.leaderOnly(h(s.createSilence)))},
		{"DELETE", "/api/v1/silences/{id}", s.authorized(s.leaderOnly(h(s.deleteSilence)))},
		{"GET", "/api/v1/outbox", h(s.listOutbox)},
		{"POST", "/api/v1/outbox/{id}/replay", s.authorized(h(s.replayOutbox))},
		{"GET", "/api/v1/audit", h(s.listAudit)},
		{"GET", referencePath, h(s.getReference)},
		{"PUT", referencePath, s.authorized(h(s.putReference))},
		{"DELETE", referencePath, s.authorized(h(s.deleteReference))},
	}
}

// Handler returns the server's routes behind its body limit and security headers,
// for tests and for embedding in another mux.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on addr (":8080", "127.0.0.1:0") and serves until ctx is done, then
// shuts down gracefully. Addr reports the bound address while it runs.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// shutdownGrace is how long requests in flight may take once ctx is done.
const shutdownGrace = 5 * time.Second

// Serve serves on ln until ctx is done, then shuts down gracefully; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.addrMu.Lock()
	s.addr = ln.Addr().String()
	s.addrMu.Unlock()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Past MaxConnections, new connections wait in the kernel's backlog, unaccepted:
	// they take none of the file descriptors the Kafka connections need.
	ln = netutil.LimitListener(ln, s.limits.MaxConnections)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.log.Info("http server stopped")
	if err != nil {
		return fmt.Errorf("cannot shut the http server down: %w", err)
	}
	return nil
}

// Addr is the address Run or Serve is listening on ("127.0.0.1:41234"), or "" before.
func (s *Server) Addr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 once the source can consume and 503 with the reason before;
// both answers say the process's role. A follower is ready when its source is: it
// reads its share of the partitions whether or not it leads, so it must not wait
// for a leadership that only one process of the cluster gets.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	role := s.role()
	if s.src != nil {
		if err := s.src.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "role": role, "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "role": role})
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		panic("BUG: " + err.Error())
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("assets/openapi.json")
	if err != nil {
		panic("BUG: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// contentSecurityPolicy lets the dashboard load its own script, style sheet and API
// answers and nothing else: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// guard sets the security headers of every answer and bounds request bodies: a body
// declared larger than Limits.MaxBodyBytes (Limits.MaxReferenceBytes for a reference
// handed over) is answered 413 without being read, and a longer one without a declared
// length fails the handler's read (answered 413 by decodeBody, or putReference).
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		limit, key := s.limits.MaxBodyBytes, "http.max_body_bytes"
		if r.Method == http.MethodPut && pathMatches(referencePath, r.URL.EscapedPath()) {
			limit, key = s.limits.MaxReferenceBytes, "http.max_reference_bytes"
		}
		if r.ContentLength > limit {
			refuseBody(w, r)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is %d bytes, more than the %d this server accepts (%s)", r.ContentLength, limit, key))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// refuseBody makes an answer that does not read the request's body close the
// connection. Otherwise net/http would read up to 256 KiB of the body first, to keep
// the connection, and a client sending slowly would hold the answer back.
func refuseBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// decodeBody decodes r's JSON body into v, refusing unknown fields. A body longer
// than the server's limit is answered 413, any other problem 400.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is more than the %d bytes this server accepts", mb.Limit)}
		}
		return badRequest("cannot decode the body: %v", err)
	}
	return nil
}

// authorized lets a request through only with "Authorization: Bearer <Token>". It
// answers before anything reads the body, and a refused request's connection is
// closed rather than drained (see refuseBody).
func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" {
			refuseBody(w, r)
			writeError(w, http.StatusForbidden, "this server has no API token configured, so it accepts no changes")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			refuseBody(w, r)
			w.Header().Set("WWW-Authenticate", `Bearer realm="driftmon"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiFallback answers requests under /api/v1 that no route took: 405 when the path
// exists with other methods, 404 otherwise.
func (s *Server) apiFallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range s.table {
		if pathMatches(rt.path, r.URL.Path) {
			allow = append(allow, rt.method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
}

// pathMatches reports whether path matches a mux pattern's path made of literal
// segments and {wildcards}.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}
