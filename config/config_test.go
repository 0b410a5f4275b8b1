package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func load(t *testing.T, name string, vars map[string]string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, ParseOptions{Dir: "testdata", LookupEnv: env(vars)})
}

func TestInvalidConfigsReportEveryProblemWithItsPath(t *testing.T) {
	tests := []struct {
		file string
		want string // the whole error text, one problem a line
	}{
		{"unknown_keys.yaml", `kafka.grup_id: unknown field (line 3)
streams[0].features.car_value.pth: unknown field (line 8)
streams[0].window.sise: unknown field (line 9)`},
		{"bad_type.yaml", `streams[0].window.rows: want a whole number, got "lots" (line 7)`},
		{"many_errors.yaml", `kafka.brokers[0]: want host:port, got "localhost"
kafka.start_offset: must be "earliest" or "latest", got "middle"
streams[0].topic: is required
streams[0].schema_registry.urls: at least one URL is required with format: avro
streams[0].features.__time: names starting with __ are reserved
streams[0].features.car_value.type: must be "numeric" or "categorical", got "nmeric"
streams[0].window: set either size or rows, not both
streams[0].reference.min_rows: must not be negative, got -5
streams[0].detectors.fdr: must be between 0 and 1, got 1.5
streams[0].detectors.psi.bins: must be between 2 and 100, got 1
streams[0].detectors.tvd.min: must be between 0 and 1, got 1.5
streams[0].detectors.multivariate.variance: must be between 0 and 1, got 1
streams[0].detectors.joint.min: must be between 0 and 1, got 2
streams[0].detectors.joint.grid: must be between 2 and 8, got 9
streams[0].detectors.joint.max_pairs: must be between 1 and 2016, got 5000
streams[1].name: "credit" is used by another stream
streams[1].features: at least one feature or prediction is required
streams[1].window: set size (event-time windows, e.g. 1h) or rows (count windows)
alerting.slack.channel: is required with a token
alerting.webhooks[0].name: is required
alerting.webhooks[0].url: must be an http(s) URL, got "ftp://host/x"
alerting.webhooks[0].secret: must start with "whsec_" (Standard Webhooks secret)`},
		{"missing_env.yaml", `kafka.brokers[0]: environment variable KAFKA_BROKER is not set
alerting.slack.webhook_url: environment variable SLACK_WEBHOOK_URL is not set
kafka.brokers[0]: want host:port, got ""
alerting.slack: set token (with channel) or webhook_url`},
		{"bad_labels.yaml", `streams[0].event_id: is required with labels: it is how a label names its prediction
streams[0].labels.topic: must differ from the stream's topic "preds"
streams[0].labels.event_id: is required: the path of the labelled event's id in a label message
streams[0].labels.label: is required: the path of the true value in a label message
streams[0].labels: needs event-time windows (window.size): a late label is matched to its prediction's window by time
streams[0].labels.max_delay: must not be negative, got -1h0m0s
streams[0].labels.min_rows: must be at least 1, got -3
streams[0].labels.kind: must be "classification" or "regression", got "ranking"
streams[0].labels.prediction: name the prediction the metrics are about (the stream has 2 numeric predictions)
streams[0].performance: min 0.9 must be below max 0.5
streams[1].performance: needs labels (a labels topic joined by event_id)`},
		{"bad_cluster.yaml", `cluster.partials_topic: is required
cluster.replication_factor: must not be negative, got -1
cluster.session_timeout: must not be negative, got -5s
state.path: a cluster keeps its state in cluster.partials_topic, where every process can read it: remove state.path
streams[0].window.rows: count windows cannot be shared by several processes (cluster): use window.size
streams[1].labels: late labels are not joined in cluster mode yet: run this stream in a single process
streams[1].labels.prediction: "x" is not one of the stream's predictions`},
		{"bad_http.yaml", `http.write_timeout: must not be negative, got -1s
http.idle_timeout: must not be negative, got -2m0s
http.read_header_timeout: 1m0s is longer than read_timeout 20s, which also bounds the headers
http.max_header_bytes: must be at least 1024, got 100
http.max_body_bytes: must be at least 1024, got -1
http.max_connections: must be at least 1, got -3`},
		{"secret_missing.yaml", `alerting.webhooks[0].secret_file: set either the value or the file, not both`},
		{"secret_echoed.yaml", `kafka.brokers[0]: want host:port, not a URL (credentials go in kafka.sasl), got "SASL_SSL://admin:***@kafka-1.internal:9093"
kafka.start_offset: must be "earliest" or "latest", got "https://hooks.slack.com/services/***"
kafka.sasl.mechanism: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got "***"
streams[0].format: must be "json", "avro" or "arrow_ipc", got "https://registry.internal/subjects?api_key=***&v=***"
streams[0].reference.baseline: must be a local file (download it first), got "https://bucket.s3.amazonaws.com/ref.profile?X-Amz-Signature=***"
alerting.dashboard_url: must be an http(s) URL, got "ftp://viewer:***@grafana.internal/d/***#***"
alerting.webhooks[0].url: must be an http(s) URL, got "jenkins://***@jenkins.internal/job/***?token=***"
alerting.webhooks[0].signing: must be "standard" or "github", got "***"
alerting.webhooks[1].header: must be a header name such as X-Api-Key (its value goes in header_value)`},
		{"secret_wrong_type.yaml", `kafka.sasl.password: want a string, got a mapping (line 8)
streams[0].window.rows: want a whole number, got "https://u:***@h.internal/x/***?t=***" (line 13)
alerting.slack.token: want a string, got a list (line 16)
alerting.webhooks[0].header_value: want a string (the value is not shown: the field is a secret) (line 22)`},
		{"secret_unreadable.yaml", `alerting.slack.token_file: cannot read secret: open testdata/no-such-token.txt: no such file or directory
alerting.slack: set token (with channel) or webhook_url`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := load(t, tt.file, nil)
			if err == nil {
				t.Fatalf("want an error, got config %+v", cfg)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error text:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestValidConfigGetsDefaultsEnvAndSecrets(t *testing.T) {
	cfg, err := load(t, "valid.yaml", map[string]string{"TEST_SLACK_TOKEN": "xoxb-from-env"})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Streams[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"group id default", cfg.Kafka.GroupID, "driftmon"},
		{"start offset default", cfg.Kafka.StartOffset, "earliest"},
		{"format default", s.Format, "json"},
		{"feature path default", s.Features["car_value"].Path, "features.car_value"},
		{"feature path given", s.Features["salary_range"].Path, "features.salary"},
		{"prediction path default", s.Predictions["y_pred_proba"].Path, "prediction.y_pred_proba"},
		{"warm-up default", s.Reference.WarmupWindows, 1},
		{"fdr default", s.Detectors.FDR, 0.05},
		{"psi bins default", s.Detectors.PSI.Bins, 10},
		{"ks min default", s.Detectors.KS.Min, 0.1},
		{"wasserstein min default", s.Detectors.Wasserstein.Min, 0.08},
		{"tvd min default", s.Detectors.TVD.Min, 0.05},
		{"multivariate min default", s.Detectors.Multivariate.Min, 0.2},
		{"multivariate variance default", s.Detectors.Multivariate.Variance, 0.65},
		{"joint min default", s.Detectors.Joint.Min, 0.1},
		{"joint grid default", s.Detectors.Joint.Grid, 8},
		{"joint max pairs default", s.Detectors.Joint.MaxPairs, 120},
		{"reference min rows default", s.Reference.MinRows, int64(1000)},
		{"min rows default", s.Detectors.MinRows, int64(100)},
		{"token from env", cfg.Alerting.Slack.Token, "xoxb-from-env"},
		{"secret from file", cfg.Alerting.Webhooks[0].Secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"webhook min features default", cfg.Alerting.Webhooks[0].MinFeatures, 1},
		{"window rows", s.Window.Rows, 5000},
		{"http read header timeout default", cfg.HTTP.ReadHeaderTimeout, 10 * time.Second},
		{"http read timeout default", cfg.HTTP.ReadTimeout, 30 * time.Second},
		{"http write timeout default", cfg.HTTP.WriteTimeout, time.Minute},
		{"http idle timeout default", cfg.HTTP.IdleTimeout, 2 * time.Minute},
		{"http max header bytes default", cfg.HTTP.MaxHeaderBytes, 64 << 10},
		{"http max body bytes default", cfg.HTTP.MaxBodyBytes, int64(64 << 10)},
		{"http max connections default", cfg.HTTP.MaxConnections, 64},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), "/etc/driftmon/retrain-webhook-secret", secret))
	cfg, err := Parse(data, ParseOptions{LookupEnv: env(map[string]string{"SLACK_BOT_TOKEN": "xoxb-x"})})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Streams[0].Window.Size; got != time.Hour {
		t.Errorf("window size %v, want 1h", got)
	}
}

func TestSecretsNeverAppearInErrors(t *testing.T) {
	const secret = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
	data := []byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams: [{name: s, topic: t, features: {a: {type: numeric}}, window: {rows: 10}}]
alerting:
  slack: {webhook_url: "` + secret + `", token: xoxb-also-secret, channel: "#c"}
  webhooks: [{name: w, url: "http://127.0.0.1/", secret: not-whsec-SECRETSECRET}]
`)
	_, err := Parse(data, ParseOptions{})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "xoxb") {
		t.Errorf("error leaks a secret: %v", err)
	}
}

// secretInFixture matches every secret planted in the secret_*.yaml fixtures.
var secretInFixture = regexp.MustCompile(`[A-Za-z0-9_-]*-secret\b|31415926535`)

func TestProblemsNeverQuoteASecret(t *testing.T) {
	for _, file := range []string{"secret_echoed.yaml", "secret_wrong_type.yaml"} {
		_, err := load(t, file, nil)
		if err == nil {
			t.Fatalf("%s: no error", file)
		}
		if m := secretInFixture.FindAllString(err.Error(), -1); m != nil {
			t.Errorf("%s: the problems quote secrets %q:\n%s", file, m, err)
		}
	}
}

func TestRedact(t *testing.T) {
	cfg := &Config{
		Kafka:    Kafka{SASL: &SASL{Password: "sasl-pass"}},
		Alerting: Alerting{Slack: &Slack{Token: "xoxb", WebhookURL: "https://hooks.slack.com/services/T/B/X"}, Webhooks: []Webhook{{HeaderValue: "k\"ey"}}},
	}
	tests := []struct{ in, want string }{
		{`open /ref/sasl-pass.csv: no such file`, `open /ref/***.csv: no such file`},
		{`token "xoxb" and xoxb-10`, `token *** and xoxb-10`}, // short: only where quoted whole
		{`post https://hooks.slack.com/services/T/B/X failed`, `post *** failed`},
		{`header "k\"ey"`, `header ***`},
		{`see https://user:pw@host:8080/a/b/c?x=1&y&z=#frag, then`, `see https://user:***@host:8080/a/***?x=***&***&z=***#***, then`},
		{`https://tok@github.com/org/repo.git`, `https://***@github.com/org/***`},
		{`http://host/`, `http://host/`},
		{`http://host/a/`, `http://host/a/`},
		{`"http://[::1:bad/x"`, `"http://***"`},
		{`no URL here`, `no URL here`},
	}
	for _, tt := range tests {
		if got := cfg.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (*Config)(nil).Redact("ftp://a:b@c"); got != "ftp://a:***@c" {
		t.Errorf("nil Config: %q", got)
	}
}
