package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
)

// An alert episode reaches Slack as the policy's alerting.Decisions, one per step
// (fire, update, repeat, resolve): the episode's alert as of the latest window, and
// what changed. In bot-token mode an episode is one parent message, kept up to date
// with chat.update, plus a thread of follow-ups; through an incoming webhook each
// decision is a message of its own. A decision of Kind "" is rendered as
// alerting.KindDrift.

// Threaded reports whether the notifier can reply in threads and update
// messages, which needs a bot token.
func (n *Notifier) Threaded() bool { return n.client != nil }

// Open posts the decision as an episode's parent message and returns its
// timestamp; through an incoming webhook it posts the same message and
// returns "".
func (n *Notifier) Open(ctx context.Context, d alerting.Decision) (string, error) {
	return n.post(ctx, "", ParentBlocks(d), ParentText(d))
}

// Reply posts the decision's follow-up in the thread of the parent message
// threadTS and returns the reply's timestamp. It needs a bot token.
func (n *Notifier) Reply(ctx context.Context, threadTS string, d alerting.Decision) (string, error) {
	if n.client == nil {
		return "", &alerting.PermanentError{Reason: "unsupported", Err: errors.New("cannot reply in a thread through an incoming webhook")}
	}
	return n.post(ctx, threadTS, ReplyBlocks(d), ReplyText(d))
}

// Refresh rewrites the parent message ts with the episode's current
// status, so the channel shows it without opening the thread. It needs a
// bot token.
func (n *Notifier) Refresh(ctx context.Context, ts string, d alerting.Decision) error {
	return n.update(ctx, ts, ParentBlocks(d), ParentText(d))
}

// ParentBlocks renders the episode as its parent message shows it: the
// headline with the current status, the window facts and, while it fires,
// the drifted features; once resolved, what stopped drifting. It stays
// within Block Kit's limits.
func ParentBlocks(d alerting.Decision) []slackapi.Block {
	a := d.Alert
	resolved := d.Step == alerting.StepResolve
	if kind(d) == alerting.KindDrift && !resolved {
		bs := Blocks(a)
		out := make([]slackapi.Block, 0, len(bs)+1)
		out = append(out, bs[0], contextBlock(status(d)))
		return append(out, bs[1:]...)
	}
	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, clip(headline(d), maxHeaderText), true, false)),
		contextBlock(status(d)),
		facts(a),
		slackapi.NewDividerBlock(),
	}
	switch {
	case resolved && d.Reason != "":
		blocks = append(blocks, contextBlock(endedLine(d)))
	case resolved && kind(d) == alerting.KindDrift:
		if len(d.Resolved) > 0 {
			blocks = append(blocks, contextBlock(nameList(":white_check_mark: No longer drifting: ", d.Resolved)))
		} else {
			blocks = append(blocks, contextBlock(":white_check_mark: No feature drifts any more."))
		}
	case resolved && kind(d) == alerting.KindPerformance:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("The labelled windows since meet the performance rule."), nil, nil))
	case resolved && kind(d) == alerting.KindObjective:
		blocks = append(blocks, contextBlock(nameList(":white_check_mark: Met again: ", d.Resolved)))
	case kind(d) == alerting.KindObjective:
		shown := a.Drifted[:min(len(a.Drifted), maxFeatureSections)]
		for _, c := range shown {
			blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(clipMrkdwn("*"+escape(clip(c.Feature, maxNameRunes))+"* — "+escape(c.Summary), maxSectionText)), nil, nil))
		}
		if rest := a.Drifted[len(shown):]; len(rest) > 0 {
			names := make([]string, len(rest))
			for i, c := range rest {
				names[i] = c.Feature
			}
			blocks = append(blocks, contextBlock(nameList("…and "+alerting.FormatCount(int64(len(rest)))+" more breached: ", names)))
		}
		if len(a.Stable) > 0 {
			blocks = append(blocks, contextBlock(nameList("Met: ", a.Stable)))
		}
	case resolved:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("Data flows again for this model."), nil, nil))
	case kind(d) == alerting.KindPerformance:
		for _, c := range a.Drifted {
			blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(clipMrkdwn("*"+escape(clip(c.Feature, maxNameRunes))+"* — "+escape(c.Summary)+"\n"+escape(c.Rule), maxSectionText)), nil, nil))
		}
	case kind(d) == alerting.KindNoData:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("No data (or too little to judge) arrived in this window. Drift alerts for the stream are held back until data flows again."), nil, nil))
	case kind(d) == alerting.KindBlind:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("driftmon reads this stream's events but cannot judge them: no window has closed for several window lengths, or most of a window's events came late or were refused (a producer's clock, a placeholder date, a bad deploy). The counts by reason are in `driftmon_decode_errors_total` and `driftmon_late_events_total`. Drift alerts for the stream are held back until its windows close again."), nil, nil))
	default:
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("This window is known to miss data. Drift alerts for the stream are held back until it is complete again."), nil, nil))
	}
	if b := dashboardButton(a); b != nil {
		blocks = append(blocks, b)
	}
	return blocks
}

