package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/driftmon/driftmon/internal/state"
)

// LeaderState returns the leader's state as a scratch state file: loaded from the
// topic's s/… entries once everything the last leader wrote has been read, and
// replicated, every transaction written to the topic before it commits
// (state.Store.Replicate). So a new leader goes on from exactly what the last one
// recorded: its stream checkpoints (how far each model was judged, warm-up
// references), alert policy state, audit trail and outbox. drop closes and deletes it.
func (l *Log) LeaderState(ctx context.Context) (store *state.Store, drop func(), err error) {
	// Everything the last leader recorded was acknowledged by the topic before it
	// acted on it: read all of it.
	if err := l.Sync(ctx); err != nil {
		return nil, nil, err
	}
	store, drop, err = state.OpenScratch("driftmon-leader-")
	if err != nil {
		return nil, nil, err
	}
	err = store.Update(func(tx *state.Tx) error {
		var err error
		l.Scan(statePrefix, func(k string, v []byte) {
			if bucket, key, ok := splitStateKey(k); ok && err == nil {
				err = tx.Put(bucket, key, v)
			}
		})
		if err != nil {
			return fmt.Errorf("cannot load the leader's state from the cluster topic: %w", err)
		}
		return nil
	})
	if err != nil {
		drop()
		return nil, nil, err
	}
	store.Replicate(func(changes []state.Change) error {
		recs := make([]Record, len(changes))
		for i, c := range changes {
			recs[i] = Record{Key: stateKey(c.Bucket, c.Key), Value: c.Value}
		}
		return l.Put(ctx, recs...)
	})
	return store, drop, nil
}

// stateKey and splitStateKey map a leader's state-file entry to its key in the cluster
// topic and back. Bucket names have no "/".
func stateKey(bucket, key string) string { return statePrefix + bucket + "/" + key }

func splitStateKey(k string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(k, statePrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}
