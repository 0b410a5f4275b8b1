package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
)

// Step is where an alert episode stands with a notice.
type Step string

// The steps of an episode, as the alerting policy decides them.
const (
	StepFire    Step = "fire"
	StepUpdate  Step = "update"
	StepRepeat  Step = "repeat"
	StepResolve Step = "resolve"
)

// The kinds of episodes a notice may be about; "" means KindDrift.
const (
	KindDrift    = "drift"
	KindNoData   = "no_data"
	KindDataLoss = "data_loss"
	// KindPerformance: Alert.Drifted holds the degraded metrics.
	KindPerformance = "performance"
)

// Notice is one notification of an alert episode: the episode's alert as
// of the latest window, and what changed. In bot-token mode an episode is
// one parent message, kept up to date with chat.update, plus a thread of
// follow-ups; through an incoming webhook each notice is a message of its
// own.
type Notice struct {
	// Alert is the episode as of this step; its ID is the episode's. For a
	// drift episode, Drifted lists the firing features.
	Alert alerting.Alert
	Step  Step
	// Kind is KindDrift (or ""), KindNoData or KindDataLoss.
	Kind string
	// Started is the start of the window in which the episode fired.
	Started time.Time
	// New and Resolved are the features that began and stopped drifting
	// since the previous notice.
	New, Resolved []string
}

// Threaded reports whether the notifier can reply in threads and update
// messages, which needs a bot token.
func (n *Notifier) Threaded() bool { return n.client != nil }

// Open posts the notice as an episode's parent message and returns its
// timestamp; through an incoming webhook it posts the same message and
// returns "".
func (n *Notifier) Open(ctx context.Context, nt Notice) (string, error) {
	return n.post(ctx, "", ParentBlocks(nt), ParentText(nt))
}

// Reply posts the notice's follow-up in the thread of the parent message
// threadTS and returns the reply's timestamp. It needs a bot token.
func (n *Notifier) Reply(ctx context.Context, threadTS string, nt Notice) (string, error) {
	if n.client == nil {
		return "", &alerting.PermanentError{Reason: "unsupported", Err: errors.New("cannot reply in a thread through an incoming webhook")}
	}
	return n.post(ctx, threadTS, ReplyBlocks(nt), ReplyText(nt))
}

// Refresh rewrites the parent message ts with the episode's current
// status, so the channel shows it without opening the thread. It needs a
// bot token.
func (n *Notifier) Refresh(ctx context.Context, ts string, nt Notice) error {
	return n.update(ctx, ts, ParentBlocks(nt), ParentText(nt))
}

// ParentBlocks renders the episode as its parent message shows it: the
// headline with the current status, the window facts and, while it fires,
// the drifted features; once resolved, what stopped drifting. It stays
// within Block Kit's limits.
func ParentBlocks(nt Notice) []slackapi.Block {
	a := nt.Alert
	resolved := nt.Step == StepResolve
	if kind(nt) == KindDrift && !resolved {
		bs := Blocks(a)
		out := make([]slackapi.Block, 0, len(bs)+1)
		out = append(out, bs[0], contextBlock(status(nt)))
		return append(out, bs[1:]...)
	}
	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, clip(headline(nt), maxHeaderText), true, false)),
		contextBlock(status(nt)),
		facts(a),
		slackapi.NewDividerBlock(),
	}
	switch {
	case resolved && kind(nt) == KindDrift:
		if len(nt.Resolved) > 0 {
			blocks = append(blocks, contextBlock(nameList(":white_check_mark: No longer drifting: ", nt.Resolved)))
		} else {
			blocks = append(blocks, contextBlock(":white_check_mark: No feature drifts any more."))
		}
	case resolved && kind(nt) == KindPerformance:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("The labelled windows since meet the performance rule."), nil, nil))
	case resolved:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("Data flows again for this model."), nil, nil))
	case kind(nt) == KindPerformance:
		for _, c := range a.Drifted {
			blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(clipMrkdwn("*"+escape(clip(c.Feature, maxNameRunes))+"* — "+escape(c.Summary)+"\n"+escape(c.Rule), maxSectionText)), nil, nil))
		}
	case kind(nt) == KindNoData:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("No data (or too little to judge) arrived in this window. Drift alerts for the stream are held back until data flows again."), nil, nil))
	default:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("This window is known to miss data. Drift alerts for the stream are held back until it is complete again."), nil, nil))
	}
	if b := dashboardButton(a); b != nil {
		blocks = append(blocks, b)
	}
	return blocks
}

