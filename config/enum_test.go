package config

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// enumFields are the fields with an enum tag, each with its path in enumDoc and the
// value it has there unless it is the one under test.
var enumFields = map[string]struct{ path, normal string }{
	"Kafka.StartOffset":     {"kafka.start_offset", "earliest"},
	"SASL.Mechanism":        {"kafka.sasl.mechanism", "PLAIN"},
	"SASL.ClientAuthMethod": {"kafka.sasl.client_auth_method", "client_secret_basic"},
	"Stream.Format":         {"streams[0].format", "json"},
	"Field.Type":            {"streams[0].features.a.type", "numeric"},
	"Labels.Kind":           {"streams[0].labels.kind", "classification"},
	"Performance.Metric":    {"streams[0].performance.metric", "roc_auc"},
	"Webhook.Format":        {"alerting.webhooks[0].format", "json"},
	"Webhook.Signing":       {"alerting.webhooks[0].signing", "standard"},
}

var (
	// mustBe is the list of accepted values in a refusal, before a kind's qualifier.
	mustBe       = regexp.MustCompile(`must be (.*?)( for [a-z]+ labels)?, got `)
	acceptedWord = regexp.MustCompile(`"?[A-Za-z0-9_-]+"?`)
)

const enumDoc = `
kafka: {brokers: ["k:9092"], start_offset: Kafka.StartOffset, sasl: {mechanism: SASL.Mechanism, username: u, password: p, client_auth_method: SASL.ClientAuthMethod}}
streams:
  - name: s
    topic: t
    format: Stream.Format
    features: {a: {type: Field.Type}}
    predictions: {p: {type: numeric}}
    window: {size: 1h}
    event_id: id
    labels: {topic: l, event_id: id, label: y, kind: Labels.Kind}
    performance: {metric: Performance.Metric}
alerting:
  webhooks:
    - {name: w, url: "http://127.0.0.1:9/", format: Webhook.Format, signing: Webhook.Signing, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
`

// TestEnumTagsAreWhatLoadAccepts checks the enum tags, from which the JSON Schema takes
// its lists, against Parse: every listed value is accepted at its path, and a value
// not listed is refused there. A tag that falls behind the validation fails here.
func TestEnumTagsAreWhatLoadAccepts(t *testing.T) {
	tags := map[string][]string{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || tags[t.Name()] != nil {
			return
		}
		tags[t.Name()] = []string{} // visited
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if e := f.Tag.Get("enum"); e != "" {
				tags[t.Name()+"."+f.Name] = strings.Split(e, ",")
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Config{}))
	for field, values := range tags {
		if !strings.Contains(field, ".") {
			continue
		}
		ef, ok := enumFields[field]
		if !ok {
			t.Errorf("%s has an enum tag: add it to enumFields and enumDoc", field)
			continue
		}
		for _, v := range append(slices.Clone(values), "not-a-value") {
			doc := enumDoc
			for f, other := range enumFields {
				val := other.normal
				if f == field {
					val = v
				}
				doc = strings.ReplaceAll(doc, f, val)
			}
			if field == "Performance.Metric" && slices.Contains(RegressionMetrics, v) {
				doc = strings.Replace(doc, "kind: classification", "kind: regression", 1)
			}
			_, err := Parse([]byte(doc), ParseOptions{})
			refused := err != nil && slices.ContainsFunc(strings.Split(err.Error(), "\n"), func(l string) bool {
				return strings.HasPrefix(l, ef.path+": ")
			})
			if want := v == "not-a-value"; refused != want {
				t.Errorf("%s = %q: refused %v, want %v (%v)", ef.path, v, refused, want, err)
			}
			if v != "not-a-value" || err == nil {
				continue
			}
			// The refusal lists what is accepted: the tag must not leave one out.
			for _, l := range strings.Split(err.Error(), "\n") {
				m := mustBe.FindStringSubmatch(l)
				if m == nil || !strings.HasPrefix(l, ef.path+": ") {
					continue
				}
				for _, w := range acceptedWord.FindAllString(m[1], -1) {
					if w = strings.Trim(w, `"`); !slices.Contains([]string{"one", "of", "or"}, w) && !slices.Contains(values, w) {
						t.Errorf("%s accepts %q, which its enum tag lacks", ef.path, w)
					}
				}
			}
		}
	}
}
