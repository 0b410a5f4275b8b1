package engine

// Checkpoints: exactly-once window results for one monitor (DESIGN §6).
//
// A stream writes a checkpoint every state.checkpoint_records records or
// state.checkpoint_interval, whichever comes first, and when it stops. One bbolt
// transaction holds everything that must agree: the open windows' profiles and window
// trackers, the warm-up reference or a trailing or seasonal reference's kept windows
// (history.go), the event-time clock (each partition's newest event time, the
// watermark), each partition's next offset, the stream's counters, and whatever the
// monitor writes beside them (alert state, the webhook outbox). Offsets are committed
// to Kafka only after the transaction, for lag tools; on start the stream restores its
// checkpoint and the source reads each partition from the offset stored with it, so
// every event is in the windows exactly once.
//
// After a crash (kill -9) the windows closed between the last checkpoint and the crash
// close again after the restart — the same windows with the same rows — and their
// results are reported a second time. That is harmless downstream: alert ids are stable
// (alerting.AlertID), so Slack updates and webhook receivers deduplicate them.
//
// Digest-mode numeric sketches (more than sketch.Options.MaxExact distinct values) are
// compacted when encoded, so their scores depend on where checkpoints fell, within the
// sketch's error (~1e-3 in KS D). To keep what the monitor holds in memory identical to
// what a restart would load, each checkpoint reloads the engine from the bytes it wrote.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"time"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/window"
	"github.com/driftmon/driftmon/internal/wire"
	"github.com/driftmon/driftmon/sketch"
)

// Checkpoint layout. Integers are varints (uvarint unless said otherwise), strings and
// blobs a uvarint length then the bytes, profiles sketch.Profile.MarshalBinary blobs.
//
//	magic "DMCK" | version (1 byte) | CRC-32C of the sections (4 bytes, little-endian)
//	| sections, each: tag (1 byte) | length | body
//
//	1 stream    name | window size (varint ns) | window rows | n × (field name, kind byte)
//	2 offsets   n × (partition, next offset varint)
//	3 counters  events | lost | n × (reason, count)
//	4 clock     watermark varint | closed-to varint | n × (partition, newest event time varint)
//	5 model     (one per model) name | version | late | closed-to varint
//	            | current window: flag byte [, min time varint, max time varint, profile]
//	            | n × open window profile
//	            | reference: kind byte (refBaseline, refWarmingUp, refWarmedUp, refRolling,
//	              refHandedOver)
//	              | warm-up windows left | [profile] | reference name
//	            | (version 2) history: n × (start varint, end varint, left out, profile)
//	              | left out since the newest
//	            | (version 3) history: n × (start varint, end varint, left out,
//	              SHA-256 of the profile, 32 bytes) | left out since the newest
//
// Sections come in this order; an unknown tag is an error (a new layout gets a new
// version). Version 1, written before trailing and seasonal references, has no
// history in its model sections; version 2 holds the kept windows' profiles itself;
// both still decode. Version 3 names each kept window by its digest: the profiles are
// stored beside the checkpoint, once each (Engine.Kept), and DecodeCheckpoint is given
// a lookup for them. Version 4 is version 3 with models whose reference was handed over
// (refHandedOver): the reference itself is stored by the caller, once (handover.go),
// and given to the engine before it restores.
const (
	checkpointMagic   = "DMCK"
	checkpointVersion = 4
	checkpointHeader  = len(checkpointMagic) + 1 + 4
)

const (
	secStream byte = iota + 1
	secOffsets
	secCounters
	secClock
	secModel
)

// Reference kinds of a checkpointed model.
const (
	refBaseline   byte = iota // the configured baseline: not stored, loaded from its file
	refWarmingUp              // warm-up in progress: the windows merged so far
	refWarmedUp               // built by the warm-up
	refRolling                // trailing or seasonal: the model's history
	refHandedOver             // handed over for the version (version 4): not stored here
)

// ErrCorruptCheckpoint is wrapped by every error about bytes that are not a valid
// checkpoint.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// ErrIncompatibleCheckpoint is wrapped when a checkpoint was written for another
// window or other fields than the stream now has.
var ErrIncompatibleCheckpoint = errors.New("checkpoint does not match the stream's config")

