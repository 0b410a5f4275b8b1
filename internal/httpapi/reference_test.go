package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/sketch"
)

// runningMonitor runs, until the test ends, a monitor of the streams' YAML on a kfake
// broker, with a state file, and returns it once it keeps references.
func runningMonitor(t *testing.T, streams string) (*monitor.Monitor, *config.Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
kafka: {brokers: [%q], group_id: g}
state: {path: %q}
%s`, c.ListenAddrs()[0], filepath.Join(t.TempDir(), "state.db"), streams)), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := mon.Reference(cfg.Streams[0].Name, "m", "v"); err == nil || !strings.Contains(err.Error(), "not running") {
			return mon, cfg
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor did not start in 10s")
		}
	}
}

const oneStream = `streams:
  - name: credit
    topic: a
    model: model
    model_version: version
    features: {age: {type: numeric}, segment: {type: categorical}}
    window: {rows: 100}
`

// profileFile is the bytes of a profile of fields with rows empty rows counted, as
// `driftmon baseline` writes one.
func profileFile(t *testing.T, fields []sketch.Field, rows int64) string {
	t.Helper()
	p := sketch.NewProfile(fields, sketch.Options{})
	p.Rows = rows
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHandOverReference: a training pipeline hands a version's profile over with the
// API's token, reads back what judges the version, and deletes it; what is not a
// profile of the stream's fields, too large, unauthenticated, or for an unknown stream
// is refused with the status and a reason a person can act on.
func TestHandOverReference(t *testing.T) {
	mon, cfg := runningMonitor(t, oneStream)
	srv := New(Options{Token: testToken, References: mon, Limits: config.HTTP{MaxReferenceBytes: 4096}})
	h := srv.Handler()
	fields := engine.StreamFields(&cfg.Streams[0])
	good := profileFile(t, fields, 50000)
	const path = "/api/v1/models/car-loan/versions/2.0/reference"

	type call struct {
		name, method, target, token, body string
		code                              int
		says                              string
	}
	for _, c := range []call{
		{"GET before any", "GET", path, "", "", 200, "no reference handed over for 2.0: warm-up: the version's first whole window"},
		{"no token", "PUT", path, "", good, 401, "missing or wrong bearer token"},
		{"wrong token", "PUT", path, "nope", good, 401, "missing or wrong bearer token"},
		{"too large", "PUT", path, testToken, strings.Repeat("x", 5000), 413, "more than the 4096 this server accepts (http.max_reference_bytes)"},
		{"empty", "PUT", path, testToken, "", 400, "the body is empty"},
		{"not a profile", "PUT", path, testToken, "age,segment\n41,retail\n", 400, "not a driftmon profile (write one with `driftmon baseline`)"},
		{"other fields", "PUT", path, testToken, profileFile(t, []sketch.Field{{Name: "age", Kind: sketch.KindCategorical}}, 10), 422,
			"age is categorical in the profile, numeric in the stream"},
		{"unknown stream", "PUT", path + "?stream=fraud", testToken, good, 404, `fraud\": the config has streams credit`},
		{"delete none", "DELETE", path, testToken, "", 404, "no reference handed over for the version"},
		{"handed over", "PUT", path, testToken, good, 200, "handed over for 2.0 by PUT at "},
		{"read back", "GET", path, "", "", 200, "handed over for 2.0 by PUT at "},
		{"deleted", "DELETE", path, testToken, "", 200, "no reference handed over for 2.0: warm-up"},
		{"read after delete", "GET", path, "", "", 200, "no reference handed over for 2.0: warm-up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, body := do(t, h, c.method, c.target, c.token, c.body)
			if code != c.code || !strings.Contains(string(body), c.says) {
				t.Fatalf("%s %s = %d %s, want %d saying %q", c.method, c.target, code, body, c.code, c.says)
			}
			checkShape(t, c.method, referencePath, code, body)
		})
	}
	code, _, body := do(t, h, "PUT", path, testToken, good)
	if v := decode(t, body); code != 200 || v["handed_over"].(map[string]any)["rows"] != 50000.0 ||
		v["handed_over"].(map[string]any)["via"] != "PUT" || v["handed_over"].(map[string]any)["features"] != 2.0 {
		t.Errorf("PUT = %d %s", code, body)
	}

	// A body of undeclared length is cut off at the limit too.
	req := httptest.NewRequest("PUT", path, io.MultiReader(strings.NewReader(good), strings.NewReader(strings.Repeat("x", 5000))))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "http.max_reference_bytes") {
		t.Errorf("chunked body past the limit = %d %s", rec.Code, rec.Body)
	}
	// Other bodies keep their own, smaller limit.
	if code, _, body := do(t, h, "POST", "/api/v1/silences", testToken, strings.Repeat(" ", 70<<10)+"{}"); code != 413 || !strings.Contains(string(body), "http.max_body_bytes") {
		t.Errorf("a silence past max_body_bytes = %d %s", code, body)
	}
	// Without a token configured, nothing is handed over.
	if code, _, body := do(t, New(Options{References: mon}).Handler(), "PUT", path, testToken, good); code != http.StatusForbidden {
		t.Errorf("PUT to a server without a token = %d %s", code, body)
	}
	// Without a monitor, 503.
	if code, _, body := do(t, New(Options{Token: testToken}).Handler(), "GET", path, "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET from a server without a monitor = %d %s", code, body)
	}
}

