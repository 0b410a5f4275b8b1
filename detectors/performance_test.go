package detectors

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

// example is one scored, labelled classification example.
type example struct {
	score    float64
	positive bool
}

// population is a binormal classifier: latent scores N(0, 1) for negatives
// and N(sep, 1) for positives, squashed to (0, 1) by a logistic, so its ROC
// AUC is Φ(sep/√2). rate is the share of positives.
type population struct {
	rate, sep float64
}

// sepFor is the separation whose binormal AUC is auc.
func sepFor(auc float64) float64 { return -math.Sqrt2 * normalQuantile(1-auc) }

// draw returns n examples; every fourth score is rounded to two decimals, so
// there are exact ties.
func (pop population) draw(r *rand.Rand, n int) []example {
	xs := make([]example, n)
	for i := range xs {
		pos := r.Float64() < pop.rate
		z := r.NormFloat64() - pop.sep/2
		if pos {
			z += pop.sep
		}
		s := 1 / (1 + math.Exp(-z))
		if i%4 == 0 {
			s = math.Round(s*100) / 100
		}
		xs[i] = example{s, pos}
	}
	return xs
}

func (pop population) window(r *rand.Rand, n int, threshold float64) *sketch.Performance {
	return accumulate(pop.draw(r, n), threshold)
}

func accumulate(xs []example, threshold float64) *sketch.Performance {
	p := sketch.NewPerformance(sketch.Classification, threshold)
	for _, x := range xs {
		p.AddClassification(x.score, x.positive)
	}
	return p
}

// pairwiseAUC counts, over every (positive, negative) pair, the share in
// which the positive scores higher, ties counting 1/2: the definition of the
// Mann–Whitney AUC, by brute force.
func pairwiseAUC(xs []example) float64 {
	var pos, neg []float64
	for _, x := range xs {
		if x.positive {
			pos = append(pos, x.score)
		} else {
			neg = append(neg, x.score)
		}
	}
	var wins float64
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				wins++
			case p == n:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(pos)*len(neg))
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol || math.IsNaN(got) && math.IsNaN(want)
}

func TestComputeMetricsClassification(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, pop := range []population{{0.5, sepFor(0.85)}, {0.05, sepFor(0.9)}, {0.4, 0.2}} {
		xs := pop.draw(r, 4000)
		const threshold = 0.5
		var tp, fp, tn, fn float64
		var loss float64
		for _, x := range xs {
			s := min(max(x.score, 1e-15), 1-1e-15)
			pred := x.score >= threshold
			switch {
			case x.positive && pred:
				tp++
			case x.positive:
				fn++
			case pred:
				fp++
			default:
				tn++
			}
			if x.positive {
				loss -= math.Log(s)
			} else {
				loss -= math.Log(1 - s)
			}
		}
		n := float64(len(xs))
		prec, rec := tp/(tp+fp), tp/(tp+fn)
		m := ComputeMetrics(accumulate(xs, threshold))
		if float64(m.TP) != tp || float64(m.FP) != fp || float64(m.TN) != tn || float64(m.FN) != fn || m.N != int64(n) {
			t.Fatalf("counts %d %d %d %d, want %v %v %v %v", m.TP, m.FP, m.TN, m.FN, tp, fp, tn, fn)
		}
		auc := pairwiseAUC(xs)
		t.Logf("rate %v: AUC %.5f exact %.5f (bound %.1e)", pop.rate, m.ROCAUC, auc, m.ROCAUCError)
		for _, c := range []struct {
			name           string
			got, want, tol float64
		}{
			{"accuracy", m.Accuracy, (tp + tn) / n, 1e-15},
			{"precision", m.Precision, prec, 1e-15},
			{"recall", m.Recall, rec, 1e-15},
			{"f1", m.F1, 2 * prec * rec / (prec + rec), 1e-12},
			{"positive rate", m.PositiveRate, (tp + fn) / n, 1e-15},
			{"log loss", m.LogLoss, loss / n, 1e-9 * loss / n},
			{"roc auc", m.ROCAUC, auc, 0.002},
		} {
			if !near(c.got, c.want, c.tol) {
				t.Errorf("rate %v: %s %v, want %v", pop.rate, c.name, c.got, c.want)
			}
		}
		if math.Abs(m.ROCAUC-auc) > m.ROCAUCError {
			t.Errorf("AUC error %v exceeds its bound %v", math.Abs(m.ROCAUC-auc), m.ROCAUCError)
		}
	}
}

