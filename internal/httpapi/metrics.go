package httpapi

import (
	"errors"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/report"
)

// The metrics the server exports. Everything is computed at scrape time from the
// source's counters and the server's own records, so a model version that leaves
// the records leaves the metrics too.
var (
	modelLabels   = []string{"stream", "model", "version"}
	featureLabels = []string{"stream", "model", "version", "feature", "detector"}

	descEvents = prometheus.NewDesc("driftmon_events_total",
		"Messages decoded into rows, per stream.", []string{"stream"}, nil)
	descDecodeErrors = prometheus.NewDesc("driftmon_decode_errors_total",
		"Messages that could not be decoded, per stream and reason.", []string{"stream", "reason"}, nil)
	descLate = prometheus.NewDesc("driftmon_late_events_total",
		"Events that arrived after their window had closed (counted, merged nowhere), per stream.", []string{"stream"}, nil)
	descLost = prometheus.NewDesc("driftmon_lost_messages_total",
		"Messages deleted from the topic (retention) before they could be read, per stream: data loss.", []string{"stream"}, nil)
	descBlind = prometheus.NewDesc("driftmon_stream_blind",
		"1 while a stream reads events but cannot judge them (most of a window's events late or refused, or no window closed for limits.blind_windows window lengths): a blind alert fires.", []string{"stream"}, nil)
	descWindowsClosed = prometheus.NewDesc("driftmon_windows_closed_total",
		"Windows closed (warm-up windows included), per model version.", modelLabels, nil)
	descWindowsDrifted = prometheus.NewDesc("driftmon_windows_drifted_total",
		"Closed windows in which at least one feature drifted, per model version.", modelLabels, nil)
	descWindowRows = prometheus.NewDesc("driftmon_window_rows",
		"Rows in the latest closed window, per model version.", modelLabels, nil)
	descWindowEnd = prometheus.NewDesc("driftmon_window_end_timestamp_seconds",
		"End of the latest closed window (Unix seconds), per model version: its age tells whether windows still close.", modelLabels, nil)
	objectiveLabels    = []string{"stream", "model", "version", "objective"}
	latencyLabels      = []string{"stream", "model", "version", "quantile"}
	descObjectiveValue = prometheus.NewDesc("driftmon_objective_value",
		"Statistic an objective bounds (streams[].objectives) in the latest closed window with a verdict, e.g. a p99 latency.", objectiveLabels, nil)
	descObjectiveBreached = prometheus.NewDesc("driftmon_objective_breached",
		"1 when the latest closed window breached the objective (its bound outside the statistic's sketch error band), else 0.", objectiveLabels, nil)
	descObjectiveBreaches = prometheus.NewDesc("driftmon_objective_breaches_total",
		"Closed windows that breached the objective, per model version.", objectiveLabels, nil)
	descLatency = prometheus.NewDesc("driftmon_latency",
		"Quantiles of the stream's latency_field in the latest closed window, per model version.", latencyLabels, nil)
	descRowsPerMinute = prometheus.NewDesc("driftmon_rows_per_minute",
		"Rows per minute of the latest closed event-time window, per model version: the model's throughput.", modelLabels, nil)
	descDriftScore = prometheus.NewDesc("driftmon_feature_drift_score",
		"Primary drift score (KS D for numeric, PSI for categorical features) of the latest compared window.", featureLabels, nil)
	descDriftThreshold = prometheus.NewDesc("driftmon_feature_drift_threshold",
		"Effect-size minimum the drift score is compared with.", featureLabels, nil)
	descDriftPValue = prometheus.NewDesc("driftmon_feature_drift_p_value",
		"Benjamini–Hochberg adjusted p-value of the primary test in the latest compared window.", featureLabels, nil)
	descDrifted = prometheus.NewDesc("driftmon_feature_drifted",
		"1 when the feature (or feature@segment, streams[].segments) drifted in the latest compared window, else 0.", []string{"stream", "model", "version", "feature"}, nil)
	descLabels = prometheus.NewDesc("driftmon_labels_total",
		"The label join's outcomes, per stream: labels matched with their prediction, expired (no prediction within max_delay), "+
			"too_late (the prediction's window was final), duplicate (a second label or prediction of an event id); "+
			"predictions unlabelled_predictions (their window became final without a label) and late_predictions (their window was final); "+
			"lost (label messages deleted by retention before they were read).",
		[]string{"stream", "outcome"}, nil)
	descLabelsDecoded = prometheus.NewDesc("driftmon_labels_decoded_total",
		"Label messages decoded, per stream.", []string{"stream"}, nil)
	descLabelsRejected = prometheus.NewDesc("driftmon_labels_rejected_total",
		"Label messages that could not be decoded, per stream and reason.", []string{"stream", "reason"}, nil)
	descPerformance = prometheus.NewDesc("driftmon_performance",
		"Performance metric of the newest final window (status=final) and of the newest window still waiting for labels (status=provisional), per model version.",
		[]string{"stream", "model", "version", "metric", "status"}, nil)
	descPerformanceDegraded = prometheus.NewDesc("driftmon_performance_degraded",
		"1 when the performance rule fired on the newest final (status=final) or provisional (status=provisional) window, else 0.",
		[]string{"stream", "model", "version", "status"}, nil)
	descLabelCoverage = prometheus.NewDesc("driftmon_label_coverage",
		"Share of the predictions with a label in the newest final (status=final) and provisional (status=provisional) window, per model version.",
		[]string{"stream", "model", "version", "status"}, nil)
	descSent = prometheus.NewDesc("driftmon_notifications_sent_total",
		"Alerts delivered, per route.", []string{"route"}, nil)
	descFailed = prometheus.NewDesc("driftmon_notifications_failed_total",
		"Alerts whose delivery failed after the notifier's retries, per route.", []string{"route"}, nil)
	descOutbox = prometheus.NewDesc("driftmon_outbox_depth",
		"Deliveries pending in the durable outbox (0 when there is none).", nil, nil)
	descOutboxDead = prometheus.NewDesc("driftmon_outbox_dead",
		"Deliveries dead-lettered in the durable outbox, waiting for a replay (0 when there is none).", nil, nil)
	descRole = prometheus.NewDesc("driftmon_role",
		"1 for the role this process has, 0 for the others: single (one process reads every partition), "+
			"leader (in a cluster, it also judges the windows and alerts) or follower (it reads its share of the partitions only).",
		[]string{"role"}, nil)
	descBuildInfo = prometheus.NewDesc("driftmon_build_info",
		"Always 1; its labels say which build is running: version, VCS commit and Go version.",
		[]string{"version", "commit", "go_version"}, nil)
)

