// Package engine is a stream's window engine: Arrow records in, judged windows out. It
// owns the event-time and count windows of every (model, version), their profiles, the
// reference each is compared with (a baseline file, a warm-up, or a merge of the model's
// earlier windows: trailing or seasonal), the detectors' verdict
// on each closed window (Result), and the checkpoint encoding of all of it.
//
// The single process, a cluster's partition workers and leader, backtests and
// benchmarks all run the same engine. It does no I/O besides reading a baseline file,
// starts no goroutine, and connects to nothing. It imports ingest for the decoders'
// column names and file reader only; it must not import the monitor, the cluster
// package, or the alerting packages (bar alerting's number formatting).
package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/sketch"
)

// refs are where an engine's models take their references from.
type refs struct {
	// baseline is the reference of every model when the config names one. All models
	// of the stream read it from the engine's one goroutine.
	baseline     *sketch.Profile
	baselineName string
	// rolling is the trailing or seasonal reference rule, nil for a baseline or a
	// warm-up (history.go).
	rolling *rolling
	// handed are the references handed over per version, seen or not yet seen;
	// perVersion is reference.per_version, the path template of reference files; read
	// are the references read from those files and not yet taken by NewlyRead
	// (handover.go).
	handed     map[modelKey]*Handover
	perVersion string
	read       []*Handover
}

// Engine is one stream's windows, references and detectors: Arrow records in, window
// results out. The monitor runs one per stream behind a Kafka source; a backtest runs
// one over files. It is not safe for concurrent use: the sketches it owns are mutated
// even by reads.
type Engine struct {
	cfg        *config.Stream
	log        *slog.Logger
	fields     []sketch.Field
	spec       ingest.Spec
	sketchOpts sketch.Options
	// detOpts are the detectors' options with every default resolved.
	detOpts detectors.Options
	// objectives are the stream's objectives, judged on every closed window.
	objectives []detectors.Objective
	window     window.Spec

	// refs are where the models' references come from.
	refs refs

	models map[modelKey]*model
	// order is every model, sorted by key: the order in which windows that close
	// together are reported.
	order []*model
	// clock is the stream's event time: each partition's newest event time and the
	// watermark that closes event-time windows.
	clock *window.Clock
	// now is the wall clock, for the clock's idle partitions; tests replace it.
	now func() time.Time

	times   []int64  // scratch: event times when a record has none
	touched []*model // scratch: models with rows in the current segment of a batch

	// partial marks a cluster worker's engine of one partition (internal/cluster): a
	// closed window's result is its profile only, for the leader to merge and judge.
	partial bool

	// limits are the stream's bounds (config.Limits, defaults resolved). bounded turns
	// the event-time bounds on (BoundEventTimes); refused are the rows the last
	// ProcessPartitions refused.
	limits  config.Limits
	bounded bool
	refused []Refusal
	warned  bool // the first refused model was logged
}

// Refusal is a row the engine refused to put in any window, and why: a wrong clock or
// a flood of model names must neither blind the engine nor grow it without bound.
type Refusal struct {
	// Row is the row's index in the record.
	Row    int
	Reason ingest.Reason
}

// The reasons of refusals.
const (
	// ReasonTooManyModels is a row of a (model, version) pair past limits.max_models.
	ReasonTooManyModels ingest.Reason = "too_many_models"
	// ReasonFutureTime is a row whose event time is more than limits.max_future ahead
	// of the wall clock.
	ReasonFutureTime ingest.Reason = "event_time_future"
	// ReasonPastTime is a row whose event time is more than limits.max_past behind the
	// wall clock.
	ReasonPastTime ingest.Reason = "event_time_past"
)

// BoundEventTimes makes the engine refuse rows whose event time is out of
// limits.max_future and limits.max_past of the wall clock, so that they move no clock:
// one event stamped 2100 would otherwise close every window and make every later event
// late. A live stream calls it; a backtest, which replays history, does not.
func (e *Engine) BoundEventTimes() { e.bounded = true }

// Refused returns the rows the last ProcessPartitions refused, in row order; valid
// until the next call.
func (e *Engine) Refused() []Refusal { return e.refused }

