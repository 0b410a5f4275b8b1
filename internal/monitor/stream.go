package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/sketch"
)

// source delivers batches of messages until ctx is done: Kafka in production, a file or
// a slice in backtests and tests.
type source interface {
	Run(ctx context.Context, handle func(ctx context.Context, batch []ingest.Message) error) error
}

// modelKey identifies what is monitored within a stream.
type modelKey struct{ model, version string }

// model is one (model, version)'s windows and reference.
type model struct {
	key     modelKey
	windows *window.Tracker
	// ref is what windows are compared with; nil while the warm-up builds it.
	ref        *sketch.Profile
	refName    string
	warmup     *sketch.Profile
	warmupLeft int
	rows       []int // scratch: this batch's rows of this model
}

// stream is one configured stream and everything its goroutine owns.
type stream struct {
	cfg        *config.Stream
	log        *slog.Logger
	src        source
	dec        *ingest.JSONDecoder
	fields     []sketch.Field
	sketchOpts sketch.Options
	detOpts    detectors.Options
	window     window.Spec

	baseline     *sketch.Profile // shared read-only template, cloned per model
	baselineName string

	models map[modelKey]*model

	// Counters, written by the stream's goroutine once per batch and read by Stats.
	mu       sync.Mutex
	events   int64
	rejected map[ingest.Reason]int64
	lastLog  time.Time
}

