package httpapi

import (
	"net/http"
	"slices"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/report"
)

// perfWindow pairs the API's view of a window with the metrics it came from, which
// the Prometheus collector reads by name.
type perfWindow struct {
	report.PerformanceWindow
	metrics detectors.Metrics
}

// RecordPerformance keeps the latest performance result of each window: a revision
// replaces the window's earlier result. It is meant for
// monitor.Options.OnPerformance and keeps at most Options.History windows per model
// version, dropping the oldest by start.
func (s *Server) RecordPerformance(r labels.Result) {
	w := &perfWindow{PerformanceWindow: report.NewPerformanceWindow(r), metrics: r.Metrics}

	key := modelKey{r.Stream, r.Model, r.ModelVersion}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.modelOf(key)
	// Results come mostly for recent windows, so the search starts from the newest.
	i := len(m.perf)
	for i > 0 && m.perf[i-1].Start.After(w.Start) {
		i--
	}
	if i > 0 && m.perf[i-1].Start.Equal(w.Start) {
		m.perf[i-1] = w // a window is replaced, never changed: handlers read it unlocked
		return
	}
	m.perf = slices.Insert(m.perf, i, w)
	if n := len(m.perf) - s.history; n > 0 {
		clear(m.perf[:n])
		m.perf = slices.Delete(m.perf, 0, n)
	}
}

// modelPerformance is one model version's performance windows, newest first.
type modelPerformance struct {
	Stream  string                      `json:"stream"`
	Model   string                      `json:"model"`
	Version string                      `json:"version"`
	Windows []*report.PerformanceWindow `json:"windows"`
}

// listPerformance answers the models' performance windows, newest first, at most
// limit per model. Models without any performance result are left out.
func (s *Server) listPerformance(w http.ResponseWriter, r *http.Request) {
	out := []modelPerformance{}
	_, ok := s.eachModel(w, r, func(m *modelHistory, limit int) {
		if len(m.perf) == 0 {
			return
		}
		out = append(out, modelPerformance{Stream: m.key.stream, Model: m.key.model, Version: m.key.version,
			Windows: newest(m.perf, limit, func(w *perfWindow) (*report.PerformanceWindow, bool) { return &w.PerformanceWindow, true })})
	})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}
