package config

import (
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// Secret fields carry the struct tag secret:"true": their values never appear in an
// error, whatever the field they were typed into.

// Redact returns s, a message about c, with the value of every secret field of c
// replaced by "***" and every URL in it redacted (the password or token in it, query values, and the path past its first segment). Problems found while
// loading a config are redacted already; Redact is for messages built later from it,
// such as the errors of components constructed from it.
func (c *Config) Redact(s string) string {
	var secrets []string
	if c != nil {
		secrets = secretValues(reflect.ValueOf(c), nil)
	}
	return redact(s, secrets)
}

// redact replaces secrets in s, then redacts its URLs. A secret shorter than
// minSecretLen is replaced only where it is a whole quoted value ("abc"): replacing
// every "abc" in a message would make it unreadable.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		forms := []string{v}
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			forms = append(forms, q[1:len(q)-1]) // as %q prints it
		}
		for _, f := range forms {
			if len(v) < minSecretLen {
				f = `"` + f + `"`
			}
			s = strings.ReplaceAll(s, f, "***")
		}
	}
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(u string) string {
		// Punctuation that ends a sentence is not part of the URL.
		trimmed := strings.TrimRight(u, ".,;:!?)]")
		return redactURL(trimmed) + u[len(trimmed):]
	})
}

const minSecretLen = 6

// urlPattern finds URLs in free text: a scheme, "://", then up to a space, a quote, a
// backslash (of a quoted string's escape) or an angle bracket.
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>\\]+`)

// redactURL returns raw with what may be a credential replaced by "***": the password
// of the user information (or the user, when alone: a token), every query value, the
// fragment, and the path past its first segment (an incoming-webhook URL, Slack's among
// them, carries its secret in the path). What is kept, the scheme, host, port and first
// path segment, is what tells a mistyped URL apart. Text that does not parse as a URL
// keeps only its scheme.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		if i := strings.Index(raw, "://"); i >= 0 {
			return raw[:i] + "://***"
		}
		return "***"
	}
	var b strings.Builder
	b.WriteString(raw[:strings.Index(raw, "://")]) // as written: url.Parse lower-cases it
	b.WriteString("://")
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			b.WriteString(url.PathEscape(u.User.Username()))
			b.WriteString(":***@")
		} else {
			b.WriteString("***@")
		}
	}
	b.WriteString(u.Host)
	if p := u.EscapedPath(); p != "" {
		first, rest, more := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		b.WriteString("/")
		b.WriteString(first)
		if more && rest != "" {
			b.WriteString("/***")
		} else if more {
			b.WriteString("/")
		}
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?")
		for i, kv := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteString("&")
			}
			if k, _, ok := strings.Cut(kv, "="); ok {
				b.WriteString(k)
				b.WriteString("=***")
			} else if kv != "" {
				b.WriteString("***")
			}
		}
	}
	if u.Fragment != "" {
		b.WriteString("#***")
	}
	return b.String()
}

// secretValues appends the values of the secret fields in v.
func secretValues(v reflect.Value, out []string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			out = secretValues(v.Elem(), out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if isSecret(f) && f.Type.Kind() == reflect.String {
				out = append(out, v.Field(i).String())
				continue
			}
			out = secretValues(v.Field(i), out)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			out = secretValues(v.Index(i), out)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			out = secretValues(iter.Value(), out)
		}
	}
	return out
}

func isSecret(f reflect.StructField) bool { return f.Tag.Get("secret") == "true" }
