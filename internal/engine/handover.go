package engine

// References handed over per model version (issue 22): the pipeline that trained a
// version hands over its training data's profile (`driftmon baseline`), by the API or
// as a file named by reference.per_version, and the version's windows are judged
// against it instead of the stream's configured reference (its fallback: a baseline,
// a warm-up, trailing or seasonal).
//
// The engine holds the handed-over references of its stream, for versions seen or not
// yet seen, and judges each version against its own. It stores nothing: the caller
// keeps each reference once, as the record Handover.Encode returns (in the state
// file, or in a cluster in the cluster topic), gives the engine the records it holds
// (SyncHandovers) before restoring a checkpoint and whenever they change, and stores
// the references the engine read from files (NewlyRead). A checkpoint says of each
// model only that its reference was handed over, not the profile.
//
// A reference handed over while a version's warm-up is in progress replaces it; one
// withdrawn makes the version fall back: to the baseline, to a warm-up that starts
// with its next window, or to its trailing or seasonal history, which is not extended
// while a handed-over reference judges the version.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/internal/wire"
	"github.com/driftmon/driftmon/sketch"
)

// ViaAPI is Handover.Via of a reference handed over through the HTTP API.
const ViaAPI = "PUT"

// ErrNotProfile is wrapped when bytes handed over are not a profile that `driftmon
// baseline` wrote.
var ErrNotProfile = errors.New("not a driftmon profile (write one with `driftmon baseline`)")

// ErrProfileFields is wrapped when a profile's features are not the stream's.
var ErrProfileFields = errors.New("profile does not match the stream's fields")

// Handover is a reference profile handed over for one model version.
type Handover struct {
	Model, Version string
	// Via is how it came: ViaAPI, or the path of the reference.per_version file it
	// was read from.
	Via string
	// At is when it was handed over: the API call, or the file's modification time.
	At      time.Time
	Profile *sketch.Profile
	// record is the encoding (Encode), whose profile bytes are those handed over.
	record []byte
}

// Handover record layout: magic "DMHO" | version 1 | model | version | via | at (varint
// Unix ns) | the profile's bytes, as handed over (sketch.Profile.MarshalBinary, which
// carry their own magic, version and checksum).
const (
	handoverMagic   = "DMHO"
	handoverVersion = 1
)

// NewHandover checks that profile (the bytes of a profile file) decodes and has
// exactly fields, and returns it as the handover of (model, version). Its errors wrap
// ErrNotProfile or ErrProfileFields.
func NewHandover(model, version, via string, at time.Time, profile []byte, fields []sketch.Field) (*Handover, error) {
	b := append([]byte(handoverMagic), handoverVersion)
	b = wire.AppendString(b, model)
	b = wire.AppendString(b, version)
	b = wire.AppendString(b, via)
	b = binary.AppendVarint(b, at.UnixNano())
	return DecodeHandover(append(b, profile...), fields)
}

// DecodeHandover reads a record that Encode wrote, whose profile must have exactly
// fields.
func DecodeHandover(record []byte, fields []sketch.Field) (*Handover, error) {
	h, rest, err := readHandoverHeader(record)
	if err != nil {
		return nil, err
	}
	var p sketch.Profile
	if err := p.UnmarshalBinary(rest); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotProfile, err)
	}
	if err := CheckReference(&p, fields); err != nil {
		return nil, err
	}
	h.Profile, h.record = &p, record
	return h, nil
}

// readHandoverHeader reads a record's header: the handover without its profile, and
// the profile's bytes.
func readHandoverHeader(record []byte) (*Handover, []byte, error) {
	if len(record) < len(handoverMagic)+1 || string(record[:len(handoverMagic)]) != handoverMagic {
		return nil, nil, errors.New("decode handed-over reference: bad magic")
	}
	if v := record[len(handoverMagic)]; v != handoverVersion {
		return nil, nil, fmt.Errorf("decode handed-over reference: unsupported version %d (this driftmon writes %d)", v, handoverVersion)
	}
	d := wire.NewReader(record[len(handoverMagic)+1:])
	h := &Handover{Model: d.String(), Version: d.String(), Via: d.String(), At: time.Unix(0, d.Varint()).UTC()}
	if d.Err() != nil {
		return nil, nil, fmt.Errorf("decode handed-over reference: %w", d.Err())
	}
	return h, d.B, nil
}

