package monitoring

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

const rulesFile = "driftmon-alerts.yaml"

// exported reads internal/httpapi's metrics code and returns every metric driftmon
// exports with its label names: the first and third arguments of each
// prometheus.NewDesc.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "httpapi")
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]ast.Expr{} // package-level variables, for label lists named once
	var calls []*ast.CallExpr
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					for i, name := range n.Names {
						if i < len(n.Values) {
							vars[name.Name] = n.Values[i]
						}
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" {
						calls = append(calls, n)
					}
				}
				return true
			})
		}
	}
	strs := func(e ast.Expr) []string {
		if id, ok := e.(*ast.Ident); ok && id.Name != "nil" {
			e = vars[id.Name]
		}
		var out []string
		if lit, ok := e.(*ast.CompositeLit); ok {
			for _, el := range lit.Elts {
				if b, ok := el.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(b.Value)
					out = append(out, s)
				}
			}
		}
		return out
	}
	metrics := map[string][]string{}
	for _, c := range calls {
		b, ok := c.Args[0].(*ast.BasicLit)
		if !ok {
			t.Fatalf("%s: a metric name that is not a literal", fset.Position(c.Pos()))
		}
		name, _ := strconv.Unquote(b.Value)
		metrics[name] = strs(c.Args[2])
	}
	if len(metrics) < 20 || metrics["driftmon_events_total"] == nil || len(metrics["driftmon_feature_drift_score"]) != 5 {
		t.Fatalf("the scan of %s found too little: %v", dir, metrics)
	}
	return metrics
}

// checkNames parses expr as PromQL and reports every metric it selects that driftmon
// does not export, and every label matcher on a label that metric does not have.
func checkNames(t *testing.T, where, expr string, metrics map[string][]string) {
	t.Helper()
	e, err := promql.NewParser(promql.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse as PromQL: %v", where, expr, err)
		return
	}
	selectors := 0
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		vs, ok := n.(*promql.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		have, ok := metrics[vs.Name]
		if !ok {
			t.Errorf("%s: %s is no metric driftmon exports", where, vs.Name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !slices.Contains(have, m.Name) {
				t.Errorf("%s: %s has no label %q (it has %v)", where, vs.Name, m.Name, have)
			}
		}
		return nil
	})
	if selectors == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
}

// ruleCase is one run of an alerting rule: series loaded at one-minute steps in
// promqltest's notation, the rule evaluated every minute from 0 to at, and the label
// sets of the alerts firing then (alertname and the rule's own labels left out).
type ruleCase struct {
	name   string
	series string
	at     time.Duration
	firing []string
}