// ForPartition returns an engine for one partition of e's stream in a cluster: the
// same fields and windows, no reference, its own clock.
func (e *Engine) ForPartition() *Engine {
	return &Engine{
		cfg: e.cfg, log: e.log, fields: e.fields, spec: e.spec, sketchOpts: e.sketchOpts, detOpts: e.detOpts, objectives: e.objectives,
		window: e.window, models: map[modelKey]*model{}, clock: window.NewClock(e.window), now: e.now, partial: true,
		limits: e.limits, bounded: e.bounded,
	}
}

// Evaluate judges a window whose profile a cluster leader merged from the partitions'
// partials, as close would have judged it in one process. The model's windows count
// as closed up to the window's end; the leader skips windows before that.
func (e *Engine) Evaluate(name, version string, w *window.Window) Result {
	m := e.model(name, version)
	m.windows.Close(w.End.UnixNano())
	return e.close(m, w)
}

// modelKey identifies what is monitored within a stream.
type modelKey struct{ model, version string }

// model is one (model, version)'s windows and reference.
type model struct {
	key     modelKey
	windows *window.Tracker
	// ref is what windows are compared with; nil while the warm-up builds it.
	ref     *sketch.Profile
	refName string
	// fromWarmup says that ref was built by the warm-up (and must be checkpointed).
	fromWarmup bool
	warmup     *sketch.Profile
	// warmupLeft is the warm-up windows still to come; with a trailing or seasonal
	// reference, 1 until the model's first event-time window has closed.
	warmupLeft int
	// history is the windows a trailing or seasonal reference merges (history.go).
	history *history
	// handed is the reference handed over for this version, which ref is; nil when
	// it has none and falls back to the stream's (handover.go).
	handed *Handover
	rows   []int // scratch: this batch's rows of this model
}

// New builds the engine of one configured stream and loads its baseline, if any.
func New(sc *config.Stream, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:    sc,
		log:    log,
		models: map[modelKey]*model{},
		window: window.Spec{Size: sc.Window.Size, Rows: sc.Window.Rows, Lateness: sc.Window.Lateness, Idle: sc.Window.Idle},
		now:    time.Now,
		detOpts: detectors.Options{
			PSIBins:              sc.Detectors.PSI.Bins,
			FDR:                  sc.Detectors.FDR,
			MinRows:              sc.Detectors.MinRows,
			MinPSI:               sc.Detectors.PSI.Min,
			MinKS:                sc.Detectors.KS.Min,
			MinWasserstein:       sc.Detectors.Wasserstein.Min,
			MinTVD:               sc.Detectors.TVD.Min,
			MinMultivariate:      sc.Detectors.Multivariate.Min,
			MultivariateVariance: sc.Detectors.Multivariate.Variance,
			MinJoint:             sc.Detectors.Joint.Min,
			JointGrid:            sc.Detectors.Joint.Grid,
			// Checked here for a baseline; a warm-up reference grows until it has them.
			MinReferenceRows: sc.Reference.MinRows,
		},
		spec: ingest.Spec{EventTime: sc.EventTime, Model: sc.Model, ModelVersion: sc.ModelVersion, Envelope: sc.Envelope},
		limits: config.Limits{
			MaxFuture: cmp.Or(sc.Limits.MaxFuture, config.DefaultMaxFuture),
			MaxPast:   sc.Limits.MaxPast,
			MaxModels: cmp.Or(sc.Limits.MaxModels, config.DefaultMaxModels),
		},
	}
	add := func(fields map[string]config.Field) {
		for _, name := range config.SortedNames(fields) {
			f := fields[name]
			kind, typ := sketch.KindNumeric, ingest.Number
			if f.Type == "categorical" {
				kind, typ = sketch.KindCategorical, ingest.String
			}
			e.fields = append(e.fields, sketch.Field{Name: name, Kind: kind})
			e.spec.Fields = append(e.spec.Fields, ingest.Field{Name: name, Path: f.Path, Type: typ})
		}
	}
	add(sc.Features)
	add(sc.Predictions)
	if sc.Labels != nil {
		// Not a monitored field: the joiner reads it (labels.go).
		e.spec.Fields = append(e.spec.Fields, ingest.Field{Name: ingest.ColEventID, Path: sc.EventID, Type: ingest.String})
	}
	e.objectives = objectivesOf(sc)
	if sc.Detectors.Multivariate.Disable {
		e.detOpts.MinMultivariate = -1
	}
	e.sketchOpts.GridPairs = sc.Detectors.Joint.MaxPairs
	if sc.Detectors.Joint.Disable {
		// No finding, and no grids to count: they are a fifth to a half of the CPU a
		// row costs (bench/README.md, "Joint drift that moves no marginal").
		e.detOpts.MinJoint, e.sketchOpts.GridPairs = -1, -1
	}
	if e.detOpts.MinReferenceRows == 0 {
		e.detOpts.MinReferenceRows = detectors.DefaultMinReferenceRows
	}
	e.sketchOpts.Segments = SegmentKeys(sc)
	for _, g := range sc.Segments {
		e.detOpts.Segments = append(e.detOpts.Segments, detectors.Segment{By: g.By, Top: g.Top})
	}
	e.clock = window.NewClock(e.window)
	e.refs.rolling = newRolling(sc.Reference, sc.Window.Size)
	e.refs.perVersion = sc.Reference.PerVersion
	if sc.Reference.Baseline != "" {
		p, err := loadBaseline(sc.Reference.Baseline, e.fields, e.sketchOpts)
		if err != nil {
			return nil, fmt.Errorf("reference.baseline: %w", err)
		}
		e.refs.baseline = p
		e.refs.baselineName = fmt.Sprintf("baseline %s (%s rows)", baseName(sc.Reference.Baseline), alerting.FormatCount(p.Rows))
	}
	return e, nil
}

