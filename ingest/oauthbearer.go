package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go/sasl"
)

// OAuthOptions say where SASL OAUTHBEARER's tokens come from: an OAuth 2.0 token
// endpoint, asked with the client-credentials grant (RFC 6749 §4.4), or a file. Exactly
// one of TokenEndpoint and TokenFile is set.
type OAuthOptions struct {
	// TokenEndpoint is the identity provider's token URL: https, or http to a loopback
	// address.
	TokenEndpoint string
	// ClientID and ClientSecret are the client's credentials at TokenEndpoint.
	ClientID, ClientSecret string
	// ClientAuthMethod is how they are sent: "client_secret_basic" (the default: an
	// HTTP Basic Authorization header, which every server must accept) or
	// "client_secret_post" (in the form).
	ClientAuthMethod string
	// Scope is asked for with the token when set: scopes separated by spaces.
	Scope string
	// Extensions are SASL extensions sent with the token (RFC 7628 §3.1), such as
	// Confluent Cloud's logicalCluster and identityPoolId.
	Extensions map[string]string
	// TokenFile is a file that holds the token, read again for every connection: a
	// Kubernetes projected service account token, or one a sidecar keeps fresh.
	TokenFile string
	// HTTPClient asks TokenEndpoint; nil means one with a 10 s timeout that follows no
	// redirect (a redirect would carry the client's secret elsewhere).
	HTTPClient *http.Client
	// Now is the clock a token's expiry is measured with; nil means time.Now.
	Now func() time.Time
}

// Client authentication methods at a token endpoint, by their OpenID Connect names.
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
)

// refreshAfter is the share of a token's lifetime after which a new one is fetched for
// the next connection, like Kafka's sasl.login.refresh.window.factor: a token is never
// presented in the last fifth of its life, when a slow connection could outlive it.
const refreshAfter = 0.8

// maxTokenResponse bounds what is read from a token endpoint.
const maxTokenResponse = 1 << 20

// OAuthBearer is the SASL OAUTHBEARER mechanism (RFC 7628, KIP-255), which kafka-go
// lacks. Each connection presents a token: from the token endpoint, cached until most of
// its lifetime (expires_in) has passed, or read from the token file. It is safe for
// concurrent use, as kafka-go's dialers need.
type OAuthBearer struct {
	opts       OAuthOptions
	extensions string // "key=value\x01" for each extension, sorted by key

	mu        sync.Mutex // held while a token is fetched, so connections share one fetch
	token     string
	refreshAt time.Time // when the next connection fetches a new token
	expiresAt time.Time // after which token is not presented
}

