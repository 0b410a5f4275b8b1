package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults, in one place so the README and the code agree.
const (
	DefaultGroupID              = "driftmon"
	DefaultFormat               = "json"
	DefaultWarmupWindows        = 1
	DefaultReferenceRows        = 1000
	DefaultFDR                  = 0.05
	DefaultMinRows              = 100
	DefaultPSIBins              = 10
	DefaultPSIMin               = 0.1
	DefaultKSMin                = 0.1
	DefaultWassersteinMin       = 0.08
	DefaultTVDMin               = 0.05
	DefaultMultivariateMin      = 0.2
	DefaultMultivariateVariance = 0.65
	DefaultJointMin             = 0.1
	DefaultJointGrid            = 8
	DefaultJointMaxPairs        = 120
	// MaxJointPairs is the most pairs a stream's grids may count (sketch.MaxGridPairs).
	MaxJointPairs = 2016

	// MaxReferenceWindows bounds the window profiles a trailing or seasonal reference
	// keeps per model (trailing.windows; period / window.size × cycles): a few KiB to
	// tens of KiB each (bench/README.md, "Trailing and seasonal references").
	MaxReferenceWindows = 10_000

	DefaultFireAfter    = 1
	DefaultResolveAfter = 2
	DefaultCriticalPSI  = 0.25
	// DefaultSupersedeAfter is alerting.policy.supersede_after's default.
	DefaultSupersedeAfter = 3
	// DefaultWebhookCooldown is a retraining webhook's cooldown unless it calls in
	// every window: a day of event time, so that a drift that comes and goes starts
	// one retraining run a day, not one per episode.
	DefaultWebhookCooldown = 24 * time.Hour

	DefaultCheckpointRecords  = 10000
	DefaultCheckpointInterval = 5 * time.Second

	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadTimeout       = 30 * time.Second
	DefaultHTTPWriteTimeout      = 60 * time.Second
	DefaultHTTPIdleTimeout       = 2 * time.Minute
	DefaultHTTPMaxHeaderBytes    = 64 << 10
	DefaultHTTPMaxBodyBytes      = 64 << 10
	DefaultHTTPMaxReferenceBytes = 8 << 20
	DefaultHTTPMaxConnections    = 64
)

// WithDefaults returns h with every zero bound set to its default. The HTTP server
// calls it too, so that a server built without a config has the same bounds.
func (h HTTP) WithDefaults() HTTP {
	h.ReadHeaderTimeout = cmp.Or(h.ReadHeaderTimeout, DefaultHTTPReadHeaderTimeout)
	h.ReadTimeout = cmp.Or(h.ReadTimeout, DefaultHTTPReadTimeout)
	h.WriteTimeout = cmp.Or(h.WriteTimeout, DefaultHTTPWriteTimeout)
	h.IdleTimeout = cmp.Or(h.IdleTimeout, DefaultHTTPIdleTimeout)
	h.MaxHeaderBytes = cmp.Or(h.MaxHeaderBytes, DefaultHTTPMaxHeaderBytes)
	h.MaxBodyBytes = cmp.Or(h.MaxBodyBytes, DefaultHTTPMaxBodyBytes)
	h.MaxReferenceBytes = cmp.Or(h.MaxReferenceBytes, DefaultHTTPMaxReferenceBytes)
	h.MaxConnections = cmp.Or(h.MaxConnections, DefaultHTTPMaxConnections)
	return h
}

// validate appends the bounds' problems, after defaults.
func (h HTTP) validate(bad func(string, string, ...any)) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header_timeout", h.ReadHeaderTimeout}, {"read_timeout", h.ReadTimeout},
		{"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout},
	} {
		if d.v < 0 {
			bad("http."+d.key, "must not be negative, got %s", d.v)
		}
	}
	if h.ReadHeaderTimeout > 0 && h.ReadTimeout > 0 && h.ReadHeaderTimeout > h.ReadTimeout {
		bad("http.read_header_timeout", "%s is longer than read_timeout %s, which also bounds the headers", h.ReadHeaderTimeout, h.ReadTimeout)
	}
	// Below these, no browser or Prometheus request fits.
	if h.MaxHeaderBytes < 1024 {
		bad("http.max_header_bytes", "must be at least 1024, got %d", h.MaxHeaderBytes)
	}
	if h.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "must be at least 1024, got %d", h.MaxBodyBytes)
	}
	if h.MaxReferenceBytes < 1024 {
		bad("http.max_reference_bytes", "must be at least 1024, got %d", h.MaxReferenceBytes)
	}
	if h.MaxConnections < 1 {
		bad("http.max_connections", "must be at least 1, got %d", h.MaxConnections)
	}
}

