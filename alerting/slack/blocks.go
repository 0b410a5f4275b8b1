// Package slack posts drift alerts to Slack, through a bot token
// (chat.postMessage) or an incoming webhook, as Block Kit messages that stay
// within Slack's limits whatever the size of the alert.
//
// It owns the rendering of an episode's decisions (alerting.Decision) and one
// call to Slack per method, spaced by Slack's per-channel rate; it does not retry
// (the outbox does) and follows no redirect. It imports alerting and chart only:
// not the policy (which makes the decisions), not the outbox, and nothing under
// internal/.
package slack

import (
	"sort"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks) and
// our own readability caps.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxHeaderText      = 150
	maxFieldText       = 2000
	maxButtonText      = 75
	maxButtonURL       = 3000
	maxFallbackText    = 3000
	maxFeatureSections = 20  // drifted features shown one section each
	maxNameRunes       = 200 // a feature name longer than this is cut
)

// Blocks renders the alert as Block Kit blocks: a header, the window facts,
// one section per drifted feature (the strongest maxFeatureSections, then a
// "…and N more" line), the stable and insufficient features, and a
// dashboard button. The result never exceeds Slack's limits (50 blocks,
// 3000 characters per section, 150 per header, 10 fields of ≤2000).
func Blocks(a alerting.Alert) []slackapi.Block {
	blocks := make([]slackapi.Block, 0, maxFeatureSections+8)

	blocks = append(blocks, slackapi.NewHeaderBlock(
		slackapi.NewTextBlockObject(slackapi.PlainTextType, clip(emoji(a.Severity)+" "+a.Title(), maxHeaderText), true, false),
	))

	fields := []*slackapi.TextBlockObject{
		mrkdwn(clipMrkdwn("*Window*\n"+escape(alerting.FormatWindow(a.WindowStart, a.WindowEnd)), maxFieldText)),
		mrkdwn(clipMrkdwn("*Stream*\n"+escape(orDash(a.Stream)), maxFieldText)),
		mrkdwn(clipMrkdwn("*Rows*\n"+alerting.FormatCount(a.Rows), maxFieldText)),
		mrkdwn(clipMrkdwn("*Reference*\n"+escape(orDash(a.Reference)), maxFieldText)),
	}
	blocks = append(blocks, slackapi.NewSectionBlock(nil, fields, nil))
	blocks = append(blocks, slackapi.NewDividerBlock())

	drifted := ranked(a.Drifted)
	shown := drifted
	if len(shown) > maxFeatureSections {
		shown = shown[:maxFeatureSections]
	}
	for i, c := range shown {
		if inSegment(c) && (i == 0 || !inSegment(shown[i-1])) {
			// A segment's drift is part of the model's episode, listed after the whole
			// traffic's under a line of its own.
			blocks = append(blocks, contextBlock(":mag: Within segments (feature@key=value, with the segment's share of the rows):"))
		}
		text := "*" + escape(clip(c.Feature, maxNameRunes)) + "* — " + escape(c.Headline())
		if s := strings.TrimSpace(c.Summary); s != "" {
			text += "\n" + escape(s)
		}
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(clipMrkdwn(text, maxSectionText)), nil, nil))
	}
	if rest := drifted[len(shown):]; len(rest) > 0 {
		names := make([]string, len(rest))
		for i, c := range rest {
			names[i] = c.Feature
		}
		blocks = append(blocks, contextBlock(nameList("…and "+alerting.FormatCount(int64(len(rest)))+" more drifted: ", names)))
	}
	if len(a.Drifted) == 0 {
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn("No feature drifted."), nil, nil))
	}

	if len(a.Stable) > 0 {
		blocks = append(blocks, contextBlock(nameList(":white_check_mark: Stable (checked, no drift): ", a.Stable)))
	}
	if len(a.Insufficient) > 0 {
		blocks = append(blocks, contextBlock(nameList(":hourglass: Insufficient data: ", a.Insufficient)))
	}

	if u := a.DashboardURL; u != "" && utf8.RuneCountInString(u) <= maxButtonURL {
		button := slackapi.NewButtonBlockElement("open_dashboard", "", slackapi.NewTextBlockObject(slackapi.PlainTextType, "Open dashboard", true, false)).WithURL(u)
		blocks = append(blocks, slackapi.NewActionBlock("", button))
	}
	if len(blocks) > maxBlocks {
		panic("BUG: slack blocks exceed the Block Kit limit") // the caps above make this unreachable
	}
	return blocks
}

// Text is the plain fallback of the message (Slack's "text" field), shown in
// notifications and by clients that cannot render blocks.
func Text(a alerting.Alert) string {
	var b strings.Builder
	b.WriteString(emoji(a.Severity) + " " + a.Title() + " (" + alerting.FormatWindow(a.WindowStart, a.WindowEnd) + ")")
	if len(a.Drifted) > 0 {
		names := make([]string, 0, len(a.Drifted))
		for _, c := range ranked(a.Drifted) {
			names = append(names, clip(c.Feature, maxNameRunes))
		}
		b.WriteString(": drifted " + strings.Join(names, ", "))
	}
	return clipMrkdwn(escape(b.String()), maxFallbackText)
}

// inSegment reports whether c is about one segment's rows: its feature is
// "feature@key=value" (detectors.SegmentName).
func inSegment(c alerting.Change) bool {
	_, seg, ok := strings.Cut(c.Feature, "@")
	return ok && strings.Contains(seg, "=")
}

// ranked returns the whole traffic's changes, then the segments', each strongest
// first: by score over threshold when a threshold is known, so KS and PSI compare
// on one scale. The sort is stable, keeping the caller's order among equals.
func ranked(in []alerting.Change) []alerting.Change {
	out := append([]alerting.Change(nil), in...)
	strength := func(c alerting.Change) float64 {
		s := c.Score
		if c.Threshold > 0 {
			s /= c.Threshold
		}
		if s != s { // NaN sorts last
			return -1
		}
		return s
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := inSegment(out[i]), inSegment(out[j]); a != b {
			return b
		}
		return strength(out[i]) > strength(out[j])
	})
	return out
}

// nameList is prefix followed by as many comma-separated names as fit in a
// section, then "… and N more".
func nameList(prefix string, names []string) string {
	var b strings.Builder
	b.WriteString(escape(prefix))
	n := utf8.RuneCountInString(b.String())
	const reserve = 40 // room for "… and 1,000,000 more"
	for i, name := range names {
		part := escape(clip(name, maxNameRunes))
		if i > 0 {
			part = ", " + part
		}
		l := utf8.RuneCountInString(part)
		if n+l > maxSectionText-reserve {
			b.WriteString(" … and " + alerting.FormatCount(int64(len(names)-i)) + " more")
			return b.String()
		}
		n += l
		b.WriteString(part)
	}
	return b.String()
}

func contextBlock(text string) *slackapi.ContextBlock {
	return slackapi.NewContextBlock("", mrkdwn(clipMrkdwn(text, maxSectionText)))
}

func mrkdwn(text string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false)
}

func emoji(s alerting.Severity) string {
	if s == alerting.SeverityWarning {
		return ":warning:"
	}
	return ":rotating_light:"
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// escape makes user text safe in mrkdwn: Slack requires &, < and > to be
// sent as entities, otherwise "<" starts a link or mention.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// clip shortens s to at most n runes, ending with "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// clipMrkdwn is clip for escaped text: it never leaves half an entity
// ("&am…") at the cut.
func clipMrkdwn(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return cut + "…"
}
