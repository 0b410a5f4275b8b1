package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckReportsEveryProblemAndExitsNonZero(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"check", "-c", "../../config/testdata/many_errors.yaml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{
		"streams[0].features.car_value.type: must be",
		"streams[1].name: \"credit\" is used by another stream",
		"alerting.webhooks[0].secret: must start with",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestCheckAcceptsAValidConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "driftmon.yaml")
	if err := os.WriteFile(cfg, []byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
streams:
  - name: credit
    topic: credit-inferences
    features: {car_value: {type: numeric}, salary_range: {type: categorical}}
    window: {size: 1h}
alerting:
  webhooks: [{name: retrain, url: "http://127.0.0.1:9/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-c", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "is valid: 1 stream(s)") {
		t.Errorf("stdout: %q", out.String())
	}
}

func TestUnknownCommandAndBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"check", "-x"}, {"demo", "-rate", "0"}, {}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
	}
}
