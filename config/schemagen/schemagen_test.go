package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const schemaFile = "../driftmon.schema.json"

// TestSchemaIsUpToDate regenerates the schema from the config types: the committed file
// must be what they give today, byte for byte.
func TestSchemaIsUpToDate(t *testing.T) {
	got, err := generate("..")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `go generate ./config` and commit it", schemaFile)
	}
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeYAML(t *testing.T, data []byte) any {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// validConfigs are the configs driftmon accepts: the example, examples/configs and
// config/testdata's valid ones.
var validConfigs = []string{"../example.yaml", "../../examples/configs/*.yaml", "../testdata/valid.yaml", "../testdata/valid_oauth.yaml"}

// TestExampleConfigsMatchSchema checks that an editor that reads the schema raises
// nothing on a config driftmon accepts.
func TestExampleConfigsMatchSchema(t *testing.T) {
	schema := loadSchema(t)
	var files []string
	for _, g := range validConfigs {
		m, err := filepath.Glob(g)
		if err != nil || len(m) == 0 {
			t.Fatalf("%s matches nothing (%v)", g, err)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if errs := validate(schema, decodeYAML(t, data)); len(errs) > 0 {
			t.Errorf("%s does not match the schema:\n%s", f, strings.Join(errs, "\n"))
		}
	}
}

// TestSchemaRejects checks that the schema flags, at their paths, the mistakes an
// editor should underline: unknown and misspelt keys, wrong types, values outside an
// enum, malformed durations and missing required keys.
func TestSchemaRejects(t *testing.T) {
	schema := loadSchema(t)
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", `
kafka: {brokers: ["k:9092"], sasl: {mechanism: PLAIN, username: u, pasword: p}}
streams: [{name: s, topic: t, features: {a: {type: numeric}}, window: {size: 1h}}]
`, []string{"kafka.sasl.pasword: unknown key"}},
		{"enum", `
kafka: {brokers: ["k:9092"], sasl: {mechanism: GSSAPI}, start_offset: newest}
streams: [{name: s, topic: t, format: protobuf, features: {a: {type: number}}, window: {size: 1h}}]
`, []string{
			"kafka.sasl.mechanism: GSSAPI is not one of",
			"kafka.start_offset: newest is not one of",
			"streams[0].features.a.type: number is not one of",
			"streams[0].format: protobuf is not one of",
		}},
		{"types and durations", `
kafka: {brokers: "k:9092"}
streams: [{name: s, topic: t, features: {a: {type: numeric}}, window: {size: 3600, rows: many, lateness: 5 minutes}}]
http: {max_connections: 1.5}
`, []string{
			"http.max_connections: want integer",
			"kafka.brokers: want array",
			"streams[0].window.lateness: \"5 minutes\" does not match",
			"streams[0].window.rows: want integer",
			"streams[0].window.size: want string",
		}},
		{"required", `
kafka: {brokers: ["k:9092"]}
streams: [{topic: t, features: {a: {}}, window: {size: 1h}}]
alerting: {webhooks: [{name: w}]}
`, []string{
			"alerting.webhooks[0]: url is required",
			"streams[0]: name is required",
			"streams[0].features.a: type is required",
		}},
		{"no streams", `kafka: {brokers: ["k:9092"]}`, []string{"(root): streams is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := validate(schema, decodeYAML(t, []byte(tt.doc)))
			for _, want := range tt.want {
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, want) }) {
					t.Errorf("no problem %q; got:\n%s", want, strings.Join(errs, "\n"))
				}
			}
			if len(errs) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(errs), len(tt.want), strings.Join(errs, "\n"))
			}
		})
	}
}

// TestSchemaRejectsInvalidTestdata checks the schema against config/testdata's configs
// that driftmon rejects for their keys or types: the editor flags them too.
func TestSchemaRejectsInvalidTestdata(t *testing.T) {
	schema := loadSchema(t)
	for _, f := range []string{"unknown_keys.yaml", "bad_type.yaml"} {
		data, err := os.ReadFile(filepath.Join("../testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if errs := validate(schema, decodeYAML(t, data)); len(errs) == 0 {
			t.Errorf("%s matches the schema", f)
		}
	}
}
