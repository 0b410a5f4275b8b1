package httpapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/report"
)

// num is alerting.Number, the JSON number that is null when NaN or ±Inf, under a
// short name for the many fields of the API's answers.
type num = alerting.Number

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// httpError is an error with the status code it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func writeErr(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.code, he.msg)
		return
	}
	if errors.Is(err, monitor.ErrNoOutbox) {
		// Not a fault: a cluster's follower, or a monitor not running yet.
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

// limitParam reads ?limit=, def when absent; 400 unless 1 ≤ limit ≤ 10000.
func limitParam(q url.Values, def int) (int, error) {
	if !q.Has("limit") {
		return def, nil
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > 10000 {
		return 0, badRequest("limit: %q is not a whole number from 1 to 10000", q.Get("limit"))
	}
	return n, nil
}

// selector picks model versions by the stream, model and version query
// parameters; an absent parameter matches everything (version= matches the
// empty version).
type selector struct {
	stream, model, version          string
	hasStream, hasModel, hasVersion bool
}

func selectorOf(q url.Values) selector {
	return selector{
		stream: q.Get("stream"), model: q.Get("model"), version: q.Get("version"),
		hasStream: q.Has("stream"), hasModel: q.Has("model"), hasVersion: q.Has("version"),
	}
}

func (sel selector) matches(k modelKey) bool {
	return (!sel.hasStream || sel.stream == k.stream) &&
		(!sel.hasModel || sel.model == k.model) &&
		(!sel.hasVersion || sel.version == k.version)
}

// selectModels returns the matching model histories sorted by key. It must be
// called with s.mu held. A selector that names a stream, model or version never
// seen is a 404; a known stream without windows yet gives none.
func (s *Server) selectModels(sel selector, knownStreams map[string]bool) ([]*modelHistory, error) {
	var out []*modelHistory
	streamSeen := knownStreams[sel.stream]
	for k, m := range s.kept.models {
		if k.stream == sel.stream {
			streamSeen = true
		}
		if sel.matches(k) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *modelHistory) int { return compareKeys(a.key, b.key) })
	if len(out) > 0 || !(sel.hasStream || sel.hasModel || sel.hasVersion) {
		return out, nil
	}
	switch {
	case sel.hasStream && !streamSeen:
		return nil, notFound("no stream %q", sel.stream)
	case sel.hasModel || sel.hasVersion:
		return nil, notFound("no windows of model %q version %q in stream %q yet", sel.model, sel.version, sel.stream)
	}
	return out, nil
}

func compareKeys(a, b modelKey) int {
	return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.model, b.model), cmp.Compare(a.version, b.version))
}

// sourceStreams returns the source's counters by stream (none without a source).
func (s *Server) sourceStreams() (map[string]bool, map[string]streamCounters) {
	known := map[string]bool{}
	counters := map[string]streamCounters{}
	if s.src == nil {
		return known, counters
	}
	for name, st := range s.src.Stats() {
		known[name] = true
		c := streamCounters{Events: st.Events, Late: st.Late, Blind: st.Blind, DecodeErrors: map[string]int64{}}
		for reason, n := range st.Rejected {
			c.DecodeErrors[reason] = n
		}
		counters[name] = c
	}
	return known, counters
}

type streamCounters struct {
	Events       int64            `json:"events"`
	Late         int64            `json:"late_events"`
	DecodeErrors map[string]int64 `json:"decode_errors"`
	// Blind says that the stream reads events but cannot judge them (monitor.Stats).
	Blind bool `json:"blind"`
}

type streamInfo struct {
	Name string `json:"name"`
	streamCounters
	Models []modelInfo `json:"models"`
}

type modelInfo struct {
	Model    string        `json:"model"`
	Versions []versionInfo `json:"versions"`
}