func (c *Config) setDefaults() {
	c.Kafka.GroupID = cmp.Or(c.Kafka.GroupID, DefaultGroupID)
	c.Kafka.StartOffset = cmp.Or(c.Kafka.StartOffset, "earliest")
	for i := range c.Streams {
		s := &c.Streams[i]
		s.Format = cmp.Or(s.Format, DefaultFormat)
		defaultPaths(s.Features, "features.")
		defaultPaths(s.Predictions, "prediction.")
		if r := s.Reference; r.Baseline == "" && r.WarmupWindows == 0 && r.Trailing == nil && r.Seasonal == nil {
			s.Reference.WarmupWindows = DefaultWarmupWindows
		}
		s.Reference.MinRows = cmp.Or(s.Reference.MinRows, DefaultReferenceRows)
		if t := s.Reference.Trailing; t != nil && t.SkipDrifting == nil {
			t.SkipDrifting = new(true)
		}
		if z := s.Reference.Seasonal; z != nil && z.SkipDrifting == nil {
			z.SkipDrifting = new(true)
		}
		d := &s.Detectors
		d.FDR = cmp.Or(d.FDR, DefaultFDR)
		d.MinRows = cmp.Or(d.MinRows, DefaultMinRows)
		d.PSI.Bins = cmp.Or(d.PSI.Bins, DefaultPSIBins)
		d.PSI.Min = cmp.Or(d.PSI.Min, DefaultPSIMin)
		d.KS.Min = cmp.Or(d.KS.Min, DefaultKSMin)
		d.Wasserstein.Min = cmp.Or(d.Wasserstein.Min, DefaultWassersteinMin)
		d.TVD.Min = cmp.Or(d.TVD.Min, DefaultTVDMin)
		d.Multivariate.Min = cmp.Or(d.Multivariate.Min, DefaultMultivariateMin)
		d.Multivariate.Variance = cmp.Or(d.Multivariate.Variance, DefaultMultivariateVariance)
		d.Joint.Min = cmp.Or(d.Joint.Min, DefaultJointMin)
		d.Joint.Grid = cmp.Or(d.Joint.Grid, DefaultJointGrid)
		d.Joint.MaxPairs = cmp.Or(d.Joint.MaxPairs, DefaultJointMaxPairs)
		s.Labels.setDefaults(s)
		s.setObjectiveDefaults()
		s.setSegmentDefaults()
	}
	c.State.CheckpointRecords = cmp.Or(c.State.CheckpointRecords, DefaultCheckpointRecords)
	c.State.CheckpointInterval = cmp.Or(c.State.CheckpointInterval, DefaultCheckpointInterval)
	c.HTTP = c.HTTP.WithDefaults()
	for i := range c.Alerting.Webhooks {
		w := &c.Alerting.Webhooks[i]
		if w.MinFeatures == 0 && len(w.KeyFeatures) == 0 && len(w.Objectives) == 0 {
			w.MinFeatures = 1
		}
		w.ForWindows = cmp.Or(w.ForWindows, 1)
		if w.Cooldown == nil {
			d := DefaultWebhookCooldown
			if w.EveryWindow {
				d = 0
			}
			w.Cooldown = &d
		}
		w.Format = cmp.Or(w.Format, "json")
		if w.Signing == "" && w.Secret != "" {
			w.Signing = "standard"
		}
	}
	p := &c.Alerting.Policy
	p.FireAfter = cmp.Or(p.FireAfter, DefaultFireAfter)
	p.ResolveAfter = cmp.Or(p.ResolveAfter, DefaultResolveAfter)
	p.CriticalPSI = cmp.Or(p.CriticalPSI, DefaultCriticalPSI)
	p.SupersedeAfter = cmp.Or(p.SupersedeAfter, DefaultSupersedeAfter)
}

