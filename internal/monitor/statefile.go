package monitor

import (
	"log/slog"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/state"
)

// checkpointBucket holds one checkpoint per stream (engine.EncodeCheckpoint), keyed by
// the stream's name.
const checkpointBucket = "checkpoint"

// openState opens the state file that cfg names, or returns nil when it names none
// (nothing survives a restart then).
func openState(cfg config.State) (*state.Store, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	return state.Open(cfg.Path)
}

// closeState closes st, if any, logging a failure: everything in it was committed
// already, so there is nothing left to lose.
func closeState(st *state.Store, log *slog.Logger) {
	if st == nil {
		return
	}
	if err := st.Close(); err != nil {
		log.Error("cannot close state file", "path", st.Path(), "err", err)
	}
}
