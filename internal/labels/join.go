// Package labels joins a stream's predictions with the ground truth that arrives later on
// another topic, by event id, and judges each event-time window's model performance
// (accuracy, ROC AUC, RMSE...), its label drift and its CBPE estimate: provisional while
// labels may still come, final once labels.max_delay has passed on both topics.
//
// It owns the join's memory and its state-file encoding; the monitor owns the Kafka
// source of the labels and when the join is saved. It imports ingest for the JSON
// decoder of label messages only, and must not import the monitor or alerting.
package labels

import (
	"cmp"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/sketch"
)

// Result is what the labels joined so far say about one event-time window
// of one model: its metrics, how many of its predictions have a label, and the alert
// rule's verdict. A window is handed out again each time late labels revise it, and
// a last time when it is final.
type Result struct {
	Stream, Model, ModelVersion string
	Start, End                  time.Time
	// Final says that no label can change the window any more: both topics' event
	// time has passed its end plus labels.max_delay. Until then it is provisional.
	Final bool
	// Predictions is how many of the window's predictions carry an event id and a
	// score; Labelled how many of them have been joined with a label.
	Predictions, Labelled int64
	// Metrics are computed from the labelled predictions.
	Metrics detectors.Metrics
	// Verdict is the performance rule's outcome; Verdict.Rule says why.
	Verdict detectors.PerformanceVerdict
	// Reference describes what the relative rule compared with.
	Reference string
	// Estimated is the classification metrics estimated from all the window's scores,
	// labelled or not, calibrated on the reference windows' labels (CBPE): what
	// the window's performance will be if the score–outcome relation is what it
	// was. N is 0 for regression.
	Estimated detectors.Estimate
	// LabelShift compares the window's labels (positive rate, or mean) with the
	// reference windows': label drift, with the features' tests and minimums.
	LabelShift detectors.LabelShift
	// Revision counts the earlier hand-outs of this window's result.
	Revision int
	// Decided marks the one hand-out of the window that the alert policy judges: the
	// first that is degraded, or else the final one. A provisional window within its
	// rule may still degrade as labels come, so only its final result says it is fine.
	// Its label shift is judged with it: a window is observed once, so that the
	// policy's counts of consecutive windows stay true.
	Decided bool
}

// Coverage is the share of the window's predictions that have a label.
func (r Result) Coverage() float64 {
	if r.Predictions == 0 {
		return math.NaN()
	}
	return float64(r.Labelled) / float64(r.Predictions)
}

// Status is "final" or "provisional".
func (r Result) Status() string {
	if r.Final {
		return "final"
	}
	return "provisional"
}

// Stats are the join's counters.
type Stats struct {
	// Labels is how many label messages decoded; Matched how many were joined with
	// their prediction.
	Labels, Matched int64
	// Expired counts labels whose prediction never came within max_delay, and
	// TooLate labels whose prediction's window was already final.
	Expired, TooLate int64
	// Unlabelled counts predictions of final windows that never got a label.
	Unlabelled int64
	// Duplicates counts second labels (or predictions) of one event id: the first
	// is kept.
	Duplicates int64
	// LatePredictions counts predictions whose window was already final.
	LatePredictions int64
	// Lost counts label messages deleted from their topic (retention) before they
	// were read; each loss is also logged as an error.
	Lost int64
	// Rejected counts label messages that could not be decoded, by reason.
	Rejected map[string]int64
}

// Join joins a stream's predictions with the labels that arrive later on another
// topic, by event id, and keeps per event-time window of each model what the metrics
// need (sketch.Performance).
//
// Memory: a prediction costs its id and 40-odd bytes until its window is final
// (max_delay after its end), labelled or not, so that a second label of its id is
// known as a duplicate; a label whose prediction has not been read yet (the labels
// topic read ahead of the predictions) is kept the same way. With a state file both are also written to it, incrementally with each
// checkpoint (only what changed since the last one), so that a restart loses nothing
// and a checkpoint does not cost the whole map.
//
// Determinism: a window is final when the predictions' watermark and the labels'
// watermark (each the slowest partition's newest event time minus window.lateness,
// see window.Clock) have both passed its end plus max_delay, and a label counts only
// if its own time is within that too. How fast each topic is read then changes
// nothing in a final window, as long as each labels partition is in time order give or
// take window.lateness.
type Join struct {
	setup

	preds   map[string]pendingPred
	orphans map[string]orphanLabel
	windows map[winKey]*perfWindow
	refs    map[modelKey][]*sketch.Performance
	// refInfo is what refs say about labels (pooled, calibration), made once when a
	// model's refs change, not for every window judged each batch.
	refInfo map[modelKey]*detectors.PerformanceReference
	clock   *window.Clock // the labels' event time
	spec    window.Spec   // the clock's
	predWM  int64         // the predictions' watermark
	next    map[int]int64 // the labels topic's next offsets
	stats   Stats
	lost    atomic.Int64 // label messages lost, from the source's goroutines
	// published is a copy of the counters as of the latest batch, for readers on
	// other goroutines (the API), who must not wait for a batch to end.
	published atomic.Pointer[Stats]
	// changed are the ids whose pending entry changed since the last checkpoint.
	changedPreds, changedOrphans map[string]bool
}