// setDefaults fills in the labels' defaults and the default performance rule; nothing
// without labels.
func (l *Labels) setDefaults(s *Stream) {
	if l == nil {
		return
	}
	l.MaxDelay = cmp.Or(l.MaxDelay, DefaultLabelsMaxDelay)
	l.Kind = cmp.Or(l.Kind, "classification")
	l.Threshold = cmp.Or(l.Threshold, DefaultLabelsThreshold)
	l.Positive = cmp.Or(l.Positive, DefaultLabelsPositive)
	l.MinRows = cmp.Or(l.MinRows, DefaultLabelsMinRows)
	l.ReferenceWindows = cmp.Or(l.ReferenceWindows, DefaultLabelsReferenceWindows)
	if l.Prediction == "" {
		var numeric []string
		for _, name := range SortedNames(s.Predictions) {
			if s.Predictions[name].Type == "numeric" {
				numeric = append(numeric, name)
			}
		}
		if len(numeric) == 1 {
			l.Prediction = numeric[0]
		}
	}
	if s.Performance == nil {
		s.Performance = &Performance{Metric: "roc_auc"}
		if l.Kind == "regression" {
			s.Performance.Metric = "rmse"
		}
	}
	if p := s.Performance; p.Relative == nil {
		relative := p.Min == nil && p.Max == nil
		p.Relative = &relative
	}
}

// ClassificationMetrics and RegressionMetrics are the performance metrics of each
// labels kind, in display order.
var (
	ClassificationMetrics = []string{"roc_auc", "accuracy", "precision", "recall", "f1", "log_loss"}
	RegressionMetrics     = []string{"mae", "rmse", "mape"}
)

// validate appends the labels' problems; p is the stream's path.
func (l *Labels) validate(p string, s *Stream, bad func(string, string, ...any)) {
	if l == nil {
		if s.Performance != nil {
			bad(p+".performance", "needs labels (a labels topic joined by event_id)")
		}
		return
	}
	lp := p + ".labels"
	if s.EventID == "" {
		bad(p+".event_id", "is required with labels: it is how a label names its prediction")
	}
	if l.Topic == "" {
		bad(lp+".topic", "is required")
	} else if l.Topic == s.Topic {
		bad(lp+".topic", "must differ from the stream's topic %q", s.Topic)
	}
	if l.EventID == "" {
		bad(lp+".event_id", "is required: the path of the labelled event's id in a label message")
	}
	if l.Label == "" {
		bad(lp+".label", "is required: the path of the true value in a label message")
	}
	if s.Window.Size == 0 {
		bad(lp, "needs event-time windows (window.size): a late label is matched to its prediction's window by time")
	}
	if l.MaxDelay < 0 {
		bad(lp+".max_delay", "must not be negative, got %s", l.MaxDelay)
	}
	if l.MinRows < 1 {
		bad(lp+".min_rows", "must be at least 1, got %d", l.MinRows)
	}
	if l.ReferenceWindows < 1 {
		bad(lp+".reference_windows", "must be at least 1, got %d", l.ReferenceWindows)
	}
	metrics := ClassificationMetrics
	switch l.Kind {
	case "classification":
		if l.Threshold <= 0 || l.Threshold >= 1 {
			bad(lp+".threshold", "must be between 0 and 1, got %g", l.Threshold)
		}
	case "regression":
		metrics = RegressionMetrics
	default:
		bad(lp+".kind", `must be "classification" or "regression", got %q`, l.Kind)
		metrics = nil // no list to check the rule's metric against
	}
	switch f, ok := s.Predictions[l.Prediction]; {
	case l.Prediction == "":
		bad(lp+".prediction", "name the prediction the metrics are about (the stream has %d numeric predictions)", len(s.Predictions))
	case !ok:
		bad(lp+".prediction", "%q is not one of the stream's predictions", l.Prediction)
	case f.Type != "numeric":
		bad(lp+".prediction", "%q must be numeric (a score or a predicted value)", l.Prediction)
	}
	if r := s.Performance; r != nil {
		if metrics != nil && !slices.Contains(metrics, r.Metric) {
			bad(p+".performance.metric", "must be one of %s for %s labels, got %q", strings.Join(metrics, ", "), l.Kind, r.Metric)
		}
		if r.Min != nil && r.Max != nil && *r.Min >= *r.Max {
			bad(p+".performance", "min %g must be below max %g", *r.Min, *r.Max)
		}
	}
}

func defaultPaths(fields map[string]Field, prefix string) {
	for name, f := range fields {
		if f.Path == "" {
			f.Path = prefix + name
			fields[name] = f
		}
	}
}

