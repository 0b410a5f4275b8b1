package monitor

import (
	"errors"
	"fmt"

	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/outbox"
)

// Deliveries is the monitor's outbox as the HTTP API sees it: listing, replaying and
// counting notifications. It answers once Run has opened the outbox.
type Deliveries struct{ m *Monitor }

// Deliveries returns the view of the outbox for the API.
func (m *Monitor) Deliveries() Deliveries { return Deliveries{m} }

// ErrNoOutbox is wrapped by the errors of Deliveries and Audit when there is no outbox
// to read: the monitor is not running, has nothing to notify, or is a cluster's
// follower (the leader has the outbox). The API answers it with 503.
var ErrNoOutbox = errors.New("the outbox is not open")

// noOutbox says why there is no outbox; the caller holds m.mu.
func (m *Monitor) noOutbox() error {
	if m.cfg.Cluster != nil {
		return fmt.Errorf("%w: this process does not lead the cluster; the leader has the outbox and the audit trail (GET /api/v1/cluster on each process says which leads)", ErrNoOutbox)
	}
	return fmt.Errorf("%w: the monitor is not running, or has nothing to notify", ErrNoOutbox)
}

func (d Deliveries) outbox() (*outbox.Outbox, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if d.m.running == nil {
		return nil, d.m.noOutbox()
	}
	return d.m.running, nil
}

// List returns the notifications with the given status.
func (d Deliveries) List(status outbox.Status) ([]outbox.Record, error) {
	ob, err := d.outbox()
	if err != nil {
		return nil, err
	}
	return ob.List(status)
}

// Replay queues a dead (or delivered) notification again.
func (d Deliveries) Replay(id string) error {
	ob, err := d.outbox()
	if err != nil {
		return err
	}
	return ob.Replay(id)
}

// Counts returns how many notifications are pending and dead.
func (d Deliveries) Counts() (pending, dead int, err error) {
	ob, err := d.outbox()
	if err != nil {
		return 0, 0, err
	}
	return ob.Counts()
}

// Audit reads the audit trail: every alert decision and delivery attempt.
func (m *Monitor) Audit(q audit.Query) ([]audit.Entry, error) {
	m.mu.Lock()
	st, noOutbox := m.obStore, m.noOutbox()
	m.mu.Unlock()
	if st == nil {
		return nil, noOutbox
	}
	return audit.List(st, q)
}
