package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftmon/driftmon/internal/resultfile"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/window"
)

// labelled is one generated prediction and, if it gets one, its label.
type labelled struct {
	id       string
	at       time.Time // prediction time
	score    float64
	positive bool
	label    bool      // a label is sent
	labelAt  time.Time // label time
}

// labelData makes n predictions 150 ms apart whose scores separate the classes well
// until shiftAt and poorly after it (ROC AUC ≈ 0.9 → ≈ 0.7), rounded to 0.001 so that
// scores tie; 85% get a label 0–15 minutes later.
func labelData(seed uint64, n, shiftAt int, base time.Time) []labelled {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]labelled, n)
	for i := range out {
		pos := rng.Float64() < 0.3
		sep := 2.6
		if i >= shiftAt {
			sep = 0.8
		}
		z := rng.NormFloat64()
		if pos {
			z += sep
		}
		score := math.Round(1000/(1+math.Exp(-(z-sep/2))*1)) / 1000
		at := base.Add(time.Duration(i) * 150 * time.Millisecond)
		out[i] = labelled{id: fmt.Sprintf("e%06d", i), at: at, score: score, positive: pos,
			label: rng.Float64() < 0.85, labelAt: at.Add(time.Duration(rng.Float64() * float64(15*time.Minute)))}
	}
	return out
}

// exactWindow is a window's metrics computed from the raw pairs.
type exactWindow struct {
	predictions, labelled int64
	tp, fp, tn, fn        int64
	auc                   float64
}

// exactMetrics computes each 5-minute window's counts and rank ROC AUC (ties ½) from the
// raw predictions and labels.
func exactMetrics(data []labelled, size time.Duration) map[time.Time]*exactWindow {
	type pair struct {
		score float64
		pos   bool
	}
	pairs := map[time.Time][]pair{}
	out := map[time.Time]*exactWindow{}
	for _, d := range data {
		start := time.Unix(0, window.StartOf(d.at.UnixNano(), int64(size))).UTC()
		w := out[start]
		if w == nil {
			w = &exactWindow{}
			out[start] = w
		}
		w.predictions++
		if !d.label {
			continue
		}
		w.labelled++
		pred := d.score >= 0.5
		switch {
		case pred && d.positive:
			w.tp++
		case pred:
			w.fp++
		case d.positive:
			w.fn++
		default:
			w.tn++
		}
		pairs[start] = append(pairs[start], pair{d.score, d.positive})
	}
	for start, ps := range pairs {
		var pos, neg []float64
		for _, p := range ps {
			if p.pos {
				pos = append(pos, p.score)
			} else {
				neg = append(neg, p.score)
			}
		}
		sort.Float64s(neg)
		var sum float64
		for _, s := range pos {
			lo := sort.SearchFloat64s(neg, s)
			hi := sort.Search(len(neg), func(i int) bool { return neg[i] > s })
			sum += float64(lo) + float64(hi-lo)/2
		}
		out[start].auc = sum / float64(len(pos)*len(neg))
	}
	return out
}

