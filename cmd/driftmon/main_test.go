package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestMain runs the command itself when DRIFTMON_RUN_MAIN is set, so that a test can
// start the real process and read all it writes.
func TestMain(m *testing.M) {
	if os.Getenv("DRIFTMON_RUN_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runProcess runs driftmon with args as a process of its own and returns its exit code,
// stdout and stderr.
func runProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DRIFTMON_RUN_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestCheckNeverPrintsASecret runs `driftmon check` on configs with secrets typed into
// fields whose values problems quote, given with the wrong type, and pasted where
// building the monitor fails on them: it says what is wrong and prints none of them.
func TestCheckNeverPrintsASecret(t *testing.T) {
	secret := regexp.MustCompile(`[A-Za-z0-9_-]*-secret\b|31415926535`)
	tests := []struct {
		file string
		want []string // lines of stderr
	}{
		{"secret_echoed.yaml", []string{
			`kafka.brokers[0]: want host:port, not a URL (credentials go in kafka.sasl), got "SASL_SSL://admin:***@kafka-1.internal:9093"`,
			`kafka.start_offset: must be "earliest" or "latest", got "https://hooks.slack.com/services/***"`,
			`kafka.sasl.mechanism: must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, got "***"`,
			`alerting.webhooks[0].signing: must be "standard" or "github", got "***"`,
		}},
		{"secret_wrong_type.yaml", []string{
			`alerting.slack.token: want a string, got a list (line 16)`,
			`alerting.webhooks[0].header_value: want a string (the value is not shown: the field is a secret) (line 22)`,
		}},
		{"secret_oauth_echoed.yaml", []string{
			`kafka.sasl.client_auth_method: must be client_secret_basic or client_secret_post, got "***"`,
			`kafka.sasl.token_endpoint: must be an https URL (the client secret goes to it; http only to this machine), got "http://idp.example.com/token?client_secret=***"`,
		}},
		{"secret_in_baseline.yaml", []string{
			"cannot read ../../config/testdata/***: unknown file extension (want .parquet, .csv or .jsonl)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, stdout, stderr := runProcess(t, "check", "-c", "../../config/testdata/"+tt.file)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want+"\n") {
					t.Errorf("stderr lacks the line %q:\n%s", want, stderr)
				}
			}
			if m := secret.FindAllString(stdout+stderr, -1); m != nil {
				t.Errorf("check printed secrets %q:\nstdout:\n%s\nstderr:\n%s", m, stdout, stderr)
			}
		})
	}
}