// Position is how far a stream (or, in a cluster, one partition) has read, kept in its
// checkpoint beside the engine's windows so that both always agree.
type Position struct {
	// Next is each partition's next offset to read.
	Next map[int]int64
	// Events counts decoded rows, Lost the messages lost to retention, Rejected the
	// messages that could not be decoded, by reason.
	Events, Lost int64
	Rejected     map[ingest.Reason]int64
}

func NewPosition() *Position {
	return &Position{Next: map[int]int64{}, Rejected: map[ingest.Reason]int64{}}
}

// Count adds to p what one decoded record brought: its rows, less those the engine
// refused, as events; the messages that did not decode and the refused rows, by reason.
func (p *Position) Count(rows int64, rejected []ingest.Rejected, refused []Refusal) {
	p.Events += rows - int64(len(refused))
	for _, r := range rejected {
		p.Rejected[r.Reason]++
	}
	for _, f := range refused {
		p.Rejected[f.Reason]++
	}
}

// Seen returns the messages read so far and, of them, those that came late (late, the
// engine's count) or were refused or rejected: what tells whether a stream can see.
func (p *Position) Seen(late int64) (total, bad int64) {
	for _, n := range p.Rejected {
		bad += n
	}
	return p.Events + bad, bad + late
}

// EncodeCheckpoint returns the checkpoint of e and pos. It may compact the profiles'
// internal buffers (sketch.Profile.MarshalBinary).
func EncodeCheckpoint(e *Engine, pos *Position) ([]byte, error) {
	b := make([]byte, checkpointHeader, 4096)
	copy(b, checkpointMagic)
	// The oldest version that holds what e has: a build from before trailing and
	// seasonal references still reads the checkpoints and cluster records of streams
	// without one, so the processes of a cluster can be upgraded one at a time.
	version := byte(1)
	if e.refs.rolling != nil {
		version = 3
	}
	for _, m := range e.order {
		if m.handed != nil {
			version = checkpointVersion
			break
		}
	}
	b[len(checkpointMagic)] = version
	body := make([]byte, 0, 4096)
	section := func() { body = body[:0] }
	end := func(tag byte) {
		b = append(b, tag)
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}

	section()
	body = wire.AppendString(body, e.cfg.Name)
	body = binary.AppendVarint(body, int64(e.window.Size))
	body = binary.AppendUvarint(body, uint64(max(e.window.Rows, 0)))
	body = binary.AppendUvarint(body, uint64(len(e.fields)))
	for _, f := range e.fields {
		body = wire.AppendString(body, f.Name)
		body = append(body, byte(f.Kind))
	}
	end(secStream)

	section()
	parts := make([]int, 0, len(pos.Next))
	for p := range pos.Next {
		parts = append(parts, p)
	}
	sort.Ints(parts)
	body = binary.AppendUvarint(body, uint64(len(parts)))
	for _, p := range parts {
		body = binary.AppendUvarint(body, uint64(p))
		body = binary.AppendVarint(body, pos.Next[p])
	}
	end(secOffsets)

	section()
	body = binary.AppendUvarint(body, uint64(pos.Events))
	body = binary.AppendUvarint(body, uint64(pos.Lost))
	reasons := make([]string, 0, len(pos.Rejected))
	for r := range pos.Rejected {
		reasons = append(reasons, string(r))
	}
	sort.Strings(reasons)
	body = binary.AppendUvarint(body, uint64(len(reasons)))
	for _, r := range reasons {
		body = wire.AppendString(body, r)
		body = binary.AppendUvarint(body, uint64(pos.Rejected[ingest.Reason(r)]))
	}
	end(secCounters)

	section()
	cs := e.clock.State()
	body = binary.AppendVarint(body, cs.Watermark)
	body = binary.AppendVarint(body, cs.ClosedTo)
	body = binary.AppendUvarint(body, uint64(len(cs.Partitions)))
	for _, p := range cs.Partitions {
		body = binary.AppendUvarint(body, uint64(p.Partition))
		body = binary.AppendVarint(body, p.Newest)
	}
	end(secClock)

	var err error
	for _, m := range e.order {
		section()
		if body, err = appendModel(body, m, version); err != nil {
			return nil, fmt.Errorf("cannot encode checkpoint of model %s %s: %w", m.key.model, m.key.version, err)
		}
		end(secModel)
	}
	binary.LittleEndian.PutUint32(b[len(checkpointMagic)+1:], crc32.Checksum(b[checkpointHeader:], castagnoli))
	return b, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendModel(b []byte, m *model, version byte) ([]byte, error) {
	b = wire.AppendString(b, m.key.model)
	b = wire.AppendString(b, m.key.version)
	ts := m.windows.State()
	b = binary.AppendUvarint(b, uint64(ts.Late))
	b = binary.AppendVarint(b, ts.ClosedTo)
	var err error
	if ts.Current == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, ts.CurrentMin)
		b = binary.AppendVarint(b, ts.CurrentMax)
		if b, err = appendProfile(b, ts.Current); err != nil {
			return nil, err
		}
	}
	b = binary.AppendUvarint(b, uint64(len(ts.Open)))
	for _, p := range ts.Open {
		if b, err = appendProfile(b, p); err != nil {
			return nil, err
		}
	}
	switch {
	case m.handed != nil:
		b = append(b, refHandedOver)
		b = binary.AppendUvarint(b, 0)
		b = append(b, 0)
	case m.ref == nil && m.history == nil:
		b = append(b, refWarmingUp)
		b = binary.AppendUvarint(b, uint64(max(m.warmupLeft, 0)))
		if m.warmup == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			if b, err = appendProfile(b, m.warmup); err != nil {
				return nil, err
			}
		}
	case m.fromWarmup:
		b = append(b, refWarmedUp)
		b = binary.AppendUvarint(b, 0)
		b = append(b, 1)
		if b, err = appendProfile(b, m.ref); err != nil {
			return nil, err
		}
	case m.history != nil:
		b = append(b, refRolling)
		b = binary.AppendUvarint(b, uint64(max(m.warmupLeft, 0)))
		b = append(b, 0)
	default:
		b = append(b, refBaseline)
		b = binary.AppendUvarint(b, 0)
		b = append(b, 0)
	}
	b = wire.AppendString(b, m.refName)
	if version < 2 {
		return b, nil
	}
	var h history
	if m.history != nil {
		h = *m.history
	}
	b = binary.AppendUvarint(b, uint64(len(h.windows)))
	for _, w := range h.windows {
		b = binary.AppendVarint(b, w.start)
		b = binary.AppendVarint(b, w.end)
		b = binary.AppendUvarint(b, uint64(w.leftOut))
		b = append(b, w.digest[:]...)
	}
	return binary.AppendUvarint(b, uint64(h.leftOut)), nil
}

