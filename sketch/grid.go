package sketch

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
)

// DefaultGridPairs is how many pairs of numeric fields the pair grids cover by
// default: every pair of the first 16 numeric fields in profile order (the
// fields the joint sketch covers), 120. It bounds the per-row cost whatever the
// number of fields.
const DefaultGridPairs = 120

// GridBuckets is the most buckets one field's lattice holds, so a pair grid
// has at most GridBuckets² cells (as many as its fields' occupied buckets make).
// A detector coarsens them to a k×k grid on the
// reference's quantiles (k = 8 by default, at most half of GridBuckets), so the
// fine lattice must put at least two or three buckets in each of those bins:
// 16 put the deciles of a normal, uniform or log-normal feature within a
// bucket's mass of their target (TestGridLatticeBalance), at most 2 KiB of cells
// per pair in memory.
const GridBuckets = 16

// Grid counts the rows of a profile on a two-dimensional grid for each covered
// pair of numeric fields: what a detector of joint drift that moves no marginal
// needs (a mixture whose clusters swap places, the sign of x1·x2 flipping),
// beyond the co-moments of Joint, which only see linear dependence.
//
// Why a fixed-resolution lattice and not counts on the reference's quantiles:
// a window's grid must be counted while the window is open, and the engine
// often has no reference then (a warm-up reference is made of the first
// windows; a cluster's partition workers never hold one), while every profile
// must merge with every other (partitions, cluster partials, checkpoints,
// warm-up references, backtests). So each field has a lattice that depends on no
// reference and nests: a finer lattice is a refinement of every coarser one, so
// two grids on different lattices merge exactly by coarsening the finer to the
// coarser (never by spreading counts), and a detector compares a window with a
// reference on the coarser of their lattices, cut at the reference's quantiles
// along bucket edges (the cells' counts are then exact on both sides; only the
// bins' masses are approximately equal).
//
// The lattice is on the order-preserving 64-bit key of a float64 (floatKey:
// sign, exponent, mantissa), so it needs no location or scale: a regular
// bucket is a run of 2^shift consecutive keys (so, for shift ≥ 52, whole
// power-of-two octaves), and three buckets may grow by whole buckets at the
// edges: a central one around zero (which soaks up the sparse values near zero,
// where octaves are many and light), a bottom and a top one (light tails). When
// a field's values occupy more than GridBuckets buckets, the lattice coarsens:
// it folds the lightest edge bucket into the central, bottom or top bucket as
// long as that stays within 1.5 average buckets' mass, else it halves its
// resolution. 1,000 ± 4 gets buckets of about 0.6, a log-normal a few per
// octave, a normal one per octave outside a central bucket of |x| < 1/8: the
// heaviest bucket holds 8–16% of a continuous field's values whatever its
// shape (TestGridLatticeBalance), which fixed bins cannot do. The measured
// alternative, edges from the reference handed to every window, left warm-up
// references and cluster partials without a grid.
//
// Why the grid is kept per source. A part's lattice is chosen from its first
// rows and coarsens as rows come, so a grid depends on the order of its rows,
// never on how they were cut into updates (a monitor restored from a checkpoint
// reads the rest of a window in other batches): it keeps its first 256 rows as
// they came, chooses each field's lattice from them, and afterwards coarsens a
// lattice at the very row that needs one bucket more than it may have, with the
// counts of the rows before it. The order rows of several Kafka partitions
// arrive in is how the partitions interleave, which a restart or a cluster
// changes; the order within one partition is its offsets. So a grid keeps one
// part per source (the partition a row came from; Profile.UpdateFrom) and folds
// the parts, in source order, into one when it is read, merged or sealed. A
// cluster's leader merges one window's per-partition partials in partition
// order too, so one process, one restarted from a checkpoint and a cluster count
// the same cells. (Measured before: a lattice over interleaved partitions moved
// a pair's effect from 0.06 to 0.09 across a kill -9.)
//
// A row counts in a pair when both of its values are finite (nulls, NaN and ±Inf
// are left out); a field's own bucket counts hold all its finite values.
type Grid struct {
	// Names are the fields covered, in profile order.
	Names []string
	cols  []int // profile feature index of each name

	// parts are the rows of each source, by source ascending; one after Seal
	// or a merge, none while the grid has no rows.
	parts []gridPart
}