// Clock is the stream's event-time clock. Callers read it (a cluster worker publishes
// whether its partition is idle and how far it has closed windows; the label join waits
// for its watermark); only the engine moves it.
func (e *Engine) Clock() *window.Clock { return e.clock }

// DetectorOptions are the detectors' options with every default resolved.
func (e *Engine) DetectorOptions() detectors.Options { return e.detOpts }

// ClosedTo is how far (Unix ns) the windows of (model, version) are closed, and false
// when the engine has not seen that model.
func (e *Engine) ClosedTo(model, version string) (int64, bool) {
	m := e.models[modelKey{model, version}]
	if m == nil {
		return 0, false
	}
	return m.windows.ClosedTo(), true
}

// CountLate counts rows of (model, version) as late: a cluster leader's rows of a
// window it had judged already, without their partition (idle then).
func (e *Engine) CountLate(model, version string, rows int64) {
	if m := e.models[modelKey{model, version}]; m != nil {
		m.windows.CountLate(rows)
	}
}

// WindowSize is the length of the stream's event-time windows (0: count windows).
func (e *Engine) WindowSize() time.Duration { return e.window.Size }

// DecoderSpec is what a JSON decoder must extract for this engine.
func (e *Engine) DecoderSpec() ingest.Spec { return e.spec }

// Fields are the monitored features and predictions, in order.
func (e *Engine) Fields() []sketch.Field { return e.fields }

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (e *Engine) newProfile() *sketch.Profile { return sketch.NewProfile(e.fields, e.sketchOpts) }

// Process feeds each row of rec to its model's window and returns the results of the
// windows that closed. Columns are found by name: the features, and optionally
// ingest.ColEventTime (Int64 Unix nanoseconds; without it every row has time 0, which
// suits count windows only), ingest.ColModel and ingest.ColModelVersion (String;
// without them, or where null, the model is the stream's name and the version "").
// Every row counts as coming from partition 0: one ordered input, such as a file.
func (e *Engine) Process(rec arrow.Record) []Result { return e.ProcessPartitions(rec, nil) }

