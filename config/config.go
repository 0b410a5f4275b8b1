// Package config is driftmon's configuration: the YAML schema, its defaults and its
// validation. It is a leaf package: everything else may import it, it imports nothing of
// driftmon's (the monitor maps its names to implementations, with one switch).
//
// Loading is strict and complete: unknown keys are errors, `${NAME}` is replaced by the
// environment variable NAME, every `*_file` key reads a secret from a file, and every
// problem in the file is reported at once, each prefixed with its path
// (`streams[0].features.car_value.type: ...`).
//
// driftmon.schema.json is the JSON Schema of the file, for editors: config/schemagen
// writes it from these types, their yaml and enum tags and their doc comments (a
// sentence that starts "Required." or "Required," makes a field required), so edit
// those and run `go generate ./config`.
package config

//go:generate go run ./schemagen -dir . -o driftmon.schema.json

import (
	"time"
)

// Config is a whole driftmon.yaml.
type Config struct {
	// Kafka says where the inference logs are.
	Kafka Kafka `yaml:"kafka"`
	// Streams are the topics to monitor, each with its own fields, windows and reference.
	// Required: at least one.
	Streams []Stream `yaml:"streams"`
	// Alerting says whom to tell when a stream drifts.
	Alerting Alerting `yaml:"alerting"`
	// State is where driftmon keeps what must survive a restart.
	State State `yaml:"state"`
	// Cluster, when set, lets several driftmon processes share the streams through
	// Kafka itself. Unset (the default), one process reads every partition.
	Cluster *Cluster `yaml:"cluster"`
	// HTTP bounds the server of the dashboard, /api/v1 and /metrics.
	HTTP HTTP `yaml:"http"`
}

// HTTP bounds what one client of the dashboard, /api/v1 and /metrics may hold: time,
// memory and connections. A slow or hostile client is cut off, and the server never
// takes so many file descriptors that the Kafka connections cannot get theirs. Zero
// means the default; WithDefaults fills them in.
type HTTP struct {
	// ReadHeaderTimeout is how long a client may take to send a request's headers.
	// Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout is how long a client may take to send a whole request, body
	// included. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is how long, from the end of its headers, a request may take to be
	// answered: a client that reads too slowly is cut off. Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its next request.
	// Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's line and headers; more is answered 431.
	// Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request's body; more is answered 413 without reading it.
	// Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxReferenceBytes bounds the body of a reference handed over
	// (PUT /api/v1/models/{model}/versions/{version}/reference): a profile, larger
	// than other bodies. Default 8388608 (8 MiB); in a cluster, the cluster topic's
	// max.message.bytes (16 MiB when driftmon created it) bounds it too.
	MaxReferenceBytes int64 `yaml:"max_reference_bytes"`
	// MaxConnections is how many connections the server holds at once; more wait,
	// unaccepted, until one closes. Default 64.
	MaxConnections int `yaml:"max_connections"`
}

