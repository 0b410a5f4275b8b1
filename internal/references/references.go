// Package references keeps the references handed over per model version by the
// pipeline that trained it (engine.Handover records; internal/engine's handover.go says
// how they judge), and answers the API's calls on them: hand one over, say what a
// version is judged against, withdraw one. Each reference is kept once (store.go):
//
//   - one process: in the state file's references bucket (or, without a state file, in
//     the outbox's scratch file, forgotten at exit), written by the API in a
//     transaction of its own; the stream gives its engine the bucket's records
//     (Records) when it starts, before it restores its checkpoint, and at its next step
//     after a change;
//   - a cluster: in the cluster topic (cluster.Log.PutReference), whichever process the
//     API call reaches; the leader's judge reads them there before every pass.
//
// A reference the engine reads from a reference.per_version file is stored the same way,
// by the stream (StoreRead) or the leader that read it, so that a restart and a new
// leader judge the version against what was read, whatever became of the file.
//
// It imports internal/engine (the record), and internal/state and internal/cluster
// (where records are kept); it must not import internal/monitor or internal/httpapi
// (the monitor wires it, the API calls it), nor alerting's policy, outbox or notifiers.
package references

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
)

// Errors of HandOver, Reference and Withdraw that the API answers with a 4xx or 503;
// errors about the profile wrap engine.ErrNotProfile or engine.ErrProfileFields.
var (
	// ErrUnknownStream: the config has no stream of that name.
	ErrUnknownStream = errors.New("no such stream")
	// ErrStreamRequired: the config has several streams and the call named none.
	ErrStreamRequired = errors.New("several streams: say which")
	// ErrNoHandover: no reference was handed over for the version.
	ErrNoHandover = errors.New("no reference handed over for the version")
	// ErrTooManyReferences: the stream holds limits.max_models references already.
	ErrTooManyReferences = errors.New("too many references handed over")
	// ErrNotRunning: the monitor is not running, so it has nowhere to keep a
	// reference yet.
	ErrNotRunning = errors.New("the monitor is not running")
)

// Reference is what a model version is judged against, as the API shows it.
type Reference struct {
	Stream, Model, Version string
	// Handover is the reference handed over for the version; nil when it has none.
	Handover *engine.Handover
	// Name describes it: the handed-over reference ("handed over for v2 by PUT at
	// 2026-12-05T10:00Z: 50,000 rows"), or the stream's fallback ("no reference handed
	// over for v2: warm-up: the version's first whole window").
	Name string
}

// Stream is a configured stream as the reference calls see it.
type Stream struct {
	Config *config.Stream
	// Engine is the stream's engine, whose fields and fallback the calls read (both
	// fixed once it is made); a cluster worker's prototype engine will do.
	Engine *engine.Engine
	// Changed, when set, is called after a call changed the stream's references: in
	// one process, the stream gives them to its engine at its next step. nil in a
	// cluster, whose leader reads the topic before every pass.
	Changed func()
}

// Registry answers the API's calls on the references of a monitor's streams, kept in
// the Store the running monitor gives it (Keep).
type Registry struct {
	streams []Stream
	log     *slog.Logger

	mu    sync.Mutex
	store Store // nil while the monitor is not running
}

// New returns the registry of streams; log receives a line per change.
func New(streams []Stream, log *slog.Logger) *Registry {
	return &Registry{streams: streams, log: log}
}

// Keep makes s where references are kept, while the monitor runs; nil: nowhere, the
// monitor is not running (the calls answer ErrNotRunning).
func (r *Registry) Keep(s Store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store = s
}

// open finds the stream called name ("" names the only one) and where its references
// are kept.
func (r *Registry) open(name string) (Stream, Store, error) {
	t, err := r.find(name)
	if err != nil {
		return Stream{}, nil, err
	}
	s, err := r.kept()
	return t, s, err
}

// kept returns where references are kept while the monitor runs.
func (r *Registry) kept() (Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return nil, fmt.Errorf("%w: it keeps handed-over references once it has opened its state", ErrNotRunning)
	}
	return r.store, nil
}