// ProcessPartitions is Process for rows read from several partitions of a topic:
// partitions[i] is row i's partition (nil means all 0). Each partition's event times
// move the watermark that closes event-time windows (window.Clock), row by row, so the
// windows and late events do not depend on how the input was cut into batches.
func (e *Engine) ProcessPartitions(rec arrow.Record, partitions []int32) []Result {
	results := e.Tick()
	n := int(rec.NumRows())
	times := e.timesOf(rec)
	models := ingest.StringColumn(rec, ingest.ColModel)
	versions := ingest.StringColumn(rec, ingest.ColModelVersion)
	e.refused = e.refused[:0]
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if e.bounded {
		now := e.now().UnixNano()
		hi = now + int64(e.limits.MaxFuture)
		if e.limits.MaxPast > 0 {
			lo = now - int64(e.limits.MaxPast)
		}
	}

	// Group rows by model. Almost every batch holds one model, so remember the last.
	var last *model
	for i := 0; i < n; i++ {
		if t := times[i]; t > hi || t < lo {
			reason := ReasonFutureTime
			if t < lo {
				reason = ReasonPastTime
			}
			e.refused = append(e.refused, Refusal{i, reason})
			continue
		}
		name, version := e.cfg.Name, ""
		if models != nil && models.IsValid(i) {
			name = models.Value(i)
		}
		if versions != nil && versions.IsValid(i) {
			version = versions.Value(i)
		}
		m := last
		if m == nil || m.key.model != name || m.key.version != version {
			m = e.admit(name, version)
			last = m
		}
		switch {
		case m == nil:
			// Past limits.max_models: in no window, but its time is the partition's.
			e.refused = append(e.refused, Refusal{i, ReasonTooManyModels})
		case len(m.rows) == 0:
			e.touched = append(e.touched, m)
			fallthrough
		default:
			m.rows = append(m.rows, i)
		}
		var p int32
		if partitions != nil {
			p = partitions[i]
		}
		if e.clock.Observe(p, times[i]) {
			// The watermark passed a window end at this row: what came before it goes
			// into its windows, then the windows close.
			results = e.addRows(rec, times, partitions, results)
			results = e.closeWindows(results)
		}
	}
	return e.addRows(rec, times, partitions, results)
}

// addRows adds the rows gathered for each model since the last call to their windows;
// partitions[i] is row i's partition (nil: all 0), which the profiles' pair grids keep
// apart (sketch.Grid).
func (e *Engine) addRows(rec arrow.Record, times []int64, partitions []int32, results []Result) []Result {
	for _, m := range e.touched {
		for _, w := range m.windows.Add(rec, times, m.rows, partitions) {
			results = append(results, e.close(m, w))
		}
		m.rows = m.rows[:0]
	}
	e.touched = e.touched[:0]
	return results
}

// closeWindows closes the event-time windows of every model that the watermark has
// passed, model by model in key order.
func (e *Engine) closeWindows(results []Result) []Result {
	for _, m := range e.order {
		for _, w := range m.windows.Close(e.clock.ClosedTo()) {
			results = append(results, e.close(m, w))
		}
	}
	return results
}

// Tick lets the wall clock act: a partition silent for longer than the idle timeout
// stops holding the watermark back (window.DefaultIdle), which may close windows.
// Process calls it; a caller with no rows to process calls it now and then.
func (e *Engine) Tick() []Result {
	if e.clock.Tick(e.now()) {
		return e.closeWindows(nil)
	}
	return nil
}

// Assign says which partitions the engine's input now comes from (after a Kafka
// rebalance, say): only those hold the watermark back. It returns the results of the
// windows that close when a partition no longer read was the one holding them open.
func (e *Engine) Assign(partitions []int32) []Result {
	if e.clock.Assign(partitions, e.now()) {
		return e.closeWindows(nil)
	}
	return nil
}

// Late is how many events arrived after their window had closed, over all models: they
// were counted, not merged into any window.
func (e *Engine) Late() int64 {
	var n int64
	for _, m := range e.order {
		n += m.windows.Late()
	}
	return n
}

// Watermark is the event time up to which the engine has seen every partition
// (window.Clock), or the zero time before any event.
func (e *Engine) Watermark() time.Time {
	wm := e.clock.Watermark()
	if wm == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, wm).UTC()
}

// Flush closes every open window, however full, and returns their results: the end
// of a backtest's input.
func (e *Engine) Flush() []Result {
	var results []Result
	for _, m := range e.order {
		for _, w := range m.windows.Flush() {
			results = append(results, e.close(m, w))
		}
	}
	return results
}

func (e *Engine) timesOf(rec arrow.Record) []int64 {
	if c := ingest.Column[*array.Int64](rec, ingest.ColEventTime); c != nil {
		return c.Int64Values()
	}
	n := int(rec.NumRows())
	if cap(e.times) < n {
		e.times = make([]int64, n)
	}
	return e.times[:n]
}

// admit is model for a row: nil when (name, version) is new and the stream monitors
// limits.MaxModels pairs already. The first refusal is logged: a flood of model names
// (a request id in the model field) must not grow memory and metrics without bound.
func (e *Engine) admit(name, version string) *model {
	if m, ok := e.models[modelKey{name, version}]; ok {
		return m
	}
	if len(e.models) >= e.limits.MaxModels {
		if !e.warned {
			e.warned = true
			e.log.Warn("more (model, version) pairs than limits.max_models: rows of the others are rejected (too_many_models)",
				"max_models", e.limits.MaxModels, "first_refused_model", name, "version", version)
		}
		return nil
	}
	return e.model(name, version)
}

