package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/chart"
)

// UploadChart uploads a PNG of the reference and window distributions of
// the alert's most drifted features (see chart.Render) into the thread of
// threadTS in channelID, titled "Distributions: <model> <version>". Slack
// shares uploads by channel ID, not name: pass the channel of the posted
// alert; "" uses Options.Channel.
//
// It does nothing and returns nil when no drifted Change has a
// Distribution. Incoming webhooks cannot upload files, so in webhook mode
// it returns an *alerting.PermanentError; the message links to the dashboard instead.
func (n *Notifier) UploadChart(ctx context.Context, channelID, threadTS string, a alerting.Alert) error {
	if n.client == nil {
		return &alerting.PermanentError{Reason: "unsupported", Err: errors.New("cannot upload a file through an incoming webhook")}
	}
	png, err := chart.Render(a.Drifted)
	if errors.Is(err, chart.ErrNoDistribution) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot draw the distributions of %s: %w", a.ID, err)
	}
	if channelID == "" {
		// The ID Slack gave when the message was posted; a configured "#name"
		// only until then (files.completeUploadExternal wants an ID).
		n.mu.Lock()
		channelID = n.channelID
		n.mu.Unlock()
		if channelID == "" {
			channelID = n.channel
		}
	}
	params := slackapi.UploadFileParameters{
		Filename:        "drift-" + a.ID + ".png",
		FileSize:        len(png),
		Title:           strings.TrimSpace("Distributions: " + a.Model + " " + a.ModelVersion),
		AltTxt:          altText(a),
		Channel:         channelID,
		ThreadTimestamp: threadTS,
	}
	return n.call(ctx, "upload", func(ctx context.Context) error {
		params.Reader = bytes.NewReader(png) // fresh per attempt
		_, err := n.client.UploadFileContext(ctx, params)
		return err
	})
}

// altText describes the chart for screen readers and notifications.
func altText(a alerting.Alert) string {
	panels, _ := chart.Panels(a.Drifted)
	features := make([]string, len(panels))
	for i, c := range panels {
		features[i] = c.Feature
	}
	return "Reference vs current distribution of " + strings.Join(features, ", ")
}
