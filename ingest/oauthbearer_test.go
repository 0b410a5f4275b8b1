package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftmon/driftmon/ingest/oauthtest"
)

// Credentials with the characters RFC 6749 §2.3.1's form-encoding inside Basic is for.
const (
	testClientID     = "driftmon:svc@corp"
	testClientSecret = "s3cr+t/with=odd %chars"
)

// clock is a settable clock for token lifetimes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newIdP(t *testing.T, now func() time.Time, expiresIn time.Duration) *oauthtest.Server {
	t.Helper()
	s := oauthtest.NewServer(oauthtest.Options{ClientID: testClientID, ClientSecret: testClientSecret,
		Scopes: []string{"kafka", "kafka.read"}, ExpiresIn: expiresIn, Now: now})
	t.Cleanup(s.Close)
	return s
}

func mustOAuth(t *testing.T, opts OAuthOptions) *OAuthBearer {
	t.Helper()
	m, err := NewOAuthBearer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// firstMessage runs Start and returns the token it sends, checking the message's frame.
func firstMessage(t *testing.T, m *OAuthBearer, extensions string) string {
	t.Helper()
	_, ir, err := m.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg := string(ir)
	rest, ok := strings.CutPrefix(msg, "n,,\x01auth=Bearer ")
	if !ok {
		t.Fatalf("first message %q does not start with the GS2 header and auth", msg)
	}
	token, rest, ok := strings.Cut(rest, "\x01")
	if !ok || rest != extensions+"\x01" {
		t.Fatalf("first message %q: after the token %q, want %q", msg, rest, extensions+"\x01")
	}
	return token
}

func TestOAuthBearerClientCredentials(t *testing.T) {
	for _, method := range []string{"", ClientSecretBasic, ClientSecretPost} {
		t.Run("method="+method, func(t *testing.T) {
			idp := newIdP(t, nil, time.Hour)
			m := mustOAuth(t, OAuthOptions{TokenEndpoint: idp.TokenURL(), ClientID: testClientID, ClientSecret: testClientSecret,
				ClientAuthMethod: method, Scope: "kafka",
				Extensions: map[string]string{"logicalCluster": "lkc-abc123", "identityPoolId": "pool-XyZ1"}})
			token := firstMessage(t, m, "identityPoolId=pool-XyZ1\x01logicalCluster=lkc-abc123\x01")
			claims, err := oauthtest.Claims(token)
			if err != nil {
				t.Fatalf("token %q: %v", token, err)
			}
			if claims["scope"] != "kafka" || claims["sub"] != testClientID {
				t.Errorf("claims %v, want scope kafka and sub %s", claims, testClientID)
			}
			want := method
			if want == "" {
				want = ClientSecretBasic
			}
			reqs := idp.Requests()
			if len(reqs) != 1 || reqs[0] != (oauthtest.Request{AuthMethod: want, Scope: "kafka", Status: http.StatusOK}) {
				t.Errorf("requests %+v, want one by %s for scope kafka, answered 200", reqs, want)
			}
		})
	}
}

// TestOAuthBearerRefreshesBeforeExpiry checks that connections share one token until
// 80% of its expires_in has passed, and that the next connection then gets a new one.
func TestOAuthBearerRefreshesBeforeExpiry(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	idp := newIdP(t, clk.Now, 100*time.Second)
	m := mustOAuth(t, OAuthOptions{TokenEndpoint: idp.TokenURL(), ClientID: testClientID, ClientSecret: testClientSecret, Now: clk.Now})

	first := firstMessage(t, m, "")
	clk.Add(79 * time.Second)
	if got := firstMessage(t, m, ""); got != first {
		t.Errorf("at 79%% of its lifetime the token changed")
	}
	if n := len(idp.Requests()); n != 1 {
		t.Errorf("%d token requests for two connections within the lifetime, want 1", n)
	}
	clk.Add(time.Second)
	second := firstMessage(t, m, "")
	if second == first {
		t.Errorf("at 80%% of its lifetime the token is still the first")
	}
	if n := len(idp.Requests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	c, err := oauthtest.Claims(second)
	if err != nil {
		t.Fatal(err)
	}
	if exp, want := c["exp"], float64(clk.Now().Add(100*time.Second).Unix()); exp != want {
		t.Errorf("new token's exp %v, want %v", exp, want)
	}
}

// TestOAuthBearerOutlivesAnOutageWhileItsTokenIsValid checks that a failed refresh
// keeps the cached token until it expires, and then fails with the server's error.
func TestOAuthBearerOutlivesAnOutageWhileItsTokenIsValid(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	idp := newIdP(t, clk.Now, 100*time.Second)
	m := mustOAuth(t, OAuthOptions{TokenEndpoint: idp.TokenURL(), ClientID: testClientID, ClientSecret: testClientSecret, Now: clk.Now})
	first := firstMessage(t, m, "")

	clk.Add(90 * time.Second)
	idp.FailNext(http.StatusServiceUnavailable)
	if got := firstMessage(t, m, ""); got != first {
		t.Errorf("during the outage, with 10 s left, the token is not the cached one")
	}
	clk.Add(10 * time.Second) // expired
	idp.FailNext(http.StatusServiceUnavailable)
	_, _, err := m.Start(context.Background())
	if err == nil {
		t.Fatal("an expired token and a failing endpoint: no error")
	}
	for _, want := range []string{idp.TokenURL(), "503 Service Unavailable", "temporarily_unavailable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := firstMessage(t, m, ""); got == first {
		t.Errorf("after the outage, the expired token is still sent")
	}
	statuses := []int{}
	for _, r := range idp.Requests() {
		statuses = append(statuses, r.Status)
	}
	if want := []int{200, 503, 503, 200}; !slices.Equal(statuses, want) {
		t.Errorf("answers %v, want %v", statuses, want)
	}
}

// TestOAuthBearerEndpointRefusals checks that what the identity provider says reaches
// the error, and the client secret never does.
func TestOAuthBearerEndpointRefusals(t *testing.T) {
	idp := newIdP(t, nil, time.Hour)
	for _, tc := range []struct {
		name, secret, scope, want string
	}{
		{"wrong secret", "wrong-" + testClientSecret, "", "401 Unauthorized: invalid_client (client authentication failed)"},
		{"unknown scope", testClientSecret, "kafka.admin", "400 Bad Request: invalid_scope (unknown scope kafka.admin)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustOAuth(t, OAuthOptions{TokenEndpoint: idp.TokenURL(), ClientID: testClientID, ClientSecret: tc.secret, Scope: tc.scope})
			_, _, err := m.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start() = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

// TestOAuthBearerTokenResponses checks the answers of servers that are not the fake
// identity provider: what is accepted and how long it is kept, and what is refused.
func TestOAuthBearerTokenResponses(t *testing.T) {
	const token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		want                    string // error; "" accepts
		cached                  bool   // the second connection reuses the token
	}{
		{"expires_in number", "application/json", `{"access_token":"` + token + `","token_type":"Bearer","expires_in":3600}`, 200, "", true},
		{"expires_in string", "application/json; charset=utf-8", `{"access_token":"` + token + `","token_type":"bearer","expires_in":"3599"}`, 200, "", true},
		{"no expires_in", "application/json", `{"access_token":"` + token + `","token_type":"Bearer"}`, 200, "", false},
		{"form answer", "application/x-www-form-urlencoded", `access_token=` + token + `&token_type=bearer`, 200, `not JSON`, false},
		{"mac token", "application/json", `{"access_token":"` + token + `","token_type":"mac","expires_in":60}`, 200, `type is "mac", not Bearer`, false},
		{"no token", "application/json", `{"token_type":"Bearer","expires_in":60}`, 200, "no access_token", false},
		{"token with a space", "application/json", `{"access_token":"a b","token_type":"Bearer","expires_in":60}`, 200, "spaces or characters", false},
		{"bad expires_in", "application/json", `{"access_token":"` + token + `","token_type":"Bearer","expires_in":"soon"}`, 200, "expires_in", false},
		{"html error page", "text/html", `<html>Bad Gateway</html>`, 502, "502 Bad Gateway", false},
		{"redirect", "text/html", ``, http.StatusTemporaryRedirect, "307 Temporary Redirect", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			hits, redirected := 0, 0
			mux := http.NewServeMux()
			mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { mu.Lock(); redirected++; mu.Unlock() })
			mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				if tc.status == http.StatusTemporaryRedirect {
					http.Redirect(w, r, "/elsewhere", tc.status)
					return
				}
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			m := mustOAuth(t, OAuthOptions{TokenEndpoint: srv.URL + "/token", ClientID: "id", ClientSecret: "secret"})
			for range 2 {
				got, err := m.Token(context.Background())
				if tc.want != "" {
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("Token() = %q, %v; want an error with %q", got, err, tc.want)
					}
					continue
				}
				if err != nil || got != token {
					t.Fatalf("Token() = %q, %v; want the token", got, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if wantHits := map[bool]int{true: 1, false: 2}[tc.cached]; hits != wantHits {
				t.Errorf("%d requests for two connections, want %d", hits, wantHits)
			}
			if redirected != 0 {
				t.Errorf("the redirect was followed")
			}
		})
	}
}

// TestOAuthBearerTokenFile checks that the file is read for every connection, as a
// rotated Kubernetes projected token needs.
func TestOAuthBearerTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := mustOAuth(t, OAuthOptions{TokenFile: path})
	write("first.token.value\n")
	if got := firstMessage(t, m, ""); got != "first.token.value" {
		t.Errorf("token %q, want the file's, trimmed", got)
	}
	write("second.token.value")
	if got := firstMessage(t, m, ""); got != "second.token.value" {
		t.Errorf("token %q after the file changed, want the new one", got)
	}
	for content, want := range map[string]string{"": "the token is empty", "two words": "spaces"} {
		write(content)
		if _, _, err := m.Start(context.Background()); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("file %q: Start() = %v, want an error naming the file with %q", content, err, want)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot read the token file") {
		t.Errorf("no file: Start() = %v", err)
	}
}

// TestOAuthSessionRefusal checks the exchange after the first message: an empty answer
// ends it, and a broker's error (RFC 7628 §3.2.2) becomes an error with its status and
// scope.
func TestOAuthSessionRefusal(t *testing.T) {
	done, resp, err := oauthSession{}.Next(context.Background(), nil)
	if !done || resp != nil || err != nil {
		t.Errorf("Next(empty) = %v, %q, %v; want done", done, resp, err)
	}
	_, _, err = oauthSession{}.Next(context.Background(), []byte(`{"status":"insufficient_scope", "scope":"[kafka]"}`))
	var r *OAuthRefusal
	if !errors.As(err, &r) || r.Status != "insufficient_scope" || r.Scope != "[kafka]" {
		t.Fatalf("Next(refusal) = %v, want an *OAuthRefusal", err)
	}
	if want := "the broker refused the token: insufficient_scope, scope [kafka]"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	_, _, err = oauthSession{}.Next(context.Background(), []byte("garbage"))
	if err == nil || !strings.Contains(err.Error(), `refused the token with "garbage"`) {
		t.Errorf("Next(garbage) = %v", err)
	}
}

func TestNewOAuthBearerErrors(t *testing.T) {
	const secret = "client-secret-value"
	for _, tc := range []struct {
		name string
		opts OAuthOptions
		want []string
	}{
		{"no source", OAuthOptions{}, []string{"no token source"}},
		{"two sources", OAuthOptions{TokenFile: "t", TokenEndpoint: "https://idp/token"}, []string{"not both"}},
		{"plain http", OAuthOptions{TokenEndpoint: "http://idp.example.com/token", ClientID: "id", ClientSecret: secret}, []string{"plain http"}},
		{"credentials in URL", OAuthOptions{TokenEndpoint: "https://id:" + secret + "@idp/token", ClientID: "id", ClientSecret: secret}, []string{"holds credentials"}},
		{"missing client", OAuthOptions{TokenEndpoint: "https://idp/token", ClientAuthMethod: "private_key_jwt"},
			[]string{"no client id", "no client secret", `unknown client authentication method "private_key_jwt"`}},
		{"extensions", OAuthOptions{TokenFile: "t", Extensions: map[string]string{"auth": "x", "a-b": "x", "ok": "\x01"}},
			[]string{`"auth" is reserved`, `key "a-b"`, "extension ok: want a value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewOAuthBearer(tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
	for _, u := range []string{"https://idp.example.com/oauth2/token", "http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]:9/t"} {
		if _, err := NewOAuthBearer(OAuthOptions{TokenEndpoint: u, ClientID: "id", ClientSecret: "s"}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