// model returns the state of (name, version), creating it on first sight. The strings
// may point into an Arrow buffer, so a new key is copied.
func (e *Engine) model(name, version string) *model {
	if m, ok := e.models[modelKey{name, version}]; ok {
		return m
	}
	key := modelKey{strings.Clone(name), strings.Clone(version)}
	m := &model{key: key, windows: window.NewTracker(e.window, e.newProfile, e.clock.ClosedTo())}
	switch {
	case e.refs.rolling != nil:
		m.history = &history{}
		if e.window.Size > 0 {
			m.warmupLeft = 1 // its first window is left out, see warmUp
		}
	case e.refs.baseline != nil:
		m.ref, m.refName = e.refs.baseline, e.refs.baselineName
	default:
		m.warmupLeft = e.cfg.Reference.WarmupWindows
		if e.window.Size > 0 {
			m.warmupLeft++ // its first window is left out of the warm-up, see warmUp
		}
	}
	if h := e.refs.handed[key]; h != nil {
		e.useHandover(m, h)
	} else if h := e.readHandover(key.model, key.version); h != nil {
		e.useHandover(m, h)
	}
	e.addModel(m)
	if !e.partial {
		e.log.Info("new model", "model", key.model, "version", key.version, "reference", e.referenceOf(m))
	}
	return m
}

// referenceOf names m's reference for the log of a new model.
func (e *Engine) referenceOf(m *model) string {
	if m.handed != nil {
		return m.refName
	}
	return e.Fallback()
}

// addModel registers m, keeping e.order sorted by key.
func (e *Engine) addModel(m *model) {
	e.models[m.key] = m
	i := sort.Search(len(e.order), func(i int) bool { return !e.order[i].key.less(m.key) })
	e.order = append(e.order, nil)
	copy(e.order[i+1:], e.order[i:])
	e.order[i] = m
}

func (k modelKey) less(o modelKey) bool {
	if k.model != o.model {
		return k.model < o.model
	}
	return k.version < o.version
}

// close turns a closed window into a result: compared with the version's handed-over
// reference or the stream's, or added to the reference while that is being built. A
// result of a stream whose versions may have references of their own says when the
// version has none.
func (e *Engine) close(m *model, w *window.Window) Result {
	// The window gets no more rows: its grid's partitions fold into one, in
	// partition order, as a cluster's leader merges them.
	w.Profile.Seal()
	r := Result{
		Stream: e.cfg.Name, Model: m.key.model, ModelVersion: m.key.version,
		Start: w.Start, End: w.End, Rows: w.Profile.Rows,
		Profile: w.Profile,
	}
	switch {
	case e.partial:
	case m.handed != nil:
		// Training data says nothing about how many rows a window holds.
		e.judge(&r, m.ref, m.refName, 0)
	default:
		e.closeFallback(m, w, &r)
		if e.takesHandovers() {
			r.Reference = "no reference handed over for " + versionName(m.key.model, m.key.version) + ": " + r.Reference
		}
	}
	if !e.partial {
		// Objectives need no reference: warm-up windows are judged too. A model's first
		// event-time window may hold only part of its traffic, so its rows are not.
		r.Objectives = detectors.EvaluateObjectives(w.Profile, e.objectives, e.window.Size, r.firstWindow)
		r.Latency = latencyOf(w.Profile, e.cfg.LatencyField, e.window.Size)
	}
	return r
}

// firstWindowNote is the reference of a model's first event-time window, which is
// neither judged nor kept in a warm-up or rolling reference.
const firstWindowNote = "first window: traffic may have started within it; not part of the reference"

// objectivesOf is the stream's configured objectives as the detectors take them.
func objectivesOf(sc *config.Stream) []detectors.Objective {
	out := make([]detectors.Objective, 0, len(sc.Objectives))
	for _, o := range sc.Objectives {
		d := detectors.Objective{Name: o.Name, Field: o.Field, Stat: o.Stat, Quantile: o.Quantile,
			Category: o.Category, Min: math.Inf(-1), Max: math.Inf(1), Unit: o.Unit}
		if o.Min != nil {
			d.Min = *o.Min
		}
		if o.Max != nil {
			d.Max = *o.Max
		}
		out = append(out, d)
	}
	return out
}