var ruleCases = map[string][]ruleCase{
	"DriftmonNoWindowClosed": {
		{"windows stop closing while events flow", `
			driftmon_events_total{stream="credit"} 0+100x300
			driftmon_windows_closed_total{stream="credit", model="m", version="1"} 0+1x60 60+0x240`,
			5 * time.Hour, []string{`{stream="credit"}`}},
		{"no window ever closed", `
			driftmon_events_total{stream="fraud"} 0+100x300`,
			5 * time.Hour, []string{`{stream="fraud"}`}},
		{"windows keep closing", `
			driftmon_events_total{stream="credit"} 0+100x300
			driftmon_windows_closed_total{stream="credit", model="m", version="1"} 0+1x300`,
			5 * time.Hour, nil},
		{"an idle stream", `
			driftmon_events_total{stream="credit"} 0+0x300
			driftmon_windows_closed_total{stream="credit", model="m", version="1"} 0+0x300`,
			5 * time.Hour, nil},
	},
	"DriftmonOutboxDeadLetters": {
		{"a dead delivery", `driftmon_outbox_dead{instance="a"} 0x10 2x10`, 20 * time.Minute, []string{`{instance="a"}`}},
		{"deliveries pending, none dead", `
			driftmon_outbox_dead{instance="a"} 0x20
			driftmon_outbox_depth{instance="a"} 5x20`, 20 * time.Minute, nil},
	},
	"DriftmonLostMessages": {
		{"retention deleted messages", `driftmon_lost_messages_total{stream="credit"} 0x30 5x30`, 40 * time.Minute, []string{`{stream="credit"}`}},
		{"none lost", `driftmon_lost_messages_total{stream="credit"} 0x60`, time.Hour, nil},
		{"an old loss", `driftmon_lost_messages_total{stream="credit"} 0x10 5x60`, 70 * time.Minute, nil},
	},
	"DriftmonStreamBlind": {
		{"blind for 10 minutes", `driftmon_stream_blind{stream="credit"} 0x10 1x10`, 20 * time.Minute, []string{`{stream="credit"}`}},
		{"blind for 3 minutes only", `driftmon_stream_blind{stream="credit"} 0x10 1x3 0x7`, 20 * time.Minute, nil},
		{"never blind", `driftmon_stream_blind{stream="credit"} 0x30`, 30 * time.Minute, nil},
	},
	"DriftmonLostLabels": {
		{"label messages lost", `driftmon_labels_total{stream="credit", outcome="lost"} 0x30 3x30`, 40 * time.Minute, []string{`{stream="credit"}`}},
		{"labels matched, none lost", `
			driftmon_labels_total{stream="credit", outcome="matched"} 0+50x60
			driftmon_labels_total{stream="credit", outcome="lost"} 0x60`, time.Hour, nil},
	},
	"DriftmonLateEventsHigh": {
		{"10% late", `
			driftmon_events_total{stream="credit"} 0+1000x120
			driftmon_late_events_total{stream="credit"} 0+100x120`, 2 * time.Hour, []string{`{stream="credit"}`}},
		{"1% late", `
			driftmon_events_total{stream="credit"} 0+1000x120
			driftmon_late_events_total{stream="credit"} 0+10x120`, 2 * time.Hour, nil},
		{"10% late for less than the rule's for", `
			driftmon_events_total{stream="credit"} 0+1000x120
			driftmon_late_events_total{stream="credit"} 0+0x90 0+100x30`, 2 * time.Hour, nil},
	},
	"DriftmonRejectedMessagesHigh": {
		{"5.7% rejected over two reasons", `
			driftmon_events_total{stream="credit"} 0+1000x120
			driftmon_decode_errors_total{stream="credit", reason="malformed_json"} 0+30x120
			driftmon_decode_errors_total{stream="credit", reason="wrong_type"} 0+30x120`, 2 * time.Hour, []string{`{stream="credit"}`}},
		{"every message rejected", `
			driftmon_events_total{stream="credit"} 0x120
			driftmon_decode_errors_total{stream="credit", reason="malformed_json"} 0+10x120`, 2 * time.Hour, []string{`{stream="credit"}`}},
		{"2.9% rejected", `
			driftmon_events_total{stream="credit"} 0+1000x120
			driftmon_decode_errors_total{stream="credit", reason="malformed_json"} 0+30x120`, 2 * time.Hour, nil},
	},
	"DriftmonDrift": {
		{"two features drifted", `
			driftmon_feature_drifted{stream="credit", model="m", version="1", feature="a"} 1x10
			driftmon_feature_drifted{stream="credit", model="m", version="1", feature="b"} 1x10
			driftmon_feature_drifted{stream="credit", model="m", version="1", feature="c"} 0x10
			driftmon_feature_drifted{stream="credit", model="m", version="2", feature="a"} 0x10`,
			10 * time.Minute, []string{`{model="m", stream="credit", version="1"}`}},
		{"none drifted", `
			driftmon_feature_drifted{stream="credit", model="m", version="1", feature="a"} 0x10`, 10 * time.Minute, nil},
	},
	"DriftmonPerformanceDegraded": {
		{"the final window degraded", `
			driftmon_performance_degraded{stream="credit", model="m", version="1", status="final"} 1x10`,
			10 * time.Minute, []string{`{model="m", stream="credit", version="1"}`}},
		{"only a provisional window degraded", `
			driftmon_performance_degraded{stream="credit", model="m", version="1", status="final"} 0x10
			driftmon_performance_degraded{stream="credit", model="m", version="1", status="provisional"} 1x10`,
			10 * time.Minute, nil},
	},
	"DriftmonObjectiveBreached": {
		{"p99 latency over its bound", `
			driftmon_objective_breached{stream="credit", model="m", version="1", objective="latency_ms p99"} 0x5 1x5
			driftmon_objective_breached{stream="credit", model="m", version="1", objective="rows"} 0x10`,
			10 * time.Minute, []string{`{model="m", objective="latency_ms p99", stream="credit", version="1"}`}},
		{"met again", `
			driftmon_objective_breached{stream="credit", model="m", version="1", objective="latency_ms p99"} 1x5 0x5`,
			10 * time.Minute, nil},
	},
	"DriftmonNotificationsFailing": {
		{"Slack failed", `driftmon_notifications_failed_total{route="slack"} 0x10 1x30`, 20 * time.Minute, []string{`{route="slack"}`}},
		{"all delivered", `
			driftmon_notifications_sent_total{route="slack"} 0+1x30
			driftmon_notifications_failed_total{route="slack"} 0x30`, 30 * time.Minute, nil},
	},
	"DriftmonClusterWithoutLeader": {
		{"followers, no leader", `
			driftmon_role{job="driftmon", instance="a", role="follower"} 1x10
			driftmon_role{job="driftmon", instance="a", role="leader"} 0x10
			driftmon_role{job="driftmon", instance="b", role="follower"} 1x10
			driftmon_role{job="driftmon", instance="b", role="leader"} 0x10`, 10 * time.Minute, []string{`{job="driftmon"}`}},
		{"a leader and a follower", `
			driftmon_role{job="driftmon", instance="a", role="follower"} 1x10
			driftmon_role{job="driftmon", instance="a", role="leader"} 0x10
			driftmon_role{job="driftmon", instance="b", role="follower"} 0x10
			driftmon_role{job="driftmon", instance="b", role="leader"} 1x10`, 10 * time.Minute, nil},
		{"one process", `
			driftmon_role{job="driftmon", instance="a", role="single"} 1x10
			driftmon_role{job="driftmon", instance="a", role="follower"} 0x10
			driftmon_role{job="driftmon", instance="a", role="leader"} 0x10`, 10 * time.Minute, nil},
	},
}

