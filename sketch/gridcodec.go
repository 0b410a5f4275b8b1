package sketch

// The pair grids' part of the profile encoding (layout in encoding.go, version 3
// and on): writing a Grid and its parts, and reading them back with every count
// checked against the rest of the profile.

import (
	"encoding/binary"
	"math"
)

func (g *Grid) appendBinary(b []byte) []byte {
	if g == nil {
		return append(b, 0)
	}
	b = appendNames(append(b, 1), g.Names)
	b = binary.AppendUvarint(b, uint64(len(g.parts)))
	for i := range g.parts {
		b = g.parts[i].appendBinary(b)
	}
	return b
}

func (g *gridPart) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(g.src))
	if !g.settled {
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(g.pending)/len(g.axes)))
		for _, x := range g.pending {
			b = appendFloat(b, x)
		}
		return b
	}
	b = append(b, 1)
	for _, a := range g.axes {
		var flags byte
		if a.hasBottom {
			flags |= 1
		}
		if a.hasTop {
			flags |= 2
		}
		b = append(b, a.shift, flags)
		if a.hasBottom {
			b = binary.AppendUvarint(b, a.botMax)
		}
		b = binary.AppendUvarint(b, a.cenMin)
		b = binary.AppendUvarint(b, a.cenMax)
		if a.hasTop {
			b = binary.AppendUvarint(b, a.topMin)
		}
		b = binary.AppendUvarint(b, uint64(len(a.ids)))
		var prev uint64
		for i, id := range a.ids {
			b = binary.AppendUvarint(b, id-prev)
			b = binary.AppendUvarint(b, uint64(a.counts[i]))
			prev = id
		}
	}
	for _, p := range g.pairs {
		ka, kb := len(g.axes[p.a].ids), len(g.axes[p.b].ids)
		nnz := 0
		for i := range ka {
			for j := range kb {
				if p.cells[i*kb+j] != 0 {
					nnz++
				}
			}
		}
		b = binary.AppendUvarint(b, uint64(nnz))
		prev := 0
		for i := range ka {
			for j := range kb {
				if c := p.cells[i*kb+j]; c != 0 {
					b = binary.AppendUvarint(b, uint64(i*kb+j-prev))
					b = binary.AppendUvarint(b, uint64(c))
					prev = i*kb + j
				}
			}
		}
	}
	return b
}

// MaxGridPairs is the most pairs a decoded profile's grids may cover (every
// pair of 64 fields): a grid allocates its cells (up to GridBuckets² counts per
// pair) when decoded, so this bounds what hostile bytes can make a decoder
// allocate.
const MaxGridPairs = 64 * 63 / 2

// MaxGridCells is the most cells the parts of a decoded grid may allocate
// together (16 × the cells of one part of MaxGridPairs pairs, 64 MiB): a grid
// keeps a part per partition of an open window's input, which bounds how many a
// legitimate encoding holds, and hostile bytes cannot make a decoder allocate more.
const MaxGridCells = 16 * MaxGridPairs * GridBuckets * GridBuckets

// grid reads pair grids over numeric fields of p: the parts of each source
// (version 3: one, source 0), whose fields' values together are the fields'.
func (r *reader) grid(p *Profile) *Grid {
	g := &Grid{}
	if g.Names, g.cols = r.numericFields(p, MaxGridPairs); g.Names == nil {
		return nil
	}
	d := len(g.Names)
	parts := 1
	if r.version >= 4 {
		parts = r.Length(2)
	}
	finite := make([]int64, d) // each field's finite values in every part
	cells := 0
	for i := range parts {
		var src uint64
		if r.version >= 4 {
			src = r.Uvarint()
		}
		if r.Err() != nil {
			return nil
		}
		if src > math.MaxInt32 || i > 0 && int32(src) <= g.parts[i-1].src {
			r.Fail("part %d: source %d out of order", i, src)
			return nil
		}
		part, ok := r.gridPart(g, int32(src), finite, &cells)
		if !ok {
			return nil
		}
		g.parts = append(g.parts, part)
	}
	for a, n := range finite {
		if want := p.Features[g.cols[a]].Num.count; n != want {
			r.Fail("field %q: the grid holds %d finite values, the field %d", g.Names[a], n, want)
			return nil
		}
	}
	return g
}