// find finds the stream called name; "" names the only one.
func (r *Registry) find(name string) (Stream, error) {
	names := make([]string, len(r.streams))
	for i, t := range r.streams {
		if t.Config.Name == name || name == "" && len(r.streams) == 1 {
			return t, nil
		}
		names[i] = t.Config.Name
	}
	if name == "" {
		return Stream{}, fmt.Errorf("%w: the config has streams %s", ErrStreamRequired, strings.Join(names, ", "))
	}
	return Stream{}, fmt.Errorf("%w %q: the config has streams %s", ErrUnknownStream, name, strings.Join(names, ", "))
}

// HandOver makes profile — the bytes of a profile file, as `driftmon baseline` writes
// them — the reference of (model, version) of stream ("" when the config has one), and
// returns once it is durable: in the state file, or in a cluster in the cluster topic.
// The stream (in a cluster, the leader) judges the version's next windows against it,
// replacing a warm-up in progress.
func (r *Registry) HandOver(ctx context.Context, stream, model, version string, profile []byte) (Reference, error) {
	t, err := r.find(stream)
	if err != nil {
		return Reference{}, err
	}
	h, err := engine.NewHandover(model, version, engine.ViaAPI, time.Now(), profile, t.Engine.Fields())
	if err != nil {
		return Reference{}, err
	}
	s, err := r.kept()
	if err != nil {
		return Reference{}, err
	}
	held, err := s.count(t.Config.Name)
	if err != nil {
		return Reference{}, err
	}
	old, err := s.get(t.Config.Name, model, version)
	if err != nil {
		return Reference{}, err
	}
	// A version that never appears keeps its reference until it is deleted: bounded
	// like the versions themselves.
	if limit := maxModels(t.Config); old == nil && held >= limit {
		return Reference{}, fmt.Errorf("%w: stream %s holds %d, its limits.max_models; DELETE those of versions no longer served",
			ErrTooManyReferences, t.Config.Name, held)
	}
	if err := s.put(ctx, t.Config.Name, model, version, h.Encode()); err != nil {
		return Reference{}, fmt.Errorf("cannot store the reference of model %s version %s: %w", model, version, err)
	}
	t.changed()
	r.log.Info("reference handed over", "stream", t.Config.Name, "model", model, "version", version, "rows", h.Profile.Rows)
	return Reference{Stream: t.Config.Name, Model: model, Version: version, Handover: h, Name: h.Name()}, nil
}

// Reference says what (model, version) of stream is judged against: the reference
// handed over for it, or the stream's fallback.
func (r *Registry) Reference(stream, model, version string) (Reference, error) {
	t, s, err := r.open(stream)
	if err != nil {
		return Reference{}, err
	}
	rec, err := s.get(t.Config.Name, model, version)
	if err != nil || rec == nil {
		return t.fallback(model, version), err
	}
	h, err := engine.DecodeHandover(rec, t.Engine.Fields())
	if err != nil {
		return Reference{}, fmt.Errorf("the stored reference of model %s version %s cannot be used: %w", model, version, err)
	}
	return Reference{Stream: t.Config.Name, Model: model, Version: version, Handover: h, Name: h.Name()}, nil
}

// Withdraw deletes the reference handed over for (model, version) of stream, durably:
// the version's next windows are judged against the stream's fallback, which it
// returns. ErrNoHandover when there was none.
func (r *Registry) Withdraw(ctx context.Context, stream, model, version string) (Reference, error) {
	t, s, err := r.open(stream)
	if err != nil {
		return Reference{}, err
	}
	found, err := s.remove(ctx, t.Config.Name, model, version)
	switch {
	case err != nil:
		return Reference{}, fmt.Errorf("cannot delete the reference of model %s version %s: %w", model, version, err)
	case !found:
		return Reference{}, fmt.Errorf("%w: model %s version %s of stream %s", ErrNoHandover, model, version, t.Config.Name)
	}
	t.changed()
	r.log.Info("handed-over reference deleted", "stream", t.Config.Name, "model", model, "version", version)
	return t.fallback(model, version), nil
}

func (t Stream) changed() {
	if t.Changed != nil {
		t.Changed()
	}
}

// fallback is what (model, version) is judged against without a handed-over reference.
func (t Stream) fallback(model, version string) Reference {
	v := version
	if v == "" {
		v = model
	}
	return Reference{Stream: t.Config.Name, Model: model, Version: version,
		Name: "no reference handed over for " + v + ": " + t.Engine.Fallback()}
}

func maxModels(sc *config.Stream) int {
	if sc.Limits.MaxModels > 0 {
		return sc.Limits.MaxModels
	}
	return config.DefaultMaxModels
}
