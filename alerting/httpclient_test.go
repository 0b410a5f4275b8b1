package alerting

import (
	"net/http"
	"testing"
	"time"
)

// TestHTTPClientRefusesRedirectsOfAnyClient: a client given by the caller keeps its
// settings but follows no redirect either, and the caller's own client is left as it
// was.
func TestHTTPClientRefusesRedirectsOfAnyClient(t *testing.T) {
	follow := func(*http.Request, []*http.Request) error { return nil }
	mine := &http.Client{Timeout: 7 * time.Second, CheckRedirect: follow}
	c := HTTPClient(mine)
	if c == mine || c.Timeout != 7*time.Second {
		t.Errorf("HTTPClient(mine) = %p timeout %s, want a copy with mine's timeout", c, c.Timeout)
	}
	if mine.CheckRedirect == nil || mine.CheckRedirect(nil, nil) != nil {
		t.Error("HTTPClient changed the caller's client")
	}
	if d := HTTPClient(nil); d.Timeout != 30*time.Second || d.CheckRedirect == nil {
		t.Errorf("HTTPClient(nil): timeout %s, CheckRedirect set %v", d.Timeout, d.CheckRedirect != nil)
	}
	for _, c := range []*http.Client{c, HTTPClient(nil)} {
		req, _ := http.NewRequest(http.MethodGet, "https://elsewhere.example:8443/login?token=secret", nil)
		req.Response = &http.Response{StatusCode: http.StatusFound}
		err := c.CheckRedirect(req, nil)
		if err == nil || err.Error() != "answered 302 redirecting to https://elsewhere.example:8443/…; redirects are not followed (configure the final URL)" {
			t.Errorf("CheckRedirect = %v", err)
		}
	}
}
