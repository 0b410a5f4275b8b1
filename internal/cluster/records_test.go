package cluster

import (
	"bytes"
	"errors"
	"testing"

	"github.com/driftmon/driftmon/internal/engine"
)

// FuzzClusterRecords: whatever bytes sit in the cluster topic, the decoders of its
// records return an error that says the record is corrupt, or a record that decodes
// the same after encoding it again.
func FuzzClusterRecords(f *testing.F) {
	f.Add(encodePartitionRecord(partitionRecord{idle: true, closedTo: -5, lost: 7, events: 9, bad: 3, checkpoint: []byte("checkpoint")}))
	f.Add([]byte("DMPR\x01\x01\x09\x07checkpoint")) // written before the counters were carried
	f.Add(encodePartial(partial{model: "m", version: "1", start: 60e9, partition: 3, profile: []byte{1, 2, 3}}))
	f.Add([]byte("DMPR\x01\x02"))
	f.Add([]byte("DMPR\x01\x01\xff\x00\x00")) // a varint longer than it need be
	f.Fuzz(func(t *testing.T, b []byte) {
		if rec, err := decodePartitionRecord(b); err == nil {
			again, err := decodePartitionRecord(encodePartitionRecord(rec))
			if err != nil || again.idle != rec.idle || again.closedTo != rec.closedTo || again.lost != rec.lost ||
				again.events != rec.events || again.bad != rec.bad ||
				!bytes.Equal(again.checkpoint, rec.checkpoint) {
				t.Errorf("partition record %q: %+v, then %+v, %v", b, rec, again, err)
			}
		} else if !errors.Is(err, engine.ErrCorruptCheckpoint) {
			t.Errorf("partition record %q: %v does not say it is corrupt", b, err)
		}
		if pt, err := decodePartial(b); err == nil {
			again, err := decodePartial(encodePartial(pt))
			if err != nil || again.model != pt.model || again.version != pt.version || again.start != pt.start ||
				again.partition != pt.partition || !bytes.Equal(again.profile, pt.profile) {
				t.Errorf("partial %q: %+v, then %+v, %v", b, pt, again, err)
			}
		} else if !errors.Is(err, engine.ErrCorruptCheckpoint) {
			t.Errorf("partial %q: %v does not say it is corrupt", b, err)
		}
	})
}