// gridPart reads one part of g, adding its fields' finite values to finite and
// the cells it allocates to cells.
func (r *reader) gridPart(g *Grid, src int32, finite []int64, cells *int) (gridPart, bool) {
	d := len(g.Names)
	part := newPart(src, d)
	switch r.Byte() {
	case 0:
		rows := r.Length(8 * d)
		if r.Err() != nil {
			return part, false
		}
		if rows >= gridSettleRows {
			r.Fail("%d rows kept, more than %d", rows, gridSettleRows-1)
			return part, false
		}
		for i := range rows * d {
			x := r.float()
			if x-x == 0 {
				finite[i%d]++
			} else if !math.IsNaN(x) || math.Float64bits(x) != math.Float64bits(math.NaN()) {
				r.Fail("a kept row holds %v", x)
				return part, false
			}
			part.pending = append(part.pending, x)
		}
		return part, true
	case 1:
		part.settled = true
	default:
		r.Fail("bad settled flag")
		return part, false
	}
	for a := range part.axes {
		ax := &part.axes[a]
		l := lattice{shift: r.Byte()}
		flags := r.Byte()
		l.hasBottom, l.hasTop = flags&1 != 0, flags&2 != 0
		if l.hasBottom {
			l.botMax = r.Uvarint()
		}
		l.cenMin, l.cenMax = r.Uvarint(), r.Uvarint()
		if l.hasTop {
			l.topMin = r.Uvarint()
		}
		k := r.Length(2)
		if r.Err() != nil {
			return part, false
		}
		if l.shift > 63 || flags > 3 || k > GridBuckets || l.align() != l ||
			l.cenMin > fineLattice.cenMin || l.cenMax < fineLattice.cenMax ||
			l.hasBottom && l.botMax+1 >= l.cenMin || l.hasTop && l.topMin <= l.cenMax+1 {
			r.Fail("field %q: bad lattice", g.Names[a])
			return part, false
		}
		ax.lattice = l
		var id, sum uint64
		for i := range k {
			rise, c := r.Uvarint(), r.Count()
			if r.Err() != nil {
				return part, false
			}
			if i > 0 && rise == 0 || id+rise < id || c <= 0 {
				r.Fail("field %q: bad bucket %d", g.Names[a], i)
				return part, false
			}
			id += rise
			if ax.bucket(id) != id {
				r.Fail("field %q: bucket %d is not on its lattice", g.Names[a], i)
				return part, false
			}
			ax.ids = append(ax.ids, id)
			ax.counts = append(ax.counts, c)
			sum += uint64(c)
		}
		finite[a] += int64(sum)
	}
	for pi := range part.pairs {
		gp := &part.pairs[pi]
		ka, kb := len(part.axes[gp.a].ids), len(part.axes[gp.b].ids)
		nnz := r.Length(2)
		if r.Err() != nil {
			return part, false
		}
		if *cells += ka * kb; *cells > MaxGridCells {
			r.Fail("more than %d cells", MaxGridCells)
			return part, false
		}
		rows, cols := make([]int64, ka), make([]int64, kb)
		gp.cells = make([]int64, ka*kb)
		cell := 0
		for i := range nnz {
			rise, c := r.Uvarint(), r.Count()
			if r.Err() != nil {
				return part, false
			}
			if i > 0 && rise == 0 || rise >= uint64(ka*kb-cell) || c <= 0 {
				r.Fail("pair %s, %s: bad cell %d", g.Names[gp.a], g.Names[gp.b], i)
				return part, false
			}
			cell += int(rise)
			ci, cj := cell/kb, cell%kb
			rows[ci] += c
			cols[cj] += c
			if rows[ci] > part.axes[gp.a].counts[ci] || cols[cj] > part.axes[gp.b].counts[cj] {
				r.Fail("pair %s, %s: cells hold more than their buckets", g.Names[gp.a], g.Names[gp.b])
				return part, false
			}
			gp.cells[cell] = c
		}
	}
	return part, true
}
