// Command schemagen writes the JSON Schema of driftmon.yaml, config/driftmon.schema.json,
// for editors' completion and checks (yaml-language-server's modeline). It reads the
// config types by reflection (their yaml and enum tags) and their doc comments from the
// config package's source, which reflection cannot see:
//
//	go generate ./config    (or: go run ./config/schemagen -dir config -o config/driftmon.schema.json)
//
// The schema is as strict as Load about keys (unknown ones are errors) and types; the
// checks across fields (a secret's value and its file, window size or rows) stay Load's.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/driftmon/driftmon/config"
)

func main() {
	dir := flag.String("dir", "config", "directory of the config package's source, for the doc comments")
	out := flag.String("o", "", "file to write (default: stdout)")
	flag.Parse()
	b, err := generate(*dir)
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

// Schema is the subset of JSON Schema (draft-07) schemagen writes, in the order its
// keys are written.
type Schema struct {
	Schema      string   `json:"$schema,omitempty"`
	Title       string   `json:"title,omitempty"`
	Ref         string   `json:"$ref,omitempty"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Items       *Schema  `json:"items,omitempty"`
	Properties  Props    `json:"properties,omitempty"`
	// AdditionalProperties is false (no other key) or the schema of every value.
	AdditionalProperties any                `json:"additionalProperties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Definitions          map[string]*Schema `json:"definitions,omitempty"`
}

// Prop is one property, Props the properties in the Go struct's field order.
type (
	Prop struct {
		Name   string
		Schema *Schema
	}
	Props []Prop
)

// MarshalJSON writes the properties as an object in their order.
func (ps Props) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.Name)
		v, err := marshal(p.Schema)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // descriptions hold <name> and →
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// durationPattern is what time.ParseDuration accepts, as yaml decodes a time.Duration.
const durationPattern = `^[-+]?(0|([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+)$`

// generate returns the schema of config.Config, indented, with the doc comments of the
// config package's source in dir as descriptions.
func generate(dir string) ([]byte, error) {
	src, err := readSource(dir)
	if err != nil {
		return nil, err
	}
	g := &generator{src: src, defs: map[string]*Schema{}}
	root := g.object(reflect.TypeOf(config.Config{}))
	root.Schema = "http://json-schema.org/draft-07/schema#"
	root.Title = "driftmon configuration (driftmon.yaml)"
	root.Definitions = g.defs
	if len(g.errs) > 0 {
		return nil, errors.Join(g.errs...)
	}
	b, err := marshal(root)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

type generator struct {
	src  *source
	defs map[string]*Schema
	errs []error
}

// schema returns the schema of a value of type t: a reference to its definition for a
// struct.
func (g *generator) schema(t reflect.Type) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return &Schema{Type: "string", Pattern: durationPattern}
	case t.Kind() == reflect.String:
		return &Schema{Type: "string"}
	case t.Kind() == reflect.Bool:
		return &Schema{Type: "boolean"}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return &Schema{Type: "integer"}
	case t.Kind() == reflect.Float64:
		return &Schema{Type: "number"}
	case t.Kind() == reflect.Slice:
		return &Schema{Type: "array", Items: g.schema(t.Elem())}
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return &Schema{Type: "object", AdditionalProperties: g.schema(t.Elem())}
	case t.Kind() == reflect.Struct:
		if _, ok := g.defs[t.Name()]; !ok {
			g.defs[t.Name()] = nil // taken, for recursive types
			g.defs[t.Name()] = g.object(t)
		}
		return &Schema{Ref: "#/definitions/" + t.Name()}
	}
	g.errs = append(g.errs, fmt.Errorf("BUG: no schema for %s: teach schemagen its type", t))
	return &Schema{}
}

// required is a doc comment's sentence that makes its field required.
var required = regexp.MustCompile(`(^|[.!?]\s+)Required[.,:]`)

// object is the schema of struct t: its yaml keys and nothing else.
func (g *generator) object(t reflect.Type) *Schema {
	s := &Schema{Type: "object", AdditionalProperties: false, Description: g.src.typeDoc(t)}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := config.YAMLKey(f)
		if !ok {
			continue
		}
		p := g.schema(f.Type)
		doc := g.src.fieldDoc(t, f.Name)
		p.Description = doc
		if e := f.Tag.Get("enum"); e != "" {
			if p.Type != "string" {
				g.errs = append(g.errs, fmt.Errorf("%s.%s: an enum tag on a %s field", t.Name(), f.Name, f.Type))
			}
			p.Enum = strings.Split(e, ",")
		}
		if required.MatchString(g.src.rawFieldDoc(t, f.Name)) {
			s.Required = append(s.Required, name)
		}
		s.Properties = append(s.Properties, Prop{name, p})
	}
	return s
}

