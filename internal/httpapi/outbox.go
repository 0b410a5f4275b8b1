package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/outbox"
)

// Outbox is what the server reads from and does to the durable delivery outbox.
// *outbox.Outbox implements it.
type Outbox interface {
	// List returns the items with the given status, oldest first.
	List(status outbox.Status) ([]outbox.Record, error)
	// Replay queues a dead or delivered item again; it returns an error wrapping
	// outbox.ErrNotFound or outbox.ErrPending when it cannot.
	Replay(id string) error
	// Counts returns how many items are pending and dead.
	Counts() (pending, dead int, err error)
}

var _ Outbox = (*outbox.Outbox)(nil)

// AuditFunc reads the audit trail; audit.List bound to the state store is one.
type AuditFunc func(q audit.Query) ([]audit.Entry, error)

// outboxItem is an outbox record as the API returns it; the body and headers are
// left out.
type outboxItem struct {
	ID          string        `json:"id"`
	Route       string        `json:"route"`
	Key         string        `json:"key,omitempty"`
	Status      string        `json:"status"`
	Attempts    int           `json:"attempts"`
	Enqueued    time.Time     `json:"enqueued"`
	NextAttempt time.Time     `json:"next_attempt,omitzero"`
	LastAttempt time.Time     `json:"last_attempt,omitzero"`
	LastError   string        `json:"last_error,omitempty"`
	Subject     audit.Subject `json:"subject"`
}

func (s *Server) listOutbox(w http.ResponseWriter, r *http.Request) {
	if s.outbox == nil {
		writeError(w, http.StatusServiceUnavailable, "no outbox")
		return
	}
	q := r.URL.Query()
	st := outbox.Status(q.Get("status"))
	if !q.Has("status") {
		st = outbox.Pending
	}
	switch st {
	case outbox.Pending, outbox.Dead, outbox.Delivered:
	default:
		writeErr(w, badRequest("status: %q is not %q, %q or %q", st, outbox.Pending, outbox.Dead, outbox.Delivered))
		return
	}
	recs, err := s.outbox.List(st)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := make([]outboxItem, 0, len(recs))
	for _, r := range recs {
		out = append(out, outboxItem{
			ID: r.ID, Route: r.Route, Key: r.Key, Status: string(r.Status), Attempts: r.Attempts,
			Enqueued: r.Enqueued, NextAttempt: r.NextAttempt, LastAttempt: r.LastAttempt,
			LastError: r.LastError, Subject: r.Subject,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) replayOutbox(w http.ResponseWriter, r *http.Request) {
	if s.outbox == nil {
		writeError(w, http.StatusServiceUnavailable, "no outbox")
		return
	}
	id := r.PathValue("id")
	err := s.outbox.Replay(id)
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such outbox item: "+id)
	case errors.Is(err, outbox.ErrPending):
		writeError(w, http.StatusConflict, "outbox item "+id+" is still pending")
	case err != nil:
		writeErr(w, err)
	default:
		s.log.Info("outbox item replayed", "id", id)
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": string(outbox.Pending)})
	}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	if s.audit == nil {
		writeError(w, http.StatusServiceUnavailable, "no audit trail")
		return
	}
	q := r.URL.Query()
	limit, err := limitParam(q, 1000)
	if err != nil {
		writeErr(w, err)
		return
	}
	var after uint64
	if q.Has("after") {
		if after, err = strconv.ParseUint(q.Get("after"), 10, 64); err != nil {
			writeErr(w, badRequest("after: %q is not a sequence number", q.Get("after")))
			return
		}
	}
	entries, err := s.audit(audit.Query{
		After: after, Alert: q.Get("alert"), Delivery: q.Get("delivery"), Model: q.Get("model"), Limit: limit,
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
