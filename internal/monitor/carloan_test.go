package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/outbox"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// The NannyML car-loan data: the monitoring file shifts abruptly at row 25,000
// (testdata/nannyml_car_loan/ground_truth.json).
const carLoanDir = "../../testdata/nannyml_car_loan/"

var (
	carLoanShifted = []string{"car_value", "loan_length", "salary_range", "repaid_loan_on_prev_car", "y_pred_proba"}
	carLoanStable  = []string{"debt_to_income_ratio", "driver_tenure", "size_of_downpayment"}
)

// TestCarLoanEndToEnd sends the real monitoring data through Kafka (kfake) in time order
// and checks every window's verdict, the Slack message and the signed webhook call.
func TestCarLoanEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "car-loan"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	produce(ctx, t, broker.ListenAddrs(), "car-loan", carLoanEvents(t))

	slackSink := slacktest.NewServer(slacktest.Options{Token: "xoxb-test"})
	defer slackSink.Close()
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := webhook.NewReceiver(webhook.ReceiverOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(receiver)
	defer hooks.Close()

	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q], group_id: e2e}
streams:
  - name: loans
    topic: car-loan
    event_time: ts
    model: model
    model_version: model_version
    features:
      car_value: {type: numeric}
      debt_to_income_ratio: {type: numeric}
      driver_tenure: {type: numeric}
      loan_length: {type: numeric}
      repaid_loan_on_prev_car: {type: categorical}
      salary_range: {type: categorical}
      size_of_downpayment: {type: categorical}
    predictions:
      y_pred_proba: {type: numeric}
    window: {rows: 5000}
    reference: {baseline: reference.parquet}
alerting:
  slack: {token: xoxb-test, channel: "#ml", api_url: %q}
  webhooks: [{name: retrain, url: %q, secret: %q, min_features: 3}]
