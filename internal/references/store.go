package references

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// bucket holds, in a state file, the references handed over per model version
// (engine.Handover records) under "<stream>/<model>/<version>", each part path-escaped.
const bucket = "references"

func keysOf(stream string) string { return url.PathEscape(stream) + "/" }

func key(stream, model, version string) string {
	return keysOf(stream) + url.PathEscape(model) + "/" + url.PathEscape(version)
}

// Store is where a running monitor keeps handed-over references: a state file
// (InState) or a cluster topic (InCluster).
type Store interface {
	get(stream, model, version string) ([]byte, error)
	count(stream string) (int, error)
	put(ctx context.Context, stream, model, version string, record []byte) error
	// remove deletes the record and reports whether there was one.
	remove(ctx context.Context, stream, model, version string) (bool, error)
}

// InState keeps references in st's references bucket, each written in a transaction
// of its own.
func InState(st *state.Store) Store { return inState{st} }

type inState struct{ st *state.Store }

func (s inState) get(stream, model, version string) ([]byte, error) {
	var rec []byte
	err := s.st.View(func(tx *state.Tx) error {
		rec = bytes.Clone(tx.Get(bucket, key(stream, model, version)))
		return nil
	})
	return rec, err
}

func (s inState) count(stream string) (int, error) {
	n := 0
	err := s.st.View(func(tx *state.Tx) error {
		return forEach(tx, stream, func([]byte) { n++ })
	})
	return n, err
}

func (s inState) put(_ context.Context, stream, model, version string, record []byte) error {
	return s.st.Update(func(tx *state.Tx) error {
		return tx.Put(bucket, key(stream, model, version), record)
	})
}

func (s inState) remove(_ context.Context, stream, model, version string) (bool, error) {
	found := false
	err := s.st.Update(func(tx *state.Tx) error {
		k := key(stream, model, version)
		if found = tx.Get(bucket, k) != nil; !found {
			return nil
		}
		return tx.Delete(bucket, k)
	})
	return found, err
}

// forEach calls fn with each record of stream's references in tx, valid during the
// call only.
func forEach(tx *state.Tx, stream string, fn func(record []byte)) error {
	return tx.ForPrefix(bucket, keysOf(stream), func(_ string, v []byte) error {
		fn(v)
		return nil
	})
}

// InCluster keeps references in the cluster topic that lg reads and writes.
func InCluster(lg *cluster.Log) Store { return inCluster{lg} }

type inCluster struct{ lg *cluster.Log }

func (l inCluster) get(stream, model, version string) ([]byte, error) {
	rec, _ := l.lg.Reference(stream, model, version)
	return rec, nil
}

func (l inCluster) count(stream string) (int, error) { return len(l.lg.References(stream)), nil }

func (l inCluster) put(ctx context.Context, stream, model, version string, record []byte) error {
	return l.lg.PutReference(ctx, stream, model, version, record)
}

func (l inCluster) remove(ctx context.Context, stream, model, version string) (bool, error) {
	if _, ok := l.lg.Reference(stream, model, version); !ok {
		return false, nil
	}
	return true, l.lg.DeleteReference(ctx, stream, model, version)
}

// Records returns the records of the references handed over for stream's versions
// that st holds, for the stream's engine (engine.SyncHandovers).
func Records(st *state.Store, stream string) ([][]byte, error) {
	var out [][]byte
	err := st.View(func(tx *state.Tx) error {
		return forEach(tx, stream, func(v []byte) { out = append(out, bytes.Clone(v)) })
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the handed-over references: %w", err)
	}
	return out, nil
}

// StoreRead stores in st the references of stream that its engine read from
// reference.per_version files (engine.NewlyRead), but for a version that the API handed
// one over for meanwhile: then handedOver is true, and the engine takes the API's at
// its next sync.
func StoreRead(st *state.Store, stream string, read []*engine.Handover) (handedOver bool, err error) {
	if len(read) == 0 {
		return false, nil
	}
	err = st.Update(func(tx *state.Tx) error {
		for _, h := range read {
			k := key(stream, h.Model, h.Version)
			if tx.Get(bucket, k) != nil {
				handedOver = true
				continue
			}
			if err := tx.Put(bucket, k, h.Encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("cannot store the references read from files: %w", err)
	}
	return handedOver, nil
}
