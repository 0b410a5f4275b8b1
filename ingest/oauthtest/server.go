// Package oauthtest is a fake OAuth 2.0 identity provider for tests: an httptest server
// on 127.0.0.1 with a token endpoint for the client-credentials grant (RFC 6749 §4.4)
// that checks what a real one checks (POST, a form with grant_type, the client's
// credentials in exactly one place, Basic or the form, the scopes it knows) and answers
// each refusal as RFC 6749 §5.2 says. The tokens it issues are unsigned JWS (header
// {"alg":"none"}) with sub, iat, exp and scope claims: what Apache Kafka's unsecured
// OAUTHBEARER validator, on .ci/kafka.sh's OAUTHBEARER listener, accepts.
//
// It imports no driftmon package, so any package's tests can use it.
package oauthtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// ClientID and ClientSecret are the only client the server knows. Required.
	ClientID, ClientSecret string
	// Scopes are those the server grants; a request for another is refused
	// invalid_scope. A request without scope gets all of them.
	Scopes []string
	// ExpiresIn is a token's lifetime, in expires_in and its exp claim. Default 1h.
	ExpiresIn time.Duration
	// Now is the server's clock; default time.Now.
	Now func() time.Time
}

// Request is one request the token endpoint answered.
type Request struct {
	// AuthMethod is how the client authenticated: "client_secret_basic",
	// "client_secret_post", or "" when it did not.
	AuthMethod string
	// Scope is the scope asked for.
	Scope string
	// Status is the HTTP status of the answer.
	Status int
}

// Server is the fake identity provider. Create it with NewServer and Close it.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	requests []Request
	fail     []int
}

// NewServer starts a Server.
func NewServer(opts Options) *Server {
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", s.token)
	s.srv = httptest.NewServer(mux)
	return s
}

// TokenURL is the token endpoint's URL.
func (s *Server) TokenURL() string { return s.srv.URL + "/oauth2/token" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// FailNext answers the next len(statuses) requests with these HTTP statuses and a
// temporarily_unavailable error, as an identity provider in an outage does.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// UnsecuredJWT returns an unsigned JWS with the claims given, in the form Kafka's
// unsecured OAUTHBEARER validator reads.
func UnsecuredJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	body, err := json.Marshal(claims)
	if err != nil {
		panic("BUG: claims do not marshal: " + err.Error())
	}
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(body) + "."
}

// Claims decodes the claims of a token UnsecuredJWT made.
func Claims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("a JWS has 3 parts, this one %d", len(parts))
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c map[string]any
	return c, json.Unmarshal(body, &c)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	req := Request{}
	status, code, desc := s.check(r, &req)
	s.mu.Lock()
	if status == 0 && len(s.fail) > 0 {
		status, code, desc = s.fail[0], "temporarily_unavailable", "the server is down for a test"
		s.fail = s.fail[1:]
	}
	if status == 0 {
		status = http.StatusOK
	}
	req.Status = status
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status != http.StatusOK {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		return
	}
	scope := req.Scope
	if scope == "" {
		scope = strings.Join(s.opts.Scopes, " ")
	}
	now := s.opts.Now()
	claims := map[string]any{
		"sub": s.opts.ClientID, "iat": now.Unix(), "exp": now.Add(s.opts.ExpiresIn).Unix(),
		"scope": scope, "jti": fmt.Sprint(len(s.Requests())),
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": UnsecuredJWT(claims), "token_type": "Bearer",
		"expires_in": int64(s.opts.ExpiresIn / time.Second), "scope": scope,
	})
}

// check returns the refusal a real token endpoint would answer r with (status 0:
// none), and fills req.
func (s *Server) check(r *http.Request, req *Request) (status int, code, desc string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST"
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded"
	}
	if err := r.ParseForm(); err != nil {
		return http.StatusBadRequest, "invalid_request", "the form does not parse"
	}
	if len(r.URL.Query()) > 0 {
		return http.StatusBadRequest, "invalid_request", "parameters go in the body, not the URL"
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return http.StatusBadRequest, "invalid_request", k + " is given more than once"
		}
	}
	req.Scope = form.Get("scope")

	// RFC 6749 §2.3: a client uses one authentication method per request.
	user, pass, basic := r.BasicAuth()
	_, inForm := form["client_secret"]
	switch {
	case basic && inForm:
		return http.StatusBadRequest, "invalid_request", "the client authenticated twice"
	case basic:
		req.AuthMethod = "client_secret_basic"
		// §2.3.1: the id and secret are form-encoded inside Basic.
		var err1, err2 error
		user, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return http.StatusUnauthorized, "invalid_client", "the Basic credentials are not form-encoded"
		}
	case inForm:
		req.AuthMethod = "client_secret_post"
		user, pass = form.Get("client_id"), form.Get("client_secret")
	default:
		return http.StatusUnauthorized, "invalid_client", "no client authentication"
	}
	if user != s.opts.ClientID || pass != s.opts.ClientSecret {
		return http.StatusUnauthorized, "invalid_client", "client authentication failed"
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		return http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q", gt)
	}
	for _, sc := range strings.Fields(req.Scope) {
		if !slices.Contains(s.opts.Scopes, sc) {
			return http.StatusBadRequest, "invalid_scope", "unknown scope " + sc
		}
	}
	return 0, "", ""
}
