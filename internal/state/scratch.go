package state

import (
	"fmt"
	"os"
	"path/filepath"
)

// OpenScratch opens a store in a new temporary directory that lives as long as the
// caller wants it: drop closes it and removes the directory. A monitor without a state
// file keeps its outbox there (deliveries are retried while it runs, forgotten when it
// stops), and a cluster leader its replica of the cluster topic's state.
func OpenScratch(prefix string) (st *Store, drop func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make a scratch state file: %w", err)
	}
	st, err = Open(filepath.Join(dir, "state.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}
