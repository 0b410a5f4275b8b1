package monitor

// The cluster's leader: the one process that judges windows and alerts
// (internal/cluster says how workers publish their windows and how a pass judges them).
//
// Leadership is the assignment of the cluster topic's only partition in the consumer
// group <group_id>-leader (cluster.Election): Kafka decides, no clock or file does, and
// a rebalance ends one leader's term before the next begins.
//
// The leader's state — each stream's judged-up-to times and warm-up references, the
// alert policy state, the audit trail, the webhook and Slack outbox — is a bbolt file
// like one process's, but a replica of the cluster topic (cluster.Log.LeaderState). So
// a new leader goes on from exactly what the last one recorded: no recorded window
// judged again (its stream checkpoint says how far each model was judged), no decision
// lost or made twice (they are recorded in the same transaction), and an outbox item
// delivered once is known as delivered. Only the windows of a pass that the dead leader
// had judged but not yet recorded are judged again, with the same results (reported
// twice, like the windows one process closes between its last checkpoint and a kill
// -9). A delivery interrupted by the leader's death between sending and recording is
// sent again under the same webhook-id, as after a kill -9 of one process.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/driftmon/driftmon/internal/alerter"
	"github.com/driftmon/driftmon/internal/resultfile"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/cluster"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// lead does the leader's work until ctx ends (the leadership with it). A term that
// fails — the cluster topic cannot be written — starts again from the topic.
func (m *Monitor) lead(ctx context.Context, lg *cluster.Log) error {
	for {
		m.log.Info("leading: judging windows and alerting for the cluster")
		err := m.term(ctx, lg)
		if ctx.Err() != nil {
			m.log.Info("no longer the leader")
			return nil
		}
		m.log.Error("leader's term failed; starting again from the cluster topic", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// term is one leadership term: load the state, judge and alert until ctx ends.
func (m *Monitor) term(ctx context.Context, lg *cluster.Log) error {
	store, drop, err := lg.LeaderState(ctx)
	if err != nil {
		return err
	}
	defer drop()

	// The next leader delivers what is left: stop at once when the term ends.
	obCtx, stopOutbox := context.WithCancel(ctx)
	outboxDone, err := m.startOutbox(obCtx, store)
	if err != nil {
		stopOutbox()
		return err
	}
	defer func() {
		stopOutbox()
		if err := outboxDone(); err != nil {
			m.log.Error("outbox stopped with an error", "err", err)
		}
	}()

	judges := make([]*judge, len(m.workers))
	for i, w := range m.workers {
		j, err := newJudge(w, store, lg, &m.sink)
		if err != nil {
			return err
		}
		defer j.results.Close()
		defer w.judgedLate.Store(0)
		defer w.judgedBlind.Store(false)
		judges[i] = j
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, j := range judges {
			if err := j.pass(ctx); err != nil {
				return fmt.Errorf("stream %s: %w", j.cfg.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lg.Changed():
		case <-tick.C:
		}
	}
}

// judge is the leader's side of one stream: an engine that only judges, restored from
// the leader's state with the stream's alert state.
type judge struct {
	cfg      *config.Stream
	log      *slog.Logger
	cluster  *cluster.Judge
	engine   *engine.Engine
	pos      *engine.Position
	store    *state.Store
	verdicts *alerter.Verdicts
	sink     *sink
	results  *resultfile.Log
	worker   *worker // the stream's worker in this process, for its stats
	// sight tells whether the cluster sees the stream (seeing: it has the counters of
	// a first pass to compare with).
	sight  *sight
	seeing bool
}

func newJudge(w *worker, store *state.Store, lg *cluster.Log, out *sink) (*judge, error) {
	log := w.log.With("role", "leader")
	eng, err := engine.New(w.cfg, log)
	if err != nil {
		return nil, err
	}
	j := &judge{cfg: w.cfg, log: log, engine: eng, pos: engine.NewPosition(), store: store, sink: out, worker: w, sight: newSight(w.cfg),
		cluster: cluster.NewJudge(w.cfg.Name, eng, lg, w.topicParts, log.With("topic", w.cfg.Topic))}
	// The versions' handed-over references first: the checkpoint names the versions
	// judged against theirs, not the profiles.
	if err := eng.SyncHandovers(lg.References(w.cfg.Name)); err != nil {
		log.Error("a handed-over reference in the cluster topic cannot be used; its version falls back", "err", err)
	}
	cp, err := loadCheckpoint(store, w.cfg.Name, eng, log)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		j.pos = cp.Pos
	}
	w.judgedLate.Store(eng.Late())
	if j.verdicts, err = out.alerter.Restore(store, w.cfg.Name); err != nil {
		return nil, err
	}
	if j.results, err = resultfile.Open(); err != nil {
		return nil, err
	}
	return j, nil
}

// pass is the leader's pipeline for one stream: judge the windows every partition has
// closed (cluster.Judge.Pass), report them, record them with the alert decisions in one
// transaction (replicated to the cluster topic before it commits), hand the decisions
// to the outbox, then delete the judged partials.
func (j *judge) pass(ctx context.Context) error {
	p, err := j.cluster.Pass(ctx)
	if err != nil || p == nil {
		return err
	}
	j.worker.judgedLate.Store(j.engine.Late())
	if !j.seeing {
		j.sight.start(p.Total, p.Bad)
		j.seeing = true
	}
	blind := false
	switch {
	case len(p.Results) > 0:
		blind = j.sight.closed(p.Total, p.Bad)
	case j.sight.stalled(p.Total):
		// Events are read but no window closes: the blind alert, recorded below.
		j.log.Warn("events are read but no window has closed: the stream is blind", "for", j.sight.stall, "events", p.Total, "late_or_refused", p.Bad)
		j.sink.alerter.ObserveStall(j.verdicts, j.engine)
	case p.Empty() && !j.sink.alerter.SilencesChanged(j.verdicts):
		return nil // nothing to record (a silence made meanwhile is, so a failover keeps it)
	}
	j.worker.judgedBlind.Store(j.sight.blind.Load())
	// Messages deleted before any process read them fire the data-loss alert, as in
	// one process.
	j.pos.Lost = p.Lost
	// Reported before they are recorded, as one process does: a leader killed in
	// between has these windows judged again by the next one, with the same results
	// (reported twice, as after a kill -9 of one process). Reported after recording,
	// a kill in between lost them from the results and the API for good.
	j.sink.windows(j.results, j.verdicts, p.Results, p.Lost, blind)
	data, err := engine.EncodeCheckpoint(j.engine, j.pos)
	if err != nil {
		return fmt.Errorf("cannot checkpoint stream %s: %w", j.cfg.Name, err)
	}
	al := j.sink.alerter
	if err := saveCheckpoint(j.store, j.cfg.Name, j.engine, data, func(tx *state.Tx) error { return al.Record(tx, j.verdicts) }); err != nil {
		return err
	}
	al.Recorded(j.verdicts)
	return j.cluster.Forget(ctx, p)
}
