package main

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// validator checks a YAML document, decoded into any, against the subset of JSON Schema
// schemagen writes: $ref to definitions, type, properties, additionalProperties (false
// or a schema), required, enum, items and pattern. A keyword it does not know is a
// problem of its own, so that the schema cannot grow a rule these tests skip.
type validator struct {
	root map[string]any
	errs []string
}

// known are the keywords the validator checks or that carry no rule.
var known = []string{"$schema", "$ref", "title", "description", "definitions", "type", "properties",
	"additionalProperties", "required", "enum", "items", "pattern"}

func (v *validator) bad(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("%s: %s", cmpPath(path), fmt.Sprintf(format, args...)))
}

func cmpPath(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func (v *validator) check(s map[string]any, val any, path string) {
	for k := range s {
		if !slices.Contains(known, k) {
			v.bad(path, "the schema uses %q, which this validator does not check", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/definitions/")
		def, ok := v.root["definitions"].(map[string]any)[name].(map[string]any)
		if !found || !ok {
			v.bad(path, "unresolvable $ref %q", ref)
			return
		}
		v.check(def, val, path)
		return
	}
	if t, ok := s["type"].(string); ok && !hasType(t, val) {
		v.bad(path, "want %s, got %T %v", t, val, val)
		return
	}
	if e, ok := s["enum"].([]any); ok && !slices.Contains(e, val) {
		v.bad(path, "%v is not one of %v", val, e)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, _ := val.(string); !regexp.MustCompile(p).MatchString(str) {
			v.bad(path, "%q does not match %s", str, p)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		arr, _ := val.([]any)
		for i, x := range arr {
			v.check(items, x, fmt.Sprintf("%s[%d]", path, i))
		}
	}
	obj, isObj := val.(map[string]any)
	if !isObj {
		return
	}
	props, _ := s["properties"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if ps, ok := props[k].(map[string]any); ok {
			v.check(ps, obj[k], p)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				v.bad(p, "unknown key")
			}
		case map[string]any:
			v.check(ap, obj[k], p)
		}
	}
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				v.bad(path, "%s is required", r)
			}
		}
	}
}

// hasType reports whether val, as yaml.v3 decodes into any, is of JSON Schema type t.
func hasType(t string, val any) bool {
	switch t {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "integer":
		switch x := val.(type) {
		case int:
			return true
		case float64:
			return x == math.Trunc(x)
		}
	case "number":
		switch val.(type) {
		case int, float64:
			return true
		}
	}
	return false
}

func validate(schema map[string]any, doc any) []string {
	v := &validator{root: schema}
	v.check(schema, doc, "")
	sort.Strings(v.errs)
	return v.errs
}
