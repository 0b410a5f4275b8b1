package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/influxdata/tdigest"

	"github.com/driftmon/driftmon/internal/wire"
)

// Encoding layout (all integers little-endian or varint):
//
//	magic "DMPF" | version (1 byte) | CRC-32C of the payload (4 bytes) | payload
//
// payload:
//
//	compression float64 | maxExact uvarint | maxCategories uvarint
//	start time | end time | rows uvarint | features uvarint
//	per feature: name string | kind byte | typeErrors uvarint | body
//	numeric body: count nulls nans posInf negInf uvarint | min max mean m2 float64
//	  | mode byte (0 exact, 1 digest) | k uvarint | k × (value float64, count uvarint)
//	  or k × (mean float64, weight float64), ascending
//	categorical body: count other nulls uvarint | k uvarint
//	  | k × (value string, count uvarint) ascending by value | hll bytes
//	then (version 2) joint flag byte (0 none, 1 joint) and, with a joint:
//	  d uvarint | d × name string | for each of the JointBuckets parts:
//	  n uvarint | d × mean float64
//	  | d(d+1)/2 × co-moment float64 (upper triangle, row-major)
//
//	then (version 3) grid flag byte (0 none, 1 pair grids) and, with grids:
//	  d uvarint | d × name string | (version 4) parts uvarint, then per part
//	  (version 3: one part) (version 4) source uvarint | settled byte
//	  | settled 0 (fewer than 256 rows, kept as they came): rows uvarint
//	    | rows × d × value float64 (NaN where not finite)
//	  | settled 1: per field: shift byte | flags byte (1 bottom bucket, 2 top bucket)
//	    | [bottom's last key uvarint] | central's first and last key uvarint
//	    | [top's first key uvarint] | k uvarint
//	    | k × (bucket id uvarint, the first absolute, then the rise from the
//	      previous | count uvarint)
//	  | per pair of fields (a, b), a < b, in order: nnz uvarint
//	    | nnz × (cell i·k_b + j uvarint, the first absolute, then the rise | count uvarint)
//
//	then (version 5) segments: keys uvarint | per key: by string | max values uvarint
//	  | other's payload | k uvarint | k × (value string | the value's payload),
//	  ascending by value. A segment's payload is a profile payload (this layout,
//	  without magic, version and checksum) of every field but by, with no joint,
//	  no grids and no segments.
//
// Version 1 (no joint section) still decodes, as a profile without a joint
// sketch or pair grids; version 2 (no grid section) as one without pair grids;
// version 3 (one grid part) as a grid whose rows all came from source 0;
// versions 3 and 4 (no segments section) as one without segments.
//
// A time is a flag byte (0 zero time, 1 set) then unix seconds varint and
// nanoseconds uvarint; strings and byte blobs are a uvarint length then the
// bytes. Every statistic is encoded in a canonical order, so equal profiles
// give equal bytes.
const (
	encodingMagic   = "DMPF"
	encodingVersion = 5
	headerLen       = len(encodingMagic) + 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error UnmarshalBinary returns for bytes
// that are not a valid profile encoding.
var ErrCorrupt = errors.New("corrupt profile encoding")

// MarshalBinary encodes the profile in a versioned, checksummed, canonical
// binary form (see UnmarshalBinary). It may compact internal buffers.
func (p *Profile) MarshalBinary() ([]byte, error) {
	b := make([]byte, headerLen, 256)
	copy(b, encodingMagic)
	b[len(encodingMagic)] = encodingVersion
	b, err := p.appendPayload(b)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[len(encodingMagic)+1:], crc32.Checksum(b[headerLen:], castagnoli))
	return b, nil
}

