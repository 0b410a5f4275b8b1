package backtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

// InferOptions tunes Infer.
type InferOptions struct {
	// Name is the stream's name in results; empty means "backtest".
	Name string
	// TimeColumn is the event-time column: never a feature, and the reference's time
	// bounds when the reference file has it.
	TimeColumn string
	// Exclude names columns not to monitor (targets, identifiers). Each must exist.
	Exclude []string
	// Window is the stream's windows.
	Window config.Window
	// Detectors tunes the decision rule; zero fields get the config defaults.
	Detectors config.Detectors
	// Progress, when set, is called while the reference is read with the rows so far.
	Progress func(rows int64)
}

// Skipped is a column Infer does not monitor, and why.
type Skipped struct {
	Column, Reason string
}

// Inferred is a stream made up from a reference file, with that file's profile as its
// reference.
type Inferred struct {
	Stream    *config.Stream
	Reference *sketch.Profile
	// ReferenceName describes the reference in results.
	ReferenceName string
	// Skipped lists the columns that are not monitored although nobody excluded them.
	Skipped []Skipped
}

// Columns with at least idMinDistinct distinct strings, more than idShare of their
// values distinct, are identifiers or times, never useful categorical features: every
// window would be all "new categories".
const (
	idMinDistinct = 1000
	idShare       = 0.5
)

