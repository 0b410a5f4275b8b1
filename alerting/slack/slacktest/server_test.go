package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, u, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String())
}

func blocksOf(n int, section string) string {
	bs := make([]map[string]any, n)
	for i := range bs {
		bs[i] = map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": section}}
	}
	b, _ := json.Marshal(bs)
	return string(b)
}

func TestChecks(t *testing.T) {
	var out bytes.Buffer
	srv := NewServer(Options{Token: "xoxb-good", Out: &out})
	defer srv.Close()
	api := srv.URL() + "chat.postMessage"
	form := func(v url.Values) string { return v.Encode() }
	ok := "ok"
	tests := []struct {
		name, url, contentType, body string
		header                       map[string]string
		wantStatus                   int
		want                         string // "ok", or the error code of the JSON answer or the body
	}{
		{"form token", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}}), nil, 200, ok},
		{"bearer json", api, "application/json", `{"channel":"C1","text":"hi","blocks":` + blocksOf(2, "x") + `}`, map[string]string{"Authorization": "Bearer xoxb-good"}, 200, ok},
		{"no token", api, "application/x-www-form-urlencoded", form(url.Values{"channel": {"C1"}, "text": {"hi"}}), nil, 200, "not_authed"},
		{"wrong token", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-bad"}, "channel": {"C1"}, "text": {"hi"}}), nil, 200, "invalid_auth"},
		{"no channel", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "text": {"hi"}}), nil, 200, "channel_not_found"},
		{"no text", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}}), nil, 200, "no_text"},
		{"51 blocks", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}, "blocks": {blocksOf(51, "x")}}), nil, 200, "invalid_blocks"},
		{"long section", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}, "blocks": {blocksOf(1, strings.Repeat("é", 3001))}}), nil, 200, "invalid_blocks"},
		{"long header", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}, "blocks": {`[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]`}}), nil, 200, "invalid_blocks"},
		{"11 fields", api, "application/x-www-form-urlencoded", form(url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}, "blocks": {`[{"type":"section","fields":[` + strings.Repeat(`{"type":"mrkdwn","text":"f"},`, 10) + `{"type":"mrkdwn","text":"f"}]}]`}}), nil, 200, "invalid_blocks"},
		{"unknown method", srv.URL() + "chat.frobnicate", "application/x-www-form-urlencoded", "", nil, 200, "unknown_method"},
		{"webhook", srv.WebhookURL(), "application/json", `{"text":"hi","blocks":` + blocksOf(1, "x") + `}`, nil, 200, "ok"},
		{"webhook bad json", srv.WebhookURL(), "application/json", `{"text":`, nil, 400, "invalid_payload"},
		{"webhook bad blocks", srv.WebhookURL(), "application/json", `{"text":"hi","blocks":` + blocksOf(51, "x") + `}`, nil, 400, "invalid_blocks"},
		{"webhook wrong path", strings.TrimSuffix(srv.WebhookURL(), "secret") + "guess", "application/json", `{"text":"hi"}`, nil, 404, "no_service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, tt.url, tt.contentType, tt.body, tt.header)
			got := body
			if strings.HasPrefix(body, "{") {
				var r struct {
					OK    bool   `json:"ok"`
					Error string `json:"error"`
				}
				if err := json.Unmarshal([]byte(body), &r); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
				got = r.Error
				if r.OK {
					got = "ok"
				}
			}
			if status != tt.wantStatus || got != tt.want {
				t.Errorf("got %d %s, want %d %s", status, body, tt.wantStatus, tt.want)
			}
		})
	}
	if got := len(srv.Messages()); got != 3 {
		t.Errorf("server recorded %d messages, want the 3 valid ones", got)
	}
	if !strings.Contains(out.String(), "── Slack #C1 ──") || !strings.Contains(out.String(), "── Slack incoming webhook ──") {
		t.Errorf("Out lacks the accepted messages:\n%s", out.String())
	}
	select {
	case m := <-srv.Received():
		if m.Channel != "C1" {
			t.Errorf("first received message channel %q, want C1", m.Channel)
		}
	default:
		t.Error("Received delivered nothing")
	}
}

func TestRender(t *testing.T) {
	blocks := `[
	 {"type":"header","text":{"type":"plain_text","text":":rotating_light: Drift in m v1 — critical"}},
	 {"type":"section","fields":[{"type":"mrkdwn","text":"*Rows*\n1,000"}]},
	 {"type":"divider"},
	 {"type":"section","text":{"type":"mrkdwn","text":"*a &amp; b* — KS 0.43 (p&lt;0.001)\nsee <http://x/y|details>"}},
	 {"type":"context","elements":[{"type":"mrkdwn","text":"one"},{"type":"plain_text","text":"two"}]},
	 {"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open dashboard"},"url":"http://127.0.0.1/d"}]}
	]`
	want := "**🚨 Drift in m v1 — critical**\n" +
		"  **Rows** 1,000\n" +
		"---\n" +
		"**a & b** — KS 0.43 (p<0.001)\nsee [details](http://x/y)\n" +
		"one · two\n" +
		"[Open dashboard](http://127.0.0.1/d)\n"
	if got := Render(json.RawMessage(blocks)); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
	if got := Render(json.RawMessage(`{not json`)); got != "" {
		t.Errorf("Render of invalid JSON = %q, want empty", got)
	}
}

func TestCheckBlocksNamesTheProblem(t *testing.T) {
	err := CheckBlocks(json.RawMessage(blocksOf(2, strings.Repeat("x", 3001))))
	if err == nil || !strings.Contains(err.Error(), "blocks[0] (section)") || !strings.Contains(err.Error(), fmt.Sprint(3001)) {
		t.Errorf("CheckBlocks = %v, want it to name blocks[0] and the length", err)
	}
}

func TestRateLimitPerChannel(t *testing.T) {
	srv := NewServer(Options{Token: "xoxb-good", RateLimit: time.Second})
	defer srv.Close()
	api := srv.URL()
	postTo := func(channel, extra string) (int, http.Header) {
		t.Helper()
		body := url.Values{"token": {"xoxb-good"}, "channel": {channel}, "text": {"hi"}}
		if extra != "" {
			body.Set("ts", extra)
		}
		method := "chat.postMessage"
		if extra != "" {
			method = "chat.update"
		}
		resp, err := http.Post(api+method, "application/x-www-form-urlencoded", strings.NewReader(body.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if code, _ := postTo("C1", ""); code != 200 {
		t.Fatalf("first post: %d", code)
	}
	code, h := postTo("C1", "")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("second post within a second: %d Retry-After %q, want 429 and 1", code, h.Get("Retry-After"))
	}
	if code, _ := postTo("C2", ""); code != 200 {
		t.Errorf("post to another channel: %d, want 200 (the limit is per channel)", code)
	}
	ts := srv.Messages()[0].TS
	if code, _ := postTo("C1", ts); code != 200 {
		t.Errorf("chat.update: %d, want 200 (updates are not limited)", code)
	}
	if srv.RateLimited() != 1 || len(srv.Messages()) != 3 {
		t.Errorf("RateLimited %d, messages %d; want 1 and 3", srv.RateLimited(), len(srv.Messages()))
	}
	if m, updates, ok := srv.Current(ts); !ok || updates != 1 || !m.Updated {
		t.Errorf("Current(%s) = %+v, %d, %v", ts, m, updates, ok)
	}
}