func appendProfile(b []byte, p *sketch.Profile) ([]byte, error) {
	data, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.AppendBlob(b, data), nil
}

// restoredModel is a model decoded from a checkpoint, applied only once all of it has
// decoded.
type restoredModel struct {
	key        modelKey
	tracker    window.TrackerState
	refKind    byte
	warmupLeft int
	refProfile *sketch.Profile
	refName    string
	history    history
}

// Checkpoint is a decoded checkpoint, ready for Engine.Restore.
type Checkpoint struct {
	// Pos is how far the stream had read.
	Pos    *Position
	clock  window.ClockState
	models []restoredModel
}

// Models is how many models the checkpoint holds.
func (cp *Checkpoint) Models() int { return len(cp.models) }

// OpenWindows is how many windows the checkpoint holds open, over all models.
func (cp *Checkpoint) OpenWindows() int {
	open := 0
	for _, m := range cp.models {
		open += len(m.tracker.Open)
		if m.tracker.Current != nil {
			open++
		}
	}
	return open
}

// DecodeCheckpoint reads a checkpoint written by EncodeCheckpoint and checks that it
// fits e's stream. It changes nothing.
func DecodeCheckpoint(data []byte, e *Engine, kept KeptLookup) (*Checkpoint, error) {
	if len(data) < checkpointHeader || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, fmt.Errorf("decode checkpoint: bad magic: %w", ErrCorruptCheckpoint)
	}
	version := data[len(checkpointMagic)]
	if version < 1 || version > checkpointVersion {
		return nil, fmt.Errorf("decode checkpoint: unsupported version %d (this driftmon writes %d): %w", version, checkpointVersion, ErrCorruptCheckpoint)
	}
	if crc32.Checksum(data[checkpointHeader:], castagnoli) != binary.LittleEndian.Uint32(data[len(checkpointMagic)+1:]) {
		return nil, fmt.Errorf("decode checkpoint: checksum mismatch: %w", ErrCorruptCheckpoint)
	}
	pos := NewPosition()
	var clock window.ClockState
	var models []restoredModel
	d := wire.NewReader(data[checkpointHeader:])
	want := secStream
	for len(d.B) > 0 && d.Err() == nil {
		tag := d.Byte()
		body := d.Blob()
		if d.Err() != nil {
			break
		}
		if tag != want && !(tag == secModel && want > secModel) {
			d.Fail("section %d where section %d was expected", tag, want)
			break
		}
		want = min(tag+1, secModel+1)
		s := wire.NewReader(body)
		switch tag {
		case secStream:
			if err := checkStream(s, e); err != nil {
				return nil, err
			}
		case secOffsets:
			for n := s.Length(2); n > 0 && s.Err() == nil; n-- {
				p := s.Partition()
				pos.Next[int(p)] = s.Varint()
			}
		case secCounters:
			pos.Events, pos.Lost = s.Count(), s.Count()
			for n := s.Length(2); n > 0 && s.Err() == nil; n-- {
				r := ingest.Reason(s.String())
				pos.Rejected[r] = s.Count()
			}
		case secClock:
			clock.Watermark, clock.ClosedTo = s.Varint(), s.Varint()
			for n := s.Length(2); n > 0 && s.Err() == nil; n-- {
				clock.Partitions = append(clock.Partitions, window.PartitionTime{Partition: s.Partition(), Newest: s.Varint()})
			}
		case secModel:
			models = append(models, readModel(s, e, version, kept))
		}
		if s.Err() == nil && len(s.B) > 0 {
			s.Fail("%d trailing bytes", len(s.B))
		}
		if s.Err() != nil {
			d.Fail("section %d: %w", tag, s.Err())
		}
	}
	if d.Err() == nil && want <= secClock {
		d.Fail("truncated: section %d missing", want)
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("decode checkpoint: %w: %w", ErrCorruptCheckpoint, d.Err())
	}
	return &Checkpoint{Pos: pos, clock: clock, models: models}, nil
}