// ParentText is the plain fallback of the parent message.
func ParentText(nt Notice) string {
	if kind(nt) == KindDrift && nt.Step != StepResolve {
		return Text(nt.Alert)
	}
	return clipMrkdwn(escape(headline(nt)+" ("+alerting.FormatWindow(nt.Alert.WindowStart, nt.Alert.WindowEnd)+")"), maxFallbackText)
}

// ReplyBlocks renders the notice as a follow-up in the episode's thread:
// what changed in the window, then the features drifting now.
func ReplyBlocks(nt Notice) []slackapi.Block {
	a := nt.Alert
	lines := []string{"*" + escape(replyTitle(nt)) + "* — " + escape(alerting.FormatWindow(a.WindowStart, a.WindowEnd))}
	if len(nt.New) > 0 {
		lines = append(lines, nameList(":chart_with_upwards_trend: Now drifting: ", nt.New))
	}
	if len(nt.Resolved) > 0 {
		lines = append(lines, nameList(":white_check_mark: No longer drifting: ", nt.Resolved))
	}
	blocks := []slackapi.Block{slackapi.NewSectionBlock(mrkdwn(clipMrkdwn(strings.Join(lines, "\n"), maxSectionText)), nil, nil)}
	if nt.Step == StepResolve || kind(nt) != KindDrift {
		return blocks
	}
	drifted := ranked(a.Drifted)
	shown := drifted
	if len(shown) > maxFeatureSections {
		shown = shown[:maxFeatureSections]
	}
	for _, c := range shown {
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(clipMrkdwn("*"+escape(clip(c.Feature, maxNameRunes))+"* — "+escape(c.Headline()), maxSectionText)), nil, nil))
	}
	if rest := drifted[len(shown):]; len(rest) > 0 {
		names := make([]string, len(rest))
		for i, c := range rest {
			names[i] = c.Feature
		}
		blocks = append(blocks, contextBlock(nameList("…and "+alerting.FormatCount(int64(len(rest)))+" more drifting: ", names)))
	}
	return blocks
}

// ReplyText is the plain fallback of a follow-up.
func ReplyText(nt Notice) string {
	s := replyTitle(nt) + " (" + alerting.FormatWindow(nt.Alert.WindowStart, nt.Alert.WindowEnd) + ")"
	if len(nt.New) > 0 {
		s += "; now drifting: " + strings.Join(nt.New, ", ")
	}
	if len(nt.Resolved) > 0 {
		s += "; no longer drifting: " + strings.Join(nt.Resolved, ", ")
	}
	return clipMrkdwn(escape(s), maxFallbackText)
}

func kind(nt Notice) string {
	if nt.Kind == "" {
		return KindDrift
	}
	return nt.Kind
}

// name is how the model is named in headlines.
func name(a alerting.Alert) string {
	if n := strings.TrimSpace(a.Model + " " + a.ModelVersion); n != "" {
		return n
	}
	if a.Stream != "" {
		return "stream " + a.Stream
	}
	return "unknown model"
}

// headline is the header of a parent that is not a firing drift episode
// (those keep Blocks' header).
func headline(nt Notice) string {
	n := name(nt.Alert)
	switch {
	case nt.Step == StepResolve && kind(nt) == KindDrift:
		return ":white_check_mark: Resolved: drift in " + n
	case nt.Step == StepResolve && kind(nt) == KindNoData:
		return ":white_check_mark: Data flows again: " + n
	case nt.Step == StepResolve && kind(nt) == KindPerformance:
		return ":white_check_mark: Performance within its rule again: " + n
	case kind(nt) == KindPerformance:
		return ":chart_with_downwards_trend: Performance degraded: " + n
	case nt.Step == StepResolve:
		return ":white_check_mark: Resolved: data loss in " + n
	case kind(nt) == KindNoData:
		return ":warning: No data from " + n
	default:
		return ":warning: Data loss in " + n
	}
}