// Cluster is scale-out: processes with the same kafka.group_id split the streams'
// partitions (the consumer group), publish each partition's window state and closed
// windows to one compacted topic, and the one process that holds that topic's only
// partition in the group <group_id>-leader merges the windows, evaluates them and
// alerts. The leader's state (alert state, the webhook outbox) lives in the same topic,
// so a new leader goes on where the old one stopped.
type Cluster struct {
	// PartialsTopic is the compacted topic, created with one partition when missing.
	// Required.
	PartialsTopic string `yaml:"partials_topic"`
	// ReplicationFactor of the topic when driftmon creates it. Default: min(3, brokers).
	ReplicationFactor int `yaml:"replication_factor"`
	// SessionTimeout is how long the groups wait for a silent process before its
	// partitions, or its leadership, move to another. Default 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// State is the checkpoint file: open windows, partition offsets, alert state and the
// webhook outbox, written together in one transaction.
type State struct {
	// Path of the bbolt file. Empty: nothing survives a restart, and offsets are
	// committed to Kafka after each batch (at-least-once).
	Path string `yaml:"path"`
	// CheckpointRecords is how many records may be processed between checkpoints.
	// Default 10000.
	CheckpointRecords int `yaml:"checkpoint_records"`
	// CheckpointInterval is the longest time between checkpoints. Default 5s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Kafka is the connection to the cluster that carries the inference logs.
type Kafka struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group driftmon joins. Default "driftmon".
	GroupID string `yaml:"group_id"`
	// StartOffset is where a group with no committed offset starts: "earliest" (default)
	// or "latest".
	StartOffset string `yaml:"start_offset" enum:"earliest,latest"`
	// TLS encrypts the connections to the brokers. Optional.
	TLS *TLS `yaml:"tls"`
	// SASL authenticates to the brokers. Optional.
	SASL *SASL `yaml:"sasl"`
}

// TLS is how driftmon trusts the brokers and, optionally, proves who it is to them.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates; empty
	// means the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for brokers that ask
	// for one (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate checks off: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL is how driftmon proves who it is to the brokers: a user name and password (PLAIN,
// SCRAM), an OAuth 2.0 bearer token (OAUTHBEARER), or AWS IAM credentials (AWS_MSK_IAM).
// Each mechanism reads its own keys; another's are an error.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM.
	Mechanism string `yaml:"mechanism" enum:"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER,AWS_MSK_IAM"`
	// Username is PLAIN's and SCRAM's user.
	Username string `yaml:"username"`
	// Password is PLAIN's and SCRAM's, or PasswordFile to read it from a file.
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"password_file"`

	// TokenEndpoint is OAUTHBEARER's OAuth 2.0 token URL (https): driftmon asks it for
	// a token with the client-credentials grant, and for a new one once 80% of the
	// last one's expires_in has passed. Or TokenFile.
	TokenEndpoint string `yaml:"token_endpoint"`
	// ClientID is driftmon's client at TokenEndpoint.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client's secret, or ClientSecretFile to read it from a file.
	ClientSecret     string `yaml:"client_secret" secret:"true"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientAuthMethod is how the client's credentials reach TokenEndpoint:
	// "client_secret_basic" (default; HTTP Basic) or "client_secret_post" (in the form).
	ClientAuthMethod string `yaml:"client_auth_method" enum:"client_secret_basic,client_secret_post"`
	// Scope is asked for with the token: scopes separated by spaces. Optional.
	Scope string `yaml:"scope"`
	// Extensions are SASL extensions sent with OAUTHBEARER's token, such as Confluent
	// Cloud's logicalCluster and identityPoolId. Optional.
	Extensions map[string]string `yaml:"extensions"`
	// TokenFile is a file that holds OAUTHBEARER's token, read again for every
	// connection (a Kubernetes projected service account token). Or TokenEndpoint.
	TokenFile string `yaml:"token_file"`

	// Region is AWS_MSK_IAM's AWS region, such as eu-west-1. Default: the AWS SDK's
	// (AWS_REGION, the profile's). Credentials come from the AWS SDK's default chain.
	Region string `yaml:"region"`
}