// regressionPair is a (prediction, label) pair.
type regressionPair struct{ pred, label float64 }

// drawRegression returns n pairs: labels N(10, 2), predictions off by
// N(bias, sd); one label in 25 is exactly 0.
func drawRegression(r *rand.Rand, n int, bias, sd float64) []regressionPair {
	xs := make([]regressionPair, n)
	for i := range xs {
		y := 10 + 2*r.NormFloat64()
		if i%25 == 0 {
			y = 0
		}
		xs[i] = regressionPair{y + bias + sd*r.NormFloat64(), y}
	}
	return xs
}

func accumulateRegression(xs []regressionPair) *sketch.Performance {
	p := sketch.NewPerformance(sketch.Regression, 0)
	for _, x := range xs {
		p.AddRegression(x.pred, x.label)
	}
	return p
}

func TestComputeMetricsRegression(t *testing.T) {
	xs := drawRegression(rand.New(rand.NewPCG(12, 12)), 5000, 0.3, 1.5)
	var abs, sq, ape, ysum, pct float64
	for _, x := range xs {
		e := x.pred - x.label
		abs += math.Abs(e)
		sq += e * e
		ysum += x.label
		if x.label != 0 {
			ape += math.Abs(e) / math.Abs(x.label)
			pct++
		}
	}
	n := float64(len(xs))
	mean := ysum / n
	var ss float64
	for _, x := range xs {
		ss += (x.label - mean) * (x.label - mean)
	}
	m := ComputeMetrics(accumulateRegression(xs))
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mae", m.MAE, abs / n}, {"rmse", m.RMSE, math.Sqrt(sq / n)}, {"mape", m.MAPE, ape / pct},
		{"label mean", m.LabelMean, mean}, {"label sd", m.LabelSD, math.Sqrt(ss / (n - 1))},
	} {
		if !near(c.got, c.want, 1e-9*math.Abs(c.want)) {
			t.Errorf("%s %v, want %v", c.name, c.got, c.want)
		}
	}
	if v, higher, ok := m.Metric("rmse"); !ok || higher || v != m.RMSE {
		t.Errorf("Metric(rmse) = %v, %v, %v", v, higher, ok)
	}
	if _, _, ok := m.Metric("roc_auc"); ok {
		t.Error("Metric(roc_auc) of a regression: ok")
	}
}

func TestMetricsUndefined(t *testing.T) {
	allNeg := accumulate([]example{{0.2, false}, {0.3, false}}, 0.5)
	m := ComputeMetrics(allNeg)
	for name, v := range map[string]float64{"roc_auc": m.ROCAUC, "precision": m.Precision, "recall": m.Recall, "f1": m.F1} {
		if !math.IsNaN(v) {
			t.Errorf("%s of two negatives scored below the threshold: %v, want NaN", name, v)
		}
	}
	if m.Accuracy != 1 {
		t.Errorf("accuracy %v, want 1", m.Accuracy)
	}
	zeros := accumulateRegression([]regressionPair{{1, 0}, {2, 0}})
	if m := ComputeMetrics(zeros); !math.IsNaN(m.MAPE) || m.MAE != 1.5 {
		t.Errorf("all labels 0: MAPE %v MAE %v, want NaN and 1.5", m.MAPE, m.MAE)
	}
	empty := ComputeMetrics(sketch.NewPerformance(sketch.Classification, 0.5))
	if !math.IsNaN(empty.Accuracy) || !math.IsNaN(empty.LogLoss) || !math.IsNaN(MetricSE(allNeg, "roc_auc")) {
		t.Error("metrics of no examples are not NaN")
	}
	if _, _, ok := m.Metric("bogus"); ok {
		t.Error("unknown metric: ok")
	}
	if got := PerformanceMetricNames(sketch.Regression); strings.Join(got, ",") != "mae,rmse,mape" {
		t.Errorf("regression names %v", got)
	}
	for _, name := range PerformanceMetricNames(sketch.Classification) {
		if _, _, ok := m.Metric(name); !ok {
			t.Errorf("listed classification metric %q unknown", name)
		}
	}
}

