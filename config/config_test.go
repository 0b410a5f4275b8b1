package config

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
		{"bad_segments.yaml", `streams[0].segments: at most 4 keys, got 5
streams[0].segments[0].by: must name a categorical field, "income" is numeric
streams[0].segments[1].by: must name a feature or prediction of the stream, got "city"
streams[0].segments[2].by: is required: the categorical feature whose values are the segments
streams[0].segments[3].max_values: must be between top (30) and 4096, got 10
streams[0].segments[4].by: "country" is segmented twice
streams[1].segments: at most 4 keys, got 5
streams[1].segments[1].by: "a" is segmented twice
streams[1].segments[2].by: "a" is segmented twice
streams[1].segments[3].by: "a" is segmented twice
streams[1].segments[4].by: "a" is segmented twice
streams[1].segments[4].max_values: must be between top (20) and 4096, got 5000`},
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
		{"bad_objectives.yaml", `streams[0].objectives[0].quantile: must be between 0 and 1 (0.99 for p99), got 1.5
streams[0].objectives[2].stat: mean needs a numeric field; country is categorical
streams[0].objectives[3].field: "countrey" is not a feature or prediction of the stream
streams[0].objectives[4]: min 0.5 is above max 0.2
streams[0].objectives[5].max: is a share, between 0 and 1, got 2
streams[0].objectives[6].stat: rows_per_minute needs event-time windows (window.size): a count window holds window.rows rows whatever the rate
streams[0].objectives[7].field: rows is a statistic of the window, not of a field: remove field
streams[0].objectives[7].stat: rows needs event-time windows (window.size): a count window always holds window.rows rows
streams[0].objectives[8].name: "latency_ms p99" is used twice in the stream
streams[0].objectives[8].stat: must be one of value, quantile, mean, null_share, invalid_share, distinct, share, rows, rows_per_minute, got "p99"
streams[0].objectives[9]: set min, max or both
streams[0].latency_field: "country" is not a numeric feature or prediction of the stream
alerting.webhooks[0].objectives[0]: "latency_ms p95" is not the name of an objective of any stream`},
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
		{"bad_reference.yaml", `streams[0].reference: set one of baseline, warmup_windows, trailing and seasonal, not several
streams[0].reference.trailing.windows: must be at least 1, got 0
streams[1].reference.seasonal: needs event-time windows (window.size): a phase is a time of day or week
streams[1].reference.seasonal.cycles: must be at least 1, got 0
streams[2].reference: set one of baseline, warmup_windows, trailing and seasonal, not several
streams[2].reference.seasonal.period: must be a multiple of window.size 1h0m0s (at least 2 windows), got 1h30m0s
streams[2].reference.seasonal.fallback_windows: must be between 0 and 10000, got -1
streams[3].reference.seasonal: period 168h0m0s of 1m0s windows over 4 cycles is 40320 window profiles per model, more than 10000
streams[4].reference: set one of baseline, warmup_windows, trailing and seasonal, not several
streams[4].reference.trailing.windows: must be at most 10000 (each model keeps that many window profiles), got 20000
streams[4].reference.seasonal.period: must be positive (e.g. 24h, or 168h for a weekly rhythm), got 0s
streams[5].reference.per_version: must contain {version}: each version has its own reference, got "testdata/refs/{model}.profile"
streams[6].reference.per_version: knows {model} and {version} only, got "testdata/refs/{model}/{version}-{date}.profile"
streams[7].reference.per_version: must be a local path template (the files are read when a version appears), got "s3://bucket/%7Bversion%7D.profile"`},
		{"bad_sasl_oauth.yaml", `kafka.sasl.client_auth_method: must be client_secret_basic or client_secret_post, got "client_secret_jwt"
kafka.sasl.token_endpoint: must be an https URL (the client secret goes to it; http only to this machine), got "http://idp.example.com/oauth2/***"
kafka.sasl.client_id: is required with token_endpoint
kafka.sasl.client_secret: is required with token_endpoint (or client_secret_file)
kafka.sasl.extensions.auth: is reserved for the token
kafka.sasl.extensions.identity-pool: an extension's name is letters only (RFC 7628)
kafka.sasl.extensions.traceId: want a value of visible ASCII characters and spaces, got "a\x01b"
kafka.sasl: OAUTHBEARER does not use username (keys of PLAIN and SCRAM)
kafka.sasl: OAUTHBEARER does not use region (keys of AWS_MSK_IAM)`},
		{"bad_sasl_token_file.yaml", `kafka.sasl.client_id: goes with token_endpoint, not token_file
kafka.sasl.scope: goes with token_endpoint, not token_file`},
		{"bad_sasl_both_sources.yaml", `kafka.sasl: set token_endpoint or token_file, not both`},
		{"bad_sasl_iam.yaml", "kafka.tls: is required with AWS_MSK_IAM: MSK's IAM listeners (port 9098) are TLS only; `tls: {}` trusts the system's CAs" + `
kafka.sasl.region: want an AWS region such as eu-west-1, got "Ireland"
kafka.sasl: AWS_MSK_IAM does not use password (keys of PLAIN and SCRAM)`},
		{"bad_sasl_plain.yaml", `kafka.sasl: username and password (or password_file) are required with PLAIN
kafka.sasl: PLAIN does not use extensions, token_endpoint (keys of OAUTHBEARER)
kafka.sasl: PLAIN does not use region (keys of AWS_MSK_IAM)`},
		{"secret_oauth_echoed.yaml", `kafka.sasl.client_auth_method: must be client_secret_basic or client_secret_post, got "***"
kafka.sasl.token_endpoint: must be an https URL (the client secret goes to it; http only to this machine), got "http://idp.example.com/token?client_secret=***"
kafka.sasl.extensions.logicalCluster: want a value of visible ASCII characters and spaces, got "***\x01"`},
		{"secret_missing.yaml", `alerting.webhooks[0].secret_file: set either the value or the file, not both`},
		{"secret_echoed.yaml", `kafka.brokers[0]: want host:port, not a URL (credentials go in kafka.sasl), got "SASL_SSL://admin:***@kafka-1.internal:9093"
kafka.start_offset: must be "earliest" or "latest", got "https://hooks.slack.com/services/***"
kafka.sasl.mechanism: must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, got "***"
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

// TestOAuthConfigReadsItsSecretAndResolvesItsTokenFile checks the two file keys of
// OAUTHBEARER: the client secret is read at load, the token file's path is made
// relative to the config's folder (the file is read for every connection, not here).
func TestOAuthConfigReadsItsSecretAndResolvesItsTokenFile(t *testing.T) {
	cfg, err := load(t, "valid_oauth.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Kafka.SASL
	if a.ClientSecret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Errorf("client_secret from client_secret_file = %q", a.ClientSecret)
	}
	if want := map[string]string{"logicalCluster": "lkc-abc123", "identityPoolId": "pool-XyZ1"}; !maps.Equal(a.Extensions, want) {
		t.Errorf("extensions = %v, want %v", a.Extensions, want)
	}

	data := []byte(`
kafka:
  brokers: ["127.0.0.1:9092"]
  sasl: {mechanism: OAUTHBEARER, token_file: tokens/kafka}
streams: [{name: s, topic: t, features: {a: {type: numeric}}, window: {rows: 10}}]
`)
	cfg, err = Parse(data, ParseOptions{Dir: "/etc/driftmon"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Kafka.SASL.TokenFile, filepath.Join("/etc/driftmon", "tokens/kafka"); got != want {
		t.Errorf("token_file = %q, want %q", got, want)
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
	for _, file := range []string{"secret_echoed.yaml", "secret_wrong_type.yaml", "secret_oauth_echoed.yaml"} {
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

// TestRollingReferenceDefaults: a trailing or seasonal reference is no warm-up, and
// leaves drifting windows out unless told not to.
func TestRollingReferenceDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: ["localhost:9092"]}
streams:
  - {name: t, topic: a, features: {x: {type: numeric}}, window: {size: 1h}, reference: {trailing: {windows: 12}}}
  - {name: s, topic: b, features: {x: {type: numeric}}, window: {size: 1h}, reference: {seasonal: {period: 168h, cycles: 4, skip_drifting: false}}}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, se := cfg.Streams[0].Reference, cfg.Streams[1].Reference
	if tr.WarmupWindows != 0 || tr.Trailing.Windows != 12 || tr.Trailing.SkipDrifting == nil || !*tr.Trailing.SkipDrifting {
		t.Errorf("trailing: warm-up %d, %+v", tr.WarmupWindows, tr.Trailing)
	}
	if se.WarmupWindows != 0 || se.Seasonal.Period != 168*time.Hour || se.Seasonal.Cycles != 4 || se.Seasonal.SkipDrifting == nil || *se.Seasonal.SkipDrifting {
		t.Errorf("seasonal: warm-up %d, %+v", se.WarmupWindows, se.Seasonal)
	}
}

// TestSegmentDefaults: a segment key judges its 20 largest values among the 256
// with a profile of their own, unless told otherwise.
func TestSegmentDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: ["localhost:9092"]}
streams:
  - name: t
    topic: a
    features: {x: {type: numeric}, country: {type: categorical}}
    predictions: {label: {type: categorical}}
    window: {size: 1h}
    segments: [{by: country}, {by: label, top: 300}]
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Streams[0].Segments
	want := []Segment{{By: "country", Top: 20, MaxValues: 256}, {By: "label", Top: 300, MaxValues: 300}}
	if !slices.Equal(got, want) {
		t.Errorf("segments %+v, want %+v", got, want)
	}
}

func TestAWSRegionNames(t *testing.T) {
	for region, ok := range map[string]bool{
		"eu-west-1": true, "us-gov-west-1": true, "cn-north-1": true, "ap-southeast-5": true, "eusc-de-east-1": true,
		"Ireland": false, "eu-west": false, "eu_west_1": false, "EU-WEST-1": false, "eu-west-1 ": false,
	} {
		if got := awsRegion.MatchString(region); got != ok {
			t.Errorf("%q: accepted %v, want %v", region, got, ok)
		}
	}
}

// TestRetrainingCallDefaults: a retraining webhook calls once per episode with a day
// of cooldown unless it says otherwise; every_window keeps the old rule, a call in
// every qualifying window, with no cooldown unless one is set.
func TestRetrainingCallDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - {name: s, topic: t, features: {x: {type: numeric}}, window: {rows: 10}}
alerting:
  webhooks:
    - {name: default, url: "http://127.0.0.1:9/a"}
    - {name: every, url: "http://127.0.0.1:9/b", every_window: true}
    - {name: none, url: "http://127.0.0.1:9/c", cooldown: 0s, on_new_features: true}
    - {name: every-6h, url: "http://127.0.0.1:9/d", every_window: true, cooldown: 6h}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{24 * time.Hour, 0, 0, 6 * time.Hour} {
		w := cfg.Alerting.Webhooks[i]
		if w.Cooldown == nil || *w.Cooldown != want {
			t.Errorf("webhooks[%d] (%s): cooldown %v, want %s", i, w.Name, w.Cooldown, want)
		}
	}
	if !cfg.Alerting.Webhooks[2].OnNewFeatures || !cfg.Alerting.Webhooks[1].EveryWindow || cfg.Alerting.Webhooks[0].EveryWindow {
		t.Errorf("webhooks %+v", cfg.Alerting.Webhooks)
	}
	if got := cfg.Alerting.Policy.SupersedeAfter; got != 3 {
		t.Errorf("supersede_after %d, want 3", got)
	}

	_, err = Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - {name: s, topic: t, features: {x: {type: numeric}}, window: {rows: 10}}
alerting:
  webhooks:
    - {name: w, url: "http://127.0.0.1:9/a", cooldown: -1h, every_window: true, on_new_features: true}
  policy: {supersede_after: -2}
`), ParseOptions{})
	want := `alerting.webhooks[0].cooldown: must not be negative, got -1h0m0s
alerting.webhooks[0].on_new_features: only applies without every_window (which calls in every window)
alerting.policy.supersede_after: must be at least 1, got -2`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant\n%s", err, want)
	}
}