// gridPart is the grid of the rows of one source, in the order they came.
type gridPart struct {
	src   int32
	axes  []axis
	pairs []gridPair
	// pending are the first rows (d values each, NaN where not finite) until
	// gridSettleRows of them choose the lattices; settled says they have.
	pending []float64
	settled bool
}

// gridPair is the cell counts of fields a < b (indices into Grid.Names):
// cells[i*k_b+j] counts the rows in bucket i of a and bucket j of b, k_b the
// buckets b occupies.
type gridPair struct {
	a, b  int
	cells []int64
}

// newGrid is the grid of a profile of fields: every pair of the first numeric fields
// that opts.GridPairs allows; nil when that is fewer than two fields.
func newGrid(fields []*Feature, opts Options) *Grid {
	if opts.GridPairs <= 0 {
		return nil
	}
	// The first d numeric fields, d the most whose pairs fit in GridPairs.
	var g Grid
	for i, f := range fields {
		if f.Num == nil {
			continue
		}
		d := len(g.Names)
		if d*(d+1)/2 > opts.GridPairs {
			break
		}
		g.Names = append(g.Names, f.Name)
		g.cols = append(g.cols, i)
	}
	if len(g.Names) < 2 {
		return nil
	}
	return &g
}

// newPart is an empty part of source src over d fields, with every pair.
func newPart(src int32, d int) gridPart {
	p := gridPart{src: src, axes: make([]axis, d)}
	for i := range p.axes {
		p.axes[i].lattice = fineLattice
	}
	for a := range d {
		for b := a + 1; b < d; b++ {
			p.pairs = append(p.pairs, gridPair{a: a, b: b})
		}
	}
	return p
}

// Pairs returns the names of the pairs the grid covers, in order.
func (g *Grid) Pairs() [][2]string {
	var out [][2]string
	for a := range g.Names {
		for b := a + 1; b < len(g.Names); b++ {
			out = append(out, [2]string{g.Names[a], g.Names[b]})
		}
	}
	return out
}

// gridSettleRows is how many rows a grid keeps as they came before its
// lattices are chosen from them: a lattice chosen from the first few values
// spends its buckets on whatever came first, and every later choice is
// coarser.
const gridSettleRows = 256

// gridScratch holds the values and slots of one update (pooled, like
// jointScratch).
type gridScratch struct {
	vals  []float64
	slots []int8
}

var gridPool = sync.Pool{New: func() any { return new(gridScratch) }}

// update adds the rows idx of rec; cols maps profile features to rec's columns
// (-1: missing, every row null). srcs[r] is record row r's source (nil: all 0):
// each source's rows go to its own part, in the order they come.
func (g *Grid) update(rec arrow.Record, idx []int, cols []int, srcs []int32) {
	sc := gridPool.Get().(*gridScratch)
	defer gridPool.Put(sc)
	if srcs == nil {
		g.part(0).update(g, rec, idx, cols, sc)
		return
	}
	// Each run of rows from one source goes to its part in one call: a consumer's
	// batch holds runs of each partition's messages, so there are few, and a
	// source's rows keep their order.
	for len(idx) > 0 {
		src, n := srcs[idx[0]], 1
		for n < len(idx) && srcs[idx[n]] == src {
			n++
		}
		g.part(src).update(g, rec, idx[:n], cols, sc)
		idx = idx[n:]
	}
}

// part returns the part of source src, adding an empty one if needed.
func (g *Grid) part(src int32) *gridPart {
	i, ok := slices.BinarySearchFunc(g.parts, src, func(p gridPart, s int32) int { return cmp.Compare(p.src, s) })
	if !ok {
		g.parts = slices.Insert(g.parts, i, newPart(src, len(g.Names)))
	}
	return &g.parts[i]
}

// Seal folds g's parts into one, in source order: what reading or merging it
// would do, done once, for a grid that gets no more rows. The fold is source
// 0, whichever sources it holds, so that a sealed grid of partitions 3 and 5
// is the same as a leader's merge of their partials.
func (g *Grid) Seal() {
	if g == nil || len(g.parts) == 0 {
		return
	}
	if len(g.parts) > 1 {
		g.parts = []gridPart{g.folded()}
	}
	g.parts[0].src = 0
}

