package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/segmentio/kafka-go/sasl"
)

const mskHost = "b-1.inference-logs.x7k2q9.c3.kafka.eu-west-1.amazonaws.com"

// mskPayload runs m's Start for a connection to mskHost:9098 and returns the JSON
// object it sends.
func mskPayload(t *testing.T, m sasl.Mechanism) map[string]string {
	t.Helper()
	ctx := sasl.WithMetadata(context.Background(), &sasl.Metadata{Host: mskHost, Port: 9098})
	_, ir, err := m.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]string
	if err := json.Unmarshal(ir, &p); err != nil {
		t.Fatalf("payload %s: %v", ir, err)
	}
	return p
}

// TestMSKIAMSignsAsAWSSigV4 checks the AWS_MSK_IAM payload field by field, and its
// signature by computing AWS Signature Version 4 again from the AWS documentation's
// steps: the canonical request of a presigned GET of kafka://<host>/?Action=..., the
// string to sign, and the HMAC-SHA256 key chain of the secret key.
func TestMSKIAMSignsAsAWSSigV4(t *testing.T) {
	const (
		keyID   = "AKIAIOSFODNN7EXAMPLE"
		secret  = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
		session = "FwoGZXIvYXdzEXAMPLE/session+token="
		region  = "eu-west-1"
	)
	m, err := newMSKIAM(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, session)})
	if err != nil {
		t.Fatal(err)
	}
	m.SignTime = time.Date(2026, 11, 25, 9, 30, 5, 0, time.UTC)
	p := mskPayload(t, m)

	for k, want := range map[string]string{
		"version":              "2020_10_22",
		"host":                 mskHost,
		"action":               "kafka-cluster:Connect",
		"x-amz-algorithm":      "AWS4-HMAC-SHA256",
		"x-amz-credential":     keyID + "/20261125/" + region + "/kafka-cluster/aws4_request",
		"x-amz-date":           "20261125T093005Z",
		"x-amz-expires":        "300",
		"x-amz-signedheaders":  "host",
		"x-amz-security-token": session,
	} {
		if p[k] != want {
			t.Errorf("%s = %q, want %q", k, p[k], want)
		}
	}
	if ua := p["user-agent"]; !strings.HasPrefix(ua, "kafka-go/sasl/aws_msk_iam_v2/") {
		t.Errorf("user-agent = %q", ua)
	}
	if want := sigV4(t, p, secret); p["x-amz-signature"] != want {
		t.Errorf("x-amz-signature = %q, want %q (recomputed)", p["x-amz-signature"], want)
	}

	// The recomputation depends on every signed field: a payload with one changed
	// does not verify.
	for _, k := range []string{"x-amz-date", "x-amz-credential", "x-amz-security-token", "host", "action"} {
		changed := maps.Clone(p)
		changed[k] += "x"
		if sigV4(t, changed, secret) == p["x-amz-signature"] {
			t.Errorf("changing %s leaves the signature valid", k)
		}
	}
	if sigV4(t, p, secret+"x") == p["x-amz-signature"] {
		t.Error("another secret key gives the same signature")
	}
}