// setup is what New makes of the stream's configuration, fixed for the life of a Join.
type setup struct {
	stream   string
	cfg      config.Labels
	rule     detectors.PerformanceRule
	detOpts  detectors.Options // the label shift's test level and minimums
	kind     sketch.PerformanceKind
	size     int64 // window size, ns
	maxDelay int64 // ns
	dec      *ingest.JSONDecoder
}

// modelKey identifies what is monitored within a stream.
type modelKey struct{ model, version string }

// winKey is one event-time window of one model.
type winKey struct {
	model modelKey
	start int64
}

// pendingPred is a prediction of a window that is not final: waiting for its label,
// or matched (kept so that a second label of its id is known as a duplicate).
type pendingPred struct {
	win     winKey
	score   float64
	matched bool
}

// orphanLabel is a label waiting for its prediction.
type orphanLabel struct {
	value float64 // 1/0 for classification
	at    int64   // label time, ns
}

// perfWindow is one window's joined labels.
type perfWindow struct {
	key         winKey
	predictions int64
	perf        *sketch.Performance
	scores      *sketch.ScoreHistogram // every prediction's score (classification)
	revised     bool                   // changed since it was last handed out
	sent        int                    // hand-outs so far
	decided     bool                   // the policy has judged it
}

func New(sc *config.Stream, detOpts detectors.Options) (*Join, error) {
	l := *sc.Labels
	spec := ingest.Spec{EventTime: l.EventTime, Fields: []ingest.Field{{Name: ingest.ColEventID, Path: l.EventID, Type: ingest.String}}}
	kind := sketch.Classification
	labelType := ingest.String
	if l.Kind == "regression" {
		kind, labelType = sketch.Regression, ingest.Number
	}
	spec.Fields = append(spec.Fields, ingest.Field{Name: "label", Path: l.Label, Type: labelType})
	spec.MaxMessageBytes = sc.MaxMessageBytes
	dec, err := ingest.NewJSONDecoder(spec, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	r := sc.Performance
	rule := detectors.PerformanceRule{Metric: r.Metric, Min: math.NaN(), Max: math.NaN(), Relative: r.Relative != nil && *r.Relative, FDR: sc.Detectors.FDR}
	if r.Min != nil {
		rule.Min = *r.Min
	}
	if r.Max != nil {
		rule.Max = *r.Max
	}
	j := &Join{
		setup: setup{stream: sc.Name, cfg: l, rule: rule, detOpts: detOpts, kind: kind, dec: dec,
			size: int64(sc.Window.Size), maxDelay: int64(l.MaxDelay)},
		preds: map[string]pendingPred{}, orphans: map[string]orphanLabel{},
		windows: map[winKey]*perfWindow{}, refs: map[modelKey][]*sketch.Performance{},
		refInfo: map[modelKey]*detectors.PerformanceReference{},
		spec:    window.Spec{Size: sc.Window.Size, Lateness: sc.Window.Lateness, Idle: sc.Window.Idle},
		predWM:  math.MinInt64, next: map[int]int64{},
		stats:        Stats{Rejected: map[string]int64{}},
		changedPreds: map[string]bool{}, changedOrphans: map[string]bool{},
	}
	j.clock = window.NewClock(j.spec)
	return j, nil
}

// final reports whether the window starting at start can no longer change.
func (j *Join) final(start int64) bool {
	due := start + j.size + j.maxDelay
	return j.predWM >= due && j.clock.Watermark() >= due
}

// AddPredictions takes the predictions of a decoded record: each row with an event id
// and a score waits for its label, or meets the label that came first. skip are rows
// the window engine refused (a wrong clock, a model past limits.max_models), in
// ascending order: they join nothing either, so the join's windows stay as bounded as
// the engine's.
func (j *Join) AddPredictions(rec arrow.Record, times []int64, scoreCol string, skip []int) {
	ids := ingest.StringColumn(rec, ingest.ColEventID)
	scores := ingest.Column[*array.Float64](rec, scoreCol)
	if ids == nil || scores == nil {
		return
	}
	models := ingest.StringColumn(rec, ingest.ColModel)
	versions := ingest.StringColumn(rec, ingest.ColModelVersion)
	var last *perfWindow
	for i := range int(rec.NumRows()) {
		if len(skip) > 0 && skip[0] == i {
			skip = skip[1:]
			continue
		}
		if !ids.IsValid(i) || !scores.IsValid(i) || math.IsNaN(scores.Value(i)) {
			continue
		}
		mk := modelKey{j.stream, ""}
		if models != nil && models.IsValid(i) {
			mk.model = models.Value(i)
		}
		if versions != nil && versions.IsValid(i) {
			mk.version = versions.Value(i)
		}
		start := window.StartOf(times[i], j.size)
		if j.final(start) {
			j.stats.LatePredictions++
			continue
		}
		w := last
		if w == nil || w.key.start != start || w.key.model != mk {
			w = j.window(winKey{mk, start})
			last = w
		}
		id := ids.Value(i)
		if _, dup := j.preds[id]; dup {
			j.stats.Duplicates++
			continue
		}
		w.predictions++
		w.revised = true
		score := scores.Value(i)
		if w.scores != nil {
			w.scores.Add(score)
		}
		id = strings.Clone(id)
		p := pendingPred{win: w.key, score: score}
		if o, ok := j.orphans[id]; ok {
			delete(j.orphans, id)
			j.changedOrphans[id] = true
			j.match(w, score, o.value)
			p.matched = true
		}
		j.preds[id] = p
		j.changedPreds[id] = true
	}
}

// window returns the window of key, opening it on first sight.
func (j *Join) window(key winKey) *perfWindow {
	w := j.windows[key]
	if w == nil {
		key.model = modelKey{strings.Clone(key.model.model), strings.Clone(key.model.version)}
		w = &perfWindow{key: key, perf: sketch.NewPerformance(j.kind, j.cfg.Threshold)}
		if j.kind == sketch.Classification {
			w.scores = sketch.NewScoreHistogram()
		}
		j.windows[key] = w
	}
	return w
}

// match adds a joined pair to its window.
func (j *Join) match(w *perfWindow, score, label float64) {
	if j.kind == sketch.Classification {
		w.perf.AddClassification(score, label == 1)
	} else {
		w.perf.AddRegression(score, label)
	}
	w.revised = true
	j.stats.Matched++
}

// addLabels decodes a batch of label messages and joins each with its prediction, or
// keeps it until the prediction comes.
func (j *Join) AddLabels(batch []ingest.Message) {
	rec, rejected := j.dec.Decode(batch)
	defer rec.Release()
	for _, r := range rejected {
		j.stats.Rejected[string(r.Reason)]++
	}
	ids := ingest.StringColumn(rec, ingest.ColEventID)
	times := rec.Column(0).(*array.Int64).Int64Values()
	n := int(rec.NumRows())
	// Each row's partition: the batch minus the rejected messages, in order.
	part := make([]int32, 0, n)
	skip := 0
	for i, m := range batch {
		if skip < len(rejected) && rejected[skip].Index == i {
			skip++
			continue
		}
		part = append(part, int32(m.Partition))
	}
	for i := range n {
		j.clock.Observe(part[i], times[i])
		if !ids.IsValid(i) {
			j.stats.Rejected["missing_event_id"]++
			continue
		}
		value, ok := j.labelValue(rec, i)
		if !ok {
			j.stats.Rejected["bad_label"]++
			continue
		}
		j.stats.Labels++
		id := ids.Value(i)
		if p, ok := j.preds[id]; ok {
			switch {
			case p.matched:
				j.stats.Duplicates++
			case times[i] > p.win.start+j.size+j.maxDelay:
				j.stats.TooLate++
			default:
				id = strings.Clone(id)
				p.matched = true
				j.preds[id] = p
				j.changedPreds[id] = true
				j.match(j.windows[p.win], p.score, value)
			}
			continue
		}
		if _, dup := j.orphans[id]; dup {
			j.stats.Duplicates++
			continue
		}
		id = strings.Clone(id)
		j.orphans[id] = orphanLabel{value: value, at: times[i]}
		j.changedOrphans[id] = true
	}
	for _, m := range batch {
		j.next[m.Partition] = m.Offset + 1
	}
}

// labelValue is row i's label: 1 or 0 for classification, the number for regression.
func (j *Join) labelValue(rec arrow.Record, i int) (float64, bool) {
	col := rec.Column(int(rec.NumCols()) - 1)
	if !col.IsValid(i) {
		return 0, false
	}
	if j.kind == sketch.Regression {
		v := col.(*array.Float64).Value(i)
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	s := col.(*array.String).Value(i)
	if s == j.cfg.Positive {
		return 1, true
	}
	if j.cfg.Positive == config.DefaultLabelsPositive {
		// The default positive class is any spelling of one or true.
		if s == "true" {
			return 1, true
		}
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return b2f(v == 1), true
		}
	}
	return 0, true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// advance takes the predictions' watermark (ns; math.MinInt64 before any) and the wall
// clock, finalises the windows both topics have passed, and returns the results of the
// windows that changed since they were last handed out, oldest first.
func (j *Join) Advance(predWM int64, now time.Time) []Result {
	defer j.publish()
	j.predWM = max(j.predWM, predWM)
	j.clock.Tick(now)
	keys := make([]winKey, 0, len(j.windows))
	for k, w := range j.windows {
		if w.revised || j.final(k.start) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].start != keys[b].start {
			return keys[a].start < keys[b].start
		}
		return cmp.Or(cmp.Compare(keys[a].model.model, keys[b].model.model), cmp.Compare(keys[a].model.version, keys[b].model.version)) < 0
	})
	var out []Result
	finalised := false
	for _, k := range keys {
		w := j.windows[k]
		final := j.final(k.start)
		r := j.result(w, final)
		if !w.decided && (final || r.Verdict.Degraded) {
			w.decided, r.Decided = true, true
		}
		out = append(out, r)
		w.revised = false
		w.sent++
		if final {
			finalised = true
			delete(j.windows, k)
			if refs := j.refs[k.model]; len(refs) < j.cfg.ReferenceWindows && w.perf.N >= j.cfg.MinRows {
				j.refs[k.model] = append(refs, w.perf)
				delete(j.refInfo, k.model)
			}
		}
	}
	if finalised {
		// The predictions of final windows will get no label; labels whose prediction
		// did not come by now will not find it.
		for id, p := range j.preds {
			if j.windows[p.win] == nil {
				delete(j.preds, id)
				j.changedPreds[id] = true
				if !p.matched {
					j.stats.Unlabelled++
				}
			}
		}
		wm := min(j.predWM, j.clock.Watermark())
		for id, o := range j.orphans {
			if wm >= o.at+j.maxDelay {
				delete(j.orphans, id)
				j.changedOrphans[id] = true
				j.stats.Expired++
			}
		}
	}
	return out
}