// validate appends one error per problem, each starting with its path.
func (c *Config) validate(errs *[]error) {
	bad := func(path, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker is required")
	}
	for i, b := range c.Kafka.Brokers {
		switch {
		case strings.Contains(b, "://") || strings.Contains(b, "@"):
			// A URL (with credentials, often) where the client wants a bare address.
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, not a URL (credentials go in kafka.sasl), got %q", b)
		case !strings.Contains(b, ":"):
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, got %q", b)
		}
	}
	if o := c.Kafka.StartOffset; o != "earliest" && o != "latest" {
		bad("kafka.start_offset", `must be "earliest" or "latest", got %q`, o)
	}
	if t := c.Kafka.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		bad("kafka.tls", "cert_file and key_file go together")
	}
	if a := c.Kafka.SASL; a != nil {
		a.validate(c.Kafka.TLS != nil, bad)
	}
	if len(c.Streams) == 0 {
		bad("streams", "at least one stream is required")
	}
	if cl := c.Cluster; cl != nil {
		if cl.PartialsTopic == "" {
			bad("cluster.partials_topic", "is required")
		}
		if cl.ReplicationFactor < 0 {
			bad("cluster.replication_factor", "must not be negative, got %d", cl.ReplicationFactor)
		}
		if cl.SessionTimeout < 0 {
			bad("cluster.session_timeout", "must not be negative, got %s", cl.SessionTimeout)
		}
		if c.State.Path != "" {
			bad("state.path", "a cluster keeps its state in cluster.partials_topic, where every process can read it: remove state.path")
		}
		for i := range c.Streams {
			s := &c.Streams[i]
			p := fmt.Sprintf("streams[%d]", i)
			// A count window is "the next N rows", which has no meaning when no process
			// sees every row in one order.
			if s.Window.Rows > 0 {
				bad(p+".window.rows", "count windows cannot be shared by several processes (cluster): use window.size")
			}
			if s.Labels != nil {
				bad(p+".labels", "late labels are not joined in cluster mode yet: run this stream in a single process")
			}
		}
	}
	names := map[string]bool{}
	for i := range c.Streams {
		s := &c.Streams[i]
		p := fmt.Sprintf("streams[%d]", i)
		checkName(p, "stream", s.Name, names, bad)
		if s.Topic == "" {
			bad(p+".topic", "is required")
		}
		switch s.Format {
		case "json", "arrow_ipc":
			if s.SchemaRegistry != nil {
				bad(p+".schema_registry", "only applies with format: avro")
			}
		case "avro":
			if s.SchemaRegistry == nil || len(s.SchemaRegistry.URLs) == 0 {
				bad(p+".schema_registry.urls", "at least one URL is required with format: avro")
			}
		default:
			bad(p+".format", `must be "json", "avro" or "arrow_ipc", got %q`, s.Format)
		}
		if r := s.SchemaRegistry; r != nil {
			for j, u := range r.URLs {
				checkURL(fmt.Sprintf("%s.schema_registry.urls[%d]", p, j), u, bad)
			}
		}
		if d := s.DeadLetter; d != nil {
			if d.Topic == "" {
				bad(p+".dead_letter.topic", "is required")
			}
			if d.SampleEvery < 0 {
				bad(p+".dead_letter.sample_every", "must not be negative, got %d", d.SampleEvery)
			}
		}
		if s.MaxMessageBytes < 0 {
			bad(p+".max_message_bytes", "must not be negative, got %d", s.MaxMessageBytes)
		}
		if len(s.Features)+len(s.Predictions) == 0 {
			bad(p+".features", "at least one feature or prediction is required")
		}
		for _, name := range SortedNames(s.Features) {
			if _, dup := s.Predictions[name]; dup {
				bad(p+".predictions."+name, "has the same name as a feature")
			}
		}
		validateFields(p+".features", s.Features, bad)
		validateFields(p+".predictions", s.Predictions, bad)
		switch w := s.Window; {
		case w.Size < 0:
			bad(p+".window.size", "must be positive, got %s", w.Size)
		case w.Rows < 0:
			bad(p+".window.rows", "must be positive, got %d", w.Rows)
		case w.Size > 0 && w.Rows > 0:
			bad(p+".window", "set either size or rows, not both")
		case w.Size == 0 && w.Rows == 0:
			bad(p+".window", "set size (event-time windows, e.g. 1h) or rows (count windows)")
		}
		if l := s.Limits; l.MaxFuture < 0 || l.MaxPast < 0 || l.MaxModels < 0 || l.BlindWindows < 0 {
			bad(p+".limits", "max_future, max_past, max_models and blind_windows must not be negative")
		}
		if b := s.Limits.BlindShare; b < 0 || b > 1 {
			bad(p+".limits.blind_share", "must be between 0 and 1, got %g", b)
		}
		if s.Window.Lateness < 0 || s.Window.Idle < 0 {
			bad(p+".window", "lateness and idle must not be negative")
		}
		if s.Window.Rows > 0 && (s.Window.Lateness > 0 || s.Window.Idle > 0) {
			bad(p+".window", "lateness and idle apply to event-time windows (size), not rows")
		}
		if strings.Contains(s.Reference.Baseline, "://") {
			bad(p+".reference.baseline", "must be a local file (download it first), got %q", s.Reference.Baseline)
		}
		if s.Reference.WarmupWindows < 0 {
			bad(p+".reference.warmup_windows", "must not be negative, got %d", s.Reference.WarmupWindows)
		}
		if s.Reference.MinRows < 0 {
			bad(p+".reference.min_rows", "must not be negative, got %d", s.Reference.MinRows)
		}
		s.Reference.validate(p+".reference", s.Window, bad)
		d := s.Detectors
		if d.FDR <= 0 || d.FDR >= 1 {
			bad(p+".detectors.fdr", "must be between 0 and 1, got %g", d.FDR)
		}
		if d.MinRows < 2 {
			bad(p+".detectors.min_rows", "must be at least 2, got %d", d.MinRows)
		}
		if d.PSI.Bins < 2 || d.PSI.Bins > 100 {
			bad(p+".detectors.psi.bins", "must be between 2 and 100, got %d", d.PSI.Bins)
		}
		if d.PSI.Min < 0 {
			bad(p+".detectors.psi.min", "must not be negative, got %g", d.PSI.Min)
		}
		if d.KS.Min < 0 || d.KS.Min > 1 {
			bad(p+".detectors.ks.min", "must be between 0 and 1, got %g", d.KS.Min)
		}
		if d.Wasserstein.Min < 0 {
			bad(p+".detectors.wasserstein.min", "must not be negative, got %g", d.Wasserstein.Min)
		}
		if d.TVD.Min < 0 || d.TVD.Min > 1 {
			bad(p+".detectors.tvd.min", "must be between 0 and 1, got %g", d.TVD.Min)
		}
		if d.Multivariate.Min < 0 {
			bad(p+".detectors.multivariate.min", "must not be negative, got %g", d.Multivariate.Min)
		}
		if d.Multivariate.Variance <= 0 || d.Multivariate.Variance >= 1 {
			bad(p+".detectors.multivariate.variance", "must be between 0 and 1, got %g", d.Multivariate.Variance)
		}
		if d.Joint.Min < 0 || d.Joint.Min > 1 {
			bad(p+".detectors.joint.min", "must be between 0 and 1, got %g", d.Joint.Min)
		}
		if d.Joint.Grid < 2 || d.Joint.Grid > 8 {
			bad(p+".detectors.joint.grid", "must be between 2 and 8, got %d", d.Joint.Grid)
		}
		if d.Joint.MaxPairs < 1 || d.Joint.MaxPairs > MaxJointPairs {
			bad(p+".detectors.joint.max_pairs", "must be between 1 and %d, got %d", MaxJointPairs, d.Joint.MaxPairs)
		}
		s.Labels.validate(p, s, bad)
		s.validateObjectives(p, bad)
		s.validateSegments(p, bad)
	}
	c.validateObjectiveWebhooks(bad)
	if c.State.CheckpointRecords < 0 {
		bad("state.checkpoint_records", "must be positive, got %d", c.State.CheckpointRecords)
	}
	if c.State.CheckpointInterval < 0 {
		bad("state.checkpoint_interval", "must be positive, got %s", c.State.CheckpointInterval)
	}
	c.HTTP.validate(bad)
	c.Alerting.validate(bad)
	if p := c.Alerting.Policy; p.FireAfter < 1 || p.ResolveAfter < 1 || p.RepeatEvery < 0 || p.CriticalPSI < 0 {
		bad("alerting.policy", "fire_after and resolve_after must be at least 1, repeat_every and critical_psi not negative")
	}
	if n := c.Alerting.Policy.SupersedeAfter; n < 1 {
		bad("alerting.policy.supersede_after", "must be at least 1, got %d", n)
	}
}