// TestMetricSECoverage: across many windows drawn from one population, the
// SD of each metric is within 15% of the mean of its standard errors — what
// a standard error promises.
func TestMetricSECoverage(t *testing.T) {
	const windows, rows = 400, 1000
	r := rand.New(rand.NewPCG(13, 13))
	check := func(t *testing.T, ps []*sketch.Performance, names []string) {
		for _, name := range names {
			var vals []float64
			var seSum float64
			for _, p := range ps {
				v, _, _ := ComputeMetrics(p).Metric(name)
				vals = append(vals, v)
				seSum += MetricSE(p, name)
			}
			sd, se := sampleSD(vals), seSum/float64(len(ps))
			t.Logf("%-9s SD across windows %.5f, mean SE %.5f, ratio %.3f", name, sd, se, se/sd)
			if math.Abs(se/sd-1) > 0.15 {
				t.Errorf("%s: mean SE %.5f, SD across windows %.5f", name, se, sd)
			}
		}
	}
	for _, pop := range []population{{0.5, sepFor(0.85)}, {0.2, sepFor(0.75)}} {
		ps := make([]*sketch.Performance, windows)
		for i := range ps {
			ps[i] = pop.window(r, rows, 0.5)
		}
		t.Run("classification", func(t *testing.T) { check(t, ps, PerformanceMetricNames(sketch.Classification)) })
	}
	ps := make([]*sketch.Performance, windows)
	for i := range ps {
		ps[i] = accumulateRegression(drawRegression(r, rows, 0.2, 1))
	}
	t.Run("regression", func(t *testing.T) { check(t, ps, PerformanceMetricNames(sketch.Regression)) })
}