// Encode returns the record to store: what DecodeHandover reads. Do not modify it.
func (h *Handover) Encode() []byte { return h.record }

// Name describes the reference in results and alerts: "handed over for v2 by PUT at
// 2026-12-05T10:00Z: 50,000 rows".
func (h *Handover) Name() string {
	via := "by " + h.Via
	if h.Via != ViaAPI {
		via = "in " + h.Via
	}
	return fmt.Sprintf("handed over for %s %s at %s: %s rows", versionName(h.Model, h.Version), via,
		h.At.UTC().Format("2006-01-02T15:04Z"), alerting.FormatCount(h.Profile.Rows))
}

// versionName is how a result names a model version: the version, or for a model
// without versions the model.
func versionName(model, version string) string {
	if version == "" {
		return model
	}
	return version
}

// same reports whether h is the handover that record holds, from its header alone: a
// caller gives the engine every stored record on every change, and decoding each
// profile again would cost a profile's decoding per record.
func (h *Handover) same(hdr *Handover, size int) bool {
	return h.Via == hdr.Via && h.At.Equal(hdr.At) && len(h.record) == size
}

// HandOver makes h the reference of its (model, version) from the next window on,
// replacing a warm-up in progress; h's fields must be the stream's (DecodeHandover
// checks them).
func (e *Engine) HandOver(h *Handover) {
	if e.partial {
		return
	}
	key := modelKey{h.Model, h.Version}
	if e.refs.handed == nil {
		e.refs.handed = map[modelKey]*Handover{}
	}
	e.refs.handed[key] = h
	if m := e.models[key]; m != nil {
		e.useHandover(m, h)
	}
	e.log.Info("the version is judged against the reference handed over for it", "model", h.Model, "version", h.Version,
		"via", h.Via, "rows", h.Profile.Rows)
}

// Withdraw drops the reference handed over for (model, version), if any: the version
// falls back to the stream's configured reference.
func (e *Engine) Withdraw(model, version string) {
	key := modelKey{model, version}
	if _, ok := e.refs.handed[key]; !ok {
		return
	}
	delete(e.refs.handed, key)
	if m := e.models[key]; m != nil {
		e.fallBack(m)
	}
	e.log.Info("handed-over reference withdrawn: falling back", "model", model, "version", version, "reference", e.Fallback())
}

