package soak

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/alerting/webhook"
)

// TestRedirectIsCaught checks the campaign's redirect fault with the product's
// webhook notifier: answered 307 and then 302, its attempts fail, the other listener
// is not reached, and the id is delivered once the receiver answers again. A client
// that follows redirects reaches the other listener, so the campaign's "requests
// reaching the other listener" figure would show it.
func TestRedirectIsCaught(t *testing.T) {
	secret, err := webhook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := newHookSink(secret, "bearer-x")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	n, err := webhook.New(webhook.Options{URL: sink.URL(), Secret: secret, BearerToken: "bearer-x"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := n.Render("msg_redirected", webhook.Payload{Type: webhook.EventRetrain, ID: "msg_redirected"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sink.setMode(hookRedirect); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"307", "302"} {
		if _, err := n.Send(ctx, "msg_redirected", req); err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("a %s answer gives %v, want a failed attempt naming it", code, err)
		}
	}
	if got, _ := sink.trap.reached(); got != 0 {
		t.Fatalf("the notifier reached the redirect's target %d times", got)
	}
	if err := sink.setMode(hookOK); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Send(ctx, "msg_redirected", req); err != nil {
		t.Fatal(err)
	}
	if ids, after, repeats := sink.metFault(hookRedirect); ids != 1 || after != 1 || repeats != 0 {
		t.Errorf("met the redirect: %d ids, %d delivered after it, %d repeats; want 1, 1, 0", ids, after, repeats)
	}

	// A client that follows redirects: the trap counts it.
	if err := sink.setMode(hookRedirect); err != nil {
		t.Fatal(err)
	}
	hreq, _ := http.NewRequest(http.MethodPost, sink.URL(), bytes.NewReader(req.Body))
	hreq.Header.Set(webhook.HeaderID, "msg_followed")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := sink.trap.reached(); got != 1 {
		t.Errorf("a client that follows redirects reached the target %d times, want 1", got)
	}
}
