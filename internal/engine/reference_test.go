package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/sketch"
)

// writeTestProfile writes a profile of fields with a few rows of x (numeric) to dir.
func writeTestProfile(t *testing.T, dir string, fields []sketch.Field) string {
	t.Helper()
	p := sketch.NewProfile(fields, sketch.Options{})
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]float64{1, 2, 3}, nil)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil), []arrow.Array{col}, 3)
	defer rec.Release()
	p.Update(rec, nil)
	path := filepath.Join(dir, "ref"+ProfileExt)
	if err := WriteProfile(path, p); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProfileBaseline(t *testing.T) {
	dir := t.TempDir()
	path := writeTestProfile(t, dir, []sketch.Field{{Name: "x", Kind: sketch.KindNumeric}, {Name: "c", Kind: sketch.KindCategorical}})
	stream := func(features map[string]config.Field) *config.Stream {
		return &config.Stream{Name: "s", Features: features, Window: config.Window{Rows: 10}, Reference: config.Reference{Baseline: path}}
	}

	e, err := New(stream(map[string]config.Field{"x": {Type: "numeric"}, "c": {Type: "categorical"}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.refs.baseline.Rows != 3 || e.refs.baseline.Feature("x").Num.Max() != 3 || !strings.Contains(e.refs.baselineName, "ref.profile (3 rows)") {
		t.Errorf("baseline %d rows, name %q", e.refs.baseline.Rows, e.refs.baselineName)
	}

	_, err = New(stream(map[string]config.Field{"x": {Type: "categorical"}, "y": {Type: "numeric"}}), nil)
	if err == nil {
		t.Fatal("a profile with other fields was accepted")
	}
	for _, want := range []string{
		"reference.baseline: " + path, "the profile has no feature y",
		"features the stream does not monitor: c", "x is numeric in the profile, categorical in the stream",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestReadProfileRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	path := writeTestProfile(t, dir, []sketch.Field{{Name: "x", Kind: sketch.KindNumeric}})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadProfile(path)
	if err == nil || !strings.Contains(err.Error(), "is not a valid driftmon profile") || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupt profile: %v", err)
	}
	csv := filepath.Join(dir, "data"+ProfileExt)
	if err := os.WriteFile(csv, []byte("x\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProfile(csv); err == nil || !strings.Contains(err.Error(), "is not a valid driftmon profile") {
		t.Errorf("CSV named .profile: %v", err)
	}
	if _, err := ReadProfile(filepath.Join(dir, "missing.profile")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewEngineWithReference(t *testing.T) {
	ref := sketch.NewProfile([]sketch.Field{{Name: "x", Kind: sketch.KindNumeric}}, sketch.Options{})
	sc := &config.Stream{Name: "s", Features: map[string]config.Field{"x": {Type: "numeric"}}, Window: config.Window{Rows: 10},
		Reference: config.Reference{Baseline: "/does/not/exist.parquet"}}
	e, err := NewWithReference(sc, ref, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.refs.baseline != ref || e.refs.baselineName != "reference (0 rows)" {
		t.Errorf("baseline %p (want %p), name %q", e.refs.baseline, ref, e.refs.baselineName)
	}
	if got := StreamFields(sc); len(got) != 1 || got[0] != (sketch.Field{Name: "x", Kind: sketch.KindNumeric}) {
		t.Errorf("StreamFields: %v", got)
	}
	sc.Features["y"] = config.Field{Type: "numeric"}
	if _, err := NewWithReference(sc, ref, "", nil); err == nil || !strings.Contains(err.Error(), "no feature y") {
		t.Errorf("missing feature: %v", err)
	}
}
