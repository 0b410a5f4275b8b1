// Package deploy holds what ships driftmon and is no part of it: the container image
// builder (image, cmd/driftmon-image), the Helm chart (helm/driftmon), the Grafana
// dashboard and the Prometheus alerting rules (monitoring), and the tests that check
// them. It is a Go module of its own so that its tooling-only dependencies (the
// container registry, Helm, Kubernetes and Prometheus modules) stay out of the
// product's go.mod: `cd deploy && go test ./...` (make test-deploy) runs its tests.
package deploy
