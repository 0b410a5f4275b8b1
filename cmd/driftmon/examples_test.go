package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// exampleConfigsDir holds a driftmon config for each kind of Kafka service.
const exampleConfigsDir = "../../examples/configs"

// webhookSecret is a Standard Webhooks secret in the form check accepts.
const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// exampleConfigs are examples/configs' files, each with what its comments say it needs
// from the outside (environment variables, files beside it) and a mistake a user could
// make in it, with the line check must report.
var exampleConfigs = []struct {
	file    string
	env     map[string]string
	files   map[string]string
	prepare func(t *testing.T, dir, cfg string) // more files, made with the config in place
	// mistake replaces old with new in a copy, which check must reject with want.
	old, new, want string
}{
	{
		file: "confluent-cloud.yaml",
		env:  map[string]string{"CONFLUENT_API_KEY": "ABCDEFGH12345678", "SCHEMA_REGISTRY_API_KEY": "SRKEY1234567890A"},
		files: map[string]string{
			"confluent-api-secret":       "cflt-secret-0123456789abcdef\n",
			"schema-registry-api-secret": "sr-secret-0123456789abcdef\n",
			"slack-token":                "xoxb-1234-5678-abcdef\n",
			"airflow-token":              "airflow-token-0123\n",
		},
		// Switching to OAuth takes more than the mechanism's name.
		old:  "mechanism: PLAIN",
		new:  "mechanism: OAUTHBEARER",
		want: "kafka.sasl: OAUTHBEARER does not use password, username (keys of PLAIN and SCRAM)",
	},
	{
		file: "confluent-cloud-oauth.yaml",
		env:  map[string]string{"OAUTH_CLIENT_ID": "5f8e2a1c-3b4d-4e6f-8a9b-0c1d2e3f4a5b"},
		files: map[string]string{
			"oauth-client-secret":    "Xy7~q8Q-client-secret-0123456789\n",
			"retrain-webhook-secret": webhookSecret + "\n",
		},
		// Confluent's console writes extension_logicalCluster, for Java clients'
		// JAAS config; the extension itself is logicalCluster.
		old:  "logicalCluster: lkc-9x3k2m",
		new:  "extension_logicalCluster: lkc-9x3k2m",
		want: "kafka.sasl.extensions.extension_logicalCluster: an extension's name is letters only (RFC 7628)",
	},
	{
		file: "aws-msk.yaml",
		// Hermetic: no profile or shared files of this machine's; credentials are not
		// looked for until a connection is made.
		env: map[string]string{"AWS_PROFILE": "", "AWS_REGION": "", "AWS_CONFIG_FILE": "no-such-aws-config",
			"AWS_SHARED_CREDENTIALS_FILE": "no-such-aws-credentials"},
		files: map[string]string{
			"slack-webhook-url":      "https://hooks.slack.com/services/T000/B000/XXXX\n",
			"retrain-webhook-secret": webhookSecret + "\n",
		},
		prepare: writeChurnProfile,
		old:     "  tls: {}\n",
		new:     "",
		want:    "kafka.tls: is required with AWS_MSK_IAM",
	},
	{
		file: "redpanda.yaml",
		files: map[string]string{
			"redpanda-password": "redpanda-password-0123\n",
			"slack-token":       "xoxb-1234-5678-abcdef\n",
			"github-token":      "ghp_0123456789abcdef\n",
		},
		// Without kind, labels are a classifier's, whose metrics mae is not one of.
		old:  "      kind: regression\n",
		new:  "",
		want: `streams[0].performance.metric: must be one of roc_auc, accuracy, precision, recall, f1, log_loss for classification labels, got "mae"`,
	},
	{
		file: "aiven.yaml",
		env:  map[string]string{"AIVEN_KAFKA_SERVICE_URI": "kafka-drift-project.aivencloud.com:12345"},
		files: map[string]string{
			"slack-token":            "xoxb-1234-5678-abcdef\n",
			"retrain-webhook-secret": webhookSecret + "\n",
		},
		prepare: func(t *testing.T, dir, _ string) {
			writeClientTLS(t, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "service.cert"), filepath.Join(dir, "service.key"))
		},
		// The certificate and the key swapped: both are PEM, neither parses as the other.
		old:  "cert_file: service.cert\n    key_file: service.key",
		new:  "cert_file: service.key\n    key_file: service.cert",
		want: "streams[0]: kafka.tls: cannot load kafka tls client certificate",
	},
	{
		file:  "local.yaml",
		files: map[string]string{"retrain-webhook-secret": webhookSecret + "\n"},
		old:   "      rows: 5000\n",
		new:   "      rows: 5000\n      size: 1h\n",
		want:  "streams[0].window: set either size or rows, not both",
	},
}