// source is the config package's doc comments and constants.
type source struct {
	types  map[string]string            // type name → doc
	fields map[string]map[string]string // type name → field name → doc, shared docs given to each field they name
	consts map[string]string            // constant name → value as a config file writes it
}

func readSource(dir string) (*source, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the config package: %w", err)
	}
	pkg, ok := pkgs["config"]
	if !ok {
		return nil, fmt.Errorf("no package config in %s", dir)
	}
	src := &source{types: map[string]string{}, fields: map[string]map[string]string{}, consts: map[string]string{}}
	var files []*ast.File
	for _, name := range slices.Sorted(maps.Keys(pkg.Files)) {
		f := pkg.Files[name]
		files = append(files, f)
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				src.types[ts.Name.Name] = doc.Text()
				if st, ok := ts.Type.(*ast.StructType); ok {
					src.fields[ts.Name.Name] = fieldDocs(st)
				}
			}
		}
	}
	// The constants' values, for descriptions that name them ("Default DefaultMaxFuture").
	// Imports other than the standard library's cannot be resolved here, and need not:
	// the errors they cause leave every constant's value known.
	conf := types.Config{Importer: importer.Default(), Error: func(error) {}}
	tp, _ := conf.Check("config", fset, files, nil)
	for _, name := range tp.Scope().Names() {
		c, ok := tp.Scope().Lookup(name).(*types.Const)
		if !ok || c.Val().Kind() == constant.Unknown {
			continue
		}
		src.consts[name] = constValue(c)
	}
	return src, nil
}

// fieldDocs returns each field's doc comment. A field without one shares the comment of
// the nearest field above that has one, when that comment names it ("CertFile and KeyFile
// are ...").
func fieldDocs(st *ast.StructType) map[string]string {
	docs := map[string]string{}
	last := ""
	for _, f := range st.Fields.List {
		if f.Doc != nil {
			last = f.Doc.Text()
		}
		for _, n := range f.Names {
			switch {
			case f.Doc != nil:
				docs[n.Name] = last
			case regexp.MustCompile(`\b` + n.Name + `\b`).MatchString(last):
				docs[n.Name] = last
			}
		}
	}
	return docs
}

func (s *source) rawFieldDoc(t reflect.Type, field string) string {
	return s.fields[t.Name()][field]
}

// fieldDoc is the description of field of t: its doc comment in one line, with the Go
// names of t's fields replaced by their yaml keys and constants by their values.
func (s *source) fieldDoc(t reflect.Type, field string) string {
	return s.describe(t, s.rawFieldDoc(t, field))
}

func (s *source) typeDoc(t reflect.Type) string {
	return s.describe(t, s.types[t.Name()])
}

var (
	goName    = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)
	constName = regexp.MustCompile(`\bDefault[A-Z][A-Za-z0-9]*\b`)
	// compound is a name of two or more capitals and a small letter (CertFile, URLs).
	compound    = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$|^[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*$`)
	leadingName = regexp.MustCompile(`^[A-Za-z0-9]+`)
	fieldPair   = regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*) and ([A-Z][A-Za-z0-9]*)\b`)
)

func (s *source) describe(t reflect.Type, doc string) string {
	doc = strings.Join(strings.Fields(doc), " ")
	keys := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys[f.Name] = name
		}
	}
	doc = constName.ReplaceAllStringFunc(doc, func(n string) string {
		if v, ok := s.consts[n]; ok {
			return v
		}
		return n
	})
	// A field's Go name becomes its key where it surely is the field, not a word
	// (Kafka, Slack): compound names, the first word, and pairs of fields.
	key := func(n string) string {
		if k, ok := keys[n]; ok {
			return k
		}
		return n
	}
	doc = goName.ReplaceAllStringFunc(doc, func(n string) string {
		if compound.MatchString(n) {
			return key(n)
		}
		return n
	})
	doc = fieldPair.ReplaceAllStringFunc(doc, func(pair string) string {
		m := fieldPair.FindStringSubmatch(pair)
		if _, ok := keys[m[1]]; !ok {
			return pair
		}
		if _, ok := keys[m[2]]; !ok {
			return pair
		}
		return keys[m[1]] + " and " + keys[m[2]]
	})
	first := leadingName.FindString(doc)
	return key(first) + doc[len(first):]
}

// constValue writes c as a config file would: a duration as 1h, not 3600000000000.
func constValue(c *types.Const) string {
	v := c.Val()
	if named, ok := c.Type().(*types.Named); ok && named.Obj().Pkg() != nil &&
		named.Obj().Pkg().Path() == "time" && named.Obj().Name() == "Duration" {
		if n, ok := constant.Int64Val(v); ok {
			return shortDuration(time.Duration(n))
		}
	}
	switch v.Kind() {
	case constant.String:
		return constant.StringVal(v)
	case constant.Float:
		f, _ := constant.Float64Val(v)
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v.ExactString()
}

// shortDuration is d as a config writes it: 1h, 90m, 30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