// closeFallback judges a window of a version without a handed-over reference against
// the stream's reference, or adds it to the reference being built.
func (e *Engine) closeFallback(m *model, w *window.Window, r *Result) {
	if e.refs.rolling != nil {
		e.closeRolling(m, w, r)
		return
	}
	if m.ref == nil {
		e.warmUp(m, w, r)
		return
	}
	expected := 0.0
	if m.fromWarmup {
		// A warm-up reference is made of windows like this one, so its rows per
		// window are what a window should hold. A baseline (training data) says
		// nothing about traffic. A warm-up that ran longer to reach
		// reference.min_rows spans more windows.
		expected = float64(m.ref.Rows) / float64(max(1, e.windowsIn(m.ref)))
	}
	e.judge(r, m.ref, m.refName, expected)
}

// judge compares r's window with ref, named name. expectedRows is how many rows the
// window should hold, for the volume check of event-time windows (0: none; a count
// window's size is fixed).
func (e *Engine) judge(r *Result, ref *sketch.Profile, name string, expectedRows float64) {
	r.Reference, r.ReferenceProfile = name, ref
	r.Findings = detectors.Evaluate(ref, r.Profile, e.detOpts)
	q := detectors.QualityOptions{FDR: e.detOpts.FDR, MinRows: e.detOpts.MinRows}
	if e.window.Size > 0 {
		q.ExpectedRows = expectedRows
	}
	r.Quality = detectors.EvaluateQuality(ref, r.Profile, q)
}

// warmUp adds a closed window to the model's warm-up reference, which becomes the
// reference once it holds reference.warmup_windows windows and reference.min_rows rows.
//
// A model's first event-time window never joins it: the monitor, or the model's
// traffic, almost always starts within a window, which then holds only part of a
// window's rows, and a reference made with it would carry the noise of a small sample
// as if it were a large one (the demo's 3,200-row reference held a 700-row first
// window whose mean was 3 standard errors off). Telling a whole first window from a
// partial one would take the first event of every partition, which arrive in an order
// that depends on the partitions and the format; leaving the first window out always
// keeps the reference, and so every verdict, the same whatever that order. Count
// windows are always whole.
func (e *Engine) warmUp(m *model, w *window.Window, r *Result) {
	n := e.cfg.Reference.WarmupWindows
	r.Warmup = true
	if e.window.Size > 0 && m.warmupLeft > n {
		m.warmupLeft--
		r.Reference, r.firstWindow = firstWindowNote, true
		return
	}
	if m.warmup == nil {
		m.warmup = w.Profile
	} else if err := m.warmup.Merge(w.Profile); err != nil {
		panic("BUG: profiles of one stream have different fields: " + err.Error())
	}
	minRows := e.detOpts.MinReferenceRows
	if m.warmupLeft > 0 {
		m.warmupLeft--
		r.Reference = fmt.Sprintf("warm-up: %d of %d windows", n-m.warmupLeft, n)
	}
	switch {
	case m.warmupLeft > 0:
		return
	case m.warmup.Rows < minRows:
		r.Reference = fmt.Sprintf("warm-up: %s of the %s rows a reference needs (reference.min_rows)",
			alerting.FormatCount(m.warmup.Rows), alerting.FormatCount(minRows))
		return
	}
	m.ref, m.fromWarmup = m.warmup, true
	m.refName = fmt.Sprintf("first %d window(s) after start (%s rows)", n, alerting.FormatCount(m.ref.Rows))
	if windows := e.windowsIn(m.ref); windows > n {
		m.refName = fmt.Sprintf("first %d windows after start (%s rows)", windows, alerting.FormatCount(m.ref.Rows))
	}
	m.warmup = nil
}

// windowsIn is how many windows a warm-up reference spans: its span over the window
// size for event-time windows, its rows over the window's for count windows.
func (e *Engine) windowsIn(p *sketch.Profile) int {
	if e.window.Size > 0 {
		return int(math.Round(float64(p.End.Sub(p.Start)) / float64(e.window.Size)))
	}
	return int(p.Rows) / max(1, e.window.Rows)
}
