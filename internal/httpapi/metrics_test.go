package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/version"
)

// scrape fetches /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, _, body := do(t, s.Handler(), "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics = %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("cannot parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of name whose labels include want; ok is
// false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	fams := scrape(t, f.srv)
	ver := map[string]string{"stream": "credit", "model": "car-loan", "version": "3.2.0"}
	feature := func(name, detector string) map[string]string {
		m := map[string]string{"feature": name}
		if detector != "" {
			m["detector"] = detector
		}
		for k, v := range ver {
			m[k] = v
		}
		return m
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range ver {
			m[k] = v
		}
		return m
	}
	objective := func(name string) map[string]string { return with("objective", name) }
	latency := func(q string) map[string]string { return with("quantile", q) }
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"driftmon_events_total", map[string]string{"stream": "credit"}, 12000},
		{"driftmon_decode_errors_total", map[string]string{"stream": "credit", "reason": "malformed_json"}, 3},
		{"driftmon_decode_errors_total", map[string]string{"stream": "credit", "reason": "wrong_type"}, 1},
		{"driftmon_windows_closed_total", ver, 6},
		{"driftmon_windows_drifted_total", ver, 2},
		{"driftmon_window_rows", ver, windowRows},
		{"driftmon_window_end_timestamp_seconds", ver, float64(f.res[len(f.res)-1].End.Unix())},
		{"driftmon_feature_drifted", feature(shiftedFeature, ""), 1},
		{"driftmon_feature_drifted", feature(stableFeature, ""), 0},
		{"driftmon_feature_drift_threshold", feature(shiftedFeature, "ks"), 0.1},
		{"driftmon_notifications_sent_total", map[string]string{"route": "slack"}, 2},
		{"driftmon_notifications_sent_total", map[string]string{"route": "webhook retrain"}, 2},
		{"driftmon_notifications_failed_total", map[string]string{"route": "webhook retrain"}, 2},
		{"driftmon_outbox_depth", nil, 0},
		{"driftmon_objective_breached", objective("income p99"), 1},
		{"driftmon_objective_breached", objective("rows per minute"), 0},
		{"driftmon_objective_breaches_total", objective("income p99"), 2},
		{"driftmon_objective_breaches_total", objective("rows per minute"), 0},
		{"driftmon_objective_value", objective("income p99"), float64(f.res[len(f.res)-1].Objectives[0].Value)},
		{"driftmon_objective_value", objective("rows per minute"), windowRows / 10},
		{"driftmon_latency", latency("0.99"), f.res[len(f.res)-1].Latency.P99},
		{"driftmon_rows_per_minute", ver, windowRows / 10},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: no such series", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// The drift score gauge carries the latest window's primary score: far above
	// the threshold for the shifted feature, below it for the stable one.
	last := f.res[len(f.res)-1]
	for _, fd := range last.Findings {
		got, ok := value(fams, "driftmon_feature_drift_score", feature(fd.Feature, fd.Detector))
		if !ok {
			t.Errorf("no driftmon_feature_drift_score for %s/%s", fd.Feature, fd.Detector)
			continue
		}
		if got != fd.Score {
			t.Errorf("driftmon_feature_drift_score{feature=%q} = %v, want %v", fd.Feature, got, fd.Score)
		}
		p, _ := value(fams, "driftmon_feature_drift_p_value", feature(fd.Feature, fd.Detector))
		if p != fd.AdjustedP {
			t.Errorf("driftmon_feature_drift_p_value{feature=%q} = %v, want %v", fd.Feature, p, fd.AdjustedP)
		}
	}
	if s, _ := value(fams, "driftmon_feature_drift_score", feature(shiftedFeature, "ks")); s < 0.3 {
		t.Errorf("shifted feature's KS = %v, want a clear shift", s)
	}
	if s, _ := value(fams, "driftmon_feature_drift_score", feature(stableFeature, "ks")); s >= 0.1 {
		t.Errorf("stable feature's KS = %v, want below the threshold", s)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("the Go and process collectors are missing")
	}
	for name, fam := range fams {
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
}

// TestMetricsBeforeAnyWindow: a fresh server already exports the counters a
// dashboard needs, and no drift series.
func TestMetricsBeforeAnyWindow(t *testing.T) {
	src := &fakeSource{stats: map[string]monitor.Stats{"credit": {Events: 5}}}
	fams := scrape(t, New(Options{Source: src}))
	if v, ok := value(fams, "driftmon_events_total", map[string]string{"stream": "credit"}); !ok || v != 5 {
		t.Errorf("driftmon_events_total = %v (present %v), want 5", v, ok)
	}
	if _, ok := value(fams, "driftmon_outbox_depth", nil); !ok {
		t.Error("driftmon_outbox_depth missing")
	}
	if fams["driftmon_feature_drift_score"] != nil {
		t.Error("drift scores before any window")
	}
}

