package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
)

// Options configures a Notifier. Exactly one mode must be chosen: a bot
// Token with a Channel, or an incoming WebhookURL.
type Options struct {
	// Token is a bot token (xoxb-…) used with chat.postMessage. Secret.
	Token string
	// Channel is the channel ID or name to post to; required with Token.
	Channel string
	// WebhookURL is an incoming-webhook URL; its path is a secret.
	WebhookURL string
	// APIURL overrides Slack's Web API base URL (tests point it at
	// slacktest); it must end in "/". Default slackapi.APIURL.
	APIURL string
	// HTTPClient sends the requests; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives retry and failure reports; default discards.
	Logger *slog.Logger
	// MaxAttempts bounds the tries per message, the first included; 0 → 4.
	MaxAttempts int
	// Backoff is the first wait after a temporary failure (5xx, network);
	// it doubles per attempt with jitter, capped at 30 s. 0 → 1 s.
	Backoff time.Duration
	// MaxRetryAfter caps how long a 429's Retry-After is honoured before
	// retrying; a longer request gives up instead. 0 → 60 s.
	MaxRetryAfter time.Duration
	// MinInterval is the least time between two posts of this notifier,
	// which posts to one channel; 0 → 1 s, Slack's per-channel rate.
	MinInterval time.Duration
}

// Notifier posts alerts to one Slack channel. It is safe for concurrent use;
// concurrent posts are spaced by Options.MinInterval.
type Notifier struct {
	client      *slackapi.Client // nil in webhook mode
	channel     string
	webhookURL  string
	httpClient  *http.Client
	logger      *slog.Logger
	attempts    int
	backoff     time.Duration
	maxRetry    time.Duration
	minInterval time.Duration
	safeURL     string // endpoint without secrets, for errors

	mu        sync.Mutex
	next      time.Time // earliest start of the next post
	channelID string    // the channel's ID, as Slack named it in its last answer
}

// PermanentError reports that Slack rejected a message for a reason a retry
// cannot fix (invalid_auth, channel_not_found, a 4xx from a webhook…).
// Callers branch on it with errors.As to alert an operator instead of
// retrying.
type PermanentError struct {
	// Reason is Slack's error code ("invalid_auth") or "http 404".
	Reason string
	Err    error
}

// Error names the reason without any secret.
func (e *PermanentError) Error() string {
	return "slack rejected the message (" + e.Reason + "): " + e.Err.Error()
}

// Unwrap returns the underlying slack-go error.
func (e *PermanentError) Unwrap() error { return e.Err }