`, broker.ListenAddrs()[0], slackSink.URL(), hooks.URL, secret)), config.ParseOptions{Dir: carLoanDir})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var results []engine.Result
	type delivered struct {
		route string
		alert alerting.Alert
	}
	var deliveries []delivered
	runCtx, stop := context.WithCancel(ctx)
	var mon *Monitor
	mon, err = New(cfg, Options{OnDelivery: func(route string, a alerting.Alert, err error) {
		mu.Lock()
		defer mu.Unlock()
		deliveries = append(deliveries, delivered{route, a})
	}, OnWindow: func(r engine.Result) {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
		if len(results) == 10 {
			// The last window's decisions are committed with the next checkpoint;
			// stopping a little later still lets the outbox deliver them, and the API
			// must show what was delivered and decided.
			go func() {
				time.Sleep(1500 * time.Millisecond)
				delivered, err := mon.Deliveries().List(outbox.Delivered)
				if err != nil || len(delivered) == 0 {
					t.Errorf("the API lists %d delivered notifications (%v)", len(delivered), err)
				}
				trail, err := mon.Audit(audit.Query{Model: "car-loan"})
				fired := 0
				for _, e := range trail {
					if e.Event == audit.EventDecision && e.Decision == "fire" {
						fired++
					}
				}
				if err != nil || fired != 1 {
					t.Errorf("the audit trail holds %d fire decisions (%v), want 1", fired, err)
				}
				stop()
			}()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out with %d windows closed", len(results))
	}

	// What the API's alert rows are made of: every delivery, Slack's and the
	// retraining webhook's alike, carries its window's rows, severity, drifted features
	// and the rule that fired for each.
	mu.Lock()
	routes := map[string]bool{}
	for _, d := range deliveries {
		routes[d.route] = true
		a := d.alert
		if a.Rows != 5000 || a.Severity == "" || len(a.Drifted) == 0 {
			t.Errorf("%s delivery %s: rows %d, severity %q, %d drifted; want the window's", d.route, a.ID, a.Rows, a.Severity, len(a.Drifted))
		}
		for _, c := range a.Drifted {
			if !strings.Contains(c.Rule, "lower bound") {
				t.Errorf("%s delivery %s: %s has rule %q", d.route, a.ID, c.Feature, c.Rule)
			}
		}
	}
	mu.Unlock()
	if !routes["slack"] || !routes["webhook retrain"] {
		t.Errorf("deliveries to %v, want slack and webhook retrain", routes)
	}

	if st := mon.Stats()["loans"]; st.Events != 50000 || len(st.Rejected) != 0 {
		t.Errorf("stats %+v, want 50,000 events and no rejections", st)
	}
	driftWindows := 0
	for i, r := range results {
		drifted := r.Drifted()
		if r.Rows != 5000 {
			t.Errorf("window %d has %d rows, want 5000", i, r.Rows)
		}
		t.Logf("window %d: drifted %v, quality %v", i, drifted, r.Violations())
		if len(r.Quality) == 0 {
			t.Errorf("window %d has no data-quality checks", i)
		}
		if i < 5 {
			if len(drifted) > 0 {
				t.Errorf("window %d (before the shift) flags %v", i, drifted)
			}
			if v := r.Violations(); len(v) > 0 {
				t.Errorf("window %d (before the shift) fails quality checks: %v", i, v)
			}
			continue
		}
		driftWindows++
		for _, f := range carLoanShifted {
			if !slices.Contains(drifted, f) {
				t.Errorf("window %d (after the shift) misses %s; drifted %v", i, f, drifted)
			}
		}
		for _, f := range carLoanStable {
			if slices.Contains(drifted, f) {
				t.Errorf("window %d flags stable feature %s", i, f)
			}
		}
	}

	// The policy makes one drift episode of the five drifting windows: one Slack
	// message when it fires, none while the same features keep drifting.
	msgs := slackSink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Slack got %d messages, want one for the episode", len(msgs))
	}
	text := slacktest.Render(msgs[0].Blocks)
	t.Logf("the alert as Slack shows it:\n%s", text)
	for _, f := range carLoanShifted {
		if !strings.Contains(text, "*"+f+"*") {
			t.Errorf("Slack message does not name %s as drifted:\n%s", f, text)
		}
	}
	stableLine := text[strings.Index(text, "Stable"):]
	for _, f := range carLoanStable {
		if strings.Contains(text, "*"+f+"*") || !strings.Contains(stableLine, f) {
			t.Errorf("Slack message does not list %s as stable:\n%s", f, text)
		}
	}
	// In bot-token mode the parent's thread gets a chart of the distributions.
	files := slackSink.Files()
	if len(files) != 1 || files[0].ThreadTS != msgs[0].TS || !bytes.HasPrefix(files[0].Data, []byte("\x89PNG")) {
		t.Errorf("want one PNG chart in the alert's thread, got %d files", len(files))
	}
	// The retraining trigger (at least 3 features in a window) holds in every
	// drifting window, and is called once for the episode they make. The receiver
	// answers 401 to a bad signature and records only verified calls, once per
	// webhook-id.
	if got := len(receiver.Deliveries()); got != 1 || driftWindows < 2 {
		t.Errorf("webhook receiver verified %d calls over %d drifting windows, want one for the episode", got, driftWindows)
	}
}

// carLoanEvents turns monitoring.parquet into JSON inference events, in file order.
func carLoanEvents(t *testing.T) [][]byte {
	t.Helper()
	r, err := ingest.ReadFile(carLoanDir+"monitoring.parquet", ingest.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var events [][]byte
	for r.Next() {
		rec := r.Record()
		for i := 0; i < int(rec.NumRows()); i++ {
			ev := map[string]any{"model": "car-loan", "model_version": "1"}
			features, prediction := map[string]any{}, map[string]any{}
			for c, f := range rec.Schema().Fields() {
				v := value(rec.Column(c), i)
				switch f.Name {
				case "timestamp":
					ev["ts"] = v
				case "y_pred_proba", "y_pred":
					prediction[f.Name] = v
				case "repaid":
				default:
					features[f.Name] = v
				}
			}
			ev["features"], ev["prediction"] = features, prediction
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, b)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

func value(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(i)
	case *array.Int64:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	}
	panic(fmt.Sprintf("BUG: car-loan column of type %s", col.DataType()))
}

func produce(ctx context.Context, t *testing.T, brokers []string, topic string, values [][]byte) {
	t.Helper()
	// acks: kafka-go's default (none) lets batches land out of order.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchSize: 1000, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 1000)
	for len(values) > 0 {
		n := min(1000, len(values))
		msgs = msgs[:0]
		for _, v := range values[:n] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		values = values[n:]
	}
}