// checkStream reads the stream section and compares it with e's config: windows of
// another size or profiles of other fields cannot be continued.
func checkStream(s *wire.Reader, e *Engine) error {
	name := s.String()
	size := s.Varint()
	rows := s.Uvarint()
	var fields []sketch.Field
	for n := s.Length(2); n > 0 && s.Err() == nil; n-- {
		fields = append(fields, sketch.Field{Name: s.String(), Kind: sketch.Kind(s.Byte())})
	}
	if s.Err() != nil {
		return fmt.Errorf("decode checkpoint: %w: stream section: %w", ErrCorruptCheckpoint, s.Err())
	}
	var diffs []error
	if name != e.cfg.Name {
		diffs = append(diffs, fmt.Errorf("it belongs to stream %q", name))
	}
	if size != int64(e.window.Size) || rows != uint64(max(e.window.Rows, 0)) {
		was := fmt.Sprintf("%d rows", rows)
		if rows == 0 {
			was = time.Duration(size).String()
		}
		diffs = append(diffs, fmt.Errorf("its windows are %s", was))
	}
	same := len(fields) == len(e.fields)
	for i := 0; same && i < len(fields); i++ {
		same = fields[i] == e.fields[i]
	}
	if !same {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = fmt.Sprintf("%s (%s)", f.Name, f.Kind)
		}
		diffs = append(diffs, fmt.Errorf("its fields are %v", names))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w of stream %s: %w; keep the old config until the open windows have closed, or move the state file away to start afresh",
			ErrIncompatibleCheckpoint, e.cfg.Name, errors.Join(diffs...))
	}
	return nil
}

