package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ReceiverOptions configures a Receiver.
type ReceiverOptions struct {
	// Secret verifies the webhook-signature; required.
	Secret string
	// OnDelivery, when set, is called once per new webhook-id (not for
	// duplicates), after the delivery is recorded, on the request goroutine.
	OnDelivery func(Delivery)
	// Logger reports rejected requests; default discards.
	Logger *slog.Logger
	// Now returns the current time for the timestamp check; default
	// time.Now.
	Now func() time.Time
}

// Delivery is one verified webhook.
type Delivery struct {
	ID        string
	Timestamp time.Time
	Payload   json.RawMessage
	Header    http.Header
}

// Receiver is an http.Handler that accepts Standard Webhooks: it verifies
// the signature (401 when wrong), requires a JSON body (400), records each
// webhook-id once and answers 204, duplicates included, as an idempotent
// receiver should. It is for tests and the demo.
type Receiver struct {
	secret     string
	onDelivery func(Delivery)
	logger     *slog.Logger
	now        func() time.Time

	mu         sync.Mutex
	deliveries []Delivery
	seen       map[string]bool
	requests   int
	rejected   int
}

// NewReceiver validates opts and returns a Receiver.
func NewReceiver(opts ReceiverOptions) (*Receiver, error) {
	if _, err := decodeSecret(opts.Secret); err != nil {
		return nil, err
	}
	r := &Receiver{secret: opts.Secret, onDelivery: opts.OnDelivery, logger: opts.Logger, now: opts.Now, seen: map[string]bool{}}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	r.logger = r.logger.With("component", "webhook-receiver")
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// ServeHTTP handles one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	r.mu.Unlock()
	if req.Method != http.MethodPost {
		r.reject(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.reject(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.reject(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := Verify(r.secret, req.Header, body, r.now()); err != nil {
		r.logger.Warn("webhook rejected", "err", err)
		r.reject(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if !json.Valid(body) {
		r.reject(w, "body is not JSON", http.StatusBadRequest)
		return
	}
	unix, _ := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64) // Verify parsed it
	d := Delivery{ID: req.Header.Get(HeaderID), Timestamp: time.Unix(unix, 0), Payload: json.RawMessage(body), Header: req.Header.Clone()}

	r.mu.Lock()
	dup := r.seen[d.ID]
	if !dup {
		r.seen[d.ID] = true
		r.deliveries = append(r.deliveries, d)
	}
	r.mu.Unlock()
	if !dup && r.onDelivery != nil {
		r.onDelivery(d)
	}
	w.WriteHeader(http.StatusNoContent)
}

// reject answers a request the receiver refuses, and counts it.
func (r *Receiver) reject(w http.ResponseWriter, msg string, code int) {
	r.mu.Lock()
	r.rejected++
	r.mu.Unlock()
	http.Error(w, msg, code)
}

// Rejected counts the requests refused: not a POST, too large, a wrong signature or
// timestamp, or a body that is not JSON.
func (r *Receiver) Rejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

// Deliveries returns the verified deliveries, one per webhook-id, in
// arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Requests counts every request received, rejected and duplicate ones
// included.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}