// folded returns g's parts folded into one in source order (merging each into
// the fold of the ones before it), sharing storage with g when there is only
// one part.
func (g *Grid) folded() gridPart {
	switch len(g.parts) {
	case 0:
		return newPart(0, len(g.Names))
	case 1:
		return g.parts[0]
	}
	f := g.parts[0].clone()
	for i := range g.parts[1:] {
		f.merge(&g.parts[1+i])
	}
	return f
}

// view returns the fold of g's parts with its lattices chosen, for reading;
// it may share storage with g.
func (g *Grid) view() *gridPart {
	f := g.folded()
	if !f.settled {
		f = f.clone()
		f.settle()
	}
	return &f
}

// update adds the rows idx of rec to p (see Grid.update).
func (p *gridPart) update(g *Grid, rec arrow.Record, idx []int, cols []int, sc *gridScratch) {
	n := len(idx)
	vals := sc.vals[:0]
	for _, fi := range g.cols {
		start := len(vals)
		ok := cols[fi] >= 0
		if ok {
			vals, ok = appendFloats(vals, rec.Column(cols[fi]), idx)
		}
		if !ok {
			vals = vals[:start]
			for range n {
				vals = append(vals, math.NaN())
			}
		}
	}
	sc.vals = vals
	p.add(vals, n, sc)
}

// add adds n rows given field by field (vals[a*n+r] is field a of row r; not
// finite: left out). The result depends on the rows and their order only, never
// on how they were cut into calls: a part keeps its first gridSettleRows rows
// as they are and chooses its lattices from them (settle), and afterwards
// coarsens a lattice at the very row that needs a bucket more than it has.
func (p *gridPart) add(vals []float64, n int, sc *gridScratch) {
	d := len(p.axes)
	r0 := 0
	if !p.settled {
		take := min(n, gridSettleRows-len(p.pending)/d)
		for r := range take {
			for a := range d {
				x := vals[a*n+r]
				if x-x != 0 {
					x = math.NaN()
				}
				p.pending = append(p.pending, x)
			}
		}
		r0 = take
		if len(p.pending) < gridSettleRows*d {
			return
		}
		p.settle()
	}
	m := n - r0
	if m == 0 {
		return
	}
	if cap(sc.slots) < d*m {
		sc.slots = make([]int8, d*m)
	}
	slots := sc.slots[:d*m]
	for a := range d {
		p.addAxis(a, vals[a*n+r0:(a+1)*n], slots[a*m:(a+1)*m])
	}
	p.addPairs(slots, m)
}

// addPairs counts m rows in every pair, given each field's slot of each row
// (slots[a*m+r]; -1: not finite).
func (p *gridPart) addPairs(slots []int8, m int) {
	for i := range p.pairs {
		gp := &p.pairs[i]
		sa, sb := slots[gp.a*m:(gp.a+1)*m], slots[gp.b*m:(gp.b+1)*m]
		cells, kb := gp.cells, len(p.axes[gp.b].ids)
		for r, i := range sa {
			if j := sb[r]; i >= 0 && j >= 0 {
				cells[int(i)*kb+int(j)]++
			}
		}
	}
}

// settle chooses every field's lattice from the pending rows and counts them.
func (p *gridPart) settle() {
	d := len(p.axes)
	m := len(p.pending) / d
	p.settled = true
	rows := p.pending
	p.pending = nil
	for a := range d {
		var keys []uint64
		for r := range m {
			if x := rows[r*d+a]; x-x == 0 {
				keys = append(keys, floatKey(x))
			}
		}
		slices.Sort(keys)
		var h histogram
		for _, k := range keys {
			if i := len(h.ids); i > 0 && h.ids[i-1] == k {
				h.counts[i-1]++
				continue
			}
			h.ids = append(h.ids, k)
			h.counts = append(h.counts, 1)
		}
		l, on := coarsen(fineLattice, h)
		p.relayout(a, l, on)
	}
	slots := make([]int8, d*m)
	for a := range d {
		ax := &p.axes[a]
		for r := range m {
			s := int8(-1)
			if x := rows[r*d+a]; x-x == 0 {
				s = int8(ax.slot(ax.bucket(floatKey(x))))
				ax.counts[s]++
			}
			slots[a*m+r] = s
		}
	}
	p.addPairs(slots, m)
}

