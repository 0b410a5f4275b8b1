package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/httpapi"
	"github.com/driftmon/driftmon/internal/references"
)

// pythonEnv names a Python interpreter with examples/python/requirements.txt installed.
// Without it the tests use python3 from PATH and skip when it lacks the modules; with it
// (CI sets it) a missing module fails the test, so that CI cannot pass by skipping.
const pythonEnv = "DRIFTMON_PYTHON"

// pythonModules are the modules the examples import.
const pythonModules = "confluent_kafka, confluent_kafka.schema_registry.avro, fastavro, pyarrow, standardwebhooks"

// examplesDir holds the Python clients, relative to this package.
var examplesDir = filepath.Join("..", "..", "examples", "python")

var pythonCheck = sync.OnceValues(func() (string, error) {
	py := os.Getenv(pythonEnv)
	if py == "" {
		py = "python3"
	}
	path, err := exec.LookPath(py)
	if err != nil {
		return "", fmt.Errorf("no Python interpreter %q: %w", py, err)
	}
	if out, err := exec.Command(path, "-c", "import "+pythonModules).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s lacks the examples' modules (pip install -r examples/python/requirements.txt): %v\n%s", path, err, out)
	}
	return path, nil
})

// python returns the interpreter that runs the examples, or skips the test when there
// is none with the modules they need (fails, when DRIFTMON_PYTHON names it).
func python(t *testing.T) string {
	t.Helper()
	path, err := pythonCheck()
	if err != nil {
		if os.Getenv(pythonEnv) != "" {
			t.Fatalf("%s: %v", pythonEnv, err)
		}
		t.Skipf("%v; set %s to an interpreter that has them", err, pythonEnv)
	}
	return path
}

// runExample runs one of examples/python's scripts to its end and returns its output;
// it fails the test when the script fails.
func runExample(ctx context.Context, t *testing.T, py, script string, args ...string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	cmd.Dir = examplesDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	t.Logf("%s took %s: %s", script, time.Since(start).Round(10*time.Millisecond), bytes.TrimSpace(out))
	return string(out)
}

// creditStreamYAML is config/example.yaml's car-loan stream, as the Python producers
// write it: %[1]s is the stream's name, %[2]s its topic, %[3]s its format and any
// schema_registry line, %[4]d its window rows.
const creditStreamYAML = `
  - name: %[1]s
    topic: %[2]s
    format: %[3]s
    event_time: ts
    model: model
    model_version: model_version
    features:
      car_value: {type: numeric}
      debt_to_income_ratio: {type: numeric}
      loan_length: {type: numeric}
      driver_tenure: {type: numeric}
      salary_range: {type: categorical}
      size_of_downpayment: {type: categorical}
      repaid_loan_on_prev_car: {type: categorical}
    predictions:
      y_pred_proba: {type: numeric}
      y_pred: {type: categorical}
    window: {rows: %[4]d}
`

// TestPythonProducerJSON runs examples/python/producer_json.py (confluent-kafka, i.e.
// librdkafka) against the real broker and checks the monitor reads every event of
// config/example.yaml's shape, with every field found.
func TestPythonProducerJSON(t *testing.T) {
	checkPythonProducer(t, "producer_json.py", "json", nil)
}

// TestPythonProducerArrow runs examples/python/producer_arrow.py: pyarrow's IPC streams
// with struct and dictionary columns, several hundred events per message.
func TestPythonProducerArrow(t *testing.T) {
	checkPythonProducer(t, "producer_arrow.py", "arrow_ipc", []string{"--rows", "400"})
}

// TestPythonProducerAvro runs examples/python/producer_avro.py: confluent-kafka's
// AvroSerializer registers the schema in a registry (franz-go's srfake, which serves
// the REST calls it makes: POST /subjects/{subject}/versions, GET /schemas/ids/{id})
// and writes the Confluent wire format, which the monitor decodes with the schema it
// fetches from the same registry.
func TestPythonProducerAvro(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	checkPythonProducer(t, "producer_avro.py", "avro\n    schema_registry: {urls: [\""+reg.URL()+"\"]}",
		[]string{"--registry", reg.URL()})
	subjects := 0
	if err := func() error {
		resp, err := http.Get(reg.URL() + "/subjects")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var names []string
		if err := json.NewDecoder(resp.Body).Decode(&names); err != nil {
			return err
		}
		subjects = len(names)
		return nil
	}(); err != nil {
		t.Fatalf("cannot list the registry's subjects: %v", err)
	}
	if subjects != 1 {
		t.Errorf("the producer registered %d subjects, want 1 (<topic>-value)", subjects)
	}
}

