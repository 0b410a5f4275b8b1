package httpapi

import (
	"slices"
	"time"

	"github.com/driftmon/driftmon/alerting"
)

// alertRecord is an alert seen through RecordDelivery and how each route took it: the
// API's projection of alerting.Alert, whose names it keeps but for "version", with
// every list present (an empty one as []), the title, and no dashboard URL or chart
// data.
type alertRecord struct {
	ID           string            `json:"id"`
	Stream       string            `json:"stream"`
	Model        string            `json:"model"`
	Version      string            `json:"version"`
	WindowStart  time.Time         `json:"window_start"`
	WindowEnd    time.Time         `json:"window_end"`
	Rows         int64             `json:"rows"`
	Reference    string            `json:"reference"`
	Severity     string            `json:"severity"`
	Title        string            `json:"title"`
	Drifted      []alerting.Change `json:"drifted"`
	Stable       []string          `json:"stable"`
	Insufficient []string          `json:"insufficient"`
	FirstSeen    time.Time         `json:"first_seen"`
	Routes       []routeDelivery   `json:"routes"`
}

// routeDelivery is the latest outcome of delivering one alert to one route.
type routeDelivery struct {
	Route       string    `json:"route"`
	Status      string    `json:"status"` // "delivered" or "failed"
	Error       string    `json:"error,omitempty"`
	Attempts    int       `json:"attempts"`
	LastAttempt time.Time `json:"last_attempt"`
}

// delivery is one attempt to deliver an alert to a route.
type delivery struct {
	Time    time.Time `json:"time"`
	Route   string    `json:"route"`
	AlertID string    `json:"alert_id"`
	Stream  string    `json:"stream"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
}

const (
	statusDelivered = "delivered"
	statusFailed    = "failed"
)

// RecordDelivery records an attempt to deliver alert a to a route and its final
// error (nil when delivered). It is meant for monitor.Options.OnDelivery.
func (s *Server) RecordDelivery(route string, a alerting.Alert, err error) {
	now := s.now()
	d := delivery{Time: now, Route: route, AlertID: a.ID, Stream: a.Stream, Model: a.Model, Version: a.ModelVersion, Status: statusDelivered}
	if err != nil {
		d.Status, d.Error = statusFailed, err.Error()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.kept.failed[route]++
	} else {
		s.kept.sent[route]++
	}
	if len(s.kept.deliveries) >= maxDeliveries {
		n := copy(s.kept.deliveries, s.kept.deliveries[len(s.kept.deliveries)-maxDeliveries+1:])
		s.kept.deliveries = s.kept.deliveries[:n]
	}
	s.kept.deliveries = append(s.kept.deliveries, d)

	rec := s.kept.alerts[a.ID]
	if rec == nil {
		rec = alertRecordOf(a, now)
		s.kept.alerts[a.ID] = rec
		s.kept.alertOrder = append(s.kept.alertOrder, a.ID)
		if len(s.kept.alertOrder) > maxAlerts {
			delete(s.kept.alerts, s.kept.alertOrder[0])
			s.kept.alertOrder = slices.Delete(s.kept.alertOrder, 0, 1)
		}
	}
	i := slices.IndexFunc(rec.Routes, func(r routeDelivery) bool { return r.Route == route })
	if i < 0 {
		rec.Routes = append(rec.Routes, routeDelivery{Route: route})
		i = len(rec.Routes) - 1
	}
	rd := &rec.Routes[i]
	rd.Attempts++
	rd.LastAttempt = now
	rd.Status, rd.Error = d.Status, d.Error
}

func alertRecordOf(a alerting.Alert, now time.Time) *alertRecord {
	rec := &alertRecord{
		ID: a.ID, Stream: a.Stream, Model: a.Model, Version: a.ModelVersion,
		WindowStart: a.WindowStart, WindowEnd: a.WindowEnd, Rows: a.Rows,
		Reference: a.Reference, Severity: string(a.Severity), Title: a.Title(),
		Drifted:      a.WithoutDistributions().Drifted,
		Stable:       append([]string{}, a.Stable...),
		Insufficient: append([]string{}, a.Insufficient...),
		FirstSeen:    now,
		Routes:       []routeDelivery{},
	}
	if rec.Drifted == nil {
		rec.Drifted = []alerting.Change{}
	}
	return rec
}

// copyAlert returns a copy of rec that later deliveries do not change.
func copyAlert(rec *alertRecord) alertRecord {
	c := *rec
	c.Routes = slices.Clone(rec.Routes)
	return c
}
