package slack

import (
	"context"
	"errors"
	"fmt"
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
	// Redirects are never followed, whatever the client says (see
	// alerting.HTTPClient).
	HTTPClient *http.Client
	// MinInterval is the least time between two calls of this notifier,
	// which posts to one channel; 0 → 1 s, Slack's per-channel rate. A 429's
	// Retry-After holds the next call back for as long.
	MinInterval time.Duration
}

// Notifier posts alert episodes to one Slack channel, one call per method:
// the outbox retries what fails. It is safe for concurrent use; concurrent
// calls are spaced by Options.MinInterval.
type Notifier struct {
	client      *slackapi.Client // nil in webhook mode
	channel     string
	webhookURL  string
	httpClient  *http.Client
	minInterval time.Duration
	safeURL     string // endpoint without secrets, for errors

	mu        sync.Mutex
	next      time.Time // earliest start of the next call
	channelID string    // the channel's ID, as Slack named it in its last answer
}

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
	if opts.MinInterval < 0 {
		errs = append(errs, errors.New("slack.min_interval: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	n := &Notifier{
		channel:     opts.Channel,
		webhookURL:  hook,
		httpClient:  alerting.HTTPClient(opts.HTTPClient),
		minInterval: opts.MinInterval,
		safeURL:     safe,
	}
	if n.minInterval == 0 {
		n.minInterval = time.Second
	}
	if token != "" {
		n.client = slackapi.New(token, slackapi.OptionAPIURL(apiURL), slackapi.OptionHTTPClient(n.httpClient))
	}
	return n, nil
}

// post posts a message, as a reply in the thread of threadTS unless it is
// "", and returns its timestamp ("" through an incoming webhook).
func (n *Notifier) post(ctx context.Context, threadTS string, blocks []slackapi.Block, text string) (string, error) {
	var ts string
	err := n.call(ctx, "post", func(ctx context.Context) error {
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

// update replaces the message with timestamp ts, e.g. to mark it resolved.
// It needs a bot token.
func (n *Notifier) update(ctx context.Context, ts string, blocks []slackapi.Block, text string) error {
	if n.client == nil {
		return &alerting.PermanentError{Reason: "unsupported", Err: errors.New("cannot update a message posted through an incoming webhook")}
	}
	return n.call(ctx, "update", func(ctx context.Context) error {
		_, _, _, err := n.client.UpdateMessageContext(ctx, n.channel, ts,
			slackapi.MsgOptionText(text, false),
			slackapi.MsgOptionBlocks(blocks...),
		)
		return err
	})
}

// call makes one call to Slack when this notifier's turn comes (see
// MinInterval). It does not retry: a refusal no retry can fix is an
// *alerting.PermanentError, anything else (5xx, 429, a redirect, the
// network) is the outbox's to retry, after RetryAfter of the error.
func (n *Notifier) call(ctx context.Context, op string, send func(context.Context) error) error {
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
	if wait := RetryAfter(err); wait > 0 {
		n.holdUntil(time.Now().Add(wait))
	}
	if reason := refusal(err); reason != "" {
		err = &alerting.PermanentError{Reason: reason, Err: fmt.Errorf("slack rejected the message (%s): %w", reason, err)}
	}
	return fmt.Errorf("cannot %s to slack: %w", op, err)
}

// RetryAfter is how long Slack asked to wait before the next call (a 429's
// Retry-After) when err carries it, else 0. The outbox waits at least as long
// before it tries again.
func RetryAfter(err error) time.Duration {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, 0)
	}
	return 0
}

// refusal names the reason when err is Slack refusing the call for good
// (invalid_auth, channel_not_found, a 4xx from a webhook…), and is "" for
// failures worth retrying: rate limits, 408, 5xx, Slack's transient errors,
// redirects and the network.
func refusal(err error) string {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return ""
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout ||
			(sc.Code >= 300 && sc.Code < 400) {
			return ""
		}
		return fmt.Sprintf("http %d", sc.Code)
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
			return ""
		}
		return se.Err
	}
	return ""
}

// waitTurn blocks until this notifier may call Slack again (one call per
// MinInterval, none before a Retry-After has passed), reserving the slot
// before sleeping so concurrent callers queue up in order.
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

// holdUntil keeps the next call from starting before t: Slack asked to wait.
func (n *Notifier) holdUntil(t time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.After(n.next) {
		n.next = t
	}
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