func newStream(cfg *config.Config, sc *config.Stream, log *slog.Logger) (*stream, error) {
	s := &stream{
		cfg:      sc,
		log:      log,
		models:   map[modelKey]*model{},
		rejected: map[ingest.Reason]int64{},
		window:   window.Spec{Size: sc.Window.Size, Rows: sc.Window.Rows},
		detOpts: detectors.Options{
			PSIBins: sc.Detectors.PSI.Bins,
			FDR:     sc.Detectors.FDR,
			MinRows: sc.Detectors.MinRows,
			MinPSI:  sc.Detectors.PSI.Min,
			MinKS:   sc.Detectors.KS.Min,
		},
	}
	spec := ingest.Spec{EventTime: sc.EventTime, Model: sc.Model, ModelVersion: sc.ModelVersion, Envelope: sc.Envelope}
	add := func(fields map[string]config.Field) {
		for _, name := range config.SortedNames(fields) {
			f := fields[name]
			kind, typ := sketch.KindNumeric, ingest.Number
			if f.Type == "categorical" {
				kind, typ = sketch.KindCategorical, ingest.String
			}
			s.fields = append(s.fields, sketch.Field{Name: name, Kind: kind})
			spec.Fields = append(spec.Fields, ingest.Field{Name: name, Path: f.Path, Type: typ})
		}
	}
	add(sc.Features)
	add(sc.Predictions)

	dec, err := ingest.NewJSONDecoder(spec, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	s.dec = dec
	src, err := ingest.NewKafka(ingest.KafkaOptions{
		Brokers:       cfg.Kafka.Brokers,
		Topic:         sc.Topic,
		GroupID:       cfg.Kafka.GroupID,
		StartAtLatest: cfg.Kafka.StartOffset == "latest",
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	s.src = src
	if sc.Reference.Baseline != "" {
		p, err := loadBaseline(sc.Reference.Baseline, s.fields, s.sketchOpts)
		if err != nil {
			return nil, fmt.Errorf("reference.baseline: %w", err)
		}
		s.baseline = p
		s.baselineName = fmt.Sprintf("baseline %s (%s rows)", baseName(sc.Reference.Baseline), alerting.FormatCount(p.Rows))
	}
	return s, nil
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (s *stream) newProfile() *sketch.Profile { return sketch.NewProfile(s.fields, s.sketchOpts) }

// handle decodes one batch, feeds each row to its model's window, and returns the
// results of the windows that closed.
func (s *stream) handle(batch []ingest.Message) []Result {
	rec, rejected := s.dec.Decode(batch)
	defer rec.Release()
	s.count(rec.NumRows(), rejected)

	times := rec.Column(0).(*array.Int64).Int64Values()
	models := rec.Column(1).(*array.String)
	versions := rec.Column(2).(*array.String)

	// Group rows by model. Almost every batch holds one model, so remember the last.
	var last *model
	var touched []*model
	for i := 0; i < int(rec.NumRows()); i++ {
		name, version := s.cfg.Name, ""
		if models.IsValid(i) {
			name = models.Value(i)
		}
		if versions.IsValid(i) {
			version = versions.Value(i)
		}
		m := last
		if m == nil || m.key.model != name || m.key.version != version {
			m = s.model(name, version)
			last = m
		}
		if len(m.rows) == 0 {
			touched = append(touched, m)
		}
		m.rows = append(m.rows, i)
	}
	var results []Result
	for _, m := range touched {
		for _, w := range m.windows.Add(rec, times, m.rows) {
			results = append(results, s.close(m, w))
		}
		m.rows = m.rows[:0]
	}
	return results
}

// model returns the state of (name, version), creating it on first sight. The strings
// may point into an Arrow buffer, so a new key is copied.
func (s *stream) model(name, version string) *model {
	if m, ok := s.models[modelKey{name, version}]; ok {
		return m
	}
	key := modelKey{strings.Clone(name), strings.Clone(version)}
	m := &model{key: key, windows: window.NewTracker(s.window, s.newProfile)}
	if s.baseline != nil {
		m.ref, m.refName = s.baseline, s.baselineName
	} else {
		m.warmupLeft = s.cfg.Reference.WarmupWindows
	}
	s.models[key] = m
	s.log.Info("new model", "model", key.model, "version", key.version)
	return m
}

// close turns a closed window into a result: compared with the reference, or added to
// the warm-up reference while that is being built.
func (s *stream) close(m *model, w *window.Window) Result {
	r := Result{
		Stream: s.cfg.Name, Model: m.key.model, ModelVersion: m.key.version,
		Start: w.Start, End: w.End, Rows: w.Profile.Rows,
	}
	if m.ref == nil {
		if m.warmup == nil {
			m.warmup = w.Profile
		} else if err := m.warmup.Merge(w.Profile); err != nil {
			panic("BUG: profiles of one stream have different fields: " + err.Error())
		}
		m.warmupLeft--
		r.Warmup = true
		r.Reference = fmt.Sprintf("warm-up: %d of %d windows", s.cfg.Reference.WarmupWindows-m.warmupLeft, s.cfg.Reference.WarmupWindows)
		if m.warmupLeft <= 0 {
			m.ref = m.warmup
			m.refName = fmt.Sprintf("first %d window(s) after start (%s rows)", s.cfg.Reference.WarmupWindows, alerting.FormatCount(m.ref.Rows))
			m.warmup = nil
		}
		return r
	}
	r.Reference = m.refName
	r.Findings = detectors.Evaluate(m.ref, w.Profile, s.detOpts)
	return r
}

// alert turns a result with drift into an alert.
func (s *stream) alert(r Result, dashboard string) (alerting.Alert, bool) {
	a := alerting.Alert{
		ID:     alerting.AlertID(r.Stream, r.Model, r.ModelVersion, r.Start),
		Stream: r.Stream, Model: r.Model, ModelVersion: r.ModelVersion,
		WindowStart: r.Start, WindowEnd: r.End, Rows: r.Rows,
		Reference: r.Reference, DashboardURL: dashboard,
		Severity: alerting.SeverityWarning,
	}
	for _, f := range r.Findings {
		switch f.Verdict {
		case detectors.Drift:
			a.Drifted = append(a.Drifted, alerting.Change{
				Feature: f.Feature, Detector: f.Detector, Score: f.Score,
				Threshold: f.Threshold, PValue: f.AdjustedP, Summary: f.Summary(),
			})
			if f.PSI >= criticalPSI {
				a.Severity = alerting.SeverityCritical
			}
		case detectors.Stable:
			a.Stable = append(a.Stable, f.Feature)
		default:
			a.Insufficient = append(a.Insufficient, f.Feature)
		}
	}
	sort.SliceStable(a.Drifted, func(i, j int) bool { return a.Drifted[i].Score > a.Drifted[j].Score })
	return a, len(a.Drifted) > 0
}

// criticalPSI is the PSI at which an alert is critical rather than a warning: the
// industry's "significant shift" mark, used here for severity only, never for the
// decision itself.
const criticalPSI = 0.25

// count adds a batch's decoded rows and rejected messages (per reason) to the stream's
// counters, and logs a sample of the rejections at most every ten seconds.
func (s *stream) count(rows int64, rejected []ingest.Rejected) {
	s.mu.Lock()
	s.events += rows
	for _, r := range rejected {
		s.rejected[r.Reason]++
	}
	s.mu.Unlock()
	if len(rejected) > 0 && time.Since(s.lastLog) > 10*time.Second {
		s.lastLog = time.Now()
		s.log.Warn("messages rejected", "sample", rejected[0].Err, "in_batch", len(rejected))
	}
}

// Stats are a stream's counters since start.
type Stats struct {
	// Events is how many messages were decoded into rows.
	Events int64
	// Rejected counts the messages that could not be decoded, by reason.
	Rejected map[string]int64
}

func (s *stream) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Events: s.events, Rejected: make(map[string]int64, len(s.rejected))}
	for r, n := range s.rejected {
		st.Rejected[string(r)] = n
	}
	return st
}
