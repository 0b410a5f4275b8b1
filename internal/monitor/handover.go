package monitor

// References handed over per model version by the pipeline that trained it (the engine's
// handover.go says how they judge). Each is kept once, as an engine.Handover record:
//
//   - one process: in the state file's references bucket (or, without a state file, in
//     the outbox's scratch file, forgotten at exit), written by the API in a
//     transaction of its own; the stream gives its engine the bucket's records when it
//     starts, before it restores its checkpoint, and at its next step after a change;
//   - a cluster: in the cluster topic (cluster.Log.PutReference), whichever process the
//     API call reaches; the leader's judge reads them there before every pass.
//
// A reference the engine reads from a reference.per_version file is stored the same way,
// by the stream (or the leader) that read it, so that a restart and a new leader judge
// the version against what was read, whatever became of the file.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// referencesBucket holds the references handed over per model version (engine.Handover
// records) under "<stream>/<model>/<version>", each part path-escaped.
const referencesBucket = "references"

func referencesOf(stream string) string { return url.PathEscape(stream) + "/" }

func referenceKey(stream, model, version string) string {
	return referencesOf(stream) + url.PathEscape(model) + "/" + url.PathEscape(version)
}

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

// handovers is where the running monitor keeps handed-over references: a state file,
// or a cluster topic.
type handovers interface {
	get(stream, model, version string) ([]byte, error)
	count(stream string) (int, error)
	put(ctx context.Context, stream, model, version string, record []byte) error
	// remove deletes the record and reports whether there was one.
	remove(ctx context.Context, stream, model, version string) (bool, error)
}

// storeHandovers keeps them in a state file.
type storeHandovers struct{ st *state.Store }

func (s storeHandovers) get(stream, model, version string) ([]byte, error) {
	var rec []byte
	err := s.st.View(func(tx *state.Tx) error {
		rec = clone(tx.Get(referencesBucket, referenceKey(stream, model, version)))
		return nil
	})
	return rec, err
}

func (s storeHandovers) count(stream string) (int, error) {
	n := 0
	err := s.st.View(func(tx *state.Tx) error {
		forReferences(tx, stream, func([]byte) { n++ })
		return nil
	})
	return n, err
}

// listReferences returns the records of stream's references in tx.
func listReferences(tx *state.Tx, stream string) [][]byte {
	var out [][]byte
	forReferences(tx, stream, func(v []byte) { out = append(out, clone(v)) })
	return out
}

// forReferences calls fn with each record of stream's references in tx, valid during
// the call only.
func forReferences(tx *state.Tx, stream string, fn func(record []byte)) {
	prefix := referencesOf(stream)
	errDone := errors.New("past the stream's keys")
	_ = tx.ForEach(referencesBucket, prefix, func(key string, v []byte) error {
		if !strings.HasPrefix(key, prefix) {
			return errDone
		}
		fn(v)
		return nil
	})
}

func (s storeHandovers) put(_ context.Context, stream, model, version string, record []byte) error {
	return s.st.Update(func(tx *state.Tx) error {
		return tx.Put(referencesBucket, referenceKey(stream, model, version), record)
	})
}

func (s storeHandovers) remove(_ context.Context, stream, model, version string) (bool, error) {
	found := false
	err := s.st.Update(func(tx *state.Tx) error {
		key := referenceKey(stream, model, version)
		if found = tx.Get(referencesBucket, key) != nil; !found {
			return nil
		}
		return tx.Delete(referencesBucket, key)
	})
	return found, err
}

// logHandovers keeps them in a cluster topic.
type logHandovers struct{ lg *cluster.Log }

func (l logHandovers) get(stream, model, version string) ([]byte, error) {
	rec, _ := l.lg.Reference(stream, model, version)
	return rec, nil
}

func (l logHandovers) count(stream string) (int, error) { return len(l.lg.References(stream)), nil }

func (l logHandovers) put(ctx context.Context, stream, model, version string, record []byte) error {
	return l.lg.PutReference(ctx, stream, model, version, record)
}