// result is w's result now, judged against the model's reference windows.
func (j *Join) result(w *perfWindow, final bool) Result {
	refs := j.refs[w.key.model]
	r := Result{
		Stream: j.stream, Model: w.key.model.model, ModelVersion: w.key.model.version,
		Start: time.Unix(0, w.key.start).UTC(), End: time.Unix(0, w.key.start+j.size).UTC(),
		Final: final, Predictions: w.predictions, Labelled: w.perf.N, Revision: w.sent,
		Metrics: detectors.ComputeMetrics(w.perf),
	}
	rule := j.rule
	if rule.Relative && len(refs) < j.cfg.ReferenceWindows {
		// The reference is still being built from the first final windows: only the
		// absolute bounds apply meanwhile.
		rule.Relative = false
		r.Reference = fmt.Sprintf("performance reference: %d of %d final windows", len(refs), j.cfg.ReferenceWindows)
		refs = nil
	} else if rule.Relative {
		r.Reference = fmt.Sprintf("first %d final windows with labels", len(refs))
	}
	r.Verdict = detectors.EvaluatePerformance(w.perf, refs, rule, j.cfg.MinRows)
	ref := j.reference(w.key.model)
	r.LabelShift = detectors.EvaluateLabelShift(ref, w.perf, j.detOpts)
	if w.scores != nil {
		r.Estimated = detectors.EstimatePerformance(w.scores, ref, j.cfg.Threshold)
	}
	return r
}