// appendPayload appends the payload of the encoding: a segment's profile is
// encoded as one without its header.
func (p *Profile) appendPayload(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.opts.Compression))
	b = binary.AppendUvarint(b, uint64(p.opts.MaxExact))
	b = binary.AppendUvarint(b, uint64(p.opts.MaxCategories))
	b = appendTime(b, p.Start)
	b = appendTime(b, p.End)
	b = binary.AppendUvarint(b, uint64(p.Rows))
	b = binary.AppendUvarint(b, uint64(len(p.Features)))
	for _, f := range p.Features {
		b = appendString(b, f.Name)
		b = append(b, byte(f.Kind))
		b = binary.AppendUvarint(b, uint64(f.TypeErrors))
		var err error
		if f.Cat != nil {
			b, err = f.Cat.appendBinary(b)
		} else {
			b = f.Num.appendBinary(b)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot encode feature %q: %w", f.Name, err)
		}
	}
	b = p.Joint.appendBinary(b)
	b = p.Grid.appendBinary(b)
	b = binary.AppendUvarint(b, uint64(len(p.Segments)))
	for _, s := range p.Segments {
		var err error
		if b, err = s.appendBinary(b); err != nil {
			return nil, fmt.Errorf("cannot encode the segments by %q: %w", s.Key.By, err)
		}
	}
	return b, nil
}

func (s *Segments) appendBinary(b []byte) ([]byte, error) {
	b = appendString(b, s.Key.By)
	b = binary.AppendUvarint(b, uint64(s.Key.MaxValues))
	b, err := s.Other.appendPayload(b)
	if err != nil {
		return nil, err
	}
	vs := s.Values()
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = appendString(b, v)
		if b, err = s.values[v].p.appendPayload(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (j *Joint) appendBinary(b []byte) []byte {
	if j == nil {
		return append(b, 0)
	}
	b = appendNames(append(b, 1), j.Names)
	for _, m := range j.parts {
		b = binary.AppendUvarint(b, uint64(m.n))
		for _, v := range m.mean {
			b = appendFloat(b, v)
		}
		for _, v := range m.co {
			b = appendFloat(b, v)
		}
	}
	return b
}

// appendNames writes the fields a joint sketch or grid covers, as numericFields
// reads them.
func appendNames(b []byte, names []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendString(b, name)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func (n *Numeric) appendBinary(b []byte) []byte {
	for _, v := range [...]int64{n.count, n.nulls, n.nans, n.posInf, n.negInf} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, v := range [...]float64{n.min, n.max, n.mean, n.m2} {
		b = appendFloat(b, v)
	}
	if values, counts, ok := n.Exact(); ok {
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(values)))
		for i, v := range values {
			b = appendFloat(b, v)
			b = binary.AppendUvarint(b, uint64(counts[i]))
		}
		return b
	}
	cs := n.centroids()
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = appendFloat(b, c.Mean)
		b = appendFloat(b, c.Weight)
	}
	return b
}

func (c *Categorical) appendBinary(b []byte) ([]byte, error) {
	for _, v := range [...]int64{c.count, c.other, c.nulls} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	cats := c.Counts()
	b = binary.AppendUvarint(b, uint64(len(cats)))
	for _, cc := range cats {
		b = appendString(b, cc.Value)
		b = binary.AppendUvarint(b, uint64(cc.Count))
	}
	// Estimate compacts the sparse representation, which makes the
	// HyperLogLog bytes depend only on the set of values inserted.
	c.hll.Estimate()
	h, err := c.hll.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(h)))
	return append(b, h...), nil
}

// UnmarshalBinary replaces p with the profile encoded in data by
// MarshalBinary. Bytes that are truncated, corrupted or inconsistent give an
// error wrapping ErrCorrupt (never a panic), and p is left unchanged.
func (p *Profile) UnmarshalBinary(data []byte) error {
	if len(data) < headerLen || string(data[:len(encodingMagic)]) != encodingMagic {
		return fmt.Errorf("decode profile: bad magic: %w", ErrCorrupt)
	}
	version := data[len(encodingMagic)]
	if version < 1 || version > encodingVersion {
		return fmt.Errorf("decode profile: unsupported version %d: %w", version, ErrCorrupt)
	}
	want := binary.LittleEndian.Uint32(data[len(encodingMagic)+1:])
	if got := crc32.Checksum(data[headerLen:], castagnoli); got != want {
		return fmt.Errorf("decode profile: checksum mismatch: %w", ErrCorrupt)
	}
	r := &reader{Reader: wire.Reader{B: data[headerLen:]}, version: version}
	q, err := r.profile()
	if err == nil && len(r.B) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(r.B))
	}
	if err != nil {
		return fmt.Errorf("decode profile: %w: %w", ErrCorrupt, err)
	}
	*p = *q
	return nil
}

