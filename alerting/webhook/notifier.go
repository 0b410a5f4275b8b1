package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// Options configures a Notifier.
type Options struct {
	// URL receives the POSTs. Its query and path may hold credentials, so it
	// never appears in errors or logs beyond scheme and host.
	URL string
	// Secret ("whsec_" + base64 key) signs every request per Standard
	// Webhooks; empty sends webhook-id and webhook-timestamp unsigned. With
	// Signing SigningGitHub it is any non-empty string.
	Secret string
	// Signing is SigningStandard (the default) or SigningGitHub.
	Signing string
	// BearerToken, when set, is sent as "Authorization: Bearer …". Secret.
	// It is short for Auth{Type: AuthBearer, Token: …}; set one, not both.
	BearerToken string
	// Auth authenticates every request: none, bearer, basic or a custom
	// header.
	Auth Auth
	// Template renders the body: generic JSON (default), Airflow, GitHub,
	// Argo Events, Jenkins or a user template.
	Template Template
	// Headers are added to every request (e.g. an API key header); their
	// values are treated as secrets.
	Headers map[string]string
	// HTTPClient sends the requests; default a client with a 30 s timeout.
	// Redirects are never followed, whatever the client says (see
	// alerting.HTTPClient).
	HTTPClient *http.Client
}

// Notifier delivers rendered calls to one webhook endpoint, one attempt per
// Send: the outbox keeps the schedule of retries. It is safe for concurrent
// use.
type Notifier struct {
	url     string
	safeURL string
	secret  string
	signing string
	auth    Auth
	render  *renderer
	headers map[string]string
	client  *http.Client
}

// New validates opts and returns a Notifier; it starts nothing.
func New(opts Options) (*Notifier, error) {
	var errs []error
	u, err := url.Parse(opts.URL)
	safe := ""
	switch {
	case opts.URL == "":
		errs = append(errs, errors.New("webhook.url: required"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, errors.New("webhook.url: must be an absolute http(s) URL"))
	default:
		safe = u.Scheme + "://" + u.Host
	}
	switch opts.Signing {
	case "", SigningStandard:
		if opts.Secret != "" {
			if _, err := decodeSecret(opts.Secret); err != nil {
				errs = append(errs, fmt.Errorf("webhook.secret: %w", err))
			}
		}
	case SigningGitHub:
		if opts.Secret == "" {
			errs = append(errs, errors.New("webhook.secret: required with signing github"))
		}
	default:
		errs = append(errs, fmt.Errorf("webhook.signing: %q is not one of standard, github", opts.Signing))
	}
	auth := opts.Auth
	if opts.BearerToken != "" {
		if auth.Type != "" && auth.Type != AuthNone {
			errs = append(errs, errors.New("webhook.bearer_token: set either bearer_token or auth, not both"))
		}
		auth = Auth{Type: AuthBearer, Token: opts.BearerToken}
	}
	errs = append(errs, auth.check("webhook.auth")...)
	render, terrs := newRenderer(opts.Template, "webhook.template")
	errs = append(errs, terrs...)
	for k := range opts.Headers {
		if !validHeaderName(k) {
			errs = append(errs, fmt.Errorf("webhook.headers: invalid header name %q", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := &Notifier{
		url:     opts.URL,
		safeURL: safe,
		secret:  opts.Secret,
		signing: opts.Signing,
		auth:    auth,
		render:  render,
		headers: opts.Headers,
		client:  alerting.HTTPClient(opts.HTTPClient),
	}
	if n.signing == "" {
		n.signing = SigningStandard
	}
	return n, nil
}

// Render builds the request that delivers p under the given webhook-id,
// in the notifier's template. It is deterministic, so the durable outbox
// stores it once and every retry sends the same bytes.
func (n *Notifier) Render(id string, p Payload) (Request, error) {
	return n.render.render(id, p)
}

// Send makes one attempt to deliver a rendered request: it adds the
// configured headers, credentials, webhook-id, webhook-timestamp and a fresh
// signature, and POSTs to the configured URL, never anywhere a redirect
// points. It returns the receiver's Retry-After, if any; a refusal a retry
// cannot fix (a 4xx other than 408 and 429) is an *alerting.PermanentError.
// Retrying is the caller's business (the outbox's).
func (n *Notifier) Send(ctx context.Context, id string, r Request) (time.Duration, error) {
	body := r.Body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, alerting.Permanent(errors.New("cannot build webhook request"))
	}
	for k, v := range n.headers {
		req.Header.Set(k, v)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "driftmon-webhook/1")
	n.auth.apply(req.Header)
	now := time.Now()
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if n.secret != "" {
		if n.signing == SigningGitHub {
			req.Header.Set(HeaderGitHubSignature, SignGitHub(n.secret, body))
		} else {
			sig, err := Sign(n.secret, id, now, body)
			if err != nil {
				return 0, alerting.Permanent(err)
			}
			req.Header.Set(HeaderSignature, sig)
		}
	}

	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the URL, which may hold credentials
		}
		return 0, fmt.Errorf("post to %s: %w", n.safeURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusConflict && n.render.format == FormatAirflow:
		// The DAG run named after this webhook-id exists: an earlier attempt
		// got through and its answer was lost.
		return 0, nil
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("%s answered %d", n.safeURL, code)
	case code >= 300 && code < 400:
		// A redirect the client did not even try to follow (no Location, 304…).
		return 0, fmt.Errorf("%s answered %d, a redirect without a target; redirects are not followed", n.safeURL, code)
	default:
		return 0, &alerting.PermanentError{Reason: fmt.Sprintf("http %d", code),
			Err: fmt.Errorf("%s refused the webhook with %d", n.safeURL, code)}
	}
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
