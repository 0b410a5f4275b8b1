package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/ingest/oauthtest"
)

// TestOAuthBearerMonitor runs driftmon through the broker's OAUTHBEARER listener with
// tokens from a token endpoint (the client-credentials grant, with Confluent Cloud's
// extensions): it reads every event, and its connections share one token.
func TestOAuthBearerMonitor(t *testing.T) {
	addr, oauthAddr := broker(t), oauthBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const clientID, clientSecret = "driftmon", "oauth-client-secret-0123"
	idp := oauthtest.NewServer(oauthtest.Options{ClientID: clientID, ClientSecret: clientSecret, Scopes: []string{"kafka"}})
	defer idp.Close()
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	const partitions, rows = 4, 2000
	topic := newTopic(ctx, t, addr, partitions)
	sent := newTraffic(3).events(t, 4*rows, false)
	produce(ctx, t, addr, topic, sent)

	yaml := fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: %q
  sasl:
    mechanism: OAUTHBEARER
    token_endpoint: %s
    client_id: %s
    client_secret_file: %s
    scope: kafka
    extensions: {logicalCluster: lkc-test01, identityPoolId: pool-Test1}
streams:%s`, oauthAddr, topic, idp.TokenURL(), clientID, secretFile, stream("churn", topic, rows))
	run := startMonitor(ctx, t, yaml, nil)
	got := awaitEvents(t, 45*time.Second, time.Second, "churn", int64(len(sent)), run)
	run.stop(t)
	if got != int64(len(sent)) {
		t.Errorf("monitor counted %d events through the OAUTHBEARER listener, want %d", got, len(sent))
	}
	checkNoRejections(t, run)
	if n := len(run.windows()); n != len(sent)/rows {
		t.Errorf("%d windows closed, want %d", n, len(sent)/rows)
	}
	reqs := idp.Requests()
	for _, r := range reqs {
		if r != (oauthtest.Request{AuthMethod: ingest.ClientSecretBasic, Scope: "kafka", Status: http.StatusOK}) {
			t.Errorf("token request %+v, want Basic authentication for scope kafka, answered 200", r)
		}
	}
	// One mechanism per stream (the monitor's dialer), whose connections share a token
	// that lives an hour.
	if len(reqs) != 1 {
		t.Errorf("%d token requests, want 1: the connections share the token", len(reqs))
	}
}

// TestOAuthBearerMonitorRefusedToken runs driftmon with a token the broker refuses:
// its readiness, which /readyz answers, says why, in the broker's words.
func TestOAuthBearerMonitorRefusedToken(t *testing.T) {
	oauthAddr := oauthBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	token := filepath.Join(t.TempDir(), "token")
	jwt := oauthtest.UnsecuredJWT(map[string]any{"sub": "driftmon", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "kafka.read"})
	if err := os.WriteFile(token, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`kafka:
  brokers: [%q]
  sasl: {mechanism: OAUTHBEARER, token_file: %s}
streams:%s`, oauthAddr, token, stream("churn", "driftmon-refused-token", 100))
	run := startMonitor(ctx, t, yaml, nil)
	const want = "the broker refused the token: insufficient_scope, scope [kafka]"
	waitFor(t, 30*time.Second, "the monitor's readiness to say the token was refused", func() bool {
		err := run.mon.Ready()
		return err != nil && strings.Contains(err.Error(), want)
	})
	t.Logf("Ready: %v", run.mon.Ready())
}

// TestOAuthBearerRefusedToken presents tokens the broker refuses and checks that both
// of kafka-go's ways to connect (the dialer of the readers and the probe, the
// transport of writers) say why, with the broker's status and scope.
func TestOAuthBearerRefusedToken(t *testing.T) {
	oauthAddr := oauthBroker(t)
	dir := t.TempDir()
	now := time.Now()
	valid := map[string]any{"sub": "driftmon", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "kafka"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range valid {
			c[key] = val
		}
		c[k] = v
		return c
	}
	for _, tc := range []struct {
		name, token string
		status      string // "": accepted
		scope       string
	}{
		{"valid", oauthtest.UnsecuredJWT(valid), "", ""},
		{"other scope", oauthtest.UnsecuredJWT(with("scope", "kafka.read")), "insufficient_scope", "[kafka]"},
		{"expired", oauthtest.UnsecuredJWT(with("exp", now.Add(-time.Hour).Unix())), "invalid_token", ""},
		{"not a JWT", "not-a-jwt-at-all", "invalid_token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(file, []byte(tc.token), 0o600); err != nil {
				t.Fatal(err)
			}
			mech, err := ingest.SASLMechanism(ingest.SASLOptions{Mechanism: "OAUTHBEARER", OAuth: ingest.OAuthOptions{TokenFile: file}})
			if err != nil {
				t.Fatal(err)
			}
			dialer, err := ingest.Dialer(ingest.Security{SASL: mech})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// The probe every Kafka source runs, whose error /readyz shows.
			_, probeErr := ingest.TopicPartitions(ctx, []string{oauthAddr}, dialer, "driftmon-no-such-topic")
			// A writer, as the dead-letter topic's.
			transport := ingest.Transport(dialer)
			defer transport.CloseIdleConnections()
			c := &kafka.Client{Addr: kafka.TCP(oauthAddr), Transport: transport, Timeout: 10 * time.Second}
			_, mdErr := c.Metadata(ctx, &kafka.MetadataRequest{})

			if tc.status == "" {
				if probeErr == nil || !strings.Contains(probeErr.Error(), "does not exist") {
					t.Errorf("probe with a valid token = %v, want the topic not to exist", probeErr)
				}
				if mdErr != nil {
					t.Errorf("metadata with a valid token: %v", mdErr)
				}
				return
			}
			for path, err := range map[string]error{"dialer": probeErr, "transport": mdErr} {
				var r *ingest.OAuthRefusal
				if !errors.As(err, &r) {
					t.Errorf("%s: %v, want the broker's refusal", path, err)
					continue
				}
				if r.Status != tc.status || r.Scope != tc.scope {
					t.Errorf("%s: refusal %+v, want status %q and scope %q", path, r, tc.status, tc.scope)
				}
				want := "the broker refused the token: " + tc.status
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %q lacks %q", path, err, want)
				}
				if strings.Contains(err.Error(), tc.token) {
					t.Errorf("%s: %q holds the token", path, err)
				}
				t.Logf("%s: %v", path, err)
			}
		})
	}
}
