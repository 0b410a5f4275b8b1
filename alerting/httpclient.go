package alerting

import (
	"fmt"
	"net/http"
	"time"
)

// HTTPClient returns the client a notifier sends with: a copy of c (nil: a client
// with a 30 s timeout) that never follows a redirect. Following one would send the
// notification, with its credentials and signature, to a host nobody configured —
// and after a 301, 302 or 303 as a GET without its body, which the other host may
// well answer 200, so the delivery would count as done while the receiver never got
// it. A 3xx answer is instead an error naming where it pointed, and the attempt is
// retried like any other failure until someone configures the final URL.
func HTTPClient(c *http.Client) *http.Client {
	out := &http.Client{Timeout: 30 * time.Second}
	if c != nil {
		cp := *c
		out = &cp
	}
	out.CheckRedirect = refuseRedirect
	return out
}

// refuseRedirect is an http.Client CheckRedirect that stops at the first redirect.
// The error names the target by scheme and host only: the rest of a Location may
// repeat the configured URL's secret path or query.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	status := "a redirect"
	if req.Response != nil {
		status = fmt.Sprintf("%d", req.Response.StatusCode)
	}
	target := req.URL.Scheme + "://" + req.URL.Host
	if (req.URL.Path != "" && req.URL.Path != "/") || req.URL.RawQuery != "" {
		target += "/…"
	}
	return fmt.Errorf("answered %s redirecting to %s; redirects are not followed (configure the final URL)", status, target)
}