// Stream is one topic of inference events from one or more models.
type Stream struct {
	// Name identifies the stream in alerts and metrics. Required, unique.
	Name string `yaml:"name"`
	// Topic is the Kafka topic to read. Required.
	Topic string `yaml:"topic"`
	// Format is the message encoding: "json" (default), "avro" (Confluent wire format:
	// magic byte, schema id, Avro binary; needs schema_registry) or "arrow_ipc" (each
	// message an Arrow IPC stream of one or more record batches).
	Format string `yaml:"format" enum:"json,avro,arrow_ipc"`
	// SchemaRegistry is where Avro schemas are looked up by id.
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry"`
	// DeadLetter copies messages that cannot be decoded to a topic. Optional.
	DeadLetter *DeadLetter `yaml:"dead_letter"`
	// MaxMessageBytes rejects larger messages (counted as too_large). Default 1 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Envelope is an optional dotted path to the object that holds the event inside each
	// message, for wrappers such as CloudEvents ("data").
	Envelope string `yaml:"envelope"`
	// EventTime is the path of the event timestamp (RFC 3339 string or Unix seconds or
	// milliseconds). Empty or absent in a message: the Kafka message time is used.
	EventTime string `yaml:"event_time"`
	// Model and ModelVersion are the paths of the model's name and version. Monitoring is
	// per (stream, model, version). Empty: the stream's name, and "" for the version.
	Model        string `yaml:"model"`
	ModelVersion string `yaml:"model_version"`
	// Features are the model's inputs, by name. A stream needs at least one feature or
	// prediction.
	Features map[string]Field `yaml:"features"`
	// Predictions are the model's outputs, monitored like features.
	Predictions map[string]Field `yaml:"predictions"`
	// Window says how events are grouped before they are compared with the reference.
	Window Window `yaml:"window"`
	// Reference says what each window is compared with.
	Reference Reference `yaml:"reference"`
	// Detectors tunes the statistics and the decision rule.
	Detectors Detectors `yaml:"detectors"`
	// EventID is the path of each event's unique id, by which labels name the
	// prediction they are the truth of. Required with Labels.
	EventID string `yaml:"event_id"`
	// Labels joins the ground truth that arrives later, on another topic, to the
	// predictions, for per-window model performance. Optional; needs event-time
	// windows (window.size).
	Labels *Labels `yaml:"labels"`
	// Performance is the alert rule on the joined labels' metrics. Default with
	// Labels: a drop of roc_auc (classification) or a rise of rmse (regression)
	// beyond the reference windows' own variation (relative).
	Performance *Performance `yaml:"performance"`
	// Limits bound what the stream's producers can make the monitor hold or believe.
	Limits Limits `yaml:"limits"`
	// Objectives are fixed bounds on statistics of a field (or of the window's rows),
	// judged on every closed window of every model and version of the stream, e.g. a
	// p99 latency of at most 250 ms. A window outside one is an objective breach, an
	// alert of its own kind. They are per stream, like the detectors: a stream is one
	// topic's models, and where models need other bounds they are other streams.
	Objectives []Objective `yaml:"objectives"`
	// LatencyField names the numeric feature or prediction that holds each inference's
	// latency, shown with the model's throughput in the dashboard's latency panel.
	// Default: the field of the first quantile objective whose field's name contains
	// "latency"; none: no panel.
	LatencyField string `yaml:"latency_field"`
	// Segments judge drift per value of categorical fields too (Segment). Optional.
	Segments []Segment `yaml:"segments"`
}

// Objective is a fixed bound on one statistic of one field in each window (a service
// level objective), judged from the window's sketches. It is not a hypothesis test:
// no reference, no p-value, no false discovery rate. A breach is judged only when the
// bound is outside the statistic's sketch error band (t-digest quantiles, HyperLogLog
// distinct counts); a bound inside it is "within sketch error", not a breach.
type Objective struct {
	// Name names the objective in alerts, the API and metrics; unique in the stream.
	// Default: the field and the statistic, e.g. "latency_ms p99", "rows per minute".
	Name string `yaml:"name"`
	// Field is the feature or prediction the statistic is of. Required, except for
	// rows and rows_per_minute, which are of the window.
	Field string `yaml:"field"`
	// Stat is the statistic: value (every value: the window's exact min and max),
	// quantile (with quantile), mean, null_share (nulls and absent values among all),
	// invalid_share (NaN, ±Inf and type errors among all), distinct (categorical),
	// share (of category among the non-null values; categorical), rows (the window's
	// row count) or rows_per_minute (rows over the window's length; event-time
	// windows). Default: quantile when quantile is set, share when category is set,
	// else value.
	Stat string `yaml:"stat"`
	// Quantile is the rank of the quantile statistic, between 0 and 1 (0.99: p99).
	Quantile float64 `yaml:"quantile"`
	// Category is the category whose share the share statistic is.
	Category string `yaml:"category"`
	// Min and Max bound the statistic, both included; at least one is required.
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// Unit is printed after the field's values in messages, e.g. "ms". Optional.
	Unit string `yaml:"unit"`
}