// TestRoleMetric: driftmon_role is 1 for exactly the source's current role and 0
// for the others, and follows the role as it changes between scrapes.
func TestRoleMetric(t *testing.T) {
	f := newFixture(t)
	for _, role := range []string{roleSingle, roleFollower, roleLeader, roleFollower} {
		f.src.setRole(role)
		fams := scrape(t, f.srv)
		if n := len(fams["driftmon_role"].GetMetric()); n != len(roles) {
			t.Errorf("role %s: %d driftmon_role series, want %d", role, n, len(roles))
		}
		for _, r := range roles {
			want := 0.0
			if r == role {
				want = 1
			}
			if got, ok := value(fams, "driftmon_role", map[string]string{"role": r}); !ok || got != want {
				t.Errorf("role %s: driftmon_role{role=%q} = %v (present %v), want %v", role, r, got, ok, want)
			}
		}
	}
}

// TestBuildInfoMetric: driftmon_build_info is one series of value 1 whose labels are
// the build the server was given, or this binary's own when given none.
func TestBuildInfoMetric(t *testing.T) {
	build := version.Info{Version: "v0.1.0", Commit: "0123456789abcdef", GoVersion: "go1.26.8"}
	own := version.Read()
	for _, tc := range []struct {
		given version.Info
		want  map[string]string
	}{
		{build, map[string]string{"version": "v0.1.0", "commit": "0123456789abcdef", "go_version": "go1.26.8"}},
		{version.Info{}, map[string]string{"version": own.Version, "commit": own.Commit, "go_version": runtime.Version()}},
	} {
		fams := scrape(t, New(Options{Build: tc.given}))
		ms := fams["driftmon_build_info"].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%+v: %d driftmon_build_info series, want 1", tc.given, len(ms))
		}
		if got, ok := value(fams, "driftmon_build_info", tc.want); !ok || got != 1 {
			t.Errorf("%+v: driftmon_build_info%v = %v (present %v), want 1; series: %v", tc.given, tc.want, got, ok, ms[0].GetLabel())
		}
	}
}

// TestScrapeWithoutOutboxLogsNothing: a monitor with neither Slack nor a webhook
// has no outbox; every scrape used to log an ERROR for it. Its gauges are 0 and the
// scrape is quiet, while an outbox that cannot be read is still an ERROR.
func TestScrapeWithoutOutboxLogsNothing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q]}
streams:
  - {name: s, topic: events, features: {x: {type: numeric}}, window: {size: 1h}}
`, c.ListenAddrs()[0])), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); mon.Ready() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("the monitor is not ready after 10s: %v", mon.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}

	var logs bytes.Buffer
	srv := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Source: mon, Outbox: mon.Deliveries()})
	fams := scrape(t, srv)
	for _, name := range []string{"driftmon_outbox_depth", "driftmon_outbox_dead"} {
		if v, ok := value(fams, name, nil); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
	if logs.Len() > 0 {
		t.Errorf("a scrape without an outbox logged:\n%s", logs.String())
	}

	// A real failure is still reported: an outbox whose store is closed.
	f := newOutboxFixture(t)
	logs.Reset()
	broken := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Outbox: f.ob})
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, broken)
	if _, ok := value(fams, "driftmon_outbox_depth", nil); ok {
		t.Error("driftmon_outbox_depth exported from an outbox that cannot be read")
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "cannot count the outbox") {
		t.Errorf("an unreadable outbox logged %q, want an ERROR", logs.String())
	}
}

// TestSegmentFindingsExportOnlyWhetherTheyDrifted: a segment's finding
// (streams[].segments) adds one driftmon_feature_drifted series, not the score,
// threshold and p-value gauges that a whole-traffic feature has: with 20 segments
// of 25 features those would be 1,500 more series per model version.
func TestSegmentFindingsExportOnlyWhetherTheyDrifted(t *testing.T) {
	f := newFixture(t)
	r := f.res[len(f.res)-1]
	r.Findings = slices.Clone(r.Findings)
	seg := r.Findings[0]
	seg.Feature, seg.Segment, seg.SegmentShare = detectors.SegmentName(seg.Feature, "country=DE"), "country=DE", 0.1
	seg.Verdict = detectors.Drift
	r.Findings = append(r.Findings, seg)
	f.srv.Record(r)
	fams := scrape(t, f.srv)
	labels := map[string]string{"stream": "credit", "model": "car-loan", "version": "3.2.0", "feature": seg.Feature}
	if v, ok := value(fams, "driftmon_feature_drifted", labels); !ok || v != 1 {
		t.Errorf("driftmon_feature_drifted%v = %v, %v; want 1", labels, v, ok)
	}
	for _, name := range []string{"driftmon_feature_drift_score", "driftmon_feature_drift_threshold", "driftmon_feature_drift_p_value"} {
		if _, ok := value(fams, name, labels); ok {
			t.Errorf("%s has a series for the segment's finding %s", name, seg.Feature)
		}
		whole := map[string]string{"stream": "credit", "model": "car-loan", "version": "3.2.0", "feature": r.Findings[0].Feature}
		if _, ok := value(fams, name, whole); !ok {
			t.Errorf("%s lost the whole traffic's %s", name, r.Findings[0].Feature)
		}
	}
}