// New validates opts and returns a Notifier; it starts nothing.
func New(opts Options) (*Notifier, error) {
	var errs []error
	token, hook := strings.TrimSpace(opts.Token), strings.TrimSpace(opts.WebhookURL)
	switch {
	case token != "" && hook != "":
		errs = append(errs, errors.New("slack: set either token or webhook_url, not both"))
	case token == "" && hook == "":
		errs = append(errs, errors.New("slack: token or webhook_url is required"))
	case token != "" && strings.TrimSpace(opts.Channel) == "":
		errs = append(errs, errors.New("slack.channel: required with a token"))
	}
	safe := ""
	if hook != "" {
		u, err := url.Parse(hook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Never echo the URL: its path is the secret.
			errs = append(errs, errors.New("slack.webhook_url: must be an absolute http(s) URL"))
		} else {
			safe = u.Scheme + "://" + u.Host + "/…"
		}
	}
	apiURL := opts.APIURL
	if apiURL == "" {
		apiURL = slackapi.APIURL
	}
	if token != "" {
		u, err := url.Parse(apiURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("slack.api_url: %q is not an absolute http(s) URL", apiURL))
		case !strings.HasSuffix(u.Path, "/"):
			errs = append(errs, fmt.Errorf("slack.api_url: %q must end in \"/\"", apiURL))
		default:
			safe = apiURL + "chat.postMessage"
		}
	}
	for _, c := range []struct {
		name string
		v    time.Duration
	}{{"backoff", opts.Backoff}, {"max_retry_after", opts.MaxRetryAfter}, {"min_interval", opts.MinInterval}} {
		if c.v < 0 {
			errs = append(errs, fmt.Errorf("slack.%s: must not be negative", c.name))
		}
	}
	if opts.MaxAttempts < 0 {
		errs = append(errs, errors.New("slack.max_attempts: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	n := &Notifier{
		channel:     opts.Channel,
		webhookURL:  hook,
		httpClient:  opts.HTTPClient,
		logger:      opts.Logger,
		attempts:    opts.MaxAttempts,
		backoff:     opts.Backoff,
		maxRetry:    opts.MaxRetryAfter,
		minInterval: opts.MinInterval,
		safeURL:     safe,
	}
	if n.httpClient == nil {
		n.httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	n.logger = n.logger.With("component", "slack")
	if n.attempts == 0 {
		n.attempts = 4
	}
	if n.backoff == 0 {
		n.backoff = time.Second
	}
	if n.maxRetry == 0 {
		n.maxRetry = time.Minute
	}
	if n.minInterval == 0 {
		n.minInterval = time.Second
	}
	if token != "" {
		n.client = slackapi.New(token, slackapi.OptionAPIURL(apiURL), slackapi.OptionHTTPClient(n.httpClient))
	}
	return n, nil
}

// Notify posts the alert. It retries rate limits and temporary failures a
// bounded number of times; a *PermanentError means retrying is pointless.
func (n *Notifier) Notify(ctx context.Context, a alerting.Alert) error {
	_, err := n.Post(ctx, a)
	return err
}

// Post posts the alert and returns the message timestamp ("ts"), which
// threads replies and identifies the message for Update. Incoming webhooks
// do not report it: the timestamp is then "".
func (n *Notifier) Post(ctx context.Context, a alerting.Alert) (string, error) {
	return n.post(ctx, "", Blocks(a), Text(a))
}

// post posts a message, as a reply in the thread of threadTS unless it is
// "", and returns its timestamp ("" through an incoming webhook).
func (n *Notifier) post(ctx context.Context, threadTS string, blocks []slackapi.Block, text string) (string, error) {
	var ts string
	err := n.retry(ctx, "post", func(ctx context.Context) error {
		if n.client == nil {
			return slackapi.PostWebhookCustomHTTPContext(ctx, n.webhookURL, n.httpClient, &slackapi.WebhookMessage{
				Text:   text,
				Blocks: &slackapi.Blocks{BlockSet: blocks},
			})
		}
		opts := []slackapi.MsgOption{
			slackapi.MsgOptionText(text, false),
			slackapi.MsgOptionBlocks(blocks...),
			slackapi.MsgOptionDisableLinkUnfurl(),
		}
		if threadTS != "" {
			opts = append(opts, slackapi.MsgOptionTS(threadTS))
		}
		channelID, postTS, err := n.client.PostMessageContext(ctx, n.channel, opts...)
		if err == nil && channelID != "" {
			// Slack answers with the channel's ID; file uploads need it, not a name.
			n.mu.Lock()
			n.channelID = channelID
			n.mu.Unlock()
		}
		ts = postTS
		return err
	})
	return ts, err
}

// Update replaces the message with timestamp ts by the alert's current
// rendering, e.g. to mark it resolved. It needs a bot token.
func (n *Notifier) Update(ctx context.Context, ts string, a alerting.Alert) error {
	return n.update(ctx, ts, Blocks(a), Text(a))
}

func (n *Notifier) update(ctx context.Context, ts string, blocks []slackapi.Block, text string) error {
	if n.client == nil {
		return &PermanentError{Reason: "unsupported", Err: errors.New("cannot update a message posted through an incoming webhook")}
	}
	return n.retry(ctx, "update", func(ctx context.Context) error {
		_, _, _, err := n.client.UpdateMessageContext(ctx, n.channel, ts,
			slackapi.MsgOptionText(text, false),
			slackapi.MsgOptionBlocks(blocks...),
		)
		return err
	})
}

// retry runs send until it succeeds, fails permanently, runs out of
// attempts or ctx ends, spacing every attempt by the rate limit.
func (n *Notifier) retry(ctx context.Context, op string, send func(context.Context) error) error {
	var last error
	for attempt := 1; ; attempt++ {
		if err := n.waitTurn(ctx); err != nil {
			return fmt.Errorf("cannot %s to slack: %w", op, err)
		}
		err := send(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cannot %s to slack: %w", op, ctx.Err())
		}
		err = n.scrub(err)
		wait, retryable, reason := n.classify(err, attempt)
		if !retryable {
			perr := &PermanentError{Reason: reason, Err: err}
			n.logger.Error("slack rejected the message; not retrying", "op", op, "reason", reason, "err", err)
			return fmt.Errorf("cannot %s to slack: %w", op, perr)
		}
		last = err
		if attempt >= n.attempts {
			break
		}
		n.logger.Warn("slack post failed; retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		if err := alerting.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("cannot %s to slack: %w", op, err)
		}
	}
	n.logger.Error("slack post failed; giving up", "op", op, "attempts", n.attempts, "err", last)
	return fmt.Errorf("cannot %s to slack after %d attempts: %w", op, n.attempts, last)
}

// classify says whether err is worth retrying, after how long, and names
// the reason of a permanent failure.
func (n *Notifier) classify(err error, attempt int) (wait time.Duration, retryable bool, reason string) {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		if rl.RetryAfter > n.maxRetry {
			return 0, false, "rate_limited"
		}
		return max(rl.RetryAfter, 100*time.Millisecond), true, ""
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout {
			return n.backoffFor(attempt), true, ""
		}
		return 0, false, fmt.Sprintf("http %d", sc.Code)
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
			return n.backoffFor(attempt), true, ""
		}
		return 0, false, se.Err
	}
	// Anything else is the network or a malformed response: temporary.
	return n.backoffFor(attempt), true, ""
}

// backoffFor is the wait after the given failed attempt: Backoff doubled per
// attempt, capped at 30 s, plus up to 20 % jitter.
func (n *Notifier) backoffFor(attempt int) time.Duration {
	d := n.backoff
	for i := 1; i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	return d + rand.N(d/5+1)
}

// waitTurn blocks until this notifier may post again (one post per
// MinInterval), reserving the slot before sleeping so concurrent callers
// queue up in order.
func (n *Notifier) waitTurn(ctx context.Context) error {
	n.mu.Lock()
	now := time.Now()
	at := n.next
	if at.Before(now) {
		at = now
	}
	n.next = at.Add(n.minInterval)
	n.mu.Unlock()
	return alerting.Sleep(ctx, at.Sub(now))
}

// scrub removes secrets from err: net/http puts the request URL into its
// errors, and an incoming webhook's URL path is its credential.
func (n *Notifier) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: n.safeURL, Err: ue.Err}
	}
	return err
}
