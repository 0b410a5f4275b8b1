package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/labels"
	"github.com/driftmon/driftmon/internal/window"
)

// TestCarLoanLabelsShowTheAUCDrop sends the car-loan monitoring data as predictions and
// its `repaid` column as labels on a second topic, each label 0–20 days after its
// prediction and in label-time order, and checks every 30-day window's performance
// against the ROC AUC and confusion matrix computed from the raw rows, and that the
// model's AUC drop after the shift at row 25,000 (0.97 → 0.96 in the raw data) is what
// the relative rule flags, with no window before it flagged; the estimate from the
// scores alone (CBPE) is within 0.01 of each window's realised AUC.
func TestCarLoanLabelsShowTheAUCDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	events := carLoanEvents(t)
	r, err := ingest.ReadFile(carLoanDir+"monitoring.parquet", ingest.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var repaid []bool
	for r.Next() {
		rec := r.Record()
		for c, f := range rec.Schema().Fields() {
			if f.Name == "repaid" {
				for i := range int(rec.NumRows()) {
					repaid = append(repaid, value(rec.Column(c), i) == 1.0 || value(rec.Column(c), i) == int64(1))
				}
			}
		}
	}
	r.Close()
	if len(repaid) != len(events) {
		t.Fatalf("%d labels for %d events", len(repaid), len(events))
	}

	type row struct {
		at    time.Time
		score float64
		label bool
	}
	rows := make([]row, len(events))
	rng := rand.New(rand.NewPCG(13, 14))
	type lab struct {
		id    string
		value bool
		at    time.Time
	}
	var labs []lab
	var preds [][]byte
	for i, b := range events {
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse("2006-01-02 15:04:05.000", ev["ts"].(string))
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("loan-%d", i)
		ev["id"] = id
		b, _ = json.Marshal(ev)
		preds = append(preds, b)
		rows[i] = row{at, ev["prediction"].(map[string]any)["y_pred_proba"].(float64), repaid[i]}
		labs = append(labs, lab{id, repaid[i], at.Add(time.Duration(rng.Float64() * float64(20*24*time.Hour)))})
	}
	sort.SliceStable(labs, func(i, j int) bool { return labs[i].at.Before(labs[j].at) })
	var labelMsgs [][]byte
	for _, l := range labs {
		b, _ := json.Marshal(map[string]any{"loan": l.id, "repaid": l.value, "ts": l.at.Format(time.RFC3339Nano)})
		labelMsgs = append(labelMsgs, b)
	}

	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "car-loan", "repayments"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	produce(ctx, t, broker.ListenAddrs(), "car-loan", preds)
	produce(ctx, t, broker.ListenAddrs(), "repayments", labelMsgs)

	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q], group_id: labels}
streams:
  - name: loans
    topic: car-loan
    event_time: ts
    event_id: id
    model: model
    features: {car_value: {type: numeric}}
    predictions: {y_pred_proba: {type: numeric}}
    window: {size: 720h}
    labels: {topic: repayments, event_id: loan, label: repaid, event_time: ts, max_delay: 720h, reference_windows: 3}
`, broker.ListenAddrs()[0])), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	latest := map[time.Time]labels.Result{}
	runCtx, stop := context.WithCancel(ctx)
	mon, err := New(cfg, Options{OnPerformance: func(r labels.Result) {
		mu.Lock()
		defer mu.Unlock()
		latest[r.Start] = r
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mon.Run(runCtx) }()
	for {
		if mon.Stats()["loans"].Events == int64(len(preds)) && mon.LabelStats()["loans"].Labels == int64(len(labs)) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("monitor stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("not consumed: %+v %+v", mon.Stats()["loans"], mon.LabelStats()["loans"])
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond) // the results of the last batch
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Offline: each window's pairs, exact counts and rank AUC.
	size := 720 * time.Hour
	shift := rows[25000].at
	byWin := map[time.Time][]labelled{}
	for i, r := range rows {
		start := time.Unix(0, window.StartOf(r.at.UnixNano(), int64(size))).UTC()
		byWin[start] = append(byWin[start], labelled{at: r.at, score: r.score, positive: r.label, label: true, id: fmt.Sprint(i)})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(latest) != len(byWin) {
		t.Errorf("performance for %d windows, want %d", len(latest), len(byWin))
	}
	var starts []time.Time
	for s := range byWin {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	var before, after []float64
	flaggedAfter := 0
	for i, s := range starts {
		want := exactMetrics(byWin[s], size)[s]
		got := latest[s]
		m := got.Metrics
		if got.Labelled != want.labelled || m.TP != want.tp || m.FP != want.fp || m.TN != want.tn || m.FN != want.fn {
			t.Errorf("window %s: labelled %d TP %d FP %d TN %d FN %d, offline %d %d %d %d %d", s.Format("2006-01-02"),
				got.Labelled, m.TP, m.FP, m.TN, m.FN, want.labelled, want.tp, want.fp, want.tn, want.fn)
		}
		if math.Abs(m.ROCAUC-want.auc) > 0.005 {
			t.Errorf("window %s: AUC %.4f, offline %.4f", s.Format("2006-01-02"), m.ROCAUC, want.auc)
		}
		// The estimate from the scores alone (CBPE, calibrated on the 3 reference
		// windows' labels) follows the realised AUC: the car-loan shift is a covariate
		// shift, the score–outcome relation stays.
		if i >= 3 && math.Abs(got.Estimated.ROCAUC-want.auc) > 0.01 {
			t.Errorf("window %s: estimated AUC %.4f, realised %.4f", s.Format("2006-01-02"), got.Estimated.ROCAUC, want.auc)
		}
		whole := !s.Before(rows[0].at) && !s.Add(size).After(rows[len(rows)-1].at)
		switch {
		case !whole: // partial first and last windows: fewer rows, not compared
		case !s.Add(size).After(shift):
			before = append(before, want.auc)
			if got.Verdict.Degraded {
				t.Errorf("window %s before the shift degraded: %s", s.Format("2006-01-02"), got.Verdict.Rule)
			}
		case !s.Before(shift):
			after = append(after, want.auc)
			if got.Verdict.Degraded {
				flaggedAfter++
			}
		}
		t.Logf("%s %-11s %5d rows AUC %.4f (offline %.4f, estimated %.4f) degraded %-5v %s", s.Format("2006-01-02"), got.Status(),
			got.Labelled, m.ROCAUC, want.auc, got.Estimated.ROCAUC, got.Verdict.Degraded, got.Verdict.Rule)
	}
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	if len(before) < 3 || len(after) < 3 || mean(after) > mean(before)-0.005 {
		t.Errorf("AUC before the shift %v, after %v: want a drop of at least 0.005", before, after)
	}
	if flaggedAfter == 0 {
		t.Errorf("no window after the shift flagged")
	}
}