// ParentText is the plain fallback of the parent message.
func ParentText(d alerting.Decision) string {
	if kind(d) == alerting.KindDrift && d.Step != alerting.StepResolve {
		return Text(d.Alert)
	}
	return clipMrkdwn(escape(headline(d)+" ("+alerting.FormatWindow(d.Alert.WindowStart, d.Alert.WindowEnd)+")"), maxFallbackText)
}

// ReplyBlocks renders the decision as a follow-up in the episode's thread:
// what changed in the window, then the features drifting now.
func ReplyBlocks(d alerting.Decision) []slackapi.Block {
	a := d.Alert
	lines := []string{"*" + escape(replyTitle(d)) + "* — " + escape(alerting.FormatWindow(a.WindowStart, a.WindowEnd))}
	now, gone := changeWords(d)
	if len(d.New) > 0 {
		lines = append(lines, nameList(":chart_with_upwards_trend: "+now+": ", d.New))
	}
	if ended(d) {
		lines = append(lines, endedLine(d))
	} else if len(d.Resolved) > 0 {
		lines = append(lines, nameList(":white_check_mark: "+gone+": ", d.Resolved))
	}
	if kind(d) == alerting.KindObjective && d.Step != alerting.StepResolve {
		for _, c := range a.Drifted {
			lines = append(lines, "*"+escape(clip(c.Feature, maxNameRunes))+"* — "+escape(c.Summary))
		}
	}
	blocks := []slackapi.Block{slackapi.NewSectionBlock(mrkdwn(clipMrkdwn(strings.Join(lines, "\n"), maxSectionText)), nil, nil)}
	if d.Step == alerting.StepResolve || kind(d) != alerting.KindDrift {
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
func ReplyText(d alerting.Decision) string {
	s := replyTitle(d) + " (" + alerting.FormatWindow(d.Alert.WindowStart, d.Alert.WindowEnd) + ")"
	now, gone := changeWords(d)
	if len(d.New) > 0 {
		s += "; " + strings.ToLower(now) + ": " + strings.Join(d.New, ", ")
	}
	if ended(d) {
		s += "; " + d.Reason
	} else if len(d.Resolved) > 0 {
		s += "; " + strings.ToLower(gone) + ": " + strings.Join(d.Resolved, ", ")
	}
	return clipMrkdwn(escape(s), maxFallbackText)
}

// changeWords name what a follow-up's new and resolved members are: features that
// drift, or objectives breached.
func changeWords(d alerting.Decision) (now, gone string) {
	if kind(d) == alerting.KindObjective {
		return "Now breached", "Met again"
	}
	return "Now drifting", "No longer drifting"
}

// ended reports whether d ends its episode for a reason other than its features
// no longer drifting (a superseded model version): then the reason is shown
// instead of the features, which did not stop drifting.
func ended(d alerting.Decision) bool { return d.Step == alerting.StepResolve && d.Reason != "" }

// endedLine is the line that says why an ended episode ended, e.g.
// ":arrows_counterclockwise: Superseded by version 3.3.0: …".
func endedLine(d alerting.Decision) string {
	return ":arrows_counterclockwise: " + escape(strings.ToUpper(d.Reason[:1])+d.Reason[1:])
}

func kind(d alerting.Decision) alerting.Kind {
	if d.Kind == "" {
		return alerting.KindDrift
	}
	return d.Kind
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
func headline(d alerting.Decision) string {
	n := name(d.Alert)
	switch {
	case ended(d):
		clause, _, _ := strings.Cut(d.Reason, ":")
		return ":arrows_counterclockwise: " + n + ": " + clause
	case d.Step == alerting.StepResolve && kind(d) == alerting.KindDrift:
		return ":white_check_mark: Resolved: drift in " + n
	case d.Step == alerting.StepResolve && kind(d) == alerting.KindNoData:
		return ":white_check_mark: Data flows again: " + n
	case d.Step == alerting.StepResolve && kind(d) == alerting.KindPerformance:
		return ":white_check_mark: Performance within its rule again: " + n
	case d.Step == alerting.StepResolve && kind(d) == alerting.KindBlind:
		return ":white_check_mark: Windows close again: " + n
	case d.Step == alerting.StepResolve && kind(d) == alerting.KindObjective:
		return ":white_check_mark: Objectives met again: " + n
	case kind(d) == alerting.KindObjective:
		return ":stopwatch: Objective breached: " + n
	case kind(d) == alerting.KindBlind:
		return ":see_no_evil: Events read but not judged: " + n
	case kind(d) == alerting.KindPerformance:
		return ":chart_with_downwards_trend: Performance degraded: " + n
	case d.Step == alerting.StepResolve:
		return ":white_check_mark: Resolved: data loss in " + n
	case kind(d) == alerting.KindNoData:
		return ":warning: No data from " + n
	default:
		return ":warning: Data loss in " + n
	}
}

func replyTitle(d alerting.Decision) string {
	switch {
	case ended(d):
		return "Ended"
	case d.Step == alerting.StepResolve:
		return "Resolved"
	case d.Step == alerting.StepRepeat && kind(d) == alerting.KindDrift:
		return "Still drifting"
	case d.Step == alerting.StepRepeat:
		return "Still no data"
	case kind(d) != alerting.KindDrift:
		return "Update"
	case d.Alert.Severity != "" && len(d.New) == 0 && len(d.Resolved) == 0:
		return "Update: now " + string(d.Alert.Severity)
	default:
		return "Update"
	}
}

// status is the one-line state of the episode under the parent's header.
func status(d alerting.Decision) string {
	a := d.Alert
	var b strings.Builder
	if d.Step == alerting.StepResolve {
		if ended(d) {
			b.WriteString("*Ended* at " + clock(a.WindowEnd, d.Started))
		} else {
			b.WriteString("*Resolved* at " + clock(a.WindowEnd, d.Started))
		}
		if !d.Started.IsZero() {
			b.WriteString(" after " + span(a.WindowEnd.Sub(d.Started)) + " (fired " + clock(d.Started, a.WindowEnd) + ")")
		}
		if a.Severity != "" {
			b.WriteString(" · was " + string(a.Severity))
		}
		return b.String()
	}
	b.WriteString("*Firing*")
	if !d.Started.IsZero() {
		b.WriteString(" since " + clock(d.Started, a.WindowEnd))
	}
	one, many := "feature drifting", "features drifting"
	if kind(d) == alerting.KindObjective {
		one, many = "objective breached", "objectives breached"
	}
	if k := kind(d); k == alerting.KindDrift || k == alerting.KindObjective {
		if n := len(a.Drifted); n == 1 {
			b.WriteString(" · 1 " + one)
		} else {
			b.WriteString(" · " + alerting.FormatCount(int64(n)) + " " + many)
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