// TestAlertingRules parses the rules file as Prometheus does and runs every rule, as
// Prometheus' rule manager would, on series that fire it and on series that do not;
// the annotations' templates must expand.
func TestAlertingRules(t *testing.T) {
	p := promql.NewParser(promql.Options{})
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, p, promslog.NewNopLogger())
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	metrics := exported(t)
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("recording rule %q: this file holds alerts only", r.Record)
				continue
			}
			seen[r.Alert] = true
			checkNames(t, r.Alert, r.Expr, metrics)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: want a severity label and a summary annotation", r.Alert)
			}
			cases := ruleCases[r.Alert]
			fires := slices.ContainsFunc(cases, func(c ruleCase) bool { return len(c.firing) > 0 })
			quiet := slices.ContainsFunc(cases, func(c ruleCase) bool { return len(c.firing) == 0 })
			if !fires || !quiet {
				t.Errorf("%s: want cases that fire it and cases that do not", r.Alert)
			}
			for _, c := range cases {
				t.Run(r.Alert+"/"+c.name, func(t *testing.T) {
					got := runRule(t, p, r, c)
					if !slices.Equal(got, c.firing) {
						t.Errorf("firing at %v: %q, want %q", c.at, got, c.firing)
					}
				})
			}
		}
	}
	for name := range ruleCases {
		if !seen[name] {
			t.Errorf("cases for %s, which %s does not have", name, rulesFile)
		}
	}
}

// runRule evaluates r every minute from 0 to c.at on c.series and returns the label
// sets of the alerts firing at c.at.
func runRule(t *testing.T, p promql.Parser, r rulefmt.Rule, c ruleCase) []string {
	t.Helper()
	load := "load 1m\n"
	for _, line := range strings.Split(strings.TrimSpace(c.series), "\n") {
		load += "  " + strings.TrimSpace(line) + "\n"
	}
	storage := promqltest.LoadedStorage(t, load)
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	expr, err := p.ParseExpr(r.Expr)
	if err != nil {
		t.Fatal(err)
	}
	rule := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
		labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", false, promslog.NewNopLogger())
	query := rules.EngineQueryFunc(engine, storage)
	for ts := time.Duration(0); ts <= c.at; ts += time.Minute {
		if _, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).UTC().Add(ts), query, nil, 0); err != nil {
			t.Fatalf("eval at %v: %v", ts, err)
		}
	}
	var firing []string
	for _, a := range rule.ActiveAlerts() {
		if a.State != rules.StateFiring {
			continue
		}
		a.Annotations.Range(func(l labels.Label) {
			if strings.Contains(l.Value, "error expanding") || strings.Contains(l.Value, "<no value>") {
				t.Errorf("annotation %s: %s", l.Name, l.Value)
			}
		})
		b := labels.NewBuilder(a.Labels)
		b.Del(labels.AlertName)
		for k := range r.Labels {
			b.Del(k)
		}
		firing = append(firing, b.Labels().String())
	}
	sort.Strings(firing)
	return firing
}

// TestDashboard: dashboard.json is a Grafana dashboard whose every panel query parses
// as PromQL (Grafana's variables replaced) and selects only metrics and labels driftmon
// exports, as do the variables' label_values queries.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		ID      int                      `json:"id"`
		Type    string                   `json:"type"`
		Title   string                   `json:"title"`
		Targets []target                 `json:"targets"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	}
	var dash struct {
		Title         string  `json:"title"`
		UID           string  `json:"uid"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion == 0 || len(dash.Panels) == 0 {
		t.Fatalf("dashboard.json lacks a title, uid, schemaVersion or panels")
	}
	metrics := exported(t)
	// Grafana's variables, as it would substitute them.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"$stream", "credit", "$model", "m")
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			expr := vars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: %q has a variable the dashboard does not define", p.Title, tg.Expr)
				continue
			}
			checkNames(t, "panel "+strconv.Quote(p.Title), expr, metrics)
			queries++
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		selector := vars.Replace(m[1])
		checkNames(t, "variable "+v.Name, selector, metrics)
		ms, err := promql.NewParser(promql.Options{}).ParseMetricSelector(selector)
		if err == nil {
			for _, lm := range ms {
				if lm.Name == labels.MetricName && !slices.Contains(metrics[lm.Value], m[2]) {
					t.Errorf("variable %s: %s has no label %s", v.Name, lm.Value, m[2])
				}
			}
		}
	}
	t.Logf("%d panels, %d queries", len(dash.Panels), queries)
}