// reader decodes the payload: wire's sticky-error reader, whose lengths are checked
// against the bytes that remain before anything is allocated, with the profile
// encoding's version.
type reader struct {
	wire.Reader
	version byte
	depth   int // 1 while reading a segment's profile
}

func (r *reader) float() float64 { return math.Float64frombits(r.Uint64()) }

func (r *reader) time() time.Time {
	switch r.Byte() {
	case 0:
		return time.Time{}
	case 1:
		sec, n := binary.Varint(r.B)
		if r.Err() != nil {
			return time.Time{}
		}
		if n <= 0 {
			r.Fail("bad varint")
			return time.Time{}
		}
		r.B = r.B[n:]
		ns := r.Uvarint()
		if ns >= 1e9 {
			r.Fail("nanoseconds %d out of range", ns)
			return time.Time{}
		}
		return time.Unix(sec, int64(ns)).UTC()
	}
	r.Fail("bad time flag")
	return time.Time{}
}

func (r *reader) profile() (*Profile, error) {
	opts := Options{Compression: r.float()}
	maxExact, maxCats := r.Uvarint(), r.Uvarint()
	if r.Err() != nil {
		return nil, r.Err()
	}
	if !(opts.Compression >= 10 && opts.Compression <= 1e5) || maxExact < 1 || maxExact > 1<<24 || maxCats < 1 || maxCats > 1<<24 {
		return nil, errors.New("options out of range")
	}
	opts.MaxExact, opts.MaxCategories = int(maxExact), int(maxCats)
	start, end := r.time(), r.time()
	rows := r.Count()
	nf := r.Length(3)
	if r.Err() != nil {
		return nil, r.Err()
	}
	fields := make([]Field, 0, nf)
	feats := make([]*Feature, 0, nf)
	for i := 0; i < nf && r.Err() == nil; i++ {
		name := string(r.Blob())
		kind := Kind(r.Byte())
		typeErrors := r.Count()
		if r.Err() != nil {
			break
		}
		f := &Feature{Name: name, Kind: kind, TypeErrors: typeErrors}
		switch kind {
		case KindNumeric:
			f.Num = r.numeric(opts)
		case KindCategorical:
			f.Cat = r.categorical(opts)
		default:
			r.Fail("feature %d: bad kind %d", i, kind)
		}
		if r.Err() != nil {
			return nil, fmt.Errorf("feature %q: %w", name, r.Err())
		}
		fields = append(fields, Field{Name: name, Kind: kind})
		feats = append(feats, f)
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	// The features are the decoded ones: NewProfile would allocate a second, empty set.
	p := NewProfile(nil, opts)
	p.Features = feats
	for i, f := range fields {
		if _, dup := p.byName[f.Name]; !dup {
			p.byName[f.Name] = i
		}
	}
	p.Start, p.End, p.Rows = start, end, rows
	p.Joint = nil
	if r.version >= 2 && r.Byte() == 1 {
		p.Joint = r.joint(p)
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("joint sketch: %w", r.Err())
	}
	p.Grid = nil
	if r.version >= 3 && r.Byte() == 1 {
		p.Grid = r.grid(p)
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("pair grids: %w", r.Err())
	}
	if r.version >= 5 {
		n := r.Length(1)
		if r.Err() != nil {
			return nil, fmt.Errorf("segments: %w", r.Err())
		}
		if r.depth > 0 && n > 0 {
			return nil, errors.New("segments within a segment")
		}
		for range n {
			s, err := r.segments(p, fields)
			if err != nil {
				return nil, err
			}
			p.Segments = append(p.Segments, s)
			p.opts.Segments = append(p.opts.Segments, s.Key)
		}
	}
	return p, nil
}

// segments reads one key's segments of p, whose fields are fields.
func (r *reader) segments(p *Profile, fields []Field) (*Segments, error) {
	by := string(r.Blob())
	maxValues := r.Uvarint()
	if r.Err() != nil {
		return nil, fmt.Errorf("segments: %w", r.Err())
	}
	if maxValues < 1 || maxValues > SegmentMaxValuesLimit {
		return nil, fmt.Errorf("segments by %q: %d values", by, maxValues)
	}
	s := newSegments(SegmentKey{By: by, MaxValues: int(maxValues)}, fields, p.opts)
	if s == nil {
		return nil, fmt.Errorf("segments by %q: not a categorical field", by)
	}
	sub := func(what string) (*Profile, error) {
		r.depth++
		q, err := r.profile()
		r.depth--
		if err != nil {
			return nil, fmt.Errorf("segments by %q, %s: %w", by, what, err)
		}
		if !slices.Equal(q.Fields(), s.fields) || q.Joint != nil || q.Grid != nil || q.opts.Compression != p.opts.Compression ||
			q.opts.MaxExact != p.opts.MaxExact || q.opts.MaxCategories != p.opts.MaxCategories {
			return nil, fmt.Errorf("segments by %q, %s: not a segment of the profile", by, what)
		}
		q.opts = s.opts
		return q, nil
	}
	var err error
	if s.Other, err = sub("other"); err != nil {
		return nil, err
	}
	n := r.Length(1)
	if r.Err() != nil {
		return nil, fmt.Errorf("segments by %q: %w", by, r.Err())
	}
	if n > s.Key.MaxValues {
		return nil, fmt.Errorf("segments by %q: %d values, at most %d", by, n, s.Key.MaxValues)
	}
	prev := ""
	for i := range n {
		v := string(r.Blob())
		if r.Err() != nil {
			return nil, fmt.Errorf("segments by %q: %w", by, r.Err())
		}
		if i > 0 && v <= prev {
			return nil, fmt.Errorf("segments by %q: values out of order", by)
		}
		prev = v
		q, err := sub(strconv.Quote(v))
		if err != nil {
			return nil, err
		}
		s.values[v] = &segment{value: v, hash: segmentHash(v), p: q}
	}
	if len(s.values) == s.Key.MaxValues {
		s.findMax()
	}
	return s, nil
}

// numericFields reads the names of the numeric fields of p a joint sketch or a grid
// covers: at least two, in profile order, with at most maxPairs pairs of them. It
// returns their names and indices in p, or nil names after a failure.
func (r *reader) numericFields(p *Profile, maxPairs int) (names []string, cols []int) {
	d := r.Length(2)
	if r.Err() != nil {
		return nil, nil
	}
	if d < 2 || d*(d-1)/2 > maxPairs {
		r.Fail("%d fields", d)
		return nil, nil
	}
	for range d {
		name := string(r.Blob())
		i, ok := p.byName[name]
		switch {
		case r.Err() != nil:
			return nil, nil
		case !ok || p.Features[i].Num == nil:
			r.Fail("%q is not a numeric field", name)
			return nil, nil
		case len(cols) > 0 && i <= cols[len(cols)-1]:
			r.Fail("fields out of order")
			return nil, nil
		}
		names = append(names, name)
		cols = append(cols, i)
	}
	return names, cols
}

// joint reads a joint sketch over numeric fields of p.
func (r *reader) joint(p *Profile) *Joint {
	j := &Joint{}
	if j.Names, j.cols = r.numericFields(p, math.MaxInt); j.Names == nil {
		return nil
	}
	d := len(j.Names)
	nco := d * (d + 1) / 2
	for b := range j.parts {
		m := moments{n: r.Count()}
		if r.Err() == nil && len(r.B) < 8*(d+nco) {
			r.Fail("truncated")
		}
		if r.Err() != nil {
			return nil
		}
		for range d {
			m.mean = append(m.mean, r.float())
		}
		for range nco {
			m.co = append(m.co, r.float())
		}
		if slices.ContainsFunc(m.mean, func(v float64) bool { return !isFinite(v) }) ||
			slices.ContainsFunc(m.co, func(v float64) bool { return !isFinite(v) }) {
			r.Fail("moments not finite")
			return nil
		}
		for i := range d {
			if m.co[packed(d, i, i)] < 0 || m.n == 0 && (m.mean[i] != 0 || m.co[packed(d, i, i)] != 0) {
				r.Fail("inconsistent moments")
				return nil
			}
		}
		j.parts[b] = m
	}
	return j
}

func (r *reader) numeric(opts Options) *Numeric {
	n := newNumeric(opts)
	n.count, n.nulls, n.nans, n.posInf, n.negInf = r.Count(), r.Count(), r.Count(), r.Count(), r.Count()
	n.min, n.max, n.mean, n.m2 = r.float(), r.float(), r.float(), r.float()
	mode := r.Byte()
	if r.Err() != nil {
		return nil
	}
	if n.count > 0 {
		if !isFinite(n.min) || !isFinite(n.max) || n.min > n.max || !isFinite(n.mean) || !(n.m2 >= 0) || math.IsInf(n.m2, 0) {
			r.Fail("bad moments")
			return nil
		}
	} else {
		n.min, n.max, n.mean, n.m2 = math.Inf(1), math.Inf(-1), 0, 0
	}
	switch mode {
	case 0:
		k := r.Length(9)
		if k > opts.MaxExact {
			r.Fail("%d exact values, more than %d", k, opts.MaxExact)
		}
		var sum int64
		prev := math.Inf(-1)
		for i := 0; i < k && r.Err() == nil; i++ {
			v, c := r.float(), r.Count()
			if r.Err() != nil {
				break
			}
			if !isFinite(v) || v <= prev || c <= 0 || c > n.count-sum || v < n.min || v > n.max {
				r.Fail("bad exact value %d", i)
				break
			}
			prev = v
			sum += c
			n.exact[v] = c
		}
		if r.Err() == nil && sum != n.count {
			r.Fail("exact counts sum to %d, want %d", sum, n.count)
		}
	case 1:
		k := r.Length(16)
		n.exact = nil
		n.cents = make([]tdigest.Centroid, 0, k)
		var sum float64
		prev := math.Inf(-1)
		for i := 0; i < k && r.Err() == nil; i++ {
			m, w := r.float(), r.float()
			if r.Err() != nil {
				break
			}
			if !isFinite(m) || m < prev || !(w > 0) || w > float64(n.count) || m < n.min || m > n.max {
				r.Fail("bad centroid %d", i)
				break
			}
			prev = m
			sum += w
			n.cents = append(n.cents, tdigest.Centroid{Mean: m, Weight: w})
		}
		if r.Err() == nil && math.Abs(sum-float64(n.count)) > 1e-6*float64(n.count)+0.5 {
			r.Fail("centroid weights sum to %g, want %d", sum, n.count)
		}
		if r.Err() == nil && k == 0 && n.count > 0 {
			r.Fail("no centroids for %d values", n.count)
		}
	default:
		r.Fail("bad numeric mode %d", mode)
	}
	if r.Err() != nil {
		return nil
	}
	return n
}

func (r *reader) categorical(opts Options) *Categorical {
	// Not newCategorical: its empty distinct-count sketch would be replaced below.
	c := &Categorical{maxCategories: opts.MaxCategories, index: make(map[string]int32)}
	c.count, c.other, c.nulls = r.Count(), r.Count(), r.Count()
	k := r.Length(2)
	if r.Err() != nil {
		return nil
	}
	if k > opts.MaxCategories {
		r.Fail("%d categories, more than %d", k, opts.MaxCategories)
		return nil
	}
	if c.other > c.count {
		r.Fail("other %d exceeds count %d", c.other, c.count)
		return nil
	}
	cats := make([]CategoryCount, 0, k)
	sum := c.other
	for i := 0; i < k && r.Err() == nil; i++ {
		v := string(r.Blob())
		n := r.Count()
		if r.Err() != nil {
			break
		}
		if n <= 0 || n > c.count-sum || (i > 0 && v <= cats[i-1].Value) {
			r.Fail("bad category %d", i)
			break
		}
		sum += n
		cats = append(cats, CategoryCount{Value: v, Count: n})
	}
	if r.Err() == nil && sum != c.count {
		r.Fail("category counts sum to %d, want %d", sum, c.count)
	}
	h := r.Blob()
	if r.Err() != nil {
		return nil
	}
	sk := new(hyperloglog.Sketch)
	if err := sk.UnmarshalBinary(h); err != nil {
		r.Fail("distinct-count sketch: %w", err)
		return nil
	}
	c.hll = sk
	c.reset(cats)
	return c
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Equal reports whether two profiles encode to the same bytes.
func Equal(a, b *Profile) bool {
	x, err1 := a.MarshalBinary()
	y, err2 := b.MarshalBinary()
	return err1 == nil && err2 == nil && slices.Equal(x, y)
}
