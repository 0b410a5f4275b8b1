package cluster

// The records a cluster's processes write to its topic. Names are path-escaped, so
// "/" separates parts:
//
//	p/<stream>/<partition>                              a partition's record: its checkpoint
//	w/<stream>/<model>/<version>/<start>/<partition>    a partial: one partition's closed window
//	s/<bucket>/<key>                                    the leader's state (state.Store entries)
//	r/<stream>/<model>/<version>                        a reference handed over (references.go)

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/wire"
	"github.com/driftmon/driftmon/sketch"
)

// Keys in the cluster topic. Names are path-escaped, so "/" separates parts.
const (
	partitionPrefix = "p/"
	partialPrefix   = "w/"
	statePrefix     = "s/"
)

func partitionKey(stream string, p int32) string {
	return partitionPrefix + url.PathEscape(stream) + "/" + strconv.Itoa(int(p))
}

func partialsOf(stream string) string { return partialPrefix + url.PathEscape(stream) + "/" }

func partialKey(stream string, pt partial) string {
	return partialsOf(stream) + url.PathEscape(pt.model) + "/" + url.PathEscape(pt.version) + "/" +
		strconv.FormatInt(pt.start, 10) + "/" + strconv.Itoa(int(pt.partition))
}

// Record layouts, after a 4-byte magic and a version byte:
//
//	partition record "DMPR": flags (1 byte: 1 = idle, 2 = counters follow) | closed-to varint
//	                        | lost uvarint [| events uvarint | bad uvarint] | checkpoint
//	                        (engine.EncodeCheckpoint)
//	partial          "DMPW": model | version | start varint | partition uvarint | profile
const (
	partitionMagic = "DMPR"
	partialMagic   = "DMPW"
	clusterVersion = 1
)

// partitionRecord is a partition record; checkpoint is still encoded. Its header
// carries what the leader reads of every partition on every pass, so that it need not
// decode the checkpoints.
type partitionRecord struct {
	idle     bool
	closedTo int64
	// lost is the partition's messages deleted before they were read, for the
	// leader's data-loss alert.
	lost int64
	// events and bad are the partition's messages read and, of them, those that came
	// late or were refused, for the leader's blind alert (0 in records written before
	// they were carried).
	events, bad int64
	checkpoint  []byte
}

// Flags of a partition record.
const (
	flagIdle     = 1
	flagCounters = 2
)

func encodePartitionRecord(r partitionRecord) []byte {
	b := append([]byte(partitionMagic), clusterVersion, flagCounters)
	if r.idle {
		b[len(b)-1] |= flagIdle
	}
	b = binary.AppendVarint(b, r.closedTo)
	b = binary.AppendUvarint(b, uint64(r.lost))
	b = binary.AppendUvarint(b, uint64(r.events))
	b = binary.AppendUvarint(b, uint64(r.bad))
	return append(b, r.checkpoint...)
}

func decodePartitionRecord(b []byte) (partitionRecord, error) {
	if len(b) < 6 || string(b[:4]) != partitionMagic || b[4] != clusterVersion || b[5] > flagIdle|flagCounters {
		return partitionRecord{}, fmt.Errorf("not a version-%d partition record: %w", clusterVersion, engine.ErrCorruptCheckpoint)
	}
	d := wire.NewReader(b[6:])
	r := partitionRecord{idle: b[5]&flagIdle != 0, closedTo: d.Varint(), lost: d.Count()}
	if b[5]&flagCounters != 0 {
		r.events, r.bad = d.Count(), d.Count()
	}
	if d.Err() != nil {
		return partitionRecord{}, fmt.Errorf("partition record: %w: %w", engine.ErrCorruptCheckpoint, d.Err())
	}
	r.checkpoint = d.B
	return r, nil
}

// partial is one partition's profile of one closed window.
type partial struct {
	model, version string
	start          int64
	partition      int32
	profile        []byte // sketch.Profile.MarshalBinary
}

func encodePartial(pt partial) []byte {
	b := append([]byte(partialMagic), clusterVersion)
	b = wire.AppendString(b, pt.model)
	b = wire.AppendString(b, pt.version)
	b = binary.AppendVarint(b, pt.start)
	b = binary.AppendUvarint(b, uint64(pt.partition))
	return append(b, pt.profile...)
}

func decodePartial(b []byte) (partial, error) {
	if len(b) < 5 || string(b[:4]) != partialMagic || b[4] != clusterVersion {
		return partial{}, fmt.Errorf("not a version-%d partial: %w", clusterVersion, engine.ErrCorruptCheckpoint)
	}
	d := wire.NewReader(b[5:])
	pt := partial{model: d.String(), version: d.String(), start: d.Varint(), partition: d.Partition()}
	if d.Err() != nil {
		return partial{}, fmt.Errorf("partial: %w: %w", engine.ErrCorruptCheckpoint, d.Err())
	}
	pt.profile = d.B
	return pt, nil
}

// mergePartials merges one window's partials, in partition order (so the result does
// not depend on the order they arrived in), into a profile of the stream's fields.
func mergePartials(e *engine.Engine, parts []partial) (*sketch.Profile, error) {
	slices.SortFunc(parts, func(a, b partial) int { return int(a.partition) - int(b.partition) })
	var merged *sketch.Profile
	for _, pt := range parts {
		p := new(sketch.Profile)
		if err := p.UnmarshalBinary(pt.profile); err != nil {
			return nil, fmt.Errorf("partial of partition %d: %w", pt.partition, err)
		}
		if merged == nil {
			merged = p
			continue
		}
		if err := merged.Merge(p); err != nil {
			return nil, fmt.Errorf("partial of partition %d: %w", pt.partition, err)
		}
	}
	if merged == nil {
		return nil, errors.New("no partials")
	}
	if f := merged.Fields(); !slices.Equal(f, e.Fields()) {
		return nil, fmt.Errorf("partials have fields %v, the stream %v", f, e.Fields())
	}
	return merged, nil
}