// NewOAuthBearer checks opts and returns the mechanism. It reads and fetches nothing:
// tokens are got when connections are made.
func NewOAuthBearer(opts OAuthOptions) (*OAuthBearer, error) {
	var errs []error
	switch {
	case opts.TokenEndpoint == "" && opts.TokenFile == "":
		errs = append(errs, errors.New("no token source: set a token endpoint (with a client id and secret) or a token file"))
	case opts.TokenEndpoint != "" && opts.TokenFile != "":
		errs = append(errs, errors.New("set a token endpoint or a token file, not both"))
	case opts.TokenEndpoint != "":
		if err := checkTokenEndpoint(opts.TokenEndpoint); err != nil {
			errs = append(errs, err)
		}
		if opts.ClientID == "" {
			errs = append(errs, errors.New("no client id for the token endpoint"))
		}
		if opts.ClientSecret == "" {
			errs = append(errs, errors.New("no client secret for the token endpoint"))
		}
		switch opts.ClientAuthMethod {
		case "":
			opts.ClientAuthMethod = ClientSecretBasic
		case ClientSecretBasic, ClientSecretPost:
		default:
			errs = append(errs, fmt.Errorf("unknown client authentication method %q (want %s or %s)", opts.ClientAuthMethod, ClientSecretBasic, ClientSecretPost))
		}
	}
	var ext strings.Builder
	for _, k := range slices.Sorted(maps.Keys(opts.Extensions)) {
		if err := checkSASLExtension(k, opts.Extensions[k]); err != nil {
			errs = append(errs, err)
			continue
		}
		ext.WriteString(k + "=" + opts.Extensions[k] + "\x01")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kafka sasl oauthbearer: %w", errors.Join(errs...))
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &OAuthBearer{opts: opts, extensions: ext.String()}, nil
}

// checkTokenEndpoint says what is wrong with u as a token endpoint, if anything: the
// client's secret goes to it, so it must be https, or http to this machine.
func checkTokenEndpoint(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || p.Host == "" || p.Opaque != "":
		return fmt.Errorf("the token endpoint %q is not an absolute URL", u)
	case p.User != nil:
		return errors.New("the token endpoint URL holds credentials: give them as the client id and secret")
	case p.Scheme == "https":
		return nil
	case p.Scheme == "http" && isLoopback(p.Hostname()):
		return nil
	case p.Scheme == "http":
		return fmt.Errorf("the token endpoint %s is plain http: the client secret would travel unencrypted; use https", u)
	}
	return fmt.Errorf("the token endpoint %s is not an https URL", u)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// checkSASLExtension says what is wrong with an OAUTHBEARER extension, if anything:
// RFC 7628 allows letters in a key and visible characters, spaces and line breaks in a
// value, and reserves the key "auth" for the token.
func checkSASLExtension(key, value string) error {
	if key == "" || strings.IndexFunc(key, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) >= 0 {
		return fmt.Errorf("extension key %q: want letters only", key)
	}
	if key == "auth" {
		return errors.New(`extension key "auth" is reserved for the token`)
	}
	if value == "" || strings.IndexFunc(value, func(r rune) bool {
		return !(r >= 0x21 && r <= 0x7e || r == ' ' || r == '\t' || r == '\r' || r == '\n')
	}) >= 0 {
		return fmt.Errorf("extension %s: want a value of visible ASCII characters and spaces", key)
	}
	return nil
}

// Name is the mechanism's name in Kafka's SASL handshake.
func (*OAuthBearer) Name() string { return "OAUTHBEARER" }

// Start gets a token and returns the client's first message (RFC 7628 §3.1):
// "n,,\x01auth=Bearer <token>\x01<extensions>\x01".
func (o *OAuthBearer) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	token, err := o.Token(ctx)
	if err != nil {
		return nil, nil, err
	}
	return oauthSession{}, []byte("n,,\x01auth=Bearer " + token + "\x01" + o.extensions + "\x01"), nil
}

// Token returns the token the next connection presents: the token file's content, or
// the cached token from the endpoint, fetched anew once refreshAfter of its lifetime
// has passed. When that fetch fails, the cached token is returned while it is still
// valid; the endpoint is asked again on the next connection.
func (o *OAuthBearer) Token(ctx context.Context) (string, error) {
	if o.opts.TokenFile != "" {
		return readTokenFile(o.opts.TokenFile)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.opts.Now()
	if o.token != "" && now.Before(o.refreshAt) {
		return o.token, nil
	}
	token, lifetime, err := o.fetch(ctx)
	if err != nil {
		if o.token != "" && now.Before(o.expiresAt) {
			return o.token, nil
		}
		return "", err
	}
	// A token without expires_in is not kept: the next connection fetches its own.
	o.token, o.refreshAt, o.expiresAt = "", time.Time{}, time.Time{}
	if lifetime > 0 {
		// Measured from before the request: the server's clock started the lifetime
		// while the request was on its way.
		o.token = token
		o.refreshAt = now.Add(time.Duration(float64(lifetime) * refreshAfter))
		o.expiresAt = now.Add(lifetime)
	}
	return token, nil
}

func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("kafka sasl oauthbearer: cannot read the token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if err := checkToken(token); err != nil {
		return "", fmt.Errorf("kafka sasl oauthbearer: token file %s: %w", path, err)
	}
	return token, nil
}

// checkToken refuses what cannot be a bearer token (RFC 6750 §2.1's b64token and a
// little more): a token with a space or control character would break the message it
// is framed in.
func checkToken(token string) error {
	if token == "" {
		return errors.New("the token is empty")
	}
	if strings.IndexFunc(token, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return errors.New("the token holds spaces or characters other than visible ASCII")
	}
	return nil
}