// TestObjectiveDefaults: an objective without a statistic or name gets them from what
// it sets, and the latency field defaults to a latency quantile's field.
func TestObjectiveDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: ["localhost:9092"]}
streams:
  - name: s
    topic: t
    features: {latency_ms: {type: numeric}, age: {type: numeric}, country: {type: categorical}}
    window: {size: 1m}
    objectives:
      - {field: latency_ms, quantile: 0.9, max: 250}
      - {field: latency_ms, quantile: 0.999, max: 900}
      - {field: age, min: 0}
      - {field: country, category: DE, max: 0.5}
      - {field: country, stat: null_share, max: 0.01}
      - {stat: rows_per_minute, min: 1000}
      - {name: slow, field: latency_ms, stat: mean, max: 120}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Streams[0]
	var got []string
	for _, o := range s.Objectives {
		got = append(got, o.Name+"="+o.Stat)
	}
	want := []string{"latency_ms p90=quantile", "latency_ms p99.9=quantile", "age value=value", "country share of DE=share",
		"country null share=null_share", "rows per minute=rows_per_minute", "slow=mean"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("objectives %q, want %q", got, want)
	}
	if s.LatencyField != "latency_ms" {
		t.Errorf("latency_field %q, want latency_ms", s.LatencyField)
	}
}