// TestLateLabelsGiveTheOfflineMetricsAcrossKillNine sends predictions and, on a second
// topic, their labels up to 15 minutes late (in event time) and out of the predictions'
// order, plus labels of events never predicted and repeated labels, to the real binary,
// kills it with SIGKILL mid-stream and restarts it: every window's accuracy counts are
// those computed offline from the raw rows, exactly, and its ROC AUC within 0.005; the
// windows more than max_delay behind both topics are final; the AUC drop after the shift
// breaks the rule (min 0.8) and the windows before it do not.
func TestLateLabelsGiveTheOfflineMetricsAcrossKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const n, shiftAt = 24000, 12000 // 60 minutes: 12 windows, the shift at 30
	size := 5 * time.Minute
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	data := labelData(7, n, shiftAt, base)

	addr, predsTopic, labelsTopic := labelsBroker(t)
	var preds, labels []ingest.Message
	for i, d := range data {
		v, _ := json.Marshal(map[string]any{"ts": d.at.UnixMilli(), "id": d.id,
			"features": map[string]any{"x": float64(i%100) / 100}, "prediction": map[string]any{"p": d.score}})
		preds = append(preds, ingest.Message{Value: v, Partition: i % 2, Time: d.at})
	}
	type lab struct {
		id    string
		value int
		at    time.Time
	}
	var labs []lab
	for _, d := range data {
		if d.label {
			labs = append(labs, lab{d.id, map[bool]int{true: 1, false: 0}[d.positive], d.labelAt})
		}
	}
	// Labels of events never predicted (they expire), and the first label again
	// for 100 events (the first is kept).
	for i := range 200 {
		labs = append(labs, lab{fmt.Sprintf("ghost%d", i), 1, base.Add(time.Duration(i) * 10 * time.Second)})
	}
	for i := range 100 {
		l := labs[i*50]
		labs = append(labs, lab{l.id, 1 - l.value, l.at.Add(time.Minute)})
	}
	// Each labels partition in label-time order: out of the predictions' order. Keyed
	// by event id, as producers do, so that an id's labels are read in their order.
	sort.SliceStable(labs, func(i, j int) bool { return labs[i].at.Before(labs[j].at) })
	for _, l := range labs {
		v, _ := json.Marshal(map[string]any{"id": l.id, "repaid": l.value, "ts": l.at.UnixMilli()})
		h := fnv.New32a()
		h.Write([]byte(l.id))
		labels = append(labels, ingest.Message{Value: v, Partition: int(h.Sum32() % 2), Time: l.at})
	}
	produceAll(t, addr, predsTopic, preds)
	produceAll(t, addr, labelsTopic, labels)

	d := newDeploymentWith(t, "labels", func(dir, hookURL, secret string) string {
		return fmt.Sprintf(`
kafka: {brokers: [%q], group_id: "${DRIFTMON_TEST_GROUP}"}
state: {path: %q, checkpoint_records: 1500, checkpoint_interval: 300ms}
streams:
  - name: s
    topic: %s
    event_time: ts
    event_id: id
    features: {x: {type: numeric}}
    predictions: {p: {type: numeric}}
    window: {size: 5m}
    labels: {topic: %s, event_id: id, label: repaid, event_time: ts, max_delay: 20m}
    performance: {metric: roc_auc, min: 0.8}
alerting:
  webhooks: [{name: retrain, url: %q, secret: %q, key_features: [roc_auc]}]
`, addr, filepath.Join(dir, "state.db"), predsTopic, labelsTopic, hookURL, secret)
	})

	// Kill the first run once it has handed out some performance results.
	d.start()
	deadline := time.Now().Add(2 * time.Minute)
	for len(performanceLines(d.results)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no performance results after 2 minutes:\n%s", d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.kill()
	d.start()
	d.waitConsumed(addr, predsTopic, 2, 2*time.Minute)
	for !consumed(addr, d.group()+"-labels", labelsTopic, 2) {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("labels not consumed:\n%s", d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the outbox deliver what the last windows decided, then stop.
	time.Sleep(2 * time.Second)
	d.stop()

	want := exactMetrics(data, size)
	latest := map[time.Time]resultfile.PerformanceLine{}
	finals := map[time.Time]resultfile.PerformanceLine{}
	for _, l := range performanceLines(d.results) {
		latest[l.Start] = l
		if l.Final {
			if f, ok := finals[l.Start]; ok && f != l {
				t.Errorf("window %s final twice, differently: %+v, then %+v", l.Start, f, l)
			}
			finals[l.Start] = l
		}
	}
	// Predictions reach 60 minutes and labels about 75 (per partition): windows that
	// end 20 minutes before 60 are final.
	var wantFinal []time.Time
	for start := range want {
		if !start.Add(size + 20*time.Minute).After(base.Add(time.Duration(n-2) * 150 * time.Millisecond)) {
			wantFinal = append(wantFinal, start)
		}
	}
	if len(finals) != len(wantFinal) || len(wantFinal) < 6 {
		t.Errorf("%d final windows, want %d", len(finals), len(wantFinal))
	}
	if len(latest) != len(want) {
		t.Errorf("performance results for %d windows, want %d", len(latest), len(want))
	}
	var starts []time.Time
	for s := range want {
		starts = append(starts, s)
	}
	slices.SortFunc(starts, time.Time.Compare)
	degraded := 0
	for _, start := range starts {
		w, got := want[start], latest[start]
		if got.Predictions != w.predictions || got.Labelled != w.labelled ||
			got.TP != w.tp || got.FP != w.fp || got.TN != w.tn || got.FN != w.fn {
			t.Errorf("window %s: predictions %d labelled %d TP %d FP %d TN %d FN %d; offline %d %d %d %d %d %d",
				start.Format("15:04"), got.Predictions, got.Labelled, got.TP, got.FP, got.TN, got.FN,
				w.predictions, w.labelled, w.tp, w.fp, w.tn, w.fn)
		}
		if math.Abs(float64(got.ROCAUC)-w.auc) > 0.005 {
			t.Errorf("window %s: ROC AUC %.4f, offline %.4f", start.Format("15:04"), float64(got.ROCAUC), w.auc)
		}
		shifted := !start.Before(base.Add(time.Duration(shiftAt) * 150 * time.Millisecond))
		if got.Degraded != shifted {
			t.Errorf("window %s: degraded %v (AUC %.3f, %s), want %v", start.Format("15:04"), got.Degraded, float64(got.ROCAUC), got.Rule, shifted)
		}
		if shifted {
			degraded++
		}
		if got.LabelDrift {
			t.Errorf("window %s: label drift, but the positive rate is 0.3 throughout", start.Format("15:04"))
		}
		t.Logf("window %s: %s AUC %.4f (offline %.4f) accuracy %.4f labelled %d/%d", start.Format("15:04"),
			map[bool]string{true: "final", false: "provisional"}[got.Final], float64(got.ROCAUC), w.auc,
			float64(got.Accuracy), got.Labelled, got.Predictions)
	}
	// One retraining call (key_features: [roc_auc]) for the episode the degraded
	// windows make, however often it was delivered across the kill.
	ids := settledDeliveries(d.receiver)
	if distinct := slices.Compact(slices.Clone(ids)); len(distinct) != 1 || degraded < 2 {
		t.Errorf("%d distinct retraining webhooks (%d deliveries) over %d degraded windows, want one for the episode", len(distinct), len(ids), degraded)
	}
}

// labelsBroker returns a broker with two 2-partition topics, for predictions and
// labels: the real one DRIFTMON_KAFKA_BROKERS names (make test-kafka), with topics of
// their own, or else a kfake broker in a process of its own.
func labelsBroker(t *testing.T) (addr, preds, labels string) {
	t.Helper()
	brokers := os.Getenv("DRIFTMON_KAFKA_BROKERS")
	if brokers == "" {
		return startBroker(t, "preds:2,labels:2").addr(), "preds", "labels"
	}
	addr = strings.Split(brokers, ",")[0]
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	preds, labels = "driftmon-preds-"+suffix, "driftmon-labels-"+suffix
	createTopics(t, addr, 2, preds, labels)
	return addr, preds, labels
}

// performanceLines returns the performance lines of a results file.
func performanceLines(path string) []resultfile.PerformanceLine {
	b, _ := os.ReadFile(path)
	var out []resultfile.PerformanceLine
	for _, l := range bytes.Split(b, []byte("\n")) {
		var p resultfile.PerformanceLine
		if json.Unmarshal(l, &p) == nil && p.Kind == "performance" {
			out = append(out, p)
		}
	}
	return out
}