// The statistics of objectives (Objective.Stat).
const (
	StatValue         = "value"
	StatQuantile      = "quantile"
	StatMean          = "mean"
	StatNullShare     = "null_share"
	StatInvalidShare  = "invalid_share"
	StatDistinct      = "distinct"
	StatShare         = "share"
	StatRows          = "rows"
	StatRowsPerMinute = "rows_per_minute"
)

// Limits bound what a stream's producers can make the monitor hold or believe: a
// producer with a wrong clock, a placeholder date or a request id in the model field
// must neither blind it nor exhaust its memory. What is past a bound is rejected with a
// reason of its own (counted, dead-lettered when configured), never dropped silently.
type Limits struct {
	// MaxFuture rejects an event whose time is more than this ahead of the wall clock
	// (reason event_time_future): one such event would move the watermark past every
	// later event, which would all count as late. Default DefaultMaxFuture.
	MaxFuture time.Duration `yaml:"max_future"`
	// MaxPast rejects an event whose time is more than this behind the wall clock
	// (reason event_time_past). Default 0: no bound (a backlog may be days old).
	MaxPast time.Duration `yaml:"max_past"`
	// MaxModels bounds how many (model, version) pairs the stream monitors; rows of
	// any further pair are rejected (reason too_many_models), and the first is logged.
	// Default DefaultMaxModels.
	MaxModels int `yaml:"max_models"`
	// BlindShare is the share of a window's events that came late or were refused
	// past which the stream counts as blind: it is read but cannot be judged (a
	// blind alert). Default DefaultBlindShare.
	BlindShare float64 `yaml:"blind_share"`
	// BlindWindows (event-time windows) is how many window lengths of wall-clock time
	// may pass while events are read but no window closes before the stream counts as
	// blind. Default DefaultBlindWindows.
	BlindWindows int `yaml:"blind_windows"`
}

// Defaults of Limits.
const (
	DefaultMaxFuture    = time.Hour
	DefaultMaxModels    = 100
	DefaultBlindShare   = 0.5
	DefaultBlindWindows = 3
)

// Labels is a topic of ground truth: JSON messages, each naming the event id of the
// prediction it labels. A label may arrive any time up to MaxDelay after its
// prediction's window ends (in event time), and before or after the prediction itself.
type Labels struct {
	// Topic holds the labels. Required. It is read by the same consumer group.
	Topic string `yaml:"topic"`
	// EventID is the path of the labelled event's id in a label message. Required.
	EventID string `yaml:"event_id"`
	// Label is the path of the true value. Required.
	Label string `yaml:"label"`
	// EventTime is the path of the label's time; empty or absent: the Kafka message
	// time. A label this much past the join's clock expires unmatched.
	EventTime string `yaml:"event_time"`
	// MaxDelay is how long after a window's end (in event time) its labels may still
	// arrive; then its metrics are final and its unlabelled predictions are counted as
	// such. Default 168h (7 days).
	MaxDelay time.Duration `yaml:"max_delay"`
	// Prediction names the prediction (under predictions) the metrics are about.
	// Default: the stream's one numeric prediction.
	Prediction string `yaml:"prediction"`
	// Kind is "classification" (the prediction is P(positive), in [0, 1]) or
	// "regression". Default classification.
	Kind string `yaml:"kind" enum:"classification,regression"`
	// Threshold: a score at or above it predicts the positive class. Default 0.5.
	Threshold float64 `yaml:"threshold"`
	// Positive is the label value of the positive class. Default "1" (also true, 1.0).
	Positive string `yaml:"positive"`
	// MinRows is the fewest labelled predictions a window needs for a performance
	// verdict. Default 100.
	MinRows int64 `yaml:"min_rows"`
	// ReferenceWindows is how many of a model's first final windows make the
	// performance reference of the relative rule. Default 4.
	ReferenceWindows int `yaml:"reference_windows"`
}