// model reads one model section of a checkpoint of the given version.
func readModel(d *wire.Reader, e *Engine, version byte, kept KeptLookup) restoredModel {
	var m restoredModel
	m.key = modelKey{d.String(), d.String()}
	m.tracker.Late = d.Count()
	m.tracker.ClosedTo = d.Varint()
	switch d.Byte() {
	case 0:
	case 1:
		m.tracker.CurrentMin, m.tracker.CurrentMax = d.Varint(), d.Varint()
		m.tracker.Current = readProfile(d, e)
	default:
		d.Fail("bad current-window flag")
	}
	for n := d.Length(1); n > 0 && d.Err() == nil; n-- {
		p := readProfile(d, e)
		if p != nil && e.window.Size > 0 && (p.Start.UnixNano()%int64(e.window.Size) != 0 || p.End.Sub(p.Start) != e.window.Size) {
			d.Fail("open window [%v, %v) is not on the %v grid", p.Start, p.End, e.window.Size)
		}
		m.tracker.Open = append(m.tracker.Open, p)
	}
	m.refKind = d.Byte()
	m.warmupLeft = int(min(d.Count(), math.MaxInt32))
	switch d.Byte() {
	case 0:
	case 1:
		m.refProfile = readProfile(d, e)
	default:
		d.Fail("bad reference flag")
	}
	m.refName = d.String()
	if version >= 2 {
		m.history = readHistory(d, e, m.key, version, kept)
	}
	switch {
	case d.Err() != nil:
	case m.refKind > refHandedOver || (m.refKind == refHandedOver && version < 4):
		d.Fail("bad reference kind %d", m.refKind)
	case m.refKind == refWarmedUp && m.refProfile == nil:
		d.Fail("warmed-up reference without a profile")
	}
	return m
}

// KeptLookup returns the encoded profile of the kept window under key (KeptWindow.Key),
// or nil when there is none. The bytes need only stay valid while DecodeCheckpoint
// runs: it copies what it keeps.
type KeptLookup func(key string) []byte

// readHistory reads a model's kept windows: from the checkpoint itself (version 2) or
// through kept (version 3). A window that e holds already, with the same digest, was
// checked when it was kept and is not decoded again: the monitor decodes every
// checkpoint it writes (engine/checkpoint.go says why), and a seasonal history of
// hundreds of windows would otherwise be decoded every few seconds.
func readHistory(d *wire.Reader, e *Engine, key modelKey, version byte, kept KeptLookup) history {
	var h history
	var held *history
	if m := e.models[key]; m != nil {
		held = m.history
	}
	for n := d.Length(3); n > 0 && d.Err() == nil; n-- {
		w := pastWindow{start: d.Varint(), end: d.Varint(), leftOut: int(min(d.Count(), math.MaxInt32))}
		var data []byte
		if version == 2 {
			data = d.Blob()
			w.digest = sha256.Sum256(data)
		} else {
			copy(w.digest[:], d.Bytes(sha256.Size))
		}
		if d.Err() != nil {
			break
		}
		// Kept windows are in the order they closed: by start for event-time
		// windows; count windows may share their first event time, or have none.
		if w.end < w.start {
			d.Fail("kept window ends (%d) before it starts (%d)", w.end, w.start)
			break
		}
		if w.data = held.held(w.digest); w.data == nil {
			if version > 2 {
				if kept != nil {
					data = kept(hex.EncodeToString(w.digest[:]))
				}
				if data == nil || sha256.Sum256(data) != w.digest {
					d.Fail("kept window at %v: its profile %x is missing from the state, or damaged", time.Unix(0, w.start).UTC(), w.digest[:8])
					break
				}
			}
			if _, err := e.decodeProfile(data); err != nil {
				d.Fail("kept window at %v: %w", time.Unix(0, w.start).UTC(), err)
				break
			}
			w.data = bytes.Clone(data) // not a slice of the whole checkpoint
		}
		h.windows = append(h.windows, w)
	}
	h.leftOut = int(min(d.Count(), math.MaxInt32))
	return h
}

