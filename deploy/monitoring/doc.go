// Package monitoring holds the Grafana dashboard (dashboard.json) and the Prometheus
// alerting rules (driftmon-alerts.yaml) for driftmon's /metrics, and the tests that
// keep them in step with the metrics internal/httpapi exports: every rule is run on
// series that fire it and on series that do not, and every query parses as PromQL and
// names only metrics and labels driftmon has.
package monitoring