// Performance is an alert rule on one performance metric.
type Performance struct {
	// Metric is accuracy, precision, recall, f1, roc_auc or log_loss
	// (classification), mae, rmse or mape (regression).
	Metric string `yaml:"metric" enum:"accuracy,precision,recall,f1,roc_auc,log_loss,mae,rmse,mape"`
	// Min and Max are absolute bounds: a window below Min (above Max) is degraded.
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// Relative flags a window worse than the reference windows by more than their
	// own window-to-window variation and the window's sampling error. Default true
	// when neither Min nor Max is set.
	Relative *bool `yaml:"relative"`
}

// Labels defaults.
const (
	DefaultLabelsMaxDelay         = 7 * 24 * time.Hour
	DefaultLabelsThreshold        = 0.5
	DefaultLabelsPositive         = "1"
	DefaultLabelsMinRows          = 100
	DefaultLabelsReferenceWindows = 4
)

// SchemaRegistry is a Confluent-compatible schema registry.
type SchemaRegistry struct {
	// URLs of the registry. Required.
	URLs []string `yaml:"urls"`
	// Username and Password (or PasswordFile) for basic auth. Optional.
	Username     string `yaml:"username"`
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"password_file"`
}

// DeadLetter is where undecodable messages are copied, with the reason and their
// source partition and offset in headers.
type DeadLetter struct {
	// Topic receives the copies; it must exist. Required.
	Topic string `yaml:"topic"`
	// SampleEvery copies one message in this many, per reason. Default 1: all.
	SampleEvery int `yaml:"sample_every"`
}

// Field is one monitored feature or prediction.
type Field struct {
	// Path is the dotted path of the value in the event. Default "features.<name>" for
	// features and "prediction.<name>" for predictions.
	Path string `yaml:"path"`
	// Type is "numeric" or "categorical". Required.
	Type string `yaml:"type" enum:"numeric,categorical"`
}

// Window groups events. Exactly one of Size and Rows is set.
type Window struct {
	// Size makes tumbling windows on event time, e.g. 1h.
	Size time.Duration `yaml:"size"`
	// Rows makes count-based windows of this many events per model, for low-traffic
	// streams, tests and demos.
	Rows int `yaml:"rows"`
	// Lateness (event-time windows) is how far behind the newest event time an event
	// may arrive and still count in its window; later ones are counted as late and
	// merged nowhere. The watermark is the slowest read partition's newest event time
	// minus Lateness. Default 0.
	Lateness time.Duration `yaml:"lateness"`
	// Idle (event-time windows) is how long a partition may send nothing before it
	// stops holding the watermark back, so one quiet partition does not keep every
	// window open. Default 30s.
	Idle time.Duration `yaml:"idle"`
}

// Reference is what each closed window is compared with.
type Reference struct {
	// Baseline is a data file (.parquet, .csv, .jsonl) with the reference data, e.g. the
	// training set, whose columns are named like the features. Relative paths are relative
	// to the config file.
	Baseline string `yaml:"baseline"`
	// WarmupWindows, when no baseline is given, makes the first N closed windows of each
	// model the reference. Default 1 when neither baseline, trailing nor seasonal is set.
	WarmupWindows int `yaml:"warmup_windows"`
	// Trailing compares each window with the model's last N judged windows instead of
	// a fixed reference: it follows slow change and catches abrupt change. Exclusive
	// with baseline, warmup_windows and seasonal.
	Trailing *Trailing `yaml:"trailing"`
	// Seasonal compares each window with the model's windows at the same phase of a
	// period (the same hour of the day, or of the week) over the last cycles: a daily
	// or weekly rhythm in the traffic is then not drift. Needs event-time windows.
	// Exclusive with baseline, warmup_windows and trailing.
	Seasonal *Seasonal `yaml:"seasonal"`
	// MinRows is the fewest non-null values of a feature in the reference for a verdict
	// on it. A warm-up goes on past warmup_windows until it holds this many rows; a
	// smaller baseline gives "insufficient reference" instead of verdicts. Default 1000:
	// the reference's noise is part of every verdict's uncertainty, and a 0.3σ shift in a
	// 1,000-row window is caught 99% of the time against 1,000 reference rows, 69%
	// against 250 (bench/README.md, "Reference size").
	MinRows int64 `yaml:"min_rows"`
	// PerVersion is where the training pipeline leaves each model version's
	// reference profile (`driftmon baseline`), e.g. "refs/{model}/{version}.profile":
	// the file is read when a (model, version) first appears, and its windows are
	// judged against it; without a file the version falls back to the reference
	// above, and its results say so. A reference handed over by the API
	// (PUT /api/v1/models/{model}/versions/{version}/reference) takes precedence.
	// Must contain {version}. Relative paths are relative to the config file.
	PerVersion string `yaml:"per_version"`
}

// Trailing is a reference made of the last judged windows of each (model, version).
type Trailing struct {
	// Windows is how many judged windows the reference merges. Required, at least 1.
	Windows int `yaml:"windows"`
	// SkipDrifting leaves out of the reference every window that drifted or failed a
	// data-quality check, so that a drift is not absorbed as it happens: the reference
	// stays the last N windows that did neither. Default true.
	SkipDrifting *bool `yaml:"skip_drifting"`
}

// Seasonal is a reference made of each (model, version)'s windows at the same phase of
// a period over its last cycles: with period 24h and hourly windows, 14:00–15:00 is
// compared with 14:00–15:00 of the days before (UTC); with 168h, with the same hour of
// the weeks before.
type Seasonal struct {
	// Period is the length of the rhythm, a whole number of windows (window.size).
	// Required.
	Period time.Duration `yaml:"period"`
	// Cycles is how many past periods the reference merges, at most. Required, at
	// least 1.
	Cycles int `yaml:"cycles"`
	// SkipDrifting leaves out of the reference every window that drifted or failed a
	// data-quality check, as for trailing. Default true.
	SkipDrifting *bool `yaml:"skip_drifting"`
	// FallbackWindows decides what a window is compared with while no window at its
	// phase is in yet (the first period, mostly): 0 (the default) judges nothing until
	// then and says so; N compares it with the last N windows (a trailing reference),
	// which catches an abrupt change on the first day but can take a steep rhythm for
	// drift.
	FallbackWindows int `yaml:"fallback_windows"`
}

// Detectors tunes the per-feature tests and the decision rule: a feature drifts when its
// test is significant after Benjamini–Hochberg correction at FDR across the model's
// features and its effect size reaches the minimum.
type Detectors struct {
	// FDR is the false discovery rate for the Benjamini–Hochberg correction. Default 0.05.
	FDR float64 `yaml:"fdr"`
	// MinRows is the fewest non-null values a window (and the reference) needs for a
	// verdict; fewer gives "insufficient data". Default 100.
	MinRows int64 `yaml:"min_rows"`
	// PSI configures the population stability index.
	PSI PSI `yaml:"psi"`
	// KS configures the two-sample Kolmogorov–Smirnov test for numeric features.
	KS KS `yaml:"ks"`
	// Wasserstein is the other effect size of numeric features: a significant KS test
	// is drift when D ≥ ks.min or the distribution moved by ≥ wasserstein.min
	// reference standard deviations.
	Wasserstein Wasserstein `yaml:"wasserstein"`
	// TVD is the other effect size of categorical features: a significant chi-square
	// test is drift when PSI ≥ psi.min or the total variation distance ≥ tvd.min.
	TVD TVD `yaml:"tvd"`
	// Multivariate configures the detector of the joint distribution of the numeric
	// features (the first 16 of features then predictions): PCA reconstruction error.
	Multivariate Multivariate `yaml:"multivariate"`
	// Joint configures the pair grids: joint drift of pairs of numeric features that
	// moves no marginal and no correlation.
	Joint Joint `yaml:"joint"`
}

// Joint configures the pair-grid finding, "(joint)": for each pair of the first numeric
// fields (features then predictions) a k×k grid of counts on the reference's quantiles,
// tested for a change of association between the two.
type Joint struct {
	// Disable turns it off: no finding, and no pair grids counted, which saves a
	// fifth to a half of the CPU a row costs (bench/README.md, "Joint drift that
	// moves no marginal").
	Disable bool `yaml:"disable"`
	// Min is the smallest share of a pair's rows in other cells than the reference's
	// association puts them that counts as drift. Default 0.1.
	Min float64 `yaml:"min"`
	// Grid is the number of quantile bins of each feature of a pair, 2–8. Default 8.
	Grid int `yaml:"grid"`
	// MaxPairs caps the pairs counted, which bounds the cost per row whatever the number
	// of features: every pair of the first d numeric fields, d(d−1)/2 ≤ max_pairs, at
	// most 2016 (64 fields). Default 120 (16 fields).
	MaxPairs int `yaml:"max_pairs"`
}

// Multivariate configures the multivariate finding, "(multivariate)", which sees
// changes no single feature shows (a correlation that flips sign).
type Multivariate struct {
	// Disable turns it off.
	Disable bool `yaml:"disable"`
	// Min is the smallest relative change of the mean reconstruction error that counts
	// as drift. Default 0.2.
	Min float64 `yaml:"min"`
	// Variance is the share of the reference's variance the kept principal components
	// explain. Default 0.65.
	Variance float64 `yaml:"variance"`
}

// TVD configures the total variation distance between categorical shares: half the
// sum of the share moves, the share of values that changed category.
type TVD struct {
	// Min is the smallest total variation distance that counts as drift. Default 0.05:
	// one value in twenty changed category. PSI misses such moves among few
	// categories (70/30% → 59/41% has PSI 0.05).
	Min float64 `yaml:"min"`
}

// Wasserstein configures the Wasserstein-1 distance over the reference's standard
// deviation.
type Wasserstein struct {
	// Min is the smallest W1/σ that counts as drift. Default 0.08: a 0.1σ mean shift is
	// drift once a window is large enough to show it, a 0.01σ one never.
	Min float64 `yaml:"min"`
}

// PSI configures the population stability index.
type PSI struct {
	// Bins is the number of bins at the reference's quantiles. Default 10.
	Bins int `yaml:"bins"`
	// Min is the smallest PSI that counts as drift for categorical features. Default 0.1.
	Min float64 `yaml:"min"`
}

// KS configures the Kolmogorov–Smirnov test.
type KS struct {
	// Min is the smallest KS statistic D that counts as drift. Default 0.1.
	Min float64 `yaml:"min"`
}

// Alerting says whom to tell.
type Alerting struct {
	// DashboardURL is linked from alerts. Optional.
	DashboardURL string `yaml:"dashboard_url"`
	// Slack posts alerts to a channel. Optional.
	Slack *Slack `yaml:"slack"`
	// Webhooks are retraining endpoints called when a model drifts.
	Webhooks []Webhook `yaml:"webhooks"`
	// Policy says when drift becomes an alert, repeats and resolves.
	Policy Policy `yaml:"policy"`
}

// Policy turns per-window verdicts into alerts: one alert per model and window, not one
// per feature.
type Policy struct {
	// FireAfter is how many consecutive drifting windows fire an alert. Default 1.
	FireAfter int `yaml:"fire_after"`
	// ResolveAfter is how many consecutive clean windows resolve it. Default 2.
	ResolveAfter int `yaml:"resolve_after"`
	// RepeatEvery re-sends a still-firing, unchanged alert after this much window time.
	// Default 0: never; follow-ups are sent only when the set of features changes.
	RepeatEvery time.Duration `yaml:"repeat_every"`
	// CriticalPSI is the PSI from which a drifted feature makes the alert critical
	// rather than a warning. Default 0.25.
	CriticalPSI float64 `yaml:"critical_psi"`
	// SupersedeAfter retires a model version whose traffic stopped: once this many
	// windows of the model's other versions closed with none of it in between, its
	// open alerts end as "superseded by version X" and its retraining webhooks are not
	// called again (until its traffic returns). Default 3.
	SupersedeAfter int `yaml:"supersede_after"`
}

// Slack is either a bot token with a channel, or an incoming-webhook URL.
type Slack struct {
	// Token is a bot token (xoxb-…); TokenFile reads it from a file instead.
	Token     string `yaml:"token" secret:"true"`
	TokenFile string `yaml:"token_file"`
	// Channel is where the bot posts; required with a token.
	Channel string `yaml:"channel"`
	// WebhookURL is an incoming-webhook URL; WebhookURLFile reads it from a file instead.
	WebhookURL     string `yaml:"webhook_url" secret:"true"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	// APIURL overrides Slack's API base URL (it must end in "/"), for proxies and tests.
	APIURL string `yaml:"api_url"`
}