type versionInfo struct {
	Version string `json:"version"`
	// Windows and DriftedWindows count since start; Kept is how many the API holds.
	Windows        int64          `json:"windows"`
	DriftedWindows int64          `json:"drifted_windows"`
	Kept           int            `json:"kept"`
	Latest         *windowSummary `json:"latest"`
	// SegmentKeys are the keys its windows have segment findings of
	// (streams[].segments): what /api/v1/windows?segments= takes.
	SegmentKeys []string `json:"segment_keys,omitempty"`
}

// windowSummary is a Window without findings and distributions.
type windowSummary struct {
	ID        string    `json:"id"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Rows      int64     `json:"rows"`
	Reference string    `json:"reference"`
	Warmup    bool      `json:"warmup"`
	Drifted   []string  `json:"drifted"`
}

func (s *Server) listStreams(w http.ResponseWriter, _ *http.Request) {
	_, counters := s.sourceStreams()
	byName := map[string]*streamInfo{}
	stream := func(name string) *streamInfo {
		si := byName[name]
		if si == nil {
			si = &streamInfo{Name: name, Models: []modelInfo{}}
			si.streamCounters = counters[name]
			if si.DecodeErrors == nil {
				si.DecodeErrors = map[string]int64{}
			}
			byName[name] = si
		}
		return si
	}
	for name := range counters {
		stream(name)
	}
	s.mu.Lock()
	models, _ := s.selectModels(selector{}, nil)
	for _, m := range models {
		si := stream(m.key.stream)
		if n := len(si.Models); n == 0 || si.Models[n-1].Model != m.key.model {
			si.Models = append(si.Models, modelInfo{Model: m.key.model})
		}
		v := versionInfo{Version: m.key.version, Windows: m.closed, DriftedWindows: m.drifted, Kept: len(m.windows),
			SegmentKeys: slices.Clone(m.segmentKeys)}
		if n := len(m.windows); n > 0 {
			l := m.windows[n-1]
			v.Latest = &windowSummary{ID: l.ID, Start: l.Start, End: l.End, Rows: l.Rows, Reference: l.Reference, Warmup: l.Warmup, Drifted: l.Drifted}
		}
		mi := &si.Models[len(si.Models)-1]
		mi.Versions = append(mi.Versions, v)
	}
	s.mu.Unlock()
	out := make([]*streamInfo, 0, len(byName))
	for _, si := range byName {
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b *streamInfo) int { return cmp.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"role": s.role(), "streams": out})
}

// eachModel calls fn, holding s.mu, with each model version the request's stream,
// model and version parameters select, and returns the request's limit (default 50);
// false when it has answered an error instead.
func (s *Server) eachModel(w http.ResponseWriter, r *http.Request, fn func(m *modelHistory, limit int)) (int, bool) {
	q := r.URL.Query()
	limit, err := limitParam(q, 50)
	if err != nil {
		writeErr(w, err)
		return 0, false
	}
	known, _ := s.sourceStreams()
	s.mu.Lock()
	models, err := s.selectModels(selectorOf(q), known)
	for _, m := range models {
		fn(m, limit)
	}
	s.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return 0, false
	}
	return limit, true
}

func (s *Server) listWindows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wins := []*report.Window{}
	limit, ok := s.eachModel(w, r, func(m *modelHistory, _ int) { wins = append(wins, m.windows...) })
	if !ok {
		return
	}
	// Newest first; windows are immutable, so they are read outside the lock.
	slices.SortStableFunc(wins, func(a, b *report.Window) int { return b.End.Compare(a.End) })
	wins = wins[:min(limit, len(wins))]
	if q.Has("segments") {
		wins = segmentsOnly(wins, q.Get("segments"))
	}
	writeJSON(w, http.StatusOK, map[string]any{"windows": wins})
}

// segmentsOnly is wins with, of their segment findings, only those of key ("none":
// none). With twenty segments of twenty-five features a window has 500 of them, and
// the dashboard, which shows one key at a time, asks for that key's only. The windows
// are copies: the kept ones are shared and immutable.
func segmentsOnly(wins []*report.Window, key string) []*report.Window {
	out := make([]*report.Window, len(wins))
	for i, win := range wins {
		c := *win
		c.Findings = slices.DeleteFunc(slices.Clone(win.Findings), func(f report.Finding) bool {
			k, _, _ := strings.Cut(f.Segment, "=")
			return f.Segment != "" && (key == "none" || k != key)
		})
		out[i] = &c
	}
	return out
}

// latestFinding is a finding of a model's latest compared window.
type latestFinding struct {
	Stream      string    `json:"stream"`
	Model       string    `json:"model"`
	Version     string    `json:"version"`
	WindowID    string    `json:"window_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	report.Finding
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	known, _ := s.sourceStreams()
	var latest []*report.Window
	s.mu.Lock()
	models, err := s.selectModels(selectorOf(q), known)
	for _, m := range models {
		if m.latest != nil {
			latest = append(latest, m.latest)
		}
	}
	s.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []latestFinding{}
	for _, win := range latest {
		for _, f := range win.Findings {
			if q.Has("feature") && f.Feature != q.Get("feature") {
				continue
			}
			if q.Has("verdict") && f.Verdict != q.Get("verdict") {
				continue
			}
			out = append(out, latestFinding{Stream: win.Stream, Model: win.Model, Version: win.Version,
				WindowID: win.ID, WindowStart: win.Start, WindowEnd: win.End, Finding: f})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"findings": out})
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel := selectorOf(q)
	s.mu.Lock()
	out, err := newestFirst(q, s.kept.alertOrder, func(id string) (alertRecord, bool) {
		a := s.kept.alerts[id]
		if !sel.matches(modelKey{a.Stream, a.Model, a.Version}) {
			return alertRecord{}, false
		}
		return copyAlert(a), true
	})
	s.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if st := q.Get("status"); q.Has("status") && st != statusDelivered && st != statusFailed {
		writeErr(w, badRequest("status: %q is not %q or %q", st, statusDelivered, statusFailed))
		return
	}
	s.mu.Lock()
	out, err := newestFirst(q, s.kept.deliveries, func(d delivery) (delivery, bool) {
		return d, (!q.Has("route") || d.Route == q.Get("route")) &&
			(!q.Has("alert_id") || d.AlertID == q.Get("alert_id")) &&
			(!q.Has("status") || d.Status == q.Get("status"))
	})
	s.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

// newestFirst answers a list of what the server keeps in arrival order, newest
// first, at most the request's limit (default 100; see newest).
func newestFirst[T, U any](q url.Values, items []T, pick func(T) (U, bool)) ([]U, error) {
	limit, err := limitParam(q, 100)
	if err != nil {
		return nil, err
	}
	return newest(items, limit, pick), nil
}

// newest walks items (kept in arrival order) from the newest and returns what pick
// keeps, at most limit. The list is empty, not null, when nothing is kept.
func newest[T, U any](items []T, limit int, pick func(T) (U, bool)) []U {
	out := []U{}
	for i := len(items) - 1; i >= 0 && len(out) < limit; i-- {
		if u, ok := pick(items[i]); ok {
			out = append(out, u)
		}
	}
	return out
}

func (s *Server) listSilences(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"silences": s.silences.Active(s.now())})
}

func (s *Server) createSilence(w http.ResponseWriter, r *http.Request) {
	var req silenceRequest
	if err := decodeBody(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	sl, err := req.silence(s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sl = s.silences.Add(sl)
	s.log.Info("silence created", "id", sl.ID, "stream", sl.Stream, "model", sl.Model,
		"feature", sl.Feature, "kind", sl.Kind, "expires", sl.ExpiresAt)
	w.Header().Set("Location", "/api/v1/silences/"+sl.ID)
	writeJSON(w, http.StatusCreated, sl)
}

func (s *Server) deleteSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.silences.Remove(id) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no silence %q", id))
		return
	}
	s.log.Info("silence deleted", "id", id)
	w.WriteHeader(http.StatusNoContent)
}