// Restore replaces e's models, and its clock when withClock, with cp's; the references
// handed over are e's (SyncHandovers comes first). A stream
// restores with the clock when it starts; after writing a checkpoint it restores
// without, to go on from exactly what a restart would load.
func (e *Engine) Restore(cp *Checkpoint, withClock bool) {
	if withClock {
		e.repairFuture(cp)
		e.clock = window.RestoreClock(e.window, cp.clock, e.now())
	}
	e.models = map[modelKey]*model{}
	e.order = nil
	e.touched = e.touched[:0]
	for _, rm := range cp.models {
		m := &model{key: rm.key, windows: window.RestoreTracker(e.window, e.newProfile, rm.tracker)}
		switch {
		case e.refs.rolling != nil:
			m.history = &history{}
			switch {
			case rm.refKind == refRolling || rm.refKind == refHandedOver:
				*m.history = rm.history
				m.history.trim(e.refs.rolling) // the config may keep fewer windows now
				m.warmupLeft = rm.warmupLeft
			}
			// Otherwise the config changed to trailing or seasonal since the
			// checkpoint: the model's history starts with its next window.
		case e.refs.baseline != nil:
			// The config names a baseline (perhaps a new one): it is the reference.
			m.ref, m.refName = e.refs.baseline, e.refs.baselineName
		case rm.refKind == refHandedOver:
			// Withdrawn since, unless handed over below: a warm-up starts with the
			// next window (fallBack).
			m.warmupLeft = e.cfg.Reference.WarmupWindows
		case rm.refKind == refWarmedUp:
			m.ref, m.refName, m.fromWarmup = rm.refProfile, rm.refName, true
		case rm.refKind == refWarmingUp:
			m.warmup, m.warmupLeft = rm.refProfile, rm.warmupLeft
		default:
			// Checkpointed with a baseline that the config no longer names.
			m.warmupLeft = e.cfg.Reference.WarmupWindows
		}
		// The version's handed-over reference, as the caller stores it now: the one
		// the checkpoint was judged with, or one handed over since.
		if h := e.refs.handed[m.key]; h != nil {
			e.useHandover(m, h)
		}
		e.addModel(m)
	}
}

// profile reads a profile blob, which must have the engine's fields.
func readProfile(d *wire.Reader, e *Engine) *sketch.Profile {
	data := d.Blob()
	if d.Err() != nil {
		return nil
	}
	p, err := e.decodeProfile(data)
	if err != nil {
		d.Fail("%w", err)
		return nil
	}
	return p
}

// decodeProfile decodes a profile encoding, which must have the engine's fields.
func (e *Engine) decodeProfile(data []byte) (*sketch.Profile, error) {
	p := new(sketch.Profile)
	if err := p.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	fields := p.Fields()
	same := len(fields) == len(e.fields)
	for i := 0; same && i < len(fields); i++ {
		same = fields[i] == e.fields[i]
	}
	if !same {
		return nil, fmt.Errorf("a profile has fields %v, the stream %v", fields, e.fields)
	}
	return p, nil
}

// repairFuture mends a checkpoint written before event times were bounded (or with a
// larger limits.max_future): an event stamped years ahead had moved the clock there, so
// every later event counted as late and no window could close, restart or not. Event
// times past now + max_future are brought back to the start of the current window:
// the events between were counted late already and are behind the stored offsets, so
// no window before it can get rows again, and windows from it on close as usual. Open
// windows that start past the bound, which hold only the far-future rows, are dropped.
func (e *Engine) repairFuture(cp *Checkpoint) {
	now := e.now().UnixNano()
	bound := now + int64(e.limits.MaxFuture)
	to := now
	if e.window.Size > 0 {
		to = window.StartOf(now, int64(e.window.Size))
	}
	repaired, dropped := false, 0
	fix := func(v *int64) {
		if *v > bound {
			*v, repaired = to, true
		}
	}
	fix(&cp.clock.Watermark)
	fix(&cp.clock.ClosedTo)
	for i := range cp.clock.Partitions {
		fix(&cp.clock.Partitions[i].Newest)
	}
	for i := range cp.models {
		t := &cp.models[i].tracker
		fix(&t.ClosedTo)
		kept := t.Open[:0]
		for _, p := range t.Open {
			if p.Start.UnixNano() > bound {
				dropped++
				continue
			}
			kept = append(kept, p)
		}
		t.Open = kept
	}
	if repaired || dropped > 0 {
		e.log.Warn("the checkpoint's event time was beyond limits.max_future: brought back to the current window",
			"max_future", e.limits.MaxFuture, "now", time.Unix(0, now).UTC(), "from", time.Unix(0, to).UTC(),
			"open_windows_dropped", dropped)
	}
}