// validate appends the reference's problems; p is its path.
func (r *Reference) validate(p string, w Window, bad func(string, string, ...any)) {
	if n := btoi(r.Baseline != "") + btoi(r.WarmupWindows > 0) + btoi(r.Trailing != nil) + btoi(r.Seasonal != nil); n > 1 {
		bad(p, "set one of baseline, warmup_windows, trailing and seasonal, not several")
	}
	if t := r.PerVersion; t != "" {
		rest := strings.NewReplacer("{model}", "", "{version}", "").Replace(t)
		switch {
		case strings.Contains(t, "://"):
			bad(p+".per_version", "must be a local path template (the files are read when a version appears), got %q", t)
		case !strings.Contains(t, "{version}"):
			bad(p+".per_version", "must contain {version}: each version has its own reference, got %q", t)
		case strings.ContainsAny(rest, "{}"):
			bad(p+".per_version", "knows {model} and {version} only, got %q", t)
		}
	}
	if t := r.Trailing; t != nil {
		switch {
		case t.Windows < 1:
			bad(p+".trailing.windows", "must be at least 1, got %d", t.Windows)
		case t.Windows > MaxReferenceWindows:
			bad(p+".trailing.windows", "must be at most %d (each model keeps that many window profiles), got %d", MaxReferenceWindows, t.Windows)
		}
	}
	z := r.Seasonal
	if z == nil {
		return
	}
	phases := int64(0)
	switch {
	case z.Period <= 0:
		bad(p+".seasonal.period", "must be positive (e.g. 24h, or 168h for a weekly rhythm), got %s", z.Period)
	case w.Size <= 0:
		bad(p+".seasonal", "needs event-time windows (window.size): a phase is a time of day or week")
	case z.Period%w.Size != 0 || z.Period < 2*w.Size:
		bad(p+".seasonal.period", "must be a multiple of window.size %s (at least 2 windows), got %s", w.Size, z.Period)
	default:
		phases = int64(z.Period / w.Size)
	}
	switch {
	case z.Cycles < 1:
		bad(p+".seasonal.cycles", "must be at least 1, got %d", z.Cycles)
	case phases > 0 && phases*int64(z.Cycles) > MaxReferenceWindows:
		bad(p+".seasonal", "period %s of %s windows over %d cycles is %d window profiles per model, more than %d",
			z.Period, w.Size, z.Cycles, phases*int64(z.Cycles), MaxReferenceWindows)
	}
	if z.FallbackWindows < 0 || z.FallbackWindows > MaxReferenceWindows {
		bad(p+".seasonal.fallback_windows", "must be between 0 and %d, got %d", MaxReferenceWindows, z.FallbackWindows)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func validateFields(p string, fields map[string]Field, bad func(string, string, ...any)) {
	for _, name := range SortedNames(fields) {
		f := fields[name]
		if strings.HasPrefix(name, "__") {
			bad(p+"."+name, "names starting with __ are reserved")
		}
		if f.Type != "numeric" && f.Type != "categorical" {
			bad(p+"."+name+".type", `must be "numeric" or "categorical", got %q`, f.Type)
		}
		if strings.HasPrefix(f.Path, ".") || strings.HasSuffix(f.Path, ".") || strings.Contains(f.Path, "..") {
			bad(p+"."+name+".path", "is not a dotted path: %q", f.Path)
		}
	}
}

func (a *Alerting) validate(bad func(string, string, ...any)) {
	if a.DashboardURL != "" {
		checkURL("alerting.dashboard_url", a.DashboardURL, bad)
	}
	if s := a.Slack; s != nil {
		switch {
		case s.Token == "" && s.WebhookURL == "":
			bad("alerting.slack", "set token (with channel) or webhook_url")
		case s.Token != "" && s.WebhookURL != "":
			bad("alerting.slack", "set token or webhook_url, not both")
		case s.Token != "" && s.Channel == "":
			bad("alerting.slack.channel", "is required with a token")
		}
		if s.WebhookURL != "" {
			// The URL is a secret: say what is wrong, never what it is.
			if u, err := url.Parse(s.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad("alerting.slack.webhook_url", "must be an http(s) URL")
			}
		}
		if s.APIURL != "" {
			checkURL("alerting.slack.api_url", s.APIURL, bad)
			if !strings.HasSuffix(s.APIURL, "/") {
				bad("alerting.slack.api_url", "must end in /")
			}
		}
	}
	names := map[string]bool{}
	for i, w := range a.Webhooks {
		p := fmt.Sprintf("alerting.webhooks[%d]", i)
		checkName(p, "webhook", w.Name, names, bad)
		if w.URL == "" {
			bad(p+".url", "is required")
		} else {
			checkURL(p+".url", w.URL, bad)
		}
		if w.MinFeatures < 0 || (w.MinFeatures == 0 && len(w.KeyFeatures) == 0 && len(w.Objectives) == 0) {
			bad(p+".min_features", "must be at least 1 (or name key_features or objectives), got %d", w.MinFeatures)
		}
		if w.ForWindows < 1 {
			bad(p+".for_windows", "must be at least 1, got %d", w.ForWindows)
		}
		if w.Cooldown != nil && *w.Cooldown < 0 {
			bad(p+".cooldown", "must not be negative, got %s", *w.Cooldown)
		}
		if w.OnNewFeatures && w.EveryWindow {
			bad(p+".on_new_features", "only applies without every_window (which calls in every window)")
		}
		switch w.Format {
		case "json", "airflow", "github", "argo", "jenkins":
			if w.Template != "" {
				bad(p+".template", "only applies with format: template")
			}
		case "template":
			if w.Template == "" {
				bad(p+".template", "is required with format: template")
			}
		default:
			bad(p+".format", "must be json, airflow, github, argo, jenkins or template, got %q", w.Format)
		}
		switch w.Signing {
		case "", "standard", "github":
			if w.Signing != "" && w.Secret == "" {
				bad(p+".signing", "needs a secret")
			}
		default:
			bad(p+".signing", `must be "standard" or "github", got %q`, w.Signing)
		}
		if w.Secret != "" && w.Signing == "standard" && !strings.HasPrefix(w.Secret, "whsec_") {
			bad(p+".secret", `must start with "whsec_" (Standard Webhooks secret)`)
		}
		if (w.BasicUser == "") != (w.BasicPassword == "") {
			bad(p+".basic_user", "basic_user and basic_password go together")
		}
		if (w.Header == "") != (w.HeaderValue == "") {
			bad(p+".header", "header and header_value go together")
		}
		if w.Header != "" && !isHeaderName(w.Header) {
			// Not quoted: a whole "Name: value" line pasted here holds the secret.
			bad(p+".header", "must be a header name such as X-Api-Key (its value goes in header_value)")
		}
		if n := btoi(w.BearerToken != "") + btoi(w.BasicUser != "") + btoi(w.Header != ""); n > 1 {
			bad(p, "set one of bearer_token, basic_user/basic_password, header/header_value")
		}
	}
}

// isHeaderName reports whether s is an HTTP header field name (RFC 9110 token).
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// validate appends the problems of kafka.sasl: each mechanism's keys, and no key of
// another mechanism. tls says whether kafka.tls is set.
func (a *SASL) validate(tls bool, bad func(string, string, ...any)) {
	// The keys each mechanism reads, by the mechanism that reads them.
	keys := []struct {
		mechanisms string
		set        map[string]bool
	}{
		{"PLAIN and SCRAM", map[string]bool{"username": a.Username != "", "password": a.Password != ""}},
		{"OAUTHBEARER", map[string]bool{
			"token_endpoint": a.TokenEndpoint != "", "client_id": a.ClientID != "", "client_secret": a.ClientSecret != "",
			"client_auth_method": a.ClientAuthMethod != "", "scope": a.Scope != "", "extensions": len(a.Extensions) > 0,
			"token_file": a.TokenFile != "",
		}},
		{"AWS_MSK_IAM", map[string]bool{"region": a.Region != ""}},
	}
	if m := a.ClientAuthMethod; m != "" && m != "client_secret_basic" && m != "client_secret_post" {
		bad("kafka.sasl.client_auth_method", `must be client_secret_basic or client_secret_post, got %q`, m)
	}
	own := -1
	switch a.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		own = 0
		if a.Username == "" || a.Password == "" {
			bad("kafka.sasl", "username and password (or password_file) are required with %s", a.Mechanism)
		}
	case "OAUTHBEARER":
		own = 1
		a.validateOAuth(bad)
	case "AWS_MSK_IAM":
		own = 2
		if !tls {
			bad("kafka.tls", "is required with AWS_MSK_IAM: MSK's IAM listeners (port 9098) are TLS only; `tls: {}` trusts the system's CAs")
		}
		if a.Region != "" && !awsRegion.MatchString(a.Region) {
			bad("kafka.sasl.region", "want an AWS region such as eu-west-1, got %q", a.Region)
		}
	default:
		bad("kafka.sasl.mechanism", `must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, got %q`, a.Mechanism)
	}
	if own < 0 {
		return
	}
	for i, k := range keys {
		if i == own {
			continue
		}
		var set []string
		for name, ok := range k.set {
			if ok {
				set = append(set, name)
			}
		}
		if len(set) > 0 {
			sort.Strings(set)
			bad("kafka.sasl", "%s does not use %s (keys of %s)", a.Mechanism, strings.Join(set, ", "), k.mechanisms)
		}
	}
}

// awsRegion is the shape of an AWS region's name: eu-west-1, us-gov-west-1, cn-north-1,
// eusc-de-east-1.
var awsRegion = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)