// collector exports the server's view at scrape time.
type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descDecodeErrors, descLate, descLost, descBlind, descWindowsClosed, descWindowsDrifted,
		descWindowRows, descWindowEnd, descDriftScore, descDriftThreshold, descDriftPValue, descDrifted,
		descLabels, descLabelsDecoded, descLabelsRejected, descPerformance, descPerformanceDegraded, descLabelCoverage,
		descSent, descFailed, descOutbox, descOutboxDead, descRole, descBuildInfo,
		descObjectiveValue, descObjectiveBreached, descObjectiveBreaches, descLatency, descRowsPerMinute} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	metric(descBuildInfo, prometheus.GaugeValue, 1, s.build.Version, s.build.Commit, s.build.GoVersion)
	role := s.role()
	for _, r := range roles {
		v := 0.0
		if r == role {
			v = 1
		}
		metric(descRole, prometheus.GaugeValue, v, r)
	}
	if s.src != nil {
		for stream, st := range s.src.Stats() {
			metric(descEvents, prometheus.CounterValue, float64(st.Events), stream)
			for reason, n := range st.Rejected {
				metric(descDecodeErrors, prometheus.CounterValue, float64(n), stream, reason)
			}
			metric(descLate, prometheus.CounterValue, float64(st.Late), stream)
			metric(descLost, prometheus.CounterValue, float64(st.Lost), stream)
			blind := 0.0
			if st.Blind {
				blind = 1
			}
			metric(descBlind, prometheus.GaugeValue, blind, stream)
		}
		for stream, st := range s.src.LabelStats() {
			for _, o := range []struct {
				outcome string
				n       int64
			}{
				{"matched", st.Matched}, {"expired", st.Expired}, {"too_late", st.TooLate},
				{"duplicate", st.Duplicates}, {"unlabelled_predictions", st.Unlabelled},
				{"late_predictions", st.LatePredictions}, {"lost", st.Lost},
			} {
				metric(descLabels, prometheus.CounterValue, float64(o.n), stream, o.outcome)
			}
			metric(descLabelsDecoded, prometheus.CounterValue, float64(st.Labels), stream)
			for reason, n := range st.Rejected {
				metric(descLabelsRejected, prometheus.CounterValue, float64(n), stream, reason)
			}
		}
	}
	var pending, dead int
	var err error
	if s.outbox != nil {
		pending, dead, err = s.outbox.Counts()
	}
	if errors.Is(err, monitor.ErrNoOutbox) {
		// Nothing to notify, a cluster's follower, or not running yet: an outbox
		// that does not exist holds nothing, which is no fault to log every scrape.
		pending, dead, err = 0, 0, nil
	}
	if err != nil {
		s.log.Error("cannot count the outbox for /metrics; its gauges are left out", "err", err)
	} else {
		metric(descOutbox, prometheus.GaugeValue, float64(pending))
		metric(descOutboxDead, prometheus.GaugeValue, float64(dead))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for route, n := range s.kept.sent {
		metric(descSent, prometheus.CounterValue, float64(n), route)
	}
	for route, n := range s.kept.failed {
		metric(descFailed, prometheus.CounterValue, float64(n), route)
	}
	for k, m := range s.kept.models {
		metric(descWindowsClosed, prometheus.CounterValue, float64(m.closed), k.stream, k.model, k.version)
		metric(descWindowsDrifted, prometheus.CounterValue, float64(m.drifted), k.stream, k.model, k.version)
		if n := len(m.windows); n > 0 {
			w := m.windows[n-1]
			metric(descWindowRows, prometheus.GaugeValue, float64(w.Rows), k.stream, k.model, k.version)
			metric(descWindowEnd, prometheus.GaugeValue, float64(w.End.UnixNano())/1e9, k.stream, k.model, k.version)
			for _, o := range w.Objectives {
				labels := []string{k.stream, k.model, k.version, o.Name}
				if o.Verdict == string(detectors.InsufficientData) {
					continue
				}
				breached := 0.0
				if o.Verdict == string(detectors.Breached) {
					breached = 1
				}
				metric(descObjectiveBreached, prometheus.GaugeValue, breached, labels...)
				if v := float64(o.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
					metric(descObjectiveValue, prometheus.GaugeValue, v, labels...)
				}
			}
			if l := w.Latency; l != nil {
				for q, v := range map[string]float64{"0.5": float64(l.P50), "0.95": float64(l.P95), "0.99": float64(l.P99)} {
					if !math.IsNaN(v) {
						metric(descLatency, prometheus.GaugeValue, v, k.stream, k.model, k.version, q)
					}
				}
				if v := float64(l.RowsPerMinute); !math.IsNaN(v) {
					metric(descRowsPerMinute, prometheus.GaugeValue, v, k.stream, k.model, k.version)
				}
			}
		}
		for name, n := range m.breaches {
			metric(descObjectiveBreaches, prometheus.CounterValue, float64(n), k.stream, k.model, k.version, name)
		}
		for _, w := range latestPerformance(m.perf) {
			labels := []string{k.stream, k.model, k.version, w.Status}
			if !math.IsNaN(float64(w.Coverage)) {
				metric(descLabelCoverage, prometheus.GaugeValue, float64(w.Coverage), labels...)
			}
			degraded := 0.0
			if w.Verdict.Degraded {
				degraded = 1
			}
			metric(descPerformanceDegraded, prometheus.GaugeValue, degraded, labels...)
			for _, name := range detectors.PerformanceMetricNames(w.metrics.Kind) {
				if v, _, _ := w.metrics.Metric(name); !math.IsNaN(v) && !math.IsInf(v, 0) {
					metric(descPerformance, prometheus.GaugeValue, v, k.stream, k.model, k.version, name, w.Status)
				}
			}
		}
		if m.latest == nil {
			continue
		}
		for _, f := range m.latest.Findings {
			drifted := 0.0
			if f.Verdict == string(detectors.Drift) {
				drifted = 1
			}
			metric(descDrifted, prometheus.GaugeValue, drifted, k.stream, k.model, k.version, f.Feature)
			if f.Verdict == string(detectors.InsufficientData) || f.Segment != "" {
				// No score worth graphing; and a segment's finding says only whether
				// it drifted: its scores would be up to segments.top × features more
				// series of each of the three gauges below per model version (the API
				// and the dashboard have them).
				continue
			}
			labels := []string{k.stream, k.model, k.version, f.Feature, f.Detector}
			metric(descDriftScore, prometheus.GaugeValue, float64(f.Score), labels...)
			metric(descDriftThreshold, prometheus.GaugeValue, float64(f.Threshold), labels...)
			metric(descDriftPValue, prometheus.GaugeValue, float64(f.AdjustedP), labels...)
		}
	}
}

// latestPerformance returns the newest final window of perf (oldest first) and the
// newest provisional one, each when there is one.
func latestPerformance(perf []*perfWindow) []*perfWindow {
	var final, provisional *perfWindow
	for i := len(perf) - 1; i >= 0 && (final == nil || provisional == nil); i-- {
		switch w := perf[i]; {
		case w.Status == report.StatusFinal && final == nil:
			final = w
		case w.Status != report.StatusFinal && provisional == nil:
			provisional = w
		}
	}
	var out []*perfWindow
	for _, w := range []*perfWindow{final, provisional} {
		if w != nil {
			out = append(out, w)
		}
	}
	return out
}