// addAxis counts the finite values of field a, row by row, and sets slots[r]
// to the slot of value r (-1 when it is not finite). A value whose bucket the
// field does not have yet gets one, and when that makes more than GridBuckets
// the lattice coarsens (with the counts of the rows before it); the cells of
// a's pairs and the slots of this call's earlier rows move with it.
func (p *gridPart) addAxis(a int, vals []float64, slots []int8) {
	ax := &p.axes[a]
	for r, x := range vals {
		if x-x != 0 {
			slots[r] = -1
			continue
		}
		k := floatKey(x)
		s := ax.slot(ax.bucket(k))
		if s < 0 {
			id := ax.bucket(k)
			h := histogram{ids: slices.Clone(ax.ids), counts: slices.Clone(ax.counts)}
			i, _ := slices.BinarySearch(h.ids, id)
			h.ids = slices.Insert(h.ids, i, id)
			h.counts = slices.Insert(h.counts, i, 1)
			l, on := coarsen(ax.lattice, h)
			move := p.relayout(a, l, on)
			for q := range r {
				if slots[q] >= 0 {
					slots[q] = int8(move[slots[q]])
				}
			}
			s = ax.slot(ax.bucket(k))
		}
		slots[r] = int8(s)
		ax.counts[s]++
	}
}

// relayout moves axis a to lattice l (a coarsening of its own) with the buckets
// of want (on a finer or equal lattice; its counts are ignored): a's counts and
// its pairs' cells move to their buckets on l, which keeps them exact.
func (p *gridPart) relayout(a int, l lattice, want histogram) (move []int) {
	ax := &p.axes[a]
	var ids []uint64
	for _, id := range want.ids {
		c := l.bucket(id)
		if n := len(ids); n == 0 || ids[n-1] != c {
			ids = append(ids, c)
		}
	}
	if len(ids) > GridBuckets {
		panic(fmt.Sprintf("BUG: a lattice of %d buckets, more than %d", len(ids), GridBuckets))
	}
	move = make([]int, len(ax.ids)) // old slot → new slot
	counts := make([]int64, len(ids))
	for s, id := range ax.ids {
		ns, _ := slices.BinarySearch(ids, l.bucket(id))
		move[s] = ns
		counts[ns] += ax.counts[s]
	}
	for i := range p.pairs {
		gp := &p.pairs[i]
		if gp.a != a && gp.b != a {
			continue
		}
		ka, kb := len(p.axes[gp.a].ids), len(p.axes[gp.b].ids)
		nka, nkb := ka, kb
		if gp.a == a {
			nka = len(ids)
		} else {
			nkb = len(ids)
		}
		cells := make([]int64, nka*nkb)
		for i := range ka {
			for j := range kb {
				c := gp.cells[i*kb+j]
				if c == 0 {
					continue
				}
				ni, nj := i, j
				if gp.a == a {
					ni = move[i]
				} else {
					nj = move[j]
				}
				cells[ni*nkb+nj] += c
			}
		}
		gp.cells = cells
	}
	ax.lattice, ax.ids, ax.counts = l, ids, counts
	return move
}

// merge adds o into g, both folded first: a grid merged into another gets no
// more rows of its own sources (closed windows into a reference, a cluster
// leader's per-partition partials in partition order). Both must cover the
// same fields.
func (g *Grid) merge(o *Grid) {
	if len(o.parts) == 0 {
		return
	}
	g.Seal()
	f := o.folded()
	if len(g.parts) == 0 {
		g.parts = []gridPart{f.clone()}
		g.parts[0].src = 0
		return
	}
	g.parts[0].merge(&f)
}

