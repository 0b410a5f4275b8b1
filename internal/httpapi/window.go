package httpapi

import (
	"slices"
	"strings"

	"github.com/driftmon/driftmon/detectors"

	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/report"
)

// modelKey identifies what is monitored: a model version within a stream.
type modelKey struct{ stream, model, version string }

// modelHistory is the recent windows of one model version and its counters since
// start. Windows are never changed once recorded, so handlers may read them after
// releasing the lock.
type modelHistory struct {
	key     modelKey
	windows []*report.Window // oldest first, at most Server.history
	closed  int64            // windows closed since start
	drifted int64            // of which with at least one drifted feature
	// breaches counts, per objective, the windows since start that breached it.
	breaches map[string]int64
	// latest is the newest window compared with a reference (nil while warming up):
	// where the drift gauges and the latest findings come from.
	latest *report.Window
	// perf is the latest performance result of each window by start, oldest
	// first, at most Server.history (RecordPerformance).
	perf []*perfWindow
	// segmentKeys are the keys of the segment findings seen, in the order first seen
	// (at most config.MaxSegmentKeys a stream).
	segmentKeys []string
}

// Record keeps what the dashboard and the API need of a closed window: its
// findings and, per feature, a small distribution of the window and of the
// reference computed now. It is meant for monitor.Options.OnWindow and runs on the
// stream's goroutine, which owns r's profiles; it keeps no reference to them.
func (s *Server) Record(r engine.Result) {
	w := report.NewWindow(r)
	w.Distributions = report.Distributions(r.ReferenceProfile, r.Profile)

	key := modelKey{r.Stream, r.Model, r.ModelVersion}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.modelOf(key)
	for _, f := range w.Findings {
		if k, _, ok := strings.Cut(f.Segment, "="); ok && !slices.Contains(m.segmentKeys, k) {
			m.segmentKeys = append(m.segmentKeys, k)
		}
	}
	m.closed++
	if len(w.Drifted) > 0 {
		m.drifted++
	}
	for _, o := range w.Objectives {
		if m.breaches == nil {
			m.breaches = map[string]int64{}
		}
		if o.Verdict == string(detectors.Breached) {
			m.breaches[o.Name]++
		} else if _, ok := m.breaches[o.Name]; !ok {
			m.breaches[o.Name] = 0 // the counter exists from the objective's first window
		}
	}
	if !w.Warmup {
		m.latest = &w
	}
	if len(m.windows) >= s.history {
		n := copy(m.windows, m.windows[len(m.windows)-s.history+1:])
		clear(m.windows[n:])
		m.windows = m.windows[:n]
	}
	m.windows = append(m.windows, &w)
}

// modelOf returns the model's history, creating it on first sight; s.mu must be held.
func (s *Server) modelOf(key modelKey) *modelHistory {
	m := s.kept.models[key]
	if m == nil {
		m = &modelHistory{key: key}
		s.kept.models[key] = m
	}
	return m
}
