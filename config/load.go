package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, expands, checks and defaults the config file at path. The error, if any,
// joins every problem found, each naming its path in the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(data, ParseOptions{Dir: filepath.Dir(path), LookupEnv: os.LookupEnv})
}

// ParseOptions are the outside world a config refers to.
type ParseOptions struct {
	// Dir is where relative paths (baselines, *_file secrets) are resolved from.
	Dir string
	// LookupEnv resolves ${NAME}; nil means no variable is set.
	LookupEnv func(string) (string, bool)
}

// Parse is Load on bytes already read.
func Parse(data []byte, opts ParseOptions) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("cannot parse config: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("cannot parse config: the file is empty")
	}
	var errs []error
	doc := root.Content[0]
	expandEnv(doc, "", opts.LookupEnv, &errs)
	mismatched := checkKeys(doc, reflect.TypeOf(Config{}), "", false, &errs)
	if mismatched {
		// A value does not fit its type; checks on the decoded values would only
		// repeat these problems in other words.
		return nil, joinRedacted(errs, nil)
	}
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		// checkKeys reports every mismatch it knows by path; this is the rest.
		return nil, fmt.Errorf("cannot decode config: %w", err)
	}
	cfg.readSecrets(opts.Dir, &errs)
	cfg.resolvePaths(opts.Dir)
	cfg.setDefaults()
	cfg.validate(&errs)
	if len(errs) > 0 {
		return nil, joinRedacted(errs, secretValues(reflect.ValueOf(&cfg), nil))
	}
	return &cfg, nil
}

// joinRedacted joins errs with every secret value and URL credential redacted: a value
// echoed in a problem may be a secret typed into the wrong field (a webhook URL in
// format, a token in start_offset).
func joinRedacted(errs []error, secrets []string) error {
	for i, err := range errs {
		if msg := err.Error(); redact(msg, secrets) != msg {
			errs[i] = errors.New(redact(msg, secrets))
		}
	}
	return errors.Join(errs...)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} in every scalar value, so a missing variable can be
// reported with the path of the value that needs it.
func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool), errs *[]error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := ref[2 : len(ref)-1]
			if lookup != nil {
				if v, ok := lookup(name); ok {
					return v
				}
			}
			*errs = append(*errs, fmt.Errorf("%s: environment variable %s is not set", path, name))
			return ""
		})
		// A substituted value is data, never YAML: keep it a plain string so that
		// "${PORT}" can still become a number but a value never changes the tree.
		if n.Tag == "" || n.Tag == "!" {
			n.Tag = ""
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), lookup, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup, errs)
		}
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			expandEnv(c, path, lookup, errs)
		}
	}
}

// checkKeys walks the YAML tree beside the Go type it decodes into and reports every key
// the type does not have. yaml.v3's own strict mode stops at line numbers and cannot be
// used on a node; this reports paths.
// It returns whether any value has the wrong type, which stops decoding. The value of a
// secret field is never quoted in a problem.
func checkKeys(n *yaml.Node, t reflect.Type, path string, secret bool, errs *[]error) (mismatched bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return false // An empty value leaves the default.
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64, reflect.String:
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			got := fmt.Sprintf(", got %q", n.Value)
			switch {
			case n.Kind == yaml.SequenceNode:
				got = ", got a list"
			case n.Kind == yaml.MappingNode:
				got = ", got a mapping"
			case secret:
				got = " (the value is not shown: the field is a secret)"
			}
			*errs = append(*errs, fmt.Errorf("%s: want %s%s (line %d)", path, kindName(t), got, n.Line))
			return true
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("%s: want a mapping (line %d)", path, n.Line))
			return true
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f, ok := fields[key]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown field (line %d)", join(path, key), n.Content[i].Line))
				continue
			}
			mismatched = checkKeys(n.Content[i+1], f.Type, join(path, key), isSecret(f), errs) || mismatched
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("%s: want a list (line %d)", path, n.Line))
			return true
		}
		for i, c := range n.Content {
			mismatched = checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), secret, errs) || mismatched
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("%s: want a mapping (line %d)", path, n.Line))
			return true
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			mismatched = checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), secret, errs) || mismatched
		}
	}
	return mismatched
}

func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration such as 1h or 30s"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a string"
}

// YAMLKey is the key a config struct field has in YAML, as the decoder reads it (its
// yaml tag, or its lower-cased name), and false for a field YAML does not set. The
// schema generator names fields by it too.
func YAMLKey(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, ok := YAMLKey(f); ok {
			m[name] = f
		}
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// readSecrets replaces every *_file with the file's content, trimmed of surrounding
// white space. A secret's value never appears in an error.
func (c *Config) readSecrets(dir string, errs *[]error) {
	read := func(path, file string, dst *string) {
		if file == "" {
			return
		}
		if *dst != "" {
			*errs = append(*errs, fmt.Errorf("%s: set either the value or the file, not both", path))
			return
		}
		b, err := os.ReadFile(resolve(dir, file))
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: cannot read secret: %w", path, err))
			return
		}
		*dst = strings.TrimSpace(string(b))
	}
	if s := c.Alerting.Slack; s != nil {
		read("alerting.slack.token_file", s.TokenFile, &s.Token)
		read("alerting.slack.webhook_url_file", s.WebhookURLFile, &s.WebhookURL)
	}
	if a := c.Kafka.SASL; a != nil {
		read("kafka.sasl.password_file", a.PasswordFile, &a.Password)
		read("kafka.sasl.client_secret_file", a.ClientSecretFile, &a.ClientSecret)
	}
	for i := range c.Streams {
		if r := c.Streams[i].SchemaRegistry; r != nil {
			read("streams["+strconv.Itoa(i)+"].schema_registry.password_file", r.PasswordFile, &r.Password)
		}
	}
	for i := range c.Alerting.Webhooks {
		w := &c.Alerting.Webhooks[i]
		p := "alerting.webhooks[" + strconv.Itoa(i) + "]"
		read(p+".secret_file", w.SecretFile, &w.Secret)
		read(p+".bearer_token_file", w.BearerTokenFile, &w.BearerToken)
		read(p+".basic_password_file", w.BasicPasswordFile, &w.BasicPassword)
		read(p+".header_value_file", w.HeaderValueFile, &w.HeaderValue)
	}
}

func (c *Config) resolvePaths(dir string) {
	c.State.Path = resolve(dir, c.State.Path)
	if t := c.Kafka.TLS; t != nil {
		t.CAFile, t.CertFile, t.KeyFile = resolve(dir, t.CAFile), resolve(dir, t.CertFile), resolve(dir, t.KeyFile)
	}
	if a := c.Kafka.SASL; a != nil {
		a.TokenFile = resolve(dir, a.TokenFile)
	}
	for i := range c.Streams {
		if b := c.Streams[i].Reference.Baseline; b != "" {
			c.Streams[i].Reference.Baseline = resolve(dir, b)
		}
		if t := c.Streams[i].Reference.PerVersion; t != "" {
			c.Streams[i].Reference.PerVersion = resolve(dir, t)
		}
	}
}

// resolve makes p relative to dir. A URL is left as it is, for validate to reject
// whole: joined to a directory, "https://" would become "https:/".
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(dir, p)
}