// merge adds o into p. A part still keeping its first rows adds them to the
// other as rows, as if they had come after the other's.
func (p *gridPart) merge(o *gridPart) {
	switch {
	case !o.settled:
		p.addRows(o.pending)
		return
	case !p.settled:
		pending := p.pending
		c := o.clone()
		p.axes, p.pairs, p.pending, p.settled = c.axes, c.pairs, nil, true
		p.addRows(pending)
		return
	}
	for a := range p.axes {
		ga, oa := &p.axes[a], &o.axes[a]
		l := ga.lattice.join(oa.lattice)
		h := histogram{ids: slices.Concat(ga.ids, oa.ids), counts: make([]int64, len(ga.ids)+len(oa.ids))}
		for i, id := range h.ids {
			h.ids[i] = l.bucket(id)
		}
		copy(h.counts, ga.counts)
		copy(h.counts[len(ga.ids):], oa.counts)
		h = sortedHistogram(h)
		l, h = coarsen(l, h)
		p.relayout(a, l, h)
	}
	for i := range p.pairs {
		gp, op := &p.pairs[i], &o.pairs[i]
		ma, mb := p.slotMap(o, gp.a), p.slotMap(o, gp.b)
		okb, gkb := len(o.axes[gp.b].ids), len(p.axes[gp.b].ids)
		for i := range len(o.axes[gp.a].ids) {
			for j := range okb {
				if c := op.cells[i*okb+j]; c != 0 {
					gp.cells[ma[i]*gkb+mb[j]] += c
				}
			}
		}
	}
	for a := range p.axes {
		m := p.slotMap(o, a)
		for s, c := range o.axes[a].counts {
			p.axes[a].counts[m[s]] += c
		}
	}
}

// addRows adds rows given row by row (d values each).
func (p *gridPart) addRows(rows []float64) {
	d := len(p.axes)
	m := len(rows) / d
	if m == 0 {
		return
	}
	vals := make([]float64, len(rows))
	for r := range m {
		for a := range d {
			vals[a*m+r] = rows[r*d+a]
		}
	}
	p.add(vals, m, new(gridScratch))
}

// slotMap maps o's slots of axis a to p's, whose lattice is a coarsening of o's.
func (p *gridPart) slotMap(o *gridPart, a int) []int {
	ga := &p.axes[a]
	m := make([]int, len(o.axes[a].ids))
	for s, id := range o.axes[a].ids {
		m[s] = ga.slot(ga.bucket(id))
		if m[s] < 0 {
			panic("BUG: a merged grid lacks a bucket of one of its parts")
		}
	}
	return m
}

// sameCoverage reports whether g and o cover the same fields and pairs.
func (g *Grid) sameCoverage(o *Grid) bool { return slices.Equal(g.Names, o.Names) }

// reset empties g, keeping the fields it covers.
func (g *Grid) reset() { g.parts = nil }

func (g *Grid) clone() *Grid {
	if g == nil {
		return nil
	}
	c := &Grid{Names: slices.Clone(g.Names), cols: slices.Clone(g.cols), parts: make([]gridPart, len(g.parts))}
	for i := range g.parts {
		c.parts[i] = g.parts[i].clone()
	}
	return c
}

func (p *gridPart) clone() gridPart {
	c := gridPart{src: p.src, axes: make([]axis, len(p.axes)), pairs: make([]gridPair, len(p.pairs)),
		pending: slices.Clone(p.pending), settled: p.settled}
	for i, a := range p.axes {
		c.axes[i] = axis{lattice: a.lattice, ids: slices.Clone(a.ids), counts: slices.Clone(a.counts)}
	}
	for i, gp := range p.pairs {
		c.pairs[i] = gridPair{a: gp.a, b: gp.b, cells: slices.Clone(gp.cells)}
	}
	return c
}

// Buckets returns field name's buckets: the lower edge of each (its smallest
// value; −MaxFloat64 for the bottom outer bucket) and the finite values it
// holds, in order; nil when the grid does not cover name.
func (g *Grid) Buckets(name string) (lower []float64, counts []int64) {
	a := slices.Index(g.Names, name)
	if a < 0 {
		return nil, nil
	}
	v := g.view()
	for s, id := range v.axes[a].ids {
		lower = append(lower, lowerEdge(id))
		counts = append(counts, v.axes[a].counts[s])
	}
	return lower, counts
}

// lowerEdge is the smallest finite value a bucket id can hold.
func lowerEdge(id uint64) float64 { return keyFloat(max(id, floatKey(-math.MaxFloat64))) }