// validateOAuth appends the problems of OAUTHBEARER's keys.
func (a *SASL) validateOAuth(bad func(string, string, ...any)) {
	switch {
	case a.TokenEndpoint == "" && a.TokenFile == "":
		bad("kafka.sasl", "OAUTHBEARER needs token_endpoint (with client_id and client_secret) or token_file")
	case a.TokenEndpoint != "" && a.TokenFile != "":
		bad("kafka.sasl", "set token_endpoint or token_file, not both")
	case a.TokenFile != "":
		for _, k := range []struct {
			name string
			set  bool
		}{{"client_id", a.ClientID != ""}, {"client_secret", a.ClientSecret != ""},
			{"client_auth_method", a.ClientAuthMethod != ""}, {"scope", a.Scope != ""}} {
			if k.set {
				bad("kafka.sasl."+k.name, "goes with token_endpoint, not token_file")
			}
		}
	default:
		if u, err := url.Parse(a.TokenEndpoint); err != nil || u.Host == "" || u.Opaque != "" {
			bad("kafka.sasl.token_endpoint", "must be an https URL, got %q", a.TokenEndpoint)
		} else if host := u.Hostname(); u.Scheme != "https" &&
			!(u.Scheme == "http" && (host == "localhost" || host == "::1" || strings.HasPrefix(host, "127."))) {
			bad("kafka.sasl.token_endpoint", "must be an https URL (the client secret goes to it; http only to this machine), got %q", a.TokenEndpoint)
		}
		if a.ClientID == "" {
			bad("kafka.sasl.client_id", "is required with token_endpoint")
		}
		if a.ClientSecret == "" {
			bad("kafka.sasl.client_secret", "is required with token_endpoint (or client_secret_file)")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.Extensions)) {
		v, p := a.Extensions[k], "kafka.sasl.extensions."+k
		switch {
		case !saslExtensionKey.MatchString(k):
			bad(p, "an extension's name is letters only (RFC 7628)")
		case k == "auth":
			bad(p, "is reserved for the token")
		}
		if !saslExtensionValue.MatchString(v) {
			bad(p, "want a value of visible ASCII characters and spaces, got %q", v)
		}
	}
}

// An OAUTHBEARER extension's key and value, as RFC 7628 §3.1 allows them.
var (
	saslExtensionKey   = regexp.MustCompile(`^[A-Za-z]+$`)
	saslExtensionValue = regexp.MustCompile(`^[\x21-\x7E \t\r\n]+$`)
)

func checkURL(path, raw string, bad func(string, string, ...any)) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(path, "must be an http(s) URL, got %q", raw)
	}
}

// SortedNames returns the names of fields in order, so every consumer sees features in
// the same, deterministic order.
func SortedNames(fields map[string]Field) []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkName reports at p.name a name that is missing or that another of its kind
// ("stream", "webhook") already has, and adds it to names.
func checkName(p, kind, name string, names map[string]bool, bad func(string, string, ...any)) {
	switch {
	case name == "":
		bad(p+".name", "is required")
	case names[name]:
		bad(p+".name", "%q is used by another %s", name, kind)
	}
	names[name] = true
}
