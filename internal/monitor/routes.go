package monitor

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/driftmon/driftmon/alerting/slack"
	"github.com/driftmon/driftmon/alerting/webhook"
	"github.com/driftmon/driftmon/config"
)

// routesFromConfig is the one switch from alerting config to notifiers.
func routesFromConfig(cfg config.Alerting, log *slog.Logger) ([]Route, error) {
	var routes []Route
	var errs []error
	if s := cfg.Slack; s != nil {
		n, err := slack.New(slack.Options{
			Token: s.Token, Channel: s.Channel, WebhookURL: s.WebhookURL, APIURL: s.APIURL,
			Logger: log.With("component", "slack"),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.slack: %w", err))
		} else {
			routes = append(routes, Route{Name: "slack", Notifier: n})
		}
	}
	for i, w := range cfg.Webhooks {
		n, err := webhook.New(webhook.Options{
			URL: w.URL, Secret: w.Secret, BearerToken: w.BearerToken,
			Logger: log.With("component", "webhook", "webhook", w.Name),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.webhooks[%d]: %w", i, err))
			continue
		}
		routes = append(routes, Route{Name: "webhook " + w.Name, Notifier: n, MinFeatures: w.MinFeatures})
	}
	return routes, errors.Join(errs...)
}