func sampleSD(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	mean := s / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

// alarmRate is the share of trials in which the relative rule on metric
// flags a curRows window of cur against k refRows windows of ref.
func alarmRate(r *rand.Rand, trials, k, refRows, curRows int, ref, cur population, metric string) float64 {
	return jitteredAlarmRate(r, trials, k, refRows, curRows, ref, cur, 0, metric)
}

// jitteredAlarmRate is alarmRate where every window's population has its own
// AUC, off the population's by N(0, jitter²): real window-to-window
// variation on top of sampling noise.
func jitteredAlarmRate(r *rand.Rand, trials, k, refRows, curRows int, ref, cur population, jitter float64, metric string) float64 {
	rule := PerformanceRule{Metric: metric, Relative: true}
	jittered := func(pop population) population {
		if jitter > 0 {
			auc := normalCDF(pop.sep/math.Sqrt2) + jitter*r.NormFloat64()
			pop.sep = sepFor(auc)
		}
		return pop
	}
	flagged := 0
	for range trials {
		refs := make([]*sketch.Performance, k)
		for i := range refs {
			refs[i] = jittered(ref).window(r, refRows, 0.5)
		}
		if EvaluatePerformance(jittered(cur).window(r, curRows, 0.5), refs, rule, 100).Degraded {
			flagged++
		}
	}
	return float64(flagged) / float64(trials)
}

// TestPerformanceRelativeNull: reference and current windows from one
// population, the relative rule at FDR 0.05 flags at most about 5% of the
// windows — with several reference windows, with one (pooled sampling
// error), with a current window that holds fewer labels than the reference
// windows, and when every window's true AUC varies (by 0.03, 2.5 times the
// sampling SE) so that sampling error alone would flag many.
func TestPerformanceRelativeNull(t *testing.T) {
	trials := 300
	if raceEnabled {
		trials = 150
	}
	r := rand.New(rand.NewPCG(14, 14))
	pop := population{0.3, sepFor(0.85)}
	for _, tc := range []struct {
		name                string
		k, refRows, curRows int
		jitter              float64
		metric              string
	}{
		{"auc 8 windows", 8, 1000, 1000, 0, "roc_auc"},
		{"accuracy 8 windows", 8, 1000, 1000, 0, "accuracy"},
		{"auc 3 windows", 3, 1000, 1000, 0, "roc_auc"},
		{"auc 1 window", 1, 2000, 1000, 0, "roc_auc"},
		{"log loss 8 windows, small current", 8, 1000, 300, 0, "log_loss"},
		{"f1 8 windows", 8, 1000, 1000, 0, "f1"},
		{"auc 8 windows varying by 0.03", 8, 1000, 1000, 0.03, "roc_auc"},
		{"auc 4 windows varying by 0.03", 4, 1000, 1000, 0.03, "roc_auc"},
	} {
		rate := jitteredAlarmRate(r, trials, tc.k, tc.refRows, tc.curRows, pop, pop, tc.jitter, tc.metric)
		t.Logf("%s: false alarms %.3f", tc.name, rate)
		// 0.05 plus about two and a half binomial SDs.
		if rate > 0.05+2.5*math.Sqrt(0.05*0.95/float64(trials)) {
			t.Errorf("%s: false-alarm rate %.3f at FDR 0.05", tc.name, rate)
		}
	}
}

// TestPerformanceRelativePower: a drop of ROC AUC from 0.85 to 0.75 in
// 1,000-row windows is flagged in at least 90% of the windows.
func TestPerformanceRelativePower(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	ref, cur := population{0.3, sepFor(0.85)}, population{0.3, sepFor(0.75)}
	for _, k := range []int{8, 3, 1} {
		power := alarmRate(r, 100, k, 1000, 1000, ref, cur, "roc_auc")
		t.Logf("AUC 0.85 → 0.75, %d reference windows: power %.2f", k, power)
		if power < 0.9 {
			t.Errorf("%d reference windows: power %.2f", k, power)
		}
	}
}

func TestEvaluatePerformanceRules(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	good, bad := population{0.3, sepFor(0.85)}, population{0.3, sepFor(0.7)}
	refs := []*sketch.Performance{good.window(r, 1000, 0.5), good.window(r, 1000, 0.5), good.window(r, 1000, 0.5)}
	cur := bad.window(r, 1000, 0.5)
	nan := math.NaN()

	v := EvaluatePerformance(cur, nil, PerformanceRule{Metric: "roc_auc", Min: 0.8, Max: nan}, 100)
	if !v.Degraded || v.Bound != 0.8 || !strings.HasPrefix(v.Rule, "ROC AUC 0.7") || !strings.HasSuffix(v.Rule, "< min 0.8") {
		t.Errorf("min rule: %+v", v)
	}
	v = EvaluatePerformance(good.window(r, 1000, 0.5), nil, PerformanceRule{Metric: "roc_auc", Min: 0.8}, 100)
	if v.Degraded || !strings.Contains(v.Rule, "≥ min 0.8") {
		t.Errorf("min rule on a good window: %+v", v)
	}
	v = EvaluatePerformance(cur, nil, PerformanceRule{Metric: "log_loss", Max: 0.3}, 100)
	if !v.Degraded || !strings.Contains(v.Rule, "log loss") || !strings.Contains(v.Rule, "> max 0.3") {
		t.Errorf("max rule: %+v", v)
	}
	// The zero value sets no bound: a ceiling of 0 would flag any error.
	v = EvaluatePerformance(cur, nil, PerformanceRule{Metric: "log_loss"}, 100)
	if v.Degraded || v.Rule != "no bound set for log loss" {
		t.Errorf("no bounds: %+v", v)
	}
	v = EvaluatePerformance(cur, refs, PerformanceRule{Metric: "roc_auc", Relative: true}, 100)
	if !v.Degraded || !(v.Value < v.Bound) || !(v.Reference > 0.8) || !(v.ReferenceSD > 0) || !(v.PValue < 0.05) ||
		!strings.Contains(v.Rule, "below the reference") || !strings.Contains(v.Rule, "window to window") {
		t.Errorf("relative rule: %+v", v)
	}
	t.Logf("relative: %s", v.Rule)
	v = EvaluatePerformance(accumulate(good.draw(r, 50), 0.5), refs, PerformanceRule{Metric: "roc_auc", Min: 0.99, Relative: true}, 100)
	if v.Degraded || v.Rule != "too few labels (50 < 100)" {
		t.Errorf("too few rows: %+v", v)
	}
	v = EvaluatePerformance(cur, nil, PerformanceRule{Metric: "roc_auc", Relative: true}, 100)
	if v.Degraded || v.Rule != "no reference for ROC AUC" {
		t.Errorf("no reference: %+v", v)
	}
	v = EvaluatePerformance(cur, refs, PerformanceRule{Metric: "rmse", Max: 1}, 100)
	if v.Degraded || !strings.Contains(v.Rule, "unknown") {
		t.Errorf("metric of the other kind: %+v", v)
	}
	// A regression window whose RMSE rose by half against four windows.
	regRefs := make([]*sketch.Performance, 4)
	for i := range regRefs {
		regRefs[i] = accumulateRegression(drawRegression(r, 500, 0, 1))
	}
	v = EvaluatePerformance(accumulateRegression(drawRegression(r, 500, 0, 1.5)), regRefs, PerformanceRule{Metric: "rmse", Relative: true, FDR: 0.01}, 100)
	if !v.Degraded || !(v.Value > v.Bound) || !strings.Contains(v.Rule, "above the reference") {
		t.Errorf("relative rmse: %+v", v)
	}
	t.Logf("relative: %s", v.Rule)
}
