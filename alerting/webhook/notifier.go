package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// DefaultBackoff returns the wait before each retry used when
// Options.Backoff is nil: immediately, then 1 s, 5 s and 30 s. The durable
// outbox will bring the long schedule (5 m, 30 m, 2 h…); in-process waits
// stay short.
func DefaultBackoff() []time.Duration {
	return []time.Duration{0, time.Second, 5 * time.Second, 30 * time.Second}
}

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
	HTTPClient *http.Client
	// Logger receives retry and failure reports; default discards.
	Logger *slog.Logger
	// Backoff lists the wait before each retry; a wait gets up to 20 %
	// jitter. nil → DefaultBackoff.
	Backoff []time.Duration
	// MaxAttempts bounds the tries, the first included; 0 → len(Backoff)+1.
	// Beyond the schedule the last wait repeats.
	MaxAttempts int
	// MaxRetryAfter caps how long a Retry-After header is honoured; a longer
	// one ends the delivery with a retryable error. 0 → 5 minutes.
	MaxRetryAfter time.Duration
}

// Notifier delivers alerts to one webhook endpoint. It is safe for
// concurrent use.
type Notifier struct {
	url         string
	safeURL     string
	secret      string
	signing     string
	auth        Auth
	render      *renderer
	headers     map[string]string
	client      *http.Client
	logger      *slog.Logger
	backoff     []time.Duration
	attempts    int
	maxRetryAft time.Duration
}

// PermanentError reports that the receiver refused the delivery in a way a
// retry cannot fix (a 4xx other than 408 and 429). Callers branch on it with
// errors.As to dead-letter instead of retrying.
type PermanentError struct {
	StatusCode int
	Err        error
}

// Error describes the refusal; it holds no credentials.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

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
	for i, d := range opts.Backoff {
		if d < 0 {
			errs = append(errs, fmt.Errorf("webhook.backoff[%d]: must not be negative", i))
		}
	}
	if opts.MaxAttempts < 0 {
		errs = append(errs, errors.New("webhook.max_attempts: must not be negative"))
	}
	if opts.MaxRetryAfter < 0 {
		errs = append(errs, errors.New("webhook.max_retry_after: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := &Notifier{
		url:         opts.URL,
		safeURL:     safe,
		secret:      opts.Secret,
		signing:     opts.Signing,
		auth:        auth,
		render:      render,
		headers:     opts.Headers,
		client:      opts.HTTPClient,
		logger:      opts.Logger,
		backoff:     opts.Backoff,
		attempts:    opts.MaxAttempts,
		maxRetryAft: opts.MaxRetryAfter,
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: 30 * time.Second}
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	n.logger = n.logger.With("component", "webhook", "endpoint", safe)
	if n.backoff == nil {
		n.backoff = DefaultBackoff()
	}
	if n.attempts == 0 {
		n.attempts = len(n.backoff) + 1
	}
	if n.maxRetryAft == 0 {
		n.maxRetryAft = 5 * time.Minute
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
// configured headers, credentials, webhook-id, webhook-timestamp and
// signature, and POSTs. It returns the receiver's Retry-After, if any; a
// refusal a retry cannot fix (a 4xx other than 408 and 429) is a
// *PermanentError. Retrying is the caller's business (the outbox's).
func (n *Notifier) Send(ctx context.Context, id string, r Request) (retryAfter time.Duration, err error) {
	return n.attempt(ctx, id, r)
}

// Notify delivers the alert in the notifier's template (the generic JSON
// payload by default), with webhook-id = a.ID on every attempt so the
// receiver can deduplicate. Each attempt is signed afresh with its own
// timestamp.
func (n *Notifier) Notify(ctx context.Context, a alerting.Alert) error {
	id := a.ID
	if id == "" {
		id = alerting.AlertID(a.Stream, a.Model, a.ModelVersion, a.WindowStart)
	}
	req, err := n.Render(id, NewPayload(a))
	if err != nil {
		return &PermanentError{Err: err}
	}
	return n.deliver(ctx, id, req)
}

// Deliver POSTs body (JSON) with the given webhook-id, retrying network
// errors, 408, 429 and 5xx along the backoff schedule. A 4xx otherwise ends
// with a *PermanentError at once.
func (n *Notifier) Deliver(ctx context.Context, id string, body []byte) error {
	return n.deliver(ctx, id, Request{Body: body, ContentType: "application/json"})
}

func (n *Notifier) deliver(ctx context.Context, id string, r Request) error {
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := n.attempt(ctx, id, r)
		if err == nil {
			if attempt > 1 {
				n.logger.Info("webhook delivered after retries", "id", id, "attempt", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cannot deliver webhook %s: %w", id, ctx.Err())
		}
		var perr *PermanentError
		if errors.As(err, &perr) {
			n.logger.Error("webhook refused; not retrying", "id", id, "status", perr.StatusCode, "err", err)
			return fmt.Errorf("cannot deliver webhook %s: %w", id, err)
		}
		last = err
		if attempt >= n.attempts {
			break
		}
		wait := n.wait(attempt)
		if retryAfter > 0 {
			if retryAfter > n.maxRetryAft {
				last = fmt.Errorf("%w (Retry-After %s exceeds %s)", err, retryAfter, n.maxRetryAft)
				break
			}
			wait = retryAfter
		}
		n.logger.Warn("webhook delivery failed; retrying", "id", id, "attempt", attempt, "wait", wait, "err", err)
		if err := alerting.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("cannot deliver webhook %s: %w", id, err)
		}
	}
	n.logger.Error("webhook delivery failed; giving up", "id", id, "err", last)
	return fmt.Errorf("cannot deliver webhook %s: %w", id, last)
}

// attempt sends one request. It returns the server's Retry-After, if any.
func (n *Notifier) attempt(ctx context.Context, id string, r Request) (time.Duration, error) {
	body := r.Body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, &PermanentError{Err: errors.New("cannot build webhook request")}
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
				return 0, &PermanentError{Err: err}
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
	default:
		return 0, &PermanentError{StatusCode: code, Err: fmt.Errorf("%s refused the webhook with %d", n.safeURL, code)}
	}
}

// wait is the scheduled wait after the given failed attempt, with jitter.
func (n *Notifier) wait(attempt int) time.Duration {
	if len(n.backoff) == 0 {
		return 0
	}
	d := n.backoff[min(attempt-1, len(n.backoff)-1)]
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/5+1)
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
