package slacktest

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Render turns a Block Kit JSON array into the text a person reads in
// Slack, in Markdown: the header as a bold line, sections and their fields,
// context lines, dividers, and buttons as "[Open dashboard](url)". Slack
// entities, links and common emoji are decoded. Unknown blocks are skipped;
// invalid JSON renders as "".
func Render(blocks json.RawMessage) string {
	var bs []struct {
		Type     string            `json:"type"`
		Text     *textObject       `json:"text"`
		Fields   []textObject      `json:"fields"`
		Elements []json.RawMessage `json:"elements"`
	}
	if len(blocks) == 0 || json.Unmarshal(blocks, &bs) != nil {
		return ""
	}
	var b strings.Builder
	for _, bl := range bs {
		switch bl.Type {
		case "header":
			if bl.Text != nil {
				b.WriteString("**" + readable(bl.Text.Text) + "**\n")
			}
		case "section":
			if bl.Text != nil {
				b.WriteString(mrkdwn(*bl.Text) + "\n")
			}
			for _, f := range bl.Fields {
				b.WriteString("  " + strings.ReplaceAll(mrkdwn(f), "\n", " ") + "\n")
			}
		case "context":
			var parts []string
			for _, raw := range bl.Elements {
				var t textObject
				if json.Unmarshal(raw, &t) == nil && t.Text != "" {
					parts = append(parts, mrkdwn(t))
				}
			}
			if len(parts) > 0 {
				b.WriteString(strings.Join(parts, " · ") + "\n")
			}
		case "divider":
			b.WriteString("---\n")
		case "actions":
			var parts []string
			for _, raw := range bl.Elements {
				var e element
				if json.Unmarshal(raw, &e) != nil || e.Text == nil {
					continue
				}
				if e.URL != "" {
					parts = append(parts, "["+readable(e.Text.Text)+"]("+e.URL+")")
				} else {
					parts = append(parts, "["+readable(e.Text.Text)+"]")
				}
			}
			if len(parts) > 0 {
				b.WriteString(strings.Join(parts, "  ") + "\n")
			}
		}
	}
	return b.String()
}

var (
	slackLink  = regexp.MustCompile(`<([^|<>]+)\|([^<>]+)>`)
	slackBold  = regexp.MustCompile(`\*([^*\n]+)\*`)
	emojiCodes = strings.NewReplacer(
		":rotating_light:", "🚨",
		":warning:", "⚠️",
		":white_check_mark:", "✅",
		":hourglass:", "⌛",
		":chart_with_upwards_trend:", "📈",
	)
	entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
)

// mrkdwn renders a text object: Slack's *bold* becomes **bold**, <url|text>
// becomes [text](url); plain_text is shown as is.
func mrkdwn(t textObject) string {
	if t.Type != "mrkdwn" {
		return readable(t.Text)
	}
	s := slackLink.ReplaceAllString(t.Text, "[$2]($1)")
	s = slackBold.ReplaceAllString(s, "**$1**")
	return readable(s)
}

func readable(s string) string { return emojiCodes.Replace(unescape(s)) }

func unescape(s string) string { return entities.Replace(s) }