// TestExampleConfigsPassCheck runs `driftmon check` on every example config, beside
// the secrets, certificates and reference profile its comments name, and on a copy of
// it with a mistake, which must fail with the mistake's path.
func TestExampleConfigsPassCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(exampleConfigsDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tested []string
	for _, ex := range exampleConfigs {
		tested = append(tested, ex.file)
	}
	for _, f := range files {
		if !slices.Contains(tested, filepath.Base(f)) {
			t.Errorf("%s is not checked: add it to exampleConfigs", f)
		}
	}
	for _, ex := range exampleConfigs {
		t.Run(ex.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(exampleConfigsDir, ex.file))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for k, v := range ex.env {
				t.Setenv(k, v)
			}
			for name, content := range ex.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			cfg := filepath.Join(dir, ex.file)
			writeFile(t, cfg, string(src))
			if ex.prepare != nil {
				ex.prepare(t, dir, cfg)
			}
			var out, errOut bytes.Buffer
			if code := run([]string{"check", "-c", cfg}, &out, &errOut); code != 0 {
				t.Fatalf("check exit code %d; stderr:\n%s", code, errOut.String())
			}
			if !strings.Contains(out.String(), "is valid: 1 stream(s)") {
				t.Errorf("stdout: %q", out.String())
			}

			if !bytes.Contains(src, []byte(ex.old)) {
				t.Fatalf("the mistake's %q is not in the example", ex.old)
			}
			bad := filepath.Join(dir, "mistake-"+ex.file)
			writeFile(t, bad, strings.Replace(string(src), ex.old, ex.new, 1))
			out.Reset()
			errOut.Reset()
			if code := run([]string{"check", "-c", bad}, &out, &errOut); code != 1 {
				t.Fatalf("check of the mistake: exit code %d, want 1; stderr:\n%s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), ex.want) {
				t.Errorf("check of the mistake: stderr lacks %q:\n%s", ex.want, errOut.String())
			}
		})
	}
}

// writeChurnProfile makes aws-msk.yaml's reference profile as its users would: a
// training set of the churn model's columns, summarised by `driftmon baseline`.
func writeChurnProfile(t *testing.T, dir, cfg string) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	var b strings.Builder
	b.WriteString("tenure_months,monthly_charges,support_tickets_90d,sessions_30d,contract,payment_method,plan,churn_probability\n")
	for range 6000 {
		fmt.Fprintf(&b, "%d,%.2f,%d,%d,%s,%s,%s,%.4f\n",
			rng.IntN(72), 20+rng.Float64()*100, rng.IntN(6), rng.IntN(60),
			pick("month-to-month", "one-year", "two-year"), pick("card", "bank-transfer", "paypal"),
			pick("basic", "plus", "premium"), rng.Float64())
	}
	train := filepath.Join(dir, "churn-train.csv")
	writeFile(t, train, b.String())
	var out, errOut bytes.Buffer
	if code := run([]string{"baseline", "-c", cfg, "--input", train, "-o", filepath.Join(dir, "churn-reference.profile")}, &out, &errOut); code != 0 {
		t.Fatalf("baseline exit code %d; stderr:\n%s", code, errOut.String())
	}
}

// writeClientTLS writes a CA certificate to caFile and a client certificate it signs,
// with its key, to certFile and keyFile, all PEM, as a Kafka service hands them out.
func writeClientTLS(t *testing.T, caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Project CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "avnadmin"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}