// TestSigV4SigningKey checks the test's key derivation against the example of AWS's
// documentation ("Derive a signing key for Signature Version 4").
func TestSigV4SigningKey(t *testing.T) {
	got := hex.EncodeToString(sigV4Key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"))
	if want := "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"; got != want {
		t.Errorf("signing key %s, want %s", got, want)
	}
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func sigV4Key(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// uriEncode is SigV4's encoding: every byte but A-Z, a-z, 0-9, '-', '.', '_' and '~'
// as %XY in upper-case hex.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// sigV4 computes the signature of an AWS_MSK_IAM payload p from its fields.
func sigV4(t *testing.T, p map[string]string, secret string) string {
	t.Helper()
	// The presigned URL's query: the action, the expiry and the signing parameters,
	// the session token among them when there is one.
	var pairs []string
	for _, k := range []string{"Action", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
		"X-Amz-Security-Token", "X-Amz-SignedHeaders"} {
		if v, ok := p[strings.ToLower(k)]; ok {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	slices.Sort(pairs)
	emptyHash := sha256.Sum256(nil)
	canonical := strings.Join([]string{
		"GET", "/", strings.Join(pairs, "&"),
		"host:" + p["host"] + "\n", "host", hex.EncodeToString(emptyHash[:]),
	}, "\n")
	cred := strings.SplitN(p["x-amz-credential"], "/", 2)
	if len(cred) != 2 {
		t.Fatalf("x-amz-credential %q", p["x-amz-credential"])
	}
	scope := cred[1] // date/region/service/aws4_request
	parts := strings.Split(scope, "/")
	if len(parts) != 4 {
		t.Fatalf("credential scope %q", scope)
	}
	h := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + p["x-amz-date"] + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	return hex.EncodeToString(hmacSHA256(sigV4Key(secret, parts[0], parts[1], parts[2]), toSign))
}

// awsEnv empties every environment variable the AWS SDK's default chain reads, points
// its shared files at dir, keeps it off the EC2 instance metadata service, and sets
// vars.
func awsEnv(t *testing.T, dir string, vars map[string]string) {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_SDK_LOAD_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// TestMSKIAMDefaultCredentialChain checks that AWS_MSK_IAM signs with what the AWS
// SDK's default chain finds (the environment, a shared config profile, a web identity
// token as EKS's IRSA mounts it) in the region of the config, else of the chain.
func TestMSKIAMDefaultCredentialChain(t *testing.T) {
	t.Run("environment", func(t *testing.T) {
		awsEnv(t, t.TempDir(), map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVEXAMPLE", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_REGION": "us-east-2"})
		for region, want := range map[string]string{"": "us-east-2", "eu-west-1": "eu-west-1"} {
			m, err := SASLMechanism(SASLOptions{Mechanism: "AWS_MSK_IAM", Region: region})
			if err != nil {
				t.Fatal(err)
			}
			p := mskPayload(t, m)
			if c := p["x-amz-credential"]; !strings.HasPrefix(c, "AKIAENVEXAMPLE/") || !strings.Contains(c, "/"+want+"/kafka-cluster/") {
				t.Errorf("region %q: x-amz-credential %q, want the environment's key in %s", region, c, want)
			}
			if _, ok := p["x-amz-security-token"]; ok {
				t.Errorf("a session token without AWS_SESSION_TOKEN")
			}
			if p["x-amz-signature"] != sigV4(t, p, "env-secret") {
				t.Errorf("the signature does not verify with the environment's secret")
			}
		}
	})
	t.Run("shared config profile", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config"), "[profile drift]\nregion = ap-southeast-2\n")
		writeFile(t, filepath.Join(dir, "credentials"), "[drift]\naws_access_key_id = AKIAPROFILEEXAMPLE\naws_secret_access_key = profile-secret\n")
		awsEnv(t, dir, map[string]string{"AWS_PROFILE": "drift"})
		m, err := SASLMechanism(SASLOptions{Mechanism: "AWS_MSK_IAM"})
		if err != nil {
			t.Fatal(err)
		}
		p := mskPayload(t, m)
		if c := p["x-amz-credential"]; !strings.HasPrefix(c, "AKIAPROFILEEXAMPLE/") || !strings.Contains(c, "/ap-southeast-2/") {
			t.Errorf("x-amz-credential %q, want the profile's key and region", c)
		}
		if p["x-amz-signature"] != sigV4(t, p, "profile-secret") {
			t.Errorf("the signature does not verify with the profile's secret")
		}
	})
	t.Run("web identity", func(t *testing.T) {
		dir := t.TempDir()
		const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZHJpZnQifQ.sig"
		writeFile(t, filepath.Join(dir, "token"), jwt)
		const role = "arn:aws:iam::123456789012:role/driftmon"
		sts := fakeSTS(t, role, jwt)
		awsEnv(t, dir, map[string]string{"AWS_REGION": "eu-west-1", "AWS_ROLE_ARN": role,
			"AWS_WEB_IDENTITY_TOKEN_FILE": filepath.Join(dir, "token"), "AWS_ENDPOINT_URL_STS": sts.URL})
		m, err := SASLMechanism(SASLOptions{Mechanism: "AWS_MSK_IAM"})
		if err != nil {
			t.Fatal(err)
		}
		p := mskPayload(t, m)
		if c := p["x-amz-credential"]; !strings.HasPrefix(c, "ASIAWEBIDENTITY/") {
			t.Errorf("x-amz-credential %q, want the key the role's session got", c)
		}
		if p["x-amz-security-token"] != "web-identity-session-token" {
			t.Errorf("x-amz-security-token %q, want the role's session token", p["x-amz-security-token"])
		}
		if p["x-amz-signature"] != sigV4(t, p, "web-identity-secret") {
			t.Errorf("the signature does not verify with the role's secret")
		}
	})
	t.Run("no region", func(t *testing.T) {
		awsEnv(t, t.TempDir(), map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVEXAMPLE", "AWS_SECRET_ACCESS_KEY": "env-secret"})
		_, err := SASLMechanism(SASLOptions{Mechanism: "AWS_MSK_IAM"})
		if err == nil || !strings.Contains(err.Error(), "no AWS region") {
			t.Errorf("SASLMechanism() = %v, want a missing region", err)
		}
	})
}

// fakeSTS is AWS STS's AssumeRoleWithWebIdentity (the query protocol) on 127.0.0.1:
// it checks the role and the web identity token, and answers a session's credentials.
func fakeSTS(t *testing.T, role, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f := r.PostForm
		if f.Get("Action") != "AssumeRoleWithWebIdentity" || f.Get("RoleArn") != role || f.Get("WebIdentityToken") != token || f.Get("RoleSessionName") == "" {
			t.Errorf("STS request %v", redactForm(f))
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>
      <SecretAccessKey>web-identity-secret</SecretAccessKey>
      <SessionToken>web-identity-session-token</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:drift</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>%s/session</Arn><AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), role)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func redactForm(f url.Values) url.Values {
	c := url.Values{}
	for k, v := range f {
		c[k] = v
	}
	if c.Has("WebIdentityToken") {
		c.Set("WebIdentityToken", "***")
	}
	return c
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
