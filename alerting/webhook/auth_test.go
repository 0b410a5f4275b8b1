package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitHub's published example ("Validating webhook deliveries").
const (
	githubSecret    = "It's a Secret to Everybody"
	githubBody      = "Hello, World!"
	githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSignGitHubVector(t *testing.T) {
	if got := SignGitHub(githubSecret, []byte(githubBody)); got != githubSignature {
		t.Errorf("SignGitHub = %s, want %s", got, githubSignature)
	}
	h := http.Header{}
	h.Set(HeaderGitHubSignature, githubSignature)
	if err := VerifyGitHub(githubSecret, h, []byte(githubBody)); err != nil {
		t.Errorf("VerifyGitHub of the vector: %v", err)
	}
	if err := VerifyGitHub(githubSecret, h, []byte(githubBody+"!")); !errors.Is(err, ErrSignature) {
		t.Errorf("VerifyGitHub of a tampered body = %v, want ErrSignature", err)
	}
	if err := VerifyGitHub(githubSecret, http.Header{}, nil); !errors.Is(err, ErrMissingHeaders) {
		t.Errorf("VerifyGitHub without the header = %v, want ErrMissingHeaders", err)
	}
}

// capture records the headers and body of every request and answers 204.
type capture struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.body = append(c.body, string(b))
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *capture) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("no request received")
	}
	return c.reqs[len(c.reqs)-1], c.body[len(c.body)-1]
}

func TestAuthAndSigningHeaders(t *testing.T) {
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		opts  Options
		check func(t *testing.T, r *http.Request, body string)
	}{
		{"none, standard signature", Options{Secret: secret}, func(t *testing.T, r *http.Request, body string) {
			if r.Header.Get("Authorization") != "" {
				t.Errorf("Authorization %q, want none", r.Header.Get("Authorization"))
			}
			if err := Verify(secret, r.Header, []byte(body), time.Now()); err != nil {
				t.Errorf("Standard Webhooks signature: %v", err)
			}
		}},
		{"bearer", Options{Auth: Auth{Type: AuthBearer, Token: "tok-secret"}}, func(t *testing.T, r *http.Request, _ string) {
			if got := r.Header.Get("Authorization"); got != "Bearer tok-secret" {
				t.Errorf("Authorization %q", got)
			}
		}},
		{"basic (Jenkins user + API token)", Options{Auth: Auth{Type: AuthBasic, Username: "ci-bot", Password: "api-token-secret"}}, func(t *testing.T, r *http.Request, _ string) {
			u, p, ok := r.BasicAuth()
			if !ok || u != "ci-bot" || p != "api-token-secret" {
				t.Errorf("basic auth %q %q %v", u, p, ok)
			}
		}},
		{"custom header, GitHub signature", Options{Auth: Auth{Type: AuthHeader, Header: "X-Api-Key", Value: "key-secret"}, Signing: SigningGitHub, Secret: githubSecret}, func(t *testing.T, r *http.Request, body string) {
			if got := r.Header.Get("X-Api-Key"); got != "key-secret" {
				t.Errorf("X-Api-Key %q", got)
			}
			if err := VerifyGitHub(githubSecret, r.Header, []byte(body)); err != nil {
				t.Errorf("GitHub signature: %v", err)
			}
			if r.Header.Get(HeaderSignature) != "" {
				t.Errorf("GitHub signing also sent a Standard Webhooks signature")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			srv := httptest.NewServer(c)
			defer srv.Close()
			tt.opts.URL = srv.URL
			n, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := send(context.Background(), n, testAlert()); err != nil {
				t.Fatal(err)
			}
			r, body := c.last(t)
			if r.Header.Get(HeaderID) != testAlert().ID {
				t.Errorf("webhook-id %q", r.Header.Get(HeaderID))
			}
			tt.check(t, r, body)
		})
	}
}

func TestAuthValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"unknown type", Options{Auth: Auth{Type: "digest"}}, []string{"webhook.auth.type"}},
		{"bearer without token", Options{Auth: Auth{Type: AuthBearer}}, []string{"webhook.auth.token"}},
		{"basic without user", Options{Auth: Auth{Type: AuthBasic, Password: "SECRETPW"}}, []string{"webhook.auth.username"}},
		{"header without name or value", Options{Auth: Auth{Type: AuthHeader, Header: "Bad Name"}}, []string{"webhook.auth.header", "webhook.auth.value"}},
		{"bearer twice", Options{BearerToken: "SECRETTOKEN", Auth: Auth{Type: AuthBasic, Username: "u"}}, []string{"not both"}},
		{"github signing without secret", Options{Signing: SigningGitHub}, []string{"webhook.secret: required"}},
		{"unknown signing", Options{Signing: "v2"}, []string{"webhook.signing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.URL = "http://127.0.0.1/hook"
			_, err := New(tt.opts)
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range []string{"SECRETPW", "SECRETTOKEN"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}
