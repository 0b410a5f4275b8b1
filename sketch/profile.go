package sketch

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// Profile is the summary of every feature of one window (or of a reference
// data set): what a baseline file, a checkpoint and a scale-out partial
// contain. It is mergeable and has a versioned, checksummed encoding.
//
// A Profile is not safe for concurrent use; reads may update caches.
type Profile struct {
	// Start and End are the window's bounds, set by the caller; Merge keeps
	// the earliest Start and the latest End.
	Start, End time.Time
	// Rows is the number of rows seen, nulls included.
	Rows int64
	// Features holds one summary per field, in the order of the fields.
	Features []*Feature
	// Joint summarises the joint distribution of the numeric fields; nil with
	// fewer than two, or in a profile encoded before joint sketches existed
	// (or merged with one).
	Joint *Joint
	// Grid counts the rows on a grid for pairs of numeric fields; nil with
	// fewer than two, with Options.GridPairs negative, or in a profile encoded
	// before pair grids existed (or merged with one).
	Grid *Grid
	// Segments are the per-value profiles of each Options.Segments key, in the
	// order of the keys; nil without keys, or in a profile encoded before
	// segments existed (or merged with one).
	Segments []*Segments

	opts   Options
	byName map[string]int

	// Update caches: the schema last seen and each feature's column index
	// in it (-1 when missing), plus scratch buffers reused across calls.
	schema *arrow.Schema
	cols   []int
	rowBuf []int
}

// Feature is the summary of one field. Exactly one of Num and Cat is non-nil,
// according to Kind.
type Feature struct {
	Name string
	Kind Kind
	Num  *Numeric
	Cat  *Categorical
	// TypeErrors counts rows whose column had an Arrow type that cannot be
	// read as this Kind; those rows are also counted as nulls.
	TypeErrors int64
}

// NewProfile returns an empty profile for fields. A field whose Kind is
// neither KindNumeric nor KindCategorical is summarised as KindNumeric.
func NewProfile(fields []Field, opts Options) *Profile {
	opts = opts.withDefaults()
	p := &Profile{
		opts:     opts,
		Features: make([]*Feature, len(fields)),
		byName:   make(map[string]int, len(fields)),
	}
	for i, f := range fields {
		p.Features[i] = newFeature(f, opts)
		if _, dup := p.byName[f.Name]; !dup {
			p.byName[f.Name] = i
		}
	}
	if opts.JointFeatures > 0 {
		p.Joint = newJoint(p.Features, opts)
	}
	p.Grid = newGrid(p.Features, opts)
	p.Segments = segmentsOf(fields, opts)
	return p
}

func newFeature(f Field, opts Options) *Feature {
	if f.Kind == KindCategorical {
		return &Feature{Name: f.Name, Kind: KindCategorical, Cat: newCategorical(opts)}
	}
	return &Feature{Name: f.Name, Kind: KindNumeric, Num: newNumeric(opts)}
}

// Options returns the options the profile was created with (defaults filled).
func (p *Profile) Options() Options { return p.opts }

// Fields returns the profile's fields in order.
func (p *Profile) Fields() []Field {
	out := make([]Field, len(p.Features))
	for i, f := range p.Features {
		out[i] = Field{Name: f.Name, Kind: f.Kind}
	}
	return out
}

// Feature returns the summary of the named feature, or nil if the profile
// has no such feature.
func (p *Profile) Feature(name string) *Feature {
	if i, ok := p.byName[name]; ok {
		return p.Features[i]
	}
	return nil
}

// Nulls returns the feature's null count whatever its kind.
func (f *Feature) Nulls() int64 {
	if f.Cat != nil {
		return f.Cat.nulls
	}
	return f.Num.nulls
}

// Total returns every value the feature has seen, nulls included.
func (f *Feature) Total() int64 {
	if f.Cat != nil {
		return f.Cat.Total()
	}
	return f.Num.Total()
}

func (f *Feature) addNulls(k int64) {
	if f.Cat != nil {
		f.Cat.nulls += k
	} else {
		f.Num.nulls += k
	}
}

// Merge adds o into p. Both must have the same fields (names and kinds, in
// the same order). The result does not depend on which profile is the
// receiver except for floating-point rounding of the moments; use MergeAll
// for byte-for-byte canonical results.
func (p *Profile) Merge(o *Profile) error {
	if err := p.sameFields(o); err != nil {
		return err
	}
	for i, f := range p.Features {
		g := o.Features[i]
		f.TypeErrors += g.TypeErrors
		if f.Cat != nil {
			if err := f.Cat.merge(g.Cat); err != nil {
				return fmt.Errorf("cannot merge feature %q: %w", f.Name, err)
			}
			continue
		}
		f.Num.merge(g.Num)
	}
	if err := p.mergeJoint(o); err != nil {
		return err
	}
	p.mergeGrid(o)
	p.mergeSegments(o)
	p.mergeHeader(o)
	return nil
}

// mergeGrid merges o's pair grids into p's. A side without them (encoded
// before they existed), or with grids of other pairs (made under another
// Options.GridPairs, say before a restart with a new configuration), leaves
// the result without: a grid missing some rows would describe another
// distribution, and refusing the merge would refuse the rest of the profile.
func (p *Profile) mergeGrid(o *Profile) {
	if p.Grid == nil || o.Grid == nil || !p.Grid.sameCoverage(o.Grid) {
		p.Grid = nil
		return
	}
	p.Grid.merge(o.Grid)
}