func replyTitle(nt Notice) string {
	switch {
	case nt.Step == StepResolve:
		return "Resolved"
	case nt.Step == StepRepeat && kind(nt) == KindDrift:
		return "Still drifting"
	case nt.Step == StepRepeat:
		return "Still no data"
	case kind(nt) != KindDrift:
		return "Update"
	case nt.Alert.Severity != "" && len(nt.New) == 0 && len(nt.Resolved) == 0:
		return "Update: now " + string(nt.Alert.Severity)
	default:
		return "Update"
	}
}

// status is the one-line state of the episode under the parent's header.
func status(nt Notice) string {
	a := nt.Alert
	var b strings.Builder
	if nt.Step == StepResolve {
		b.WriteString("*Resolved* at " + clock(a.WindowEnd, nt.Started))
		if !nt.Started.IsZero() {
			b.WriteString(" after " + span(a.WindowEnd.Sub(nt.Started)) + " (fired " + clock(nt.Started, a.WindowEnd) + ")")
		}
		if a.Severity != "" {
			b.WriteString(" · was " + string(a.Severity))
		}
		return b.String()
	}
	b.WriteString("*Firing*")
	if !nt.Started.IsZero() {
		b.WriteString(" since " + clock(nt.Started, a.WindowEnd))
	}
	if kind(nt) == KindDrift {
		switch n := len(a.Drifted); n {
		case 1:
			b.WriteString(" · 1 feature drifting")
		default:
			b.WriteString(" · " + alerting.FormatCount(int64(n)) + " features drifting")
		}
	}
	b.WriteString(" · as of " + escape(alerting.FormatWindow(a.WindowStart, a.WindowEnd)))
	return b.String()
}

// clock prints t in UTC, without the date when it is the same day as ref.
func clock(t, ref time.Time) string {
	t, ref = t.UTC(), ref.UTC()
	if t.Format(time.DateOnly) == ref.Format(time.DateOnly) {
		return t.Format("15:04") + " UTC"
	}
	return t.Format(time.DateOnly+" 15:04") + " UTC"
}

// span prints a duration compactly: "45m", "3h", "2d 4h 30m".
func span(d time.Duration) string {
	d = d.Round(time.Minute)
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, alerting.FormatCount(int64(n))+u.name)
			d -= n * u.d
		}
	}
	if len(parts) == 0 {
		return "0m"
	}
	return strings.Join(parts, " ")
}

// facts is the section of window facts that Blocks shows second.
func facts(a alerting.Alert) slackapi.Block {
	return slackapi.NewSectionBlock(nil, []*slackapi.TextBlockObject{
		mrkdwn(clipMrkdwn("*Window*\n"+escape(alerting.FormatWindow(a.WindowStart, a.WindowEnd)), maxFieldText)),
		mrkdwn(clipMrkdwn("*Stream*\n"+escape(orDash(a.Stream)), maxFieldText)),
		mrkdwn(clipMrkdwn("*Rows*\n"+alerting.FormatCount(a.Rows), maxFieldText)),
		mrkdwn(clipMrkdwn("*Reference*\n"+escape(orDash(a.Reference)), maxFieldText)),
	}, nil)
}

func dashboardButton(a alerting.Alert) slackapi.Block {
	u := a.DashboardURL
	if u == "" || len([]rune(u)) > maxButtonURL {
		return nil
	}
	button := slackapi.NewButtonBlockElement("open_dashboard", "", slackapi.NewTextBlockObject(slackapi.PlainTextType, "Open dashboard", true, false)).WithURL(u)
	return slackapi.NewActionBlock("", button)
}
