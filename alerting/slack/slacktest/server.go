// Package slacktest is a fake Slack for tests and the demo: an httptest
// server on 127.0.0.1 that speaks chat.postMessage, chat.update, the
// external file upload (files.getUploadURLExternal, the upload, then
// files.completeUploadExternal) and an incoming webhook the way slack-go
// calls them, checks what real Slack checks (auth, channel, Block Kit
// limits) and prints every accepted message as a person would read it.
//
// It imports no driftmon package, so any package's tests (and the demo) can
// use it without a cycle.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Options configures a Server.
type Options struct {
	// Token is the bot token the API accepts (form field "token" or
	// "Authorization: Bearer"). Empty accepts any non-empty token.
	Token string
	// WebhookPath is the incoming-webhook path, e.g.
	// "/services/T000/B000/XXXX"; default "/services/TTEST/BTEST/secret".
	WebhookPath string
	// Out, when set, receives each accepted message rendered as text.
	Out io.Writer
	// Logger receives one debug line per request; default discards.
	Logger *slog.Logger
	// RateLimit, when set, is the least time between two posts to one
	// channel (chat.postMessage, thread replies included, and the incoming
	// webhook), as Slack enforces about one message per second: a faster
	// post is answered 429 with Retry-After in whole seconds. chat.update
	// is not limited. 0 accepts any rate.
	RateLimit time.Duration
}

// Message is one message Slack accepted.
type Message struct {
	// Channel is where it was posted ("" for the incoming webhook).
	Channel string
	// Text is the fallback text, Blocks the raw Block Kit JSON array.
	Text   string
	Blocks json.RawMessage
	// TS identifies the message; ThreadTS is set for thread replies.
	TS, ThreadTS string
	// Webhook is true when it came through the incoming webhook, Updated
	// when it is the new content of a chat.update.
	Webhook, Updated bool
}

// Failure is a canned error the server answers instead of handling the
// next request, to test retries. Status ≠ 0 answers that HTTP status (with
// Retry-After when set); otherwise Error answers 200 {"ok":false,"error":…}.
type Failure struct {
	Status     int
	RetryAfter time.Duration
	Error      string
}

// Server is the fake Slack. Create it with NewServer and Close it when done.
type Server struct {
	srv         *httptest.Server
	token       string
	webhookPath string
	out         io.Writer
	logger      *slog.Logger
	received    chan Message
	rateLimit   time.Duration

	mu       sync.Mutex
	messages []Message
	failures []Failure
	requests int
	limited  int
	lastPost map[string]time.Time // by channel
	seq      int
	uploads  map[string]*File // by file ID, from files.getUploadURLExternal
	files    []File           // shared by files.completeUploadExternal
}

// NewServer starts a fake Slack listening on 127.0.0.1.
func NewServer(opts Options) *Server {
	s := &Server{
		token:       opts.Token,
		webhookPath: opts.WebhookPath,
		out:         opts.Out,
		logger:      opts.Logger,
		received:    make(chan Message, 1024),
		rateLimit:   opts.RateLimit,
		lastPost:    map[string]time.Time{},
		uploads:     map[string]*File{},
	}
	if s.webhookPath == "" {
		s.webhookPath = "/services/TTEST/BTEST/secret"
	}
	if !strings.HasPrefix(s.webhookPath, "/") {
		s.webhookPath = "/" + s.webhookPath
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "slacktest")
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve)) // listens on 127.0.0.1
	return s
}

// URL is the Web API base URL, ending in "/api/", for slack.OptionAPIURL.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// WebhookURL is the incoming-webhook URL.
func (s *Server) WebhookURL() string { return s.srv.URL + s.webhookPath }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests counts every request received, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// RateLimited counts the posts answered 429 because they came faster than
// Options.RateLimit.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// Thread returns the replies posted in the thread of the message ts, in
// arrival order.
func (s *Server) Thread(ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.ThreadTS == ts && !m.Updated {
			out = append(out, m)
		}
	}
	return out
}

// Current returns the message ts as it reads now, after every chat.update,
// and how many times it was updated; ok is false when there is no such
// message.
func (s *Server) Current(ts string) (m Message, updates int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, msg := range s.messages {
		if msg.TS != ts {
			continue
		}
		if msg.Updated {
			updates++
		}
		m, ok = msg, true
	}
	return m, updates, ok
}

// Received delivers each accepted message as it arrives, so a demo can wait
// for the first alert. It buffers 1024 messages and then drops (Messages
// still has them all).
func (s *Server) Received() <-chan Message { return s.received }