// tokenResponse is a token endpoint's answer (RFC 6749 §5.1, §5.2).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// ExpiresIn is seconds, a JSON number or, from some servers, a string of one.
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// fetch asks the token endpoint for a token with the client-credentials grant and
// returns it with its lifetime (0 when the server does not say). Its errors hold
// neither the client secret nor a token.
func (o *OAuthBearer) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if o.opts.Scope != "" {
		form.Set("scope", o.opts.Scope)
	}
	if o.opts.ClientAuthMethod == ClientSecretPost {
		form.Set("client_id", o.opts.ClientID)
		form.Set("client_secret", o.opts.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.opts.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, o.fetchError(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if o.opts.ClientAuthMethod == ClientSecretBasic {
		// RFC 6749 §2.3.1: both are form-encoded before they are joined by a colon.
		req.SetBasicAuth(url.QueryEscape(o.opts.ClientID), url.QueryEscape(o.opts.ClientSecret))
	}
	resp, err := o.opts.HTTPClient.Do(req)
	if err != nil {
		return "", 0, o.fetchError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return "", 0, o.fetchError(fmt.Errorf("cannot read the answer: %w", err))
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if jsonErr == nil && tr.Error != "" {
			msg += ": " + tr.Error
			if tr.ErrorDescription != "" {
				msg += " (" + truncate(tr.ErrorDescription, 200) + ")"
			}
		}
		return "", 0, o.fetchError(errors.New(msg))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return "", 0, o.fetchError(fmt.Errorf("the answer is %q, not JSON", resp.Header.Get("Content-Type")))
	}
	if jsonErr != nil {
		return "", 0, o.fetchError(fmt.Errorf("cannot decode the answer: %w", jsonErr))
	}
	if tr.AccessToken == "" {
		return "", 0, o.fetchError(errors.New("the answer holds no access_token"))
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, o.fetchError(fmt.Errorf("the token's type is %q, not Bearer", tr.TokenType))
	}
	if err := checkToken(tr.AccessToken); err != nil {
		return "", 0, o.fetchError(err)
	}
	lifetime, err := expiresIn(tr.ExpiresIn)
	if err != nil {
		return "", 0, o.fetchError(err)
	}
	return tr.AccessToken, lifetime, nil
}

// fetchError says which endpoint failed. The secret is taken out in case a server
// quoted it back in its error description.
func (o *OAuthBearer) fetchError(err error) error {
	msg := err.Error()
	if s := o.opts.ClientSecret; s != "" && strings.Contains(msg, s) {
		return fmt.Errorf("kafka sasl oauthbearer: cannot get a token from %s: %s", o.opts.TokenEndpoint, strings.ReplaceAll(msg, s, "***"))
	}
	return fmt.Errorf("kafka sasl oauthbearer: cannot get a token from %s: %w", o.opts.TokenEndpoint, err)
}

// expiresIn reads expires_in: absent or null is 0 (unknown).
func expiresIn(raw json.RawMessage) (time.Duration, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n > 1e9 {
		return 0, fmt.Errorf("expires_in %s is not a number of seconds", raw)
	}
	return time.Duration(n * float64(time.Second)), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// oauthSession is one connection's exchange after the client's first message: the
// broker answers nothing when it accepts the token, and an error (RFC 7628 §3.2.2, a
// JSON object with status, scope and openid-configuration) when it does not.
type oauthSession struct{}

// Next ends the exchange: done on an empty answer, an *OAuthRefusal otherwise. RFC
// 7628 has the client answer a refusal with "\x01" so that the server may fail the
// exchange itself; the client ends it here instead, because kafka-go's connections drop
// the error message of the broker's final answer and never show this method the
// refusal again: only this error can tell the user the broker's status and scope.
func (oauthSession) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	if len(challenge) == 0 {
		return true, nil, nil
	}
	r := &OAuthRefusal{}
	if err := json.Unmarshal(challenge, r); err != nil || r.Status == "" {
		return false, nil, fmt.Errorf("kafka sasl oauthbearer: the broker refused the token with %q", truncate(string(challenge), 200))
	}
	return false, nil, r
}

// OAuthRefusal is a broker's refusal of an OAUTHBEARER token.
type OAuthRefusal struct {
	// Status is the error code, such as invalid_token or insufficient_scope.
	Status string `json:"status"`
	// Scope is the scope a token needs, when the broker says.
	Scope string `json:"scope"`
	// OpenIDConfiguration is where the broker says tokens come from, when it does.
	OpenIDConfiguration string `json:"openid-configuration"`
}

func (r *OAuthRefusal) Error() string {
	msg := "kafka sasl oauthbearer: the broker refused the token: " + r.Status
	if r.Scope != "" {
		msg += ", scope " + r.Scope
	}
	if r.OpenIDConfiguration != "" {
		msg += ", openid-configuration " + r.OpenIDConfiguration
	}
	return msg
}
