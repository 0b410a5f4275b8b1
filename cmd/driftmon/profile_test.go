package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

func TestProfileShowErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "bad.profile")
	writeFile(t, corrupt, "car_value\n1\n")
	if got := runFails(t, 1, "profile", "show", corrupt); !strings.Contains(got, "bad.profile is not a valid driftmon profile") {
		t.Errorf("corrupt: %s", got)
	}
	if got := runFails(t, 1, "profile", "show", filepath.Join(dir, "nope.profile")); !strings.Contains(got, "no such file") {
		t.Errorf("missing: %s", got)
	}
	for _, args := range [][]string{{"profile"}, {"profile", "show"}, {"profile", "list"}} {
		if got := runFails(t, 2, args...); !strings.Contains(got, "Usage: driftmon profile show") {
			t.Errorf("%v: %s", args, got)
		}
	}
}

// TestProfileShowEscapesControlCharacters: feature names come from the data's columns,
// categories from its values; profile show prints their control characters escaped.
func TestProfileShowEscapesControlCharacters(t *testing.T) {
	const num, cat, val = "x\x1b[2J", "c\x1b]0;pwned\x07", "\x1b[31mred"
	schema := arrow.NewSchema([]arrow.Field{
		{Name: num, Type: arrow.PrimitiveTypes.Float64},
		{Name: cat, Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, 2, 3}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{val, val, "blue"}, nil)
	rec := b.NewRecord()
	defer rec.Release()
	p := sketch.NewProfile([]sketch.Field{{Name: num, Kind: sketch.KindNumeric}, {Name: cat, Kind: sketch.KindCategorical}}, sketch.Options{})
	p.Update(rec, nil)
	path := filepath.Join(t.TempDir(), "ref.profile")
	if err := engine.WriteProfile(path, p); err != nil {
		t.Fatal(err)
	}
	out, _ := runOK(t, "profile", "show", path)
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters printed raw:\n%s", out)
	}
	for _, want := range []string{`x\x1b[2J `, `c\x1b]0;pwned\a `, `"\x1b[31mred" 66.7%`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