// FailNext queues failures answered, one per request, before the server
// handles requests normally again.
func (s *Server) FailNext(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.logger.Debug("request", "method", r.Method, "path", r.URL.Path)
	s.mu.Lock()
	s.requests++
	var fail *Failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		http.Error(w, "method_not_allowed", http.StatusMethodNotAllowed)
		return
	}
	if fail != nil {
		if fail.Status != 0 {
			if fail.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((fail.RetryAfter+time.Second-1)/time.Second)))
			}
			http.Error(w, http.StatusText(fail.Status), fail.Status)
			return
		}
		apiError(w, fail.Error)
		return
	}
	switch r.URL.Path {
	case "/api/chat.postMessage":
		s.chat(w, r, false)
	case "/api/chat.update":
		s.chat(w, r, true)
	case "/api/files.getUploadURLExternal":
		s.uploadURL(w, r)
	case "/api/files.completeUploadExternal":
		s.completeUpload(w, r)
	case s.webhookPath:
		s.webhook(w, r)
	default:
		if id, ok := strings.CutPrefix(r.URL.Path, uploadPath); ok {
			s.upload(w, r, id)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			apiError(w, "unknown_method")
			return
		}
		http.Error(w, "no_service", http.StatusNotFound)
	}
}

// request is the union of what chat.postMessage and chat.update accept.
type request struct {
	Token, Channel, Text, TS, ThreadTS string
	Blocks                             json.RawMessage
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, update bool) {
	req, err := parseRequest(r)
	if err != nil {
		apiError(w, "invalid_arguments")
		return
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && req.Token == "" {
		req.Token = bearer
	}
	switch {
	case req.Token == "":
		apiError(w, "not_authed")
		return
	case s.token != "" && req.Token != s.token:
		apiError(w, "invalid_auth")
		return
	case req.Channel == "":
		apiError(w, "channel_not_found")
		return
	case update && req.TS == "":
		apiError(w, "message_not_found")
		return
	}
	if code := checkMessage(req.Text, req.Blocks); code != "" {
		apiError(w, code)
		return
	}
	if !update && s.limit(w, req.Channel) {
		return
	}

	msg := Message{Channel: req.Channel, Text: req.Text, Blocks: req.Blocks, ThreadTS: req.ThreadTS, Updated: update}
	s.mu.Lock()
	if update {
		found := false
		for i := range s.messages {
			if m := s.messages[i]; m.Channel == req.Channel && m.TS == req.TS && !m.Updated {
				found = true
				break
			}
		}
		if !found {
			s.mu.Unlock()
			apiError(w, "message_not_found")
			return
		}
		msg.TS = req.TS
	} else {
		s.seq++
		msg.TS = fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq)
	}
	s.mu.Unlock()
	s.accept(msg)

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ok": true, "channel": msg.Channel, "ts": msg.TS, "text": msg.Text,
		"message": map[string]any{"type": "message", "text": msg.Text, "ts": msg.TS, "thread_ts": msg.ThreadTS, "blocks": msg.Blocks},
	})
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text     string          `json:"text"`
		Blocks   json.RawMessage `json:"blocks"`
		ThreadTS string          `json:"thread_ts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if code := checkMessage(body.Text, body.Blocks); code != "" {
		http.Error(w, code, http.StatusBadRequest)
		return
	}
	if s.limit(w, "") {
		return
	}
	s.mu.Lock()
	s.seq++
	ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq)
	s.mu.Unlock()
	s.accept(Message{Text: body.Text, Blocks: body.Blocks, TS: ts, ThreadTS: body.ThreadTS, Webhook: true})
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

// limit answers 429 and returns true when a post to channel comes sooner
// than RateLimit after the last accepted one; otherwise it books the post.
func (s *Server) limit(w http.ResponseWriter, channel string) bool {
	if s.rateLimit <= 0 {
		return false
	}
	now := time.Now()
	s.mu.Lock()
	last, seen := s.lastPost[channel]
	wait := s.rateLimit - now.Sub(last)
	if seen && wait > 0 {
		s.limited++
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "ratelimited", http.StatusTooManyRequests)
		return true
	}
	s.lastPost[channel] = now
	s.mu.Unlock()
	return false
}

func (s *Server) accept(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	if s.out != nil {
		where := "#" + strings.TrimPrefix(m.Channel, "#")
		if m.Webhook {
			where = "incoming webhook"
		}
		if m.Updated {
			where += " (updated " + m.TS + ")"
		}
		if m.ThreadTS != "" {
			where += " (reply in thread " + m.ThreadTS + ")"
		}
		text := Render(m.Blocks)
		if text == "" {
			text = unescape(m.Text) + "\n"
		}
		fmt.Fprintf(s.out, "── Slack %s ──\n%s\n", where, text)
	}
	s.mu.Unlock()
	select {
	case s.received <- m:
	default:
	}
}

// parseRequest reads a form-encoded request (what slack-go sends, blocks as
// a JSON string) or a JSON one.
func parseRequest(r *http.Request) (request, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return request{}, err
	}
	if ct == "application/json" {
		var j struct {
			Token    string          `json:"token"`
			Channel  string          `json:"channel"`
			Text     string          `json:"text"`
			TS       string          `json:"ts"`
			ThreadTS string          `json:"thread_ts"`
			Blocks   json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(body, &j); err != nil {
			return request{}, err
		}
		return request{Token: j.Token, Channel: j.Channel, Text: j.Text, TS: j.TS, ThreadTS: j.ThreadTS, Blocks: j.Blocks}, nil
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return request{}, err
	}
	req := request{Token: v.Get("token"), Channel: v.Get("channel"), Text: v.Get("text"), TS: v.Get("ts"), ThreadTS: v.Get("thread_ts")}
	if b := v.Get("blocks"); b != "" {
		req.Blocks = json.RawMessage(b)
	}
	return req, nil
}

func apiError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
}

// Block Kit limits, as documented at
// https://api.slack.com/reference/block-kit/blocks.
const (
	maxBlocks         = 50
	maxSectionText    = 3000
	maxHeaderText     = 150
	maxFields         = 10
	maxFieldText      = 2000
	maxContextElems   = 10
	maxActionElems    = 25
	maxButtonText     = 75
	maxURL            = 3000
	maxBlockID        = 255
	maxMessageTextLen = 40000
)

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type element struct {
	Type string      `json:"type"`
	Text *textObject `json:"text"` // buttons
	URL  string      `json:"url"`
}

type block struct {
	Type     string            `json:"type"`
	BlockID  string            `json:"block_id"`
	Text     *textObject       `json:"text"`
	Fields   []textObject      `json:"fields"`
	Elements []json.RawMessage `json:"elements"`
}

// checkMessage returns the Slack error code for an invalid message, "" when
// it is acceptable.
func checkMessage(text string, raw json.RawMessage) string {
	if strings.TrimSpace(text) == "" {
		return "no_text"
	}
	if utf8.RuneCountInString(text) > maxMessageTextLen {
		return "msg_too_long"
	}
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if err := CheckBlocks(raw); err != nil {
		return "invalid_blocks"
	}
	return ""
}

// CheckBlocks reports the first way the Block Kit JSON array breaks Slack's
// limits, or nil. The server answers "invalid_blocks" for any such error;
// tests call it directly for a precise message.
func CheckBlocks(raw json.RawMessage) error {
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return fmt.Errorf("decode blocks: %w", err)
	}
	if len(blocks) > maxBlocks {
		return fmt.Errorf("%d blocks, at most %d allowed", len(blocks), maxBlocks)
	}
	for i, b := range blocks {
		if err := checkBlock(b); err != nil {
			return fmt.Errorf("blocks[%d] (%s): %w", i, b.Type, err)
		}
	}
	return nil
}

func checkBlock(b block) error {
	if utf8.RuneCountInString(b.BlockID) > maxBlockID {
		return fmt.Errorf("block_id longer than %d", maxBlockID)
	}
	switch b.Type {
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" {
			return fmt.Errorf("header needs a plain_text text")
		}
		return checkText(*b.Text, maxHeaderText)
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return fmt.Errorf("section needs text or fields")
		}
		if b.Text != nil {
			if err := checkText(*b.Text, maxSectionText); err != nil {
				return err
			}
		}
		if len(b.Fields) > maxFields {
			return fmt.Errorf("%d fields, at most %d allowed", len(b.Fields), maxFields)
		}
		for j, f := range b.Fields {
			if err := checkText(f, maxFieldText); err != nil {
				return fmt.Errorf("fields[%d]: %w", j, err)
			}
		}
	case "context":
		return checkElements(b, "context", maxContextElems, func(t textObject) error {
			if t.Type == "image" {
				return nil
			}
			return checkText(t, maxSectionText)
		})
	case "actions":
		return checkElements(b, "action", maxActionElems, func(e element) error {
			if e.Type != "button" {
				return nil
			}
			if e.Text == nil || e.Text.Type != "plain_text" {
				return fmt.Errorf("button needs a plain_text text")
			}
			if err := checkText(*e.Text, maxButtonText); err != nil {
				return err
			}
			if utf8.RuneCountInString(e.URL) > maxURL {
				return fmt.Errorf("url longer than %d", maxURL)
			}
			return nil
		})
	case "divider", "image", "rich_text", "markdown", "video", "file", "input":
	default:
		return fmt.Errorf("unknown block type %q", b.Type)
	}
	return nil
}

// checkElements checks the elements of a context or actions block: 1 to most of
// them, each decoded as a T and checked by check.
func checkElements[T any](b block, kind string, most int, check func(T) error) error {
	if len(b.Elements) == 0 || len(b.Elements) > most {
		return fmt.Errorf("%d %s elements, 1 to %d allowed", len(b.Elements), kind, most)
	}
	for j, raw := range b.Elements {
		var e T
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("elements[%d]: %w", j, err)
		}
		if err := check(e); err != nil {
			return fmt.Errorf("elements[%d]: %w", j, err)
		}
	}
	return nil
}

func checkText(t textObject, limit int) error {
	if t.Type != "plain_text" && t.Type != "mrkdwn" {
		return fmt.Errorf("text type %q, want plain_text or mrkdwn", t.Type)
	}
	n := utf8.RuneCountInString(t.Text)
	if n == 0 {
		return fmt.Errorf("empty text")
	}
	if n > limit {
		return fmt.Errorf("text of %d characters, at most %d allowed", n, limit)
	}
	return nil
}
