package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/monitor"
	"github.com/driftmon/driftmon/internal/references"
)

// References is what the server does with the reference profiles that training
// pipelines hand over per model version. *monitor.Monitor implements it.
type References interface {
	// HandOver makes profile (a profile file's bytes) the reference of (model,
	// version) of stream ("" when the config has one stream), durably.
	HandOver(ctx context.Context, stream, model, version string, profile []byte) (references.Reference, error)
	// Reference says what (model, version) of stream is judged against.
	Reference(stream, model, version string) (references.Reference, error)
	// Withdraw deletes the reference handed over for (model, version) of stream.
	Withdraw(ctx context.Context, stream, model, version string) (references.Reference, error)
}

var _ References = (*monitor.Monitor)(nil)

// referencePath is where a model version's reference is handed over, read and deleted.
const referencePath = "/api/v1/models/{model}/versions/{version}/reference"

// referenceView is a model version's reference as the API returns it.
type referenceView struct {
	Stream  string `json:"stream"`
	Model   string `json:"model"`
	Version string `json:"version"`
	// Reference describes what the version's windows are judged against, as their
	// results and alerts name it.
	Reference  string      `json:"reference"`
	HandedOver *handedOver `json:"handed_over"`
}

// handedOver is a reference handed over for a version; null when it has none.
type handedOver struct {
	// Via is "PUT" (this API) or the reference.per_version file it was read from.
	Via      string    `json:"via"`
	At       time.Time `json:"at"`
	Rows     int64     `json:"rows"`
	Features int       `json:"features"`
}

func viewOf(ref references.Reference) referenceView {
	v := referenceView{Stream: ref.Stream, Model: ref.Model, Version: ref.Version, Reference: ref.Name}
	if h := ref.Handover; h != nil {
		v.HandedOver = &handedOver{Via: h.Via, At: h.At.UTC(), Rows: h.Profile.Rows, Features: len(h.Profile.Features)}
	}
	return v
}

// putReference hands a version's reference over: the body is a profile file, as
// `driftmon baseline` writes it, up to Limits.MaxReferenceBytes.
func (s *Server) putReference(w http.ResponseWriter, r *http.Request) {
	if !s.servesReferences(w) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the profile is more than the %d bytes this server accepts (http.max_reference_bytes)", mb.Limit))
		return
	}
	if err != nil {
		writeErr(w, badRequest("cannot read the body: %v", err))
		return
	}
	if len(body) == 0 {
		writeErr(w, badRequest("the body is empty: send the profile file `driftmon baseline` wrote (curl --data-binary @v2.profile)"))
		return
	}
	ref, err := s.references.HandOver(r.Context(), r.URL.Query().Get("stream"), r.PathValue("model"), r.PathValue("version"), body)
	writeReference(w, ref, err)
}

func (s *Server) getReference(w http.ResponseWriter, r *http.Request) {
	if !s.servesReferences(w) {
		return
	}
	ref, err := s.references.Reference(r.URL.Query().Get("stream"), r.PathValue("model"), r.PathValue("version"))
	writeReference(w, ref, err)
}

// deleteReference makes the version fall back to the stream's configured reference,
// which it answers with.
func (s *Server) deleteReference(w http.ResponseWriter, r *http.Request) {
	if !s.servesReferences(w) {
		return
	}
	ref, err := s.references.Withdraw(r.Context(), r.URL.Query().Get("stream"), r.PathValue("model"), r.PathValue("version"))
	writeReference(w, ref, err)
}

// servesReferences reports whether the server hands references to a monitor, and
// answers 503 when it does not.
func (s *Server) servesReferences(w http.ResponseWriter) bool {
	if s.references == nil {
		writeError(w, http.StatusServiceUnavailable, "this server hands no references to a monitor")
		return false
	}
	return true
}

// writeReference answers a reference call: the version's reference, or its error with
// its status.
func writeReference(w http.ResponseWriter, ref references.Reference, err error) {
	if err != nil {
		writeReferenceErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(ref))
}

// writeReferenceErr answers a reference call's error with its status.
func writeReferenceErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, engine.ErrNotProfile), errors.Is(err, references.ErrStreamRequired):
		code = http.StatusBadRequest
	case errors.Is(err, references.ErrUnknownStream), errors.Is(err, references.ErrNoHandover):
		code = http.StatusNotFound
	case errors.Is(err, references.ErrTooManyReferences):
		code = http.StatusConflict
	case errors.Is(err, cluster.ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, engine.ErrProfileFields):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, references.ErrNotRunning):
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, err.Error())
}