// mergeJoint merges o's joint sketch into p's. A side without one (encoded
// before joint sketches existed) leaves the result without one: a joint sketch
// missing some rows would describe another distribution.
func (p *Profile) mergeJoint(o *Profile) error {
	if p.Joint == nil || o.Joint == nil {
		p.Joint = nil
		return nil
	}
	if err := p.Joint.merge(o.Joint); err != nil {
		return fmt.Errorf("cannot merge profiles: %w", err)
	}
	return nil
}

func (p *Profile) mergeHeader(o *Profile) {
	p.Rows += o.Rows
	if !o.Start.IsZero() && (p.Start.IsZero() || o.Start.Before(p.Start)) {
		p.Start = o.Start
	}
	if !o.End.IsZero() && (p.End.IsZero() || o.End.After(p.End)) {
		p.End = o.End
	}
}

func (p *Profile) sameFields(o *Profile) error {
	if o == nil {
		return errors.New("cannot merge profiles: nil profile")
	}
	if len(p.Features) != len(o.Features) {
		return fmt.Errorf("cannot merge profiles: %d fields, want %d", len(o.Features), len(p.Features))
	}
	for i, f := range p.Features {
		g := o.Features[i]
		if f.Name != g.Name || f.Kind != g.Kind {
			return fmt.Errorf("cannot merge profiles: field %d is %q (%s), want %q (%s)", i, g.Name, g.Kind, f.Name, f.Kind)
		}
	}
	return nil
}

// MergeAll merges parts into a new profile. The parts are put into a
// canonical order first (by their encoding), so the same set of parts in any
// order gives the same bytes. The result has the options of the first part
// in that order.
func MergeAll(parts ...*Profile) (*Profile, error) {
	if len(parts) == 0 {
		return nil, errors.New("cannot merge profiles: no profiles")
	}
	type enc struct {
		p *Profile
		b []byte
	}
	sorted := make([]enc, len(parts))
	for i, q := range parts {
		if q == nil {
			return nil, errors.New("cannot merge profiles: nil profile")
		}
		if err := parts[0].sameFields(q); err != nil {
			return nil, err
		}
		b, err := q.MarshalBinary()
		if err != nil {
			return nil, err
		}
		sorted[i] = enc{q, b}
	}
	slices.SortStableFunc(sorted, func(a, b enc) int { return bytes.Compare(a.b, b.b) })
	first := sorted[0].p
	out := NewProfile(first.Fields(), first.opts)
	for i, f := range out.Features {
		if f.Cat != nil {
			cs := make([]*Categorical, len(sorted))
			for j, s := range sorted {
				cs[j] = s.p.Features[i].Cat
				f.TypeErrors += s.p.Features[i].TypeErrors
			}
			if err := f.Cat.mergeAll(cs); err != nil {
				return nil, fmt.Errorf("cannot merge feature %q: %w", f.Name, err)
			}
			continue
		}
		ns := make([]*Numeric, len(sorted))
		for j, s := range sorted {
			ns[j] = s.p.Features[i].Num
			f.TypeErrors += s.p.Features[i].TypeErrors
		}
		f.Num.mergeAll(ns)
	}
	out.Joint = sorted[0].p.Joint.clone()
	if out.Joint != nil {
		out.Joint.reset()
	}
	out.Grid = sorted[0].p.Grid.clone()
	if out.Grid != nil {
		out.Grid.reset()
	}
	out.Segments = nil
	for _, s := range sorted[0].p.Segments {
		out.Segments = append(out.Segments, s.empty())
	}
	for _, s := range sorted {
		if err := out.mergeJoint(s.p); err != nil {
			return nil, err
		}
		out.mergeGrid(s.p)
		out.mergeSegments(s.p)
		out.mergeHeader(s.p)
	}
	return out, nil
}

// Clone returns a deep copy of p that shares nothing with it.
func (p *Profile) Clone() *Profile {
	c := &Profile{
		Start:    p.Start,
		End:      p.End,
		Rows:     p.Rows,
		Features: make([]*Feature, len(p.Features)),
		opts:     p.opts,
		byName:   make(map[string]int, len(p.byName)),
	}
	for k, v := range p.byName {
		c.byName[k] = v
	}
	for i, f := range p.Features {
		g := &Feature{Name: f.Name, Kind: f.Kind, TypeErrors: f.TypeErrors}
		if f.Cat != nil {
			g.Cat = f.Cat.clone()
		} else {
			g.Num = f.Num.clone()
		}
		c.Features[i] = g
	}
	c.Joint = p.Joint.clone()
	c.Grid = p.Grid.clone()
	for _, s := range p.Segments {
		c.Segments = append(c.Segments, s.clone())
	}
	return c
}

// Seal says p gets no more rows: the pair grids' rows, kept apart per source
// (UpdateFrom), fold into one, as reading or merging p would do each time. The
// engine seals a window when it closes.
func (p *Profile) Seal() { p.Grid.Seal() }