// Infer makes a stream of every column of the reference file at path (or of every
// feature of a profile file) and reads the reference's profile. Numbers are numeric;
// strings and booleans categorical. Integer columns with few distinct values stay
// numeric: their sketch keeps exact counts. Columns whose names start with "__", time
// columns, columns with no values and identifier-like strings are skipped, the last
// two with a reason in Inferred.Skipped.
func Infer(ctx context.Context, path string, opts InferOptions) (*Inferred, error) {
	if opts.Name == "" {
		opts.Name = "backtest"
	}
	if engine.IsProfilePath(path) {
		return inferProfile(path, opts)
	}
	schema, err := FileColumns(path)
	if err != nil {
		return nil, err
	}
	inf := &Inferred{}
	var fields []sketch.Field
	var unknown []string
	for _, x := range opts.Exclude {
		if !schema.HasField(x) {
			unknown = append(unknown, x)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("cannot exclude %s: %s has no such column (columns: %s)", strings.Join(unknown, ", "), filepath.Base(path), columnNames(schema))
	}
	for _, f := range schema.Fields() {
		if strings.HasPrefix(f.Name, "__") || f.Name == opts.TimeColumn || slices.Contains(opts.Exclude, f.Name) {
			continue
		}
		kind, reason := kindOf(f.Type)
		if reason != "" {
			inf.Skipped = append(inf.Skipped, Skipped{f.Name, reason})
			continue
		}
		fields = append(fields, sketch.Field{Name: f.Name, Kind: kind})
	}
	timeColumn := ""
	if opts.TimeColumn != "" && schema.HasField(opts.TimeColumn) {
		timeColumn = opts.TimeColumn
	}
	in, err := Open(path, streamOf(fields, opts), InputOptions{TimeColumn: timeColumn})
	if err != nil {
		return nil, err
	}
	defer in.Close()
	all, err := BuildProfile(ctx, in, fields, nil, opts.Progress)
	if err != nil {
		return nil, err
	}
	var kept []sketch.Field
	for _, f := range fields {
		sf := all.Feature(f.Name)
		switch {
		case sf.Total() == sf.Nulls():
			inf.Skipped = append(inf.Skipped, Skipped{f.Name, "no values in the reference"})
		case sf.Cat != nil && sf.Cat.Distinct() >= idMinDistinct && sf.Cat.Distinct() >= idShare*float64(sf.Cat.Count()):
			inf.Skipped = append(inf.Skipped, Skipped{f.Name, fmt.Sprintf(
				"%s distinct strings in %s values: an identifier or a time? (use --time-column, or --exclude it)",
				alerting.FormatCount(int64(sf.Cat.Distinct())), alerting.FormatCount(sf.Cat.Count()))})
		default:
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("%s has no column to monitor", filepath.Base(path))
	}
	inf.Stream = streamOf(kept, opts)
	inf.Reference = subset(all, kept)
	inf.ReferenceName = fmt.Sprintf("baseline %s (%s rows)", filepath.Base(path), alerting.FormatCount(all.Rows))
	return inf, nil
}

// FileColumns returns the columns of the data file at path, as ingest.ReadFile reads it.
func FileColumns(path string) (*arrow.Schema, error) {
	r, err := ingest.ReadFile(path, ingest.FileOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Schema(), nil
}

func inferProfile(path string, opts InferOptions) (*Inferred, error) {
	p, err := engine.ReadProfile(path)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, x := range opts.Exclude {
		if p.Feature(x) == nil {
			unknown = append(unknown, x)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("cannot exclude %s: %s has no such feature", strings.Join(unknown, ", "), filepath.Base(path))
	}
	var kept []sketch.Field
	for _, f := range p.Fields() {
		if !slices.Contains(opts.Exclude, f.Name) && f.Name != opts.TimeColumn {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return nil, errors.New("every feature of the profile is excluded")
	}
	return &Inferred{
		Stream:        streamOf(kept, opts),
		Reference:     subset(p, kept),
		ReferenceName: fmt.Sprintf("baseline %s (%s rows)", filepath.Base(path), alerting.FormatCount(p.Rows)),
	}, nil
}

// kindOf maps a column type to a feature kind, or says why the column is skipped.
func kindOf(dt arrow.DataType) (sketch.Kind, string) {
	switch dt.ID() {
	case arrow.FLOAT64, arrow.FLOAT32, arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8,
		arrow.UINT64, arrow.UINT32, arrow.UINT16, arrow.UINT8:
		return sketch.KindNumeric, ""
	case arrow.STRING, arrow.LARGE_STRING, arrow.BOOL:
		return sketch.KindCategorical, ""
	case arrow.DICTIONARY:
		if readable(sketch.KindCategorical, dt) {
			return sketch.KindCategorical, ""
		}
	case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.TIME32, arrow.TIME64:
		return 0, "a time column (use --time-column to window by it)"
	case arrow.NULL:
		return 0, "no values in the reference"
	}
	return 0, fmt.Sprintf("type %s cannot be monitored", dt)
}

// streamOf is an in-memory stream config monitoring fields as features, each read from
// the column of its name, with opts' windows and detectors (defaults filled in).
func streamOf(fields []sketch.Field, opts InferOptions) *config.Stream {
	sc := &config.Stream{
		Name:      opts.Name,
		Format:    config.DefaultFormat,
		Features:  make(map[string]config.Field, len(fields)),
		Window:    opts.Window,
		Detectors: opts.Detectors,
	}
	for _, f := range fields {
		sc.Features[f.Name] = config.Field{Path: f.Name, Type: f.Kind.String()}
	}
	d := &sc.Detectors
	if d.FDR == 0 {
		d.FDR = config.DefaultFDR
	}
	if d.MinRows == 0 {
		d.MinRows = config.DefaultMinRows
	}
	if d.PSI.Bins == 0 {
		d.PSI.Bins = config.DefaultPSIBins
	}
	if d.PSI.Min == 0 {
		d.PSI.Min = config.DefaultPSIMin
	}
	if d.KS.Min == 0 {
		d.KS.Min = config.DefaultKSMin
	}
	if d.Wasserstein.Min == 0 {
		d.Wasserstein.Min = config.DefaultWassersteinMin
	}
	return sc
}

// subset returns a profile of p's summaries of fields only; it shares them with p.
func subset(p *sketch.Profile, fields []sketch.Field) *sketch.Profile {
	if len(fields) == len(p.Features) {
		return p
	}
	q := sketch.NewProfile(fields, p.Options())
	for i, f := range fields {
		q.Features[i] = p.Feature(f.Name)
	}
	q.Start, q.End, q.Rows = p.Start, p.End, p.Rows
	return q
}