// reference is what the model's reference windows say about labels; nil before it
// has any.
func (j *Join) reference(mk modelKey) *detectors.PerformanceReference {
	refs := j.refs[mk]
	if len(refs) == 0 {
		return nil
	}
	r := j.refInfo[mk]
	if r == nil {
		r = detectors.NewPerformanceReference(refs)
		j.refInfo[mk] = r
	}
	return r
}

// Next is the labels topic's next offset of each partition, as far as the join has
// read; the caller reads it between batches, and clones what it keeps.
func (j *Join) Next() map[int]int64 { return j.next }

// Assign says which labels partitions are read now: only they hold the labels'
// watermark back.
func (j *Join) Assign(partitions []int32, now time.Time) { j.clock.Assign(partitions, now) }

// AddLost counts label messages deleted from their topic before they were read. Safe
// from any goroutine.
func (j *Join) AddLost(n int64) { j.lost.Add(n) }

// Published is the join's counters as of its latest batch. Safe from any goroutine.
func (j *Join) Published() Stats {
	if st := j.published.Load(); st != nil {
		return *st
	}
	return Stats{Rejected: map[string]int64{}}
}

// Stats returns the join's counters.
func (j *Join) Stats() Stats {
	s := j.stats
	s.Lost = j.lost.Load()
	s.Rejected = make(map[string]int64, len(j.stats.Rejected))
	for k, v := range j.stats.Rejected {
		s.Rejected[k] = v
	}
	return s
}

// publish makes the counters as they are now what other goroutines read.
func (j *Join) publish() {
	s := j.Stats()
	j.published.Store(&s)
}