func (l logHandovers) remove(ctx context.Context, stream, model, version string) (bool, error) {
	if _, ok := l.lg.Reference(stream, model, version); !ok {
		return false, nil
	}
	return true, l.lg.DeleteReference(ctx, stream, model, version)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// target is a stream as the reference calls see it: its config and an engine whose
// fields and fallback they read (both fixed once New returns), and, in one process, the
// stream to tell of a change.
type target struct {
	cfg    *config.Stream
	engine *engine.Engine
	stream *stream
}

// target finds the stream called name; "" names the only one.
func (m *Monitor) target(name string) (target, error) {
	var all []target
	for _, s := range m.streams {
		all = append(all, target{s.cfg, s.engine, s})
	}
	for _, w := range m.workers {
		all = append(all, target{cfg: w.cfg, engine: w.proto})
	}
	names := make([]string, len(all))
	for i, t := range all {
		if t.cfg.Name == name || name == "" && len(all) == 1 {
			return t, nil
		}
		names[i] = t.cfg.Name
	}
	if name == "" {
		return target{}, fmt.Errorf("%w: the config has streams %s", ErrStreamRequired, strings.Join(names, ", "))
	}
	return target{}, fmt.Errorf("%w %q: the config has streams %s", ErrUnknownStream, name, strings.Join(names, ", "))
}

// referenceStore returns where references are kept while the monitor runs.
func (m *Monitor) referenceStore() (handovers, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.handovers == nil {
		return nil, fmt.Errorf("%w: it keeps handed-over references once it has opened its state", ErrNotRunning)
	}
	return m.handovers, nil
}

// HandOver makes profile — the bytes of a profile file, as `driftmon baseline` writes
// them — the reference of (model, version) of stream ("" when the config has one), and
// returns once it is durable: in the state file, or in a cluster in the cluster topic.
// The stream (in a cluster, the leader) judges the version's next windows against it,
// replacing a warm-up in progress.
func (m *Monitor) HandOver(ctx context.Context, stream, model, version string, profile []byte) (Reference, error) {
	t, err := m.target(stream)
	if err != nil {
		return Reference{}, err
	}
	h, err := engine.NewHandover(model, version, engine.ViaAPI, time.Now(), profile, t.engine.Fields())
	if err != nil {
		return Reference{}, err
	}
	hs, err := m.referenceStore()
	if err != nil {
		return Reference{}, err
	}
	held, err := hs.count(t.cfg.Name)
	if err != nil {
		return Reference{}, err
	}
	old, err := hs.get(t.cfg.Name, model, version)
	if err != nil {
		return Reference{}, err
	}
	// A version that never appears keeps its reference until it is deleted: bounded
	// like the versions themselves.
	if limit := maxModels(t.cfg); old == nil && held >= limit {
		return Reference{}, fmt.Errorf("%w: stream %s holds %d, its limits.max_models; DELETE those of versions no longer served",
			ErrTooManyReferences, t.cfg.Name, held)
	}
	if err := hs.put(ctx, t.cfg.Name, model, version, h.Encode()); err != nil {
		return Reference{}, fmt.Errorf("cannot store the reference of model %s version %s: %w", model, version, err)
	}
	if t.stream != nil {
		t.stream.handoversChanged.Store(true)
	}
	m.log.Info("reference handed over", "stream", t.cfg.Name, "model", model, "version", version, "rows", h.Profile.Rows)
	return Reference{Stream: t.cfg.Name, Model: model, Version: version, Handover: h, Name: h.Name()}, nil
}

// Reference says what (model, version) of stream is judged against: the reference
// handed over for it, or the stream's fallback.
func (m *Monitor) Reference(stream, model, version string) (Reference, error) {
	t, err := m.target(stream)
	if err != nil {
		return Reference{}, err
	}
	hs, err := m.referenceStore()
	if err != nil {
		return Reference{}, err
	}
	rec, err := hs.get(t.cfg.Name, model, version)
	if err != nil || rec == nil {
		return fallback(t, model, version), err
	}
	h, err := engine.DecodeHandover(rec, t.engine.Fields())
	if err != nil {
		return Reference{}, fmt.Errorf("the stored reference of model %s version %s cannot be used: %w", model, version, err)
	}
	return Reference{Stream: t.cfg.Name, Model: model, Version: version, Handover: h, Name: h.Name()}, nil
}

// Withdraw deletes the reference handed over for (model, version) of stream, durably:
// the version's next windows are judged against the stream's fallback, which it
// returns. ErrNoHandover when there was none.
func (m *Monitor) Withdraw(ctx context.Context, stream, model, version string) (Reference, error) {
	t, err := m.target(stream)
	if err != nil {
		return Reference{}, err
	}
	hs, err := m.referenceStore()
	if err != nil {
		return Reference{}, err
	}
	found, err := hs.remove(ctx, t.cfg.Name, model, version)
	switch {
	case err != nil:
		return Reference{}, fmt.Errorf("cannot delete the reference of model %s version %s: %w", model, version, err)
	case !found:
		return Reference{}, fmt.Errorf("%w: model %s version %s of stream %s", ErrNoHandover, model, version, t.cfg.Name)
	}
	if t.stream != nil {
		t.stream.handoversChanged.Store(true)
	}
	m.log.Info("handed-over reference deleted", "stream", t.cfg.Name, "model", model, "version", version)
	return fallback(t, model, version), nil
}

func fallback(t target, model, version string) Reference {
	v := version
	if v == "" {
		v = model
	}
	return Reference{Stream: t.cfg.Name, Model: model, Version: version,
		Name: "no reference handed over for " + v + ": " + t.engine.Fallback()}
}

func maxModels(sc *config.Stream) int {
	if sc.Limits.MaxModels > 0 {
		return sc.Limits.MaxModels
	}
	return config.DefaultMaxModels
}

// syncHandovers gives the stream's engine the references its store holds now; one that
// cannot be used is logged, and its version falls back.
func (s *stream) syncHandovers() error {
	var recs [][]byte
	if err := s.alertStore.View(func(tx *state.Tx) error { recs = listReferences(tx, s.cfg.Name); return nil }); err != nil {
		return fmt.Errorf("cannot read the handed-over references: %w", err)
	}
	if err := s.engine.SyncHandovers(recs); err != nil {
		s.log.Error("a handed-over reference in the state cannot be used; its version falls back", "err", err)
	}
	return nil
}

// storeRead stores the references the engine read from reference.per_version files,
// unless one was handed over by the API for the same version meanwhile (the engine
// takes that one at the next sync).
func (s *stream) storeRead() error {
	read := s.engine.NewlyRead()
	if len(read) == 0 {
		return nil
	}
	err := s.alertStore.Update(func(tx *state.Tx) error {
		for _, h := range read {
			key := referenceKey(s.cfg.Name, h.Model, h.Version)
			if tx.Get(referencesBucket, key) != nil {
				s.handoversChanged.Store(true)
				continue
			}
			if err := tx.Put(referencesBucket, key, h.Encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot store the references read from files: %w", err)
	}
	return nil
}