// TestHandOverNamesTheStream: with several streams the call says which, a model or
// version with a "/" in it is one path segment, escaped, and a stream holds no more
// references than limits.max_models.
func TestHandOverNamesTheStream(t *testing.T) {
	mon, cfg := runningMonitor(t, oneStream+`  - name: fraud
    topic: b
    features: {amount: {type: numeric}}
    window: {rows: 100}
    limits: {max_models: 1}
`)
	h := New(Options{Token: testToken, References: mon}).Handler()
	credit := profileFile(t, engine.StreamFields(&cfg.Streams[0]), 100)
	fraud := profileFile(t, engine.StreamFields(&cfg.Streams[1]), 100)
	const path = "/api/v1/models/car-loan/versions/2.0/reference"
	if code, _, body := do(t, h, "PUT", path, testToken, credit); code != 400 || !strings.Contains(string(body), "several streams: say which: the config has streams credit, fraud") {
		t.Errorf("PUT without ?stream= = %d %s", code, body)
	}
	if code, _, body := do(t, h, "PUT", path+"?stream=fraud", testToken, credit); code != 422 {
		t.Errorf("credit's profile to fraud = %d %s", code, body)
	}
	if code, _, body := do(t, h, "PUT", path+"?stream=credit", testToken, credit); code != 200 {
		t.Errorf("PUT ?stream=credit = %d %s", code, body)
	}
	escaped := "/api/v1/models/fraud%2Fscore/versions/2026%2F12/reference?stream=fraud"
	if code, _, body := do(t, h, "PUT", escaped, testToken, fraud); code != 200 || !strings.Contains(string(body), `"model":"fraud/score","version":"2026/12"`) {
		t.Errorf("PUT of an escaped model and version = %d %s", code, body)
	}
	if got, err := mon.Reference("fraud", "fraud/score", "2026/12"); err != nil || got.Handover == nil {
		t.Errorf("the monitor's view: %+v, %v", got, err)
	}
	if got, err := mon.Reference("fraud", "car-loan", "2.0"); err != nil || got.Handover != nil {
		t.Errorf("credit's version is not fraud's: %+v, %v", got, err)
	}
	another := "/api/v1/models/fraud%2Fscore/versions/2027/reference?stream=fraud"
	if code, _, body := do(t, h, "PUT", another, testToken, fraud); code != 409 || !strings.Contains(string(body), "limits.max_models") {
		t.Errorf("a second version's reference past max_models 1 = %d %s", code, body)
	}
	checkShapeOf(t, h, "PUT", another, fraud)
	if code, _, body := do(t, h, "PUT", escaped, testToken, fraud); code != 200 {
		t.Errorf("the same version's again = %d %s", code, body)
	}
}

// checkShapeOf checks the answer to a reference call against the OpenAPI document.
func checkShapeOf(t *testing.T, h http.Handler, method, target, body string) {
	t.Helper()
	code, _, got := do(t, h, method, target, testToken, body)
	checkShape(t, method, referencePath, code, got)
}