// Webhook is a retraining endpoint.
type Webhook struct {
	// Name identifies the webhook in logs. Required, unique.
	Name string `yaml:"name"`
	// URL receives a signed JSON POST. Required, http or https.
	URL string `yaml:"url"`
	// Secret signs each call per the Standard Webhooks spec ("whsec_" + base64 key);
	// SecretFile reads it from a file instead. Optional but recommended.
	Secret     string `yaml:"secret" secret:"true"`
	SecretFile string `yaml:"secret_file"`
	// BearerToken, when set, is sent as "Authorization: Bearer …"; or read from
	// BearerTokenFile.
	BearerToken     string `yaml:"bearer_token" secret:"true"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	// MinFeatures is how many features must drift in one window to call the webhook.
	// Default 1.
	MinFeatures int `yaml:"min_features"`
	// KeyFeatures call the webhook when any of them drifts, however many others do.
	KeyFeatures []string `yaml:"key_features"`
	// Objectives are names of objectives (streams[].objectives[].name) whose breach
	// calls the webhook, once per breach episode of a model version, e.g. a rollback
	// pipeline on "latency_ms p99". A webhook with objectives and neither min_features
	// nor key_features is called for those breaches only, never for drift; one
	// without objectives is never called for a breach.
	Objectives []string `yaml:"objectives"`
	// ForWindows is how many consecutive windows the condition must hold. Default 1.
	ForWindows int `yaml:"for_windows"`
	// Cooldown is the least event time between two calls for one model version. The
	// webhook is called once per alert episode (in the first window the condition holds
	// while the model version's alert fires, not in every drifting window after); an
	// episode that fires within the cooldown gets its call once it has passed, if the
	// condition still holds then. Default 24h (0 with every_window); 0s: none.
	Cooldown *time.Duration `yaml:"cooldown"`
	// OnNewFeatures calls again within an episode when features drift that no call of
	// the episode named (an escalation; not held back by the cooldown).
	OnNewFeatures bool `yaml:"on_new_features"`
	// EveryWindow calls in every window the condition holds, whether an alert fires or
	// not, at most once per cooldown: the rule before episodes.
	EveryWindow bool `yaml:"every_window"`
	// Format shapes the request for the receiver: json (default, the generic payload),
	// airflow (POST .../dags/{dag_id}/dagRuns), github (repository_dispatch), argo
	// (Argo Events webhook), jenkins (buildWithParameters, form-encoded) or template.
	Format string `yaml:"format" enum:"json,airflow,github,argo,jenkins,template"`
	// EventType is GitHub's event_type. Default "driftmon.retrain".
	EventType string `yaml:"event_type"`
	// Template is the Go text/template of the body with format template, over the
	// generic payload's fields (.Model, .Drifted, .Window.Start, ...).
	Template string `yaml:"template"`
	// ContentType of a template's body. Default application/json.
	ContentType string `yaml:"content_type"`
	// Signing is "standard" (Standard Webhooks, default when a secret is set) or
	// "github" (X-Hub-Signature-256).
	Signing string `yaml:"signing" enum:"standard,github"`
	// Basic sends HTTP basic auth (Jenkins: a user and an API token).
	BasicUser         string `yaml:"basic_user"`
	BasicPassword     string `yaml:"basic_password" secret:"true"`
	BasicPasswordFile string `yaml:"basic_password_file"`
	// Header and HeaderValue send a custom header, e.g. an API key.
	Header          string `yaml:"header"`
	HeaderValue     string `yaml:"header_value" secret:"true"`
	HeaderValueFile string `yaml:"header_value_file"`
}