// checkPythonProducer creates a topic, has script send events to it and checks that a
// monitor counts every one, rejects none, and finds every feature and prediction in
// every row (a path the encoding does not reach would read as null, not be rejected).
func checkPythonProducer(t *testing.T, script, format string, args []string) {
	addr := broker(t)
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const partitions, count, rows = 3, 4000, 500
	topic := newTopic(ctx, t, addr, partitions)
	runExample(ctx, t, py, script, append([]string{addr, topic, fmt.Sprint(count)}, args...)...)
	messages := stored(ctx, t, addr, topic, partitions)
	if format == "json" || strings.HasPrefix(format, "avro") {
		if messages != count {
			t.Fatalf("the broker holds %d messages, want %d: one per event", messages, count)
		}
	}

	var mu sync.Mutex
	var problems []string
	onWindow := func(res engine.Result) {
		mu.Lock()
		defer mu.Unlock()
		if res.Model != "car-loan" || res.ModelVersion != "3.2.0" {
			problems = append(problems, fmt.Sprintf("window of model %q version %q, want car-loan 3.2.0", res.Model, res.ModelVersion))
		}
		for _, f := range res.Profile.Features {
			if f.Nulls() != 0 || f.TypeErrors != 0 {
				problems = append(problems, fmt.Sprintf("%s: %d nulls, %d type errors in %d rows", f.Name, f.Nulls(), f.TypeErrors, res.Rows))
			}
		}
	}
	const name = "credit"
	run := startMonitor(ctx, t, configYAML(addr, "group-"+topic, []string{fmt.Sprintf(creditStreamYAML, name, topic, format, rows)}, ""), onWindow)
	got := awaitEvents(t, 45*time.Second, 2*time.Second, name, count, run)
	run.stop(t)

	if got != count {
		t.Errorf("monitor counted %d events from %d messages, want %d", got, messages, count)
	}
	checkNoRejections(t, run)
	if n, want := len(run.windows()), count/rows; n != want {
		t.Errorf("%d windows closed, want %d", n, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("windows do not hold what the producer sent:\n%s", strings.Join(problems, "\n"))
	}
}

// TestPythonWebhookReceiver starts examples/python/webhook_receiver.py and delivers a
// drift alert with driftmon's own notifier (Standard Webhooks signature): the standard
// webhooks package must accept it, answer a retry of it without starting a second
// training, and refuse a body altered after signing.
func TestPythonWebhookReceiver(t *testing.T) {
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, py, "webhook_receiver.py", "--host", "127.0.0.1", "--port", "0")
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("receiver's stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the receiver exited before %s", what)
			}
			return line
		case <-ctx.Done():
			t.Fatalf("no %s from the receiver", what)
		}
		return ""
	}
	url, ok := strings.CutPrefix(next("address"), "listening on ")
	if !ok {
		t.Fatalf("receiver did not say where it listens")
	}

	n, err := webhook.New(webhook.Options{URL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	alert := func(id string) webhook.Request {
		t.Helper()
		req, err := n.Render(id, webhook.NewPayload(alerting.Alert{
			ID: id, Stream: "credit", Model: "car-loan", ModelVersion: "3.2.0",
			WindowStart: start, WindowEnd: start.Add(time.Hour), Rows: 5000,
			Reference: "baseline car-loan-3.2.0.profile (20,000 rows)", Severity: alerting.SeverityCritical,
			Drifted: []alerting.Change{{Feature: "car_value", Detector: "ks", Score: 0.38, Threshold: 0.1, PValue: 1e-9, Summary: "p50 27.1k → 42.3k"}},
			Stable:  []string{"driver_tenure"},
		}))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	type retrain struct {
		Retrain      string   `json:"retrain"`
		ModelVersion string   `json:"model_version"`
		WebhookID    string   `json:"webhook_id"`
		Drifted      []string `json:"drifted"`
	}
	accepted := func(id string) {
		t.Helper()
		if _, err := n.Send(ctx, id, alert(id)); err != nil {
			t.Fatalf("driftmon's signed webhook %s was not accepted: %v", id, err)
		}
	}
	started := func(id string) {
		t.Helper()
		line := next("retraining of " + id)
		var got retrain
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("receiver printed %q: %v", line, err)
		}
		want := retrain{Retrain: "car-loan", ModelVersion: "3.2.0", WebhookID: id, Drifted: []string{"car_value"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("receiver started %+v, want %+v", got, want)
		}
	}

	accepted("drift-1")
	started("drift-1")
	accepted("drift-1") // a retry: 204, and no second training (checked below)

	// A body changed after driftmon signed it: the model to retrain is not the one signed.
	req := alert("drift-2")
	now := time.Now()
	sig, err := webhook.Sign(secret, "drift-2", now, req.Body)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(req.Body, []byte(`"car-loan"`), []byte(`"car-lease"`), 1)
	if bytes.Equal(tampered, req.Body) {
		t.Fatal("BUG: the body holds no model to alter")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(tampered))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(webhook.HeaderID, "drift-2")
	hreq.Header.Set(webhook.HeaderTimestamp, fmt.Sprint(now.Unix()))
	hreq.Header.Set(webhook.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a tampered webhook got %d, want 401", resp.StatusCode)
	}

	// The next training the receiver starts is drift-3's: neither the retry nor the
	// tampered request started one.
	accepted("drift-3")
	started("drift-3")
}

// TestPythonTrainingHandsTheReferenceOver runs examples/python/train_and_handover.py
// as a training job's last step: it writes its training frame as Parquet, runs the real
// `driftmon baseline` on it and PUTs the profile to a running monitor's API as the
// reference of a new model version, which the monitor then holds (in its state file)
// and names as the API does.
func TestPythonTrainingHandsTheReferenceOver(t *testing.T) {
	addr := broker(t)
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "driftmon")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/driftmon/driftmon/cmd/driftmon").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	topic := newTopic(ctx, t, addr, 1)
	yaml := configYAML(addr, "group-"+topic, []string{fmt.Sprintf(creditStreamYAML, "credit", topic, "json", 500)}, "") +
		fmt.Sprintf("state: {path: %q}\n", filepath.Join(dir, "state.db"))
	cfgPath := filepath.Join(dir, "driftmon.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := startMonitor(ctx, t, yaml, nil)
	const token = "train-token"
	api := httptest.NewServer(httpapi.New(httpapi.Options{Token: token, References: run.mon}).Handler())
	t.Cleanup(api.Close)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := run.mon.Reference("credit", "car-loan", "3.3.0"); !errors.Is(err, references.ErrNotRunning) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor did not start in 30s")
		}
	}

	cmd := exec.CommandContext(ctx, py, "train_and_handover.py", "--driftmon", bin, "-c", cfgPath,
		"--api", api.URL, "--model", "car-loan", "--version", "3.3.0", "--rows", "5000")
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), "DRIFTMON_API_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("train_and_handover.py: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "handed over: handed over for 3.3.0 by PUT at ") || !strings.Contains(string(out), ": 5,000 rows") {
		t.Errorf("the script said:\n%s", out)
	}
	ref, err := run.mon.Reference("credit", "car-loan", "3.3.0")
	if err != nil || ref.Handover == nil || ref.Handover.Profile.Rows != 5000 || len(ref.Handover.Profile.Features) != 9 {
		t.Errorf("the monitor holds %+v, %v; want the 5,000-row profile of the 9 fields", ref, err)
	}

	// A wrong token is refused, and the script says why.
	cmd = exec.CommandContext(ctx, py, "train_and_handover.py", "--driftmon", bin, "-c", cfgPath,
		"--api", api.URL, "--model", "car-loan", "--version", "3.4.0", "--rows", "100")
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), "DRIFTMON_API_TOKEN=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "driftmon refused the reference (401)") {
		t.Errorf("with a wrong token: %v\n%s", err, out)
	}
}