// SyncHandovers makes the stored records (Encode) the engine's handed-over references:
// new and changed ones are handed over, and versions whose record is gone fall back,
// except those read from files since NewlyRead was last called (not stored yet). A
// record that does not decode, or whose profile is not the stream's, is left out and
// reported; the others are applied.
func (e *Engine) SyncHandovers(records [][]byte) error {
	if e.partial {
		return nil
	}
	var errs []error
	seen := make(map[modelKey]bool, len(records))
	for _, rec := range records {
		hdr, _, err := readHandoverHeader(rec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := modelKey{hdr.Model, hdr.Version}
		seen[key] = true
		if h := e.refs.handed[key]; h != nil && h.same(hdr, len(rec)) {
			continue
		}
		h, err := DecodeHandover(rec, e.fields)
		if err != nil {
			errs = append(errs, fmt.Errorf("reference handed over for model %s version %s: %w", hdr.Model, hdr.Version, err))
			continue
		}
		e.HandOver(h)
	}
	for key := range e.refs.handed {
		if !seen[key] && !e.unsaved(key) {
			e.Withdraw(key.model, key.version)
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) unsaved(key modelKey) bool {
	for _, h := range e.refs.read {
		if h.Model == key.model && h.Version == key.version {
			return true
		}
	}
	return false
}

// NewlyRead returns the references read from reference.per_version files since the
// last call, for the caller to store (Encode) before it next calls SyncHandovers: a
// restart, or a new leader, then judges the version against what this engine read,
// whatever became of the file.
func (e *Engine) NewlyRead() []*Handover {
	read := e.refs.read
	e.refs.read = nil
	return read
}

// HandedOver returns the reference handed over for (model, version), or nil.
func (e *Engine) HandedOver(model, version string) *Handover {
	return e.refs.handed[modelKey{model, version}]
}

// useHandover makes h m's reference.
func (e *Engine) useHandover(m *model, h *Handover) {
	m.handed = h
	m.ref, m.refName, m.fromWarmup = h.Profile, h.Name(), false
	m.warmup, m.warmupLeft = nil, 0
}

// fallBack makes m's reference the stream's configured one again, after its handed-over
// reference was withdrawn. Its traffic was flowing already, so a warm-up starts with
// its next window (none is partial); a trailing or seasonal history goes on from where
// it stopped.
func (e *Engine) fallBack(m *model) {
	m.handed = nil
	m.ref, m.refName, m.fromWarmup, m.warmup, m.warmupLeft = nil, "", false, nil, 0
	switch {
	case e.refs.rolling != nil:
	case e.refs.baseline != nil:
		m.ref, m.refName = e.refs.baseline, e.refs.baselineName
	default:
		m.warmupLeft = e.cfg.Reference.WarmupWindows
	}
}

// takesHandovers reports whether the stream's versions may have references of their
// own: then a result judged against the fallback says that none was handed over.
func (e *Engine) takesHandovers() bool { return e.refs.perVersion != "" || len(e.refs.handed) > 0 }

// Fallback describes what a version without a handed-over reference is judged
// against: "warm-up: the first 3 windows of each version". It reads only the config,
// so any goroutine may call it.
func (e *Engine) Fallback() string {
	r := e.cfg.Reference
	switch {
	case e.refs.baselineName != "":
		return e.refs.baselineName
	case r.Trailing != nil:
		return fmt.Sprintf("trailing: the version's last %d judged windows", r.Trailing.Windows)
	case r.Seasonal != nil:
		return fmt.Sprintf("seasonal: the version's windows at the same phase of each %s, last %d cycles", r.Seasonal.Period, r.Seasonal.Cycles)
	case r.WarmupWindows == 1:
		return "warm-up: the version's first whole window"
	}
	return fmt.Sprintf("warm-up: the version's first %d whole windows", r.WarmupWindows)
}

// readHandover reads the reference.per_version file of (model, version), or returns
// nil when there is none (the version falls back) or it cannot be used, which is
// logged: a version must not go unjudged because of a bad file.
func (e *Engine) readHandover(model, version string) *Handover {
	if e.refs.perVersion == "" || e.partial {
		return nil
	}
	log := e.log.With("model", model, "version", version)
	path, ok := expandPerVersion(e.refs.perVersion, model, version)
	if !ok {
		log.Warn("reference.per_version: the model or version is not a safe file name; falling back", "reference", e.Fallback())
		return nil
	}
	info, err := os.Stat(path)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no reference file for the version: falling back", "path", path, "reference", e.Fallback())
		return nil
	}
	var h *Handover
	if err == nil {
		h, err = NewHandover(model, version, path, info.ModTime(), data, e.fields)
	}
	if err != nil {
		log.Error("cannot use the version's reference file: falling back", "path", path, "err", err, "reference", e.Fallback())
		return nil
	}
	e.refs.read = append(e.refs.read, h)
	if e.refs.handed == nil {
		e.refs.handed = map[modelKey]*Handover{}
	}
	e.refs.handed[modelKey{model, version}] = h
	log.Info("reference read from file", "path", path, "rows", h.Profile.Rows)
	return h
}

// expandPerVersion fills the template's {model} and {version} in, and reports false
// when a value used is not a safe file name: model and version come from the data,
// and must not lead the monitor to read another directory's files.
func expandPerVersion(template, model, version string) (string, bool) {
	for _, v := range []struct{ placeholder, value string }{{"{model}", model}, {"{version}", version}} {
		if !strings.Contains(template, v.placeholder) {
			continue
		}
		if v.value == "" || v.value == "." || v.value == ".." || strings.ContainsAny(v.value, "/\\\x00") {
			return "", false
		}
	}
	return strings.NewReplacer("{model}", model, "{version}", version).Replace(template), true
}
