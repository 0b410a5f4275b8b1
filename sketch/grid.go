package sketch

import (
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
// The grid depends on its rows and their order only, never on how they were cut
// into updates (a monitor restored from a checkpoint reads the rest of a window
// in other batches): it keeps its first 256 rows as they came, chooses each
// field's lattice from them, and afterwards coarsens a lattice at the very row
// that needs one bucket more than it may have, with the counts of the rows
// before it.
//
// A row counts in a pair when both of its values are finite (nulls, NaN and ±Inf
// are left out); a field's own bucket counts hold all its finite values.
type Grid struct {
	// Names are the fields covered, in profile order.
	Names []string
	cols  []int // profile feature index of each name

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
	g.init()
	return &g
}

// init gives g empty axes and every pair of its names.
func (g *Grid) init() {
	d := len(g.Names)
	g.pending, g.settled = nil, false
	g.axes = make([]axis, d)
	for i := range g.axes {
		g.axes[i].lattice = fineLattice
	}
	g.pairs = g.pairs[:0]
	for a := range d {
		for b := a + 1; b < d; b++ {
			g.pairs = append(g.pairs, gridPair{a: a, b: b})
		}
	}
}

// Pairs returns the names of the pairs the grid covers, in order.
func (g *Grid) Pairs() [][2]string {
	out := make([][2]string, len(g.pairs))
	for i, p := range g.pairs {
		out[i] = [2]string{g.Names[p.a], g.Names[p.b]}
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
// (-1: missing, every row null).
func (g *Grid) update(rec arrow.Record, idx []int, cols []int) {
	n := len(idx)
	sc := gridPool.Get().(*gridScratch)
	defer gridPool.Put(sc)
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
	g.add(vals, n, sc)
}

// add adds n rows given field by field (vals[a*n+r] is field a of row r; not
// finite: left out). The result depends on the rows and their order only, never
// on how they were cut into calls: a grid keeps its first gridSettleRows rows
// as they are and chooses its lattices from them (settle), and afterwards
// coarsens a lattice at the very row that needs a bucket more than it has.
func (g *Grid) add(vals []float64, n int, sc *gridScratch) {
	d := len(g.Names)
	r0 := 0
	if !g.settled {
		take := min(n, gridSettleRows-len(g.pending)/d)
		for r := range take {
			for a := range d {
				x := vals[a*n+r]
				if x-x != 0 {
					x = math.NaN()
				}
				g.pending = append(g.pending, x)
			}
		}
		r0 = take
		if len(g.pending) < gridSettleRows*d {
			return
		}
		g.settle()
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
		g.addAxis(a, vals[a*n+r0:(a+1)*n], slots[a*m:(a+1)*m])
	}
	g.addPairs(slots, m)
}

// addPairs counts m rows in every pair, given each field's slot of each row
// (slots[a*m+r]; -1: not finite).
func (g *Grid) addPairs(slots []int8, m int) {
	for p := range g.pairs {
		gp := &g.pairs[p]
		sa, sb := slots[gp.a*m:(gp.a+1)*m], slots[gp.b*m:(gp.b+1)*m]
		cells, kb := gp.cells, len(g.axes[gp.b].ids)
		for r, i := range sa {
			if j := sb[r]; i >= 0 && j >= 0 {
				cells[int(i)*kb+int(j)]++
			}
		}
	}
}

// settle chooses every field's lattice from the pending rows and counts them.
func (g *Grid) settle() {
	d := len(g.Names)
	m := len(g.pending) / d
	g.settled = true
	rows := g.pending
	g.pending = nil
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
		g.relayout(a, l, on)
	}
	slots := make([]int8, d*m)
	for a := range d {
		ax := &g.axes[a]
		for r := range m {
			s := int8(-1)
			if x := rows[r*d+a]; x-x == 0 {
				s = int8(ax.slot(ax.bucket(floatKey(x))))
				ax.counts[s]++
			}
			slots[a*m+r] = s
		}
	}
	g.addPairs(slots, m)
}

// addAxis counts the finite values of field a, row by row, and sets slots[r]
// to the slot of value r (-1 when it is not finite). A value whose bucket the
// field does not have yet gets one, and when that makes more than GridBuckets
// the lattice coarsens (with the counts of the rows before it); the cells of
// a's pairs and the slots of this call's earlier rows move with it.
func (g *Grid) addAxis(a int, vals []float64, slots []int8) {
	ax := &g.axes[a]
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
			move := g.relayout(a, l, on)
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
func (g *Grid) relayout(a int, l lattice, want histogram) (move []int) {
	ax := &g.axes[a]
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
	for p := range g.pairs {
		gp := &g.pairs[p]
		if gp.a != a && gp.b != a {
			continue
		}
		ka, kb := len(g.axes[gp.a].ids), len(g.axes[gp.b].ids)
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

// merge adds o into g. Both must cover the same fields. A grid still keeping
// its first rows adds them to the other as rows, as if they had come after the
// other's.
func (g *Grid) merge(o *Grid) {
	switch {
	case !o.settled:
		g.addRows(o.pending)
		return
	case !g.settled:
		pending := g.pending
		c := o.clone()
		g.axes, g.pairs, g.pending, g.settled = c.axes, c.pairs, nil, true
		g.addRows(pending)
		return
	}
	for a := range g.axes {
		ga, oa := &g.axes[a], &o.axes[a]
		l := ga.lattice.join(oa.lattice)
		h := histogram{ids: slices.Concat(ga.ids, oa.ids), counts: make([]int64, len(ga.ids)+len(oa.ids))}
		for i, id := range h.ids {
			h.ids[i] = l.bucket(id)
		}
		copy(h.counts, ga.counts)
		copy(h.counts[len(ga.ids):], oa.counts)
		h = sortedHistogram(h)
		l, h = coarsen(l, h)
		g.relayout(a, l, h)
	}
	for p := range g.pairs {
		gp, op := &g.pairs[p], &o.pairs[p]
		ma, mb := g.slotMap(o, gp.a), g.slotMap(o, gp.b)
		okb, gkb := len(o.axes[gp.b].ids), len(g.axes[gp.b].ids)
		for i := range len(o.axes[gp.a].ids) {
			for j := range okb {
				if c := op.cells[i*okb+j]; c != 0 {
					gp.cells[ma[i]*gkb+mb[j]] += c
				}
			}
		}
	}
	for a := range g.axes {
		m := g.slotMap(o, a)
		for s, c := range o.axes[a].counts {
			g.axes[a].counts[m[s]] += c
		}
	}
}

// addRows adds rows given row by row (d values each).
func (g *Grid) addRows(rows []float64) {
	d := len(g.Names)
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
	g.add(vals, m, new(gridScratch))
}

// settledCopy returns g, or a copy of it that has chosen its lattices from the
// rows it keeps, for reading.
func (g *Grid) settledCopy() *Grid {
	if g.settled {
		return g
	}
	c := g.clone()
	c.settle()
	return c
}

// slotMap maps o's slots of axis a to g's, whose lattice is a coarsening of o's.
func (g *Grid) slotMap(o *Grid, a int) []int {
	ga := &g.axes[a]
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
func (g *Grid) sameCoverage(o *Grid) bool {
	return slices.Equal(g.Names, o.Names) && len(g.pairs) == len(o.pairs)
}

// reset empties g, keeping the fields it covers.
func (g *Grid) reset() { g.init() }

func (g *Grid) clone() *Grid {
	if g == nil {
		return nil
	}
	c := &Grid{Names: slices.Clone(g.Names), cols: slices.Clone(g.cols), axes: make([]axis, len(g.axes)), pairs: make([]gridPair, len(g.pairs)),
		pending: slices.Clone(g.pending), settled: g.settled}
	for i, a := range g.axes {
		c.axes[i] = axis{lattice: a.lattice, ids: slices.Clone(a.ids), counts: slices.Clone(a.counts)}
	}
	for i, p := range g.pairs {
		c.pairs[i] = gridPair{a: p.a, b: p.b, cells: slices.Clone(p.cells)}
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
	g = g.settledCopy()
	for s, id := range g.axes[a].ids {
		lower = append(lower, lowerEdge(id))
		counts = append(counts, g.axes[a].counts[s])
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
	ref, cur = ref.settledCopy(), cur.settledCopy()
	rp, rswap, ok1 := ref.pair(x, y)
	cp, cswap, ok2 := cur.pair(x, y)
	if !ok1 || !ok2 {
		return pc, false
	}
	ax := func(g *Grid, name string) *axis { return &g.axes[slices.Index(g.Names, name)] }
	rx, ry, cx, cy := ax(ref, x), ax(ref, y), ax(cur, x), ax(cur, y)
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
	table := func(g *Grid, p int, swap bool, mx, my []int) [][]int64 {
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
	pc.Ref = table(ref, rp, rswap, rmx, rmy)
	pc.Cur = table(cur, cp, cswap, cmx, cmy)
	return pc, true
}

// pair returns the index of the pair of fields x and y, and whether x is its
// second field.
func (g *Grid) pair(x, y string) (int, bool, bool) {
	a, b := slices.Index(g.Names, x), slices.Index(g.Names, y)
	if a < 0 || b < 0 || a == b {
		return 0, false, false
	}
	swap := a > b
	if swap {
		a, b = b, a
	}
	for i, p := range g.pairs {
		if p.a == a && p.b == b {
			return i, swap, true
		}
	}
	return 0, false, false
}
