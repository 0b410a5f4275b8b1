package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/audit"
	"github.com/driftmon/driftmon/alerting/webhook"
)

// WebhookItem renders a decision for a webhook route in n's template
// (generic JSON, Airflow, GitHub, Argo Events, Jenkins or a user
// template). The item's ID, the webhook-id, is the decision's delivery ID
// for the route, and Airflow's dag_run_id derives from it. The body holds
// no secret: n adds credentials and the signature at each attempt.
func WebhookItem(route string, n *webhook.Notifier, d alerting.Decision, subject audit.Subject) (Item, error) {
	id := d.DeliveryID(route)
	p := webhook.NewPayload(d.Alert)
	if d.Step == alerting.StepRetrain && p.Type != webhook.EventObjective {
		// A call for an objective breach (a rollback, a scale-up) keeps its type: it
		// asks for something else than retraining.
		p.Type = webhook.EventRetrain
	}
	req, err := n.Render(id, p)
	if err != nil {
		return Item{}, fmt.Errorf("cannot build the %s call: %w", route, err)
	}
	return Item{ID: id, Route: route, Body: req.Body, ContentType: req.ContentType, Header: req.Header,
		Subject: subject, Decision: listed(d)}, nil
}

// Webhook returns the Sender of a webhook route: one signed attempt per
// call through n; a refusal (a 4xx other than 408 and 429) is permanent.
func Webhook(n *webhook.Notifier) Sender {
	return SenderFunc(func(ctx context.Context, it Item) (time.Duration, error) {
		return n.Send(ctx, it.ID, webhook.Request{Body: it.Body, ContentType: it.ContentType, Header: it.Header})
	})
}