// PairCounts is one pair of fields (X, Y) in two grids, a reference's and a
// window's, on the lattice of which both are refinements: the buckets of each
// field that either grid occupies, and each grid's counts on them. Cuts along
// these buckets count both sides exactly.
type PairCounts struct {
	X, Y string
	// XLower and YLower are the buckets' lower edges (their smallest values,
	// −MaxFloat64 for a bottom outer bucket), ascending.
	XLower, YLower []float64
	// RefX, CurX, RefY and CurY are each grid's finite values per bucket of a
	// field (all of its rows, whatever the other field holds).
	RefX, CurX, RefY, CurY []int64
	// Ref and Cur are the rows with both values finite, [x bucket][y bucket].
	Ref, Cur [][]int64
}

// ComparePair returns fields x and y of ref and cur on their common lattice;
// false when either grid does not cover the pair.
func ComparePair(ref, cur *Grid, x, y string) (PairCounts, bool) {
	pc := PairCounts{X: x, Y: y}
	if ref == nil || cur == nil {
		return pc, false
	}
	rp, rswap, ok1 := ref.pair(x, y)
	cp, cswap, ok2 := cur.pair(x, y)
	if !ok1 || !ok2 {
		return pc, false
	}
	rv, cv := ref.view(), cur.view()
	ax := func(g *Grid, v *gridPart, name string) *axis { return &v.axes[slices.Index(g.Names, name)] }
	rx, ry, cx, cy := ax(ref, rv, x), ax(ref, rv, y), ax(cur, cv, x), ax(cur, cv, y)
	lx, ly := rx.lattice.join(cx.lattice), ry.lattice.join(cy.lattice)
	ids := func(l lattice, axes ...*axis) []uint64 {
		var out []uint64
		for _, a := range axes {
			for _, id := range a.ids {
				out = append(out, l.bucket(id))
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	xs, ys := ids(lx, rx, cx), ids(ly, ry, cy)
	for _, id := range xs {
		pc.XLower = append(pc.XLower, lowerEdge(id))
	}
	for _, id := range ys {
		pc.YLower = append(pc.YLower, lowerEdge(id))
	}
	index := func(l lattice, all []uint64, a *axis) []int {
		m := make([]int, len(a.ids))
		for s, id := range a.ids {
			m[s], _ = slices.BinarySearch(all, l.bucket(id))
		}
		return m
	}
	marginal := func(a *axis, m []int, n int) []int64 {
		out := make([]int64, n)
		for s, c := range a.counts {
			out[m[s]] += c
		}
		return out
	}
	rmx, rmy, cmx, cmy := index(lx, xs, rx), index(ly, ys, ry), index(lx, xs, cx), index(ly, ys, cy)
	pc.RefX, pc.RefY = marginal(rx, rmx, len(xs)), marginal(ry, rmy, len(ys))
	pc.CurX, pc.CurY = marginal(cx, cmx, len(xs)), marginal(cy, cmy, len(ys))
	table := func(g *gridPart, p int, swap bool, mx, my []int) [][]int64 {
		t := make([][]int64, len(xs))
		for i := range t {
			t[i] = make([]int64, len(ys))
		}
		gp := &g.pairs[p]
		kb := len(g.axes[gp.b].ids)
		for i := range len(g.axes[gp.a].ids) {
			for j := range kb {
				c := gp.cells[i*kb+j]
				if c == 0 {
					continue
				}
				if swap {
					t[mx[j]][my[i]] += c
				} else {
					t[mx[i]][my[j]] += c
				}
			}
		}
		return t
	}
	pc.Ref = table(rv, rp, rswap, rmx, rmy)
	pc.Cur = table(cv, cp, cswap, cmx, cmy)
	return pc, true
}

// pair returns the index of the pair of fields x and y in a part's pairs, and
// whether x is its second field.
func (g *Grid) pair(x, y string) (int, bool, bool) {
	a, b := slices.Index(g.Names, x), slices.Index(g.Names, y)
	if a < 0 || b < 0 || a == b {
		return 0, false, false
	}
	swap := a > b
	if swap {
		a, b = b, a
	}
	// Pairs are in order (0,1), (0,2), …, (1,2), …: those of each a' < a first.
	d := len(g.Names)
	return a*(2*d-a-1)/2 + (b - a - 1), swap, true
}
