package sketch

// The lattices of the pair grids (grid.go): which bucket of a field's axis holds a
// value, and how a lattice coarsens so that a field never needs more than GridBuckets
// buckets. A lattice works on the order-preserving 64-bit key of a float64 (floatKey),
// so buckets nest: a coarser lattice's bucket is a union of finer ones, and two grids
// merge exactly by coarsening the finer.

import (
	"cmp"
	"math"
	"slices"
)

// lattice says which bucket holds a value, by its key (floatKey; see Grid):
// keys up to botMax form the bottom bucket, keys from topMin on the top bucket,
// keys in [cenMin, cenMax] (always holding ±0) the central bucket, and the rest
// regular buckets of 2^shift keys aligned on multiples of 2^shift. Every bound
// is aligned too, so no regular bucket straddles one.
type lattice struct {
	shift             uint8 // 0–63
	hasBottom, hasTop bool
	botMax, topMin    uint64
	cenMin, cenMax    uint64
}

// fineLattice is where every field's lattice starts: one bucket per distinct
// value, zero's two keys the central bucket, no bottom or top bucket.
var fineLattice = lattice{cenMin: floatKey(math.Copysign(0, -1)), cenMax: floatKey(0)}

// bucket returns the id of the bucket holding key k: the bottom bucket's is 0,
// the others' their lowest key, so ids sort like the values.
func (l lattice) bucket(k uint64) uint64 {
	switch {
	case l.hasBottom && k <= l.botMax:
		return 0
	case l.hasTop && k >= l.topMin:
		return l.topMin
	case k >= l.cenMin && k <= l.cenMax:
		return l.cenMin
	}
	return k >> l.shift << l.shift
}

// mask is 2^shift − 1.
func (l lattice) mask() uint64 { return 1<<l.shift - 1 }

// last is the last key of the regular bucket id.
func (l lattice) last(id uint64) uint64 { return id | l.mask() }

// align widens the bottom, central and top buckets to the bucket boundaries of
// l.shift, and merges the central bucket with a bottom or top bucket it reaches.
func (l lattice) align() lattice {
	m := l.mask()
	if l.hasBottom {
		l.botMax |= m
	}
	l.cenMin &^= m
	l.cenMax |= m
	if l.hasTop {
		l.topMin &^= m
	}
	if l.hasBottom && l.botMax+1 >= l.cenMin {
		l.hasBottom, l.cenMin = false, 0
	}
	if l.hasTop && l.topMin <= l.cenMax+1 {
		l.hasTop, l.cenMax = false, math.MaxUint64
	}
	return l
}

// join is the finest lattice of which both l and o are refinements.
func (l lattice) join(o lattice) lattice {
	j := lattice{shift: max(l.shift, o.shift), cenMin: min(l.cenMin, o.cenMin), cenMax: max(l.cenMax, o.cenMax)}
	j.hasBottom, j.botMax = joinEdge(l.hasBottom, l.botMax, o.hasBottom, o.botMax, func(a, b uint64) uint64 { return max(a, b) })
	j.hasTop, j.topMin = joinEdge(l.hasTop, l.topMin, o.hasTop, o.topMin, func(a, b uint64) uint64 { return min(a, b) })
	return j.align()
}

// joinEdge joins one open-ended edge bucket of two lattices (the bottom or the
// top): the join has it when either does, and its bound is the one lattice's
// that has it, or the coarser of both (wider: the larger bottom, the smaller top).
func joinEdge(lHas bool, l uint64, oHas bool, o uint64, coarser func(a, b uint64) uint64) (bool, uint64) {
	switch {
	case lHas && oHas:
		return true, coarser(l, o)
	case lHas:
		return true, l
	case oHas:
		return true, o
	}
	return false, 0
}

// regular reports whether id is neither the bottom, central nor top bucket.
func (l lattice) regular(id uint64) bool {
	return !(l.hasBottom && id == 0) && !(l.hasTop && id == l.topMin) && id != l.cenMin
}

// axis is one field's lattice and its buckets: ids ascending, and the finite
// values each holds. Slot i of a pair's cells is bucket ids[i].
type axis struct {
	lattice
	ids    []uint64
	counts []int64
}

// slot returns the index of id in a.ids, or -1.
func (a *axis) slot(id uint64) int {
	i, ok := slices.BinarySearch(a.ids, id)
	if !ok {
		return -1
	}
	return i
}

// histogram is buckets with their counts, ids ascending.
type histogram struct {
	ids    []uint64
	counts []int64
}

// regroup returns h's buckets on l, a coarsening of the lattice h is on. It
// reuses h's storage.
func (h histogram) regroup(l lattice) histogram {
	out := histogram{ids: h.ids[:0], counts: h.counts[:0]}
	for i, id := range h.ids {
		c, n := l.bucket(id), h.counts[i]
		if k := len(out.ids); k > 0 && out.ids[k-1] == c {
			out.counts[k-1] += n
			continue
		}
		out.ids = append(out.ids, c)
		out.counts = append(out.counts, n)
	}
	return out
}

// occupied is how many buckets of l h's buckets fall in.
func (h histogram) occupied(l lattice) int {
	n := 0
	var last uint64
	for i, id := range h.ids {
		if c := l.bucket(id); i == 0 || c != last {
			n++
			last = c
		}
	}
	return n
}

// coarsen returns the lattice (a coarsening of l, which h is on) on which h
// occupies at most GridBuckets buckets, and h on it. At each resolution from
// l's on, it folds the regular bucket at an edge of the bottom, central or top
// bucket into it (the lightest such move) while the bucket it joins stays
// within 1.5 average buckets' mass; the first resolution at which that leaves
// GridBuckets buckets or fewer wins. Light tails and the sparse values near
// zero so fold away before the bulk loses resolution.
func coarsen(l lattice, h histogram) (lattice, histogram) {
	if len(h.ids) <= GridBuckets {
		return l, h
	}
	var total int64
	for _, c := range h.counts {
		total += c
	}
	limit := total * 3 / (2 * GridBuckets)
	// The coarsest shift first at which at most 4·GridBuckets buckets remain
	// (by bisection: fewer remain at every coarser shift), skipping the shifts
	// that only merge single values.
	if h.occupied(l) > 4*GridBuckets {
		at := func(shift uint8) lattice { m := l; m.shift = shift; return m.align() }
		lo, hi := l.shift, uint8(63)
		for lo < hi {
			mid := lo + (hi-lo)/2
			if h.occupied(at(mid)) > 4*GridBuckets {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		l = at(lo)
		h = h.regroup(l)
	}
	for {
		// Folding single values of a fine lattice would spend the end buckets'
		// mass on whatever came first: fold only buckets of a lattice within a
		// few times the goal.
		for len(h.ids) > GridBuckets && len(h.ids) <= 4*GridBuckets {
			next, ok := fold(l, h, limit, l.shift == 63)
			if !ok {
				break
			}
			l = next
			h = h.regroup(l)
		}
		if len(h.ids) <= GridBuckets {
			return l, h
		}
		l.shift++
		l = l.align()
		h = h.regroup(l)
	}
}

// fold returns l with one regular bucket of h folded into the bottom, central
// or top bucket next to it: the move that leaves the bucket it joins lightest,
// if that holds at most limit values (any move, with force); false when there
// is none.
func fold(l lattice, h histogram, limit int64, force bool) (lattice, bool) {
	var bottom, central, top int64
	below, above := -1, -1 // the regular buckets next to the central one
	first, last := -1, -1  // the first and last regular buckets
	for i, id := range h.ids {
		switch {
		case l.hasBottom && id == 0:
			bottom = h.counts[i]
		case l.hasTop && id == l.topMin:
			top = h.counts[i]
		case id == l.cenMin:
			central = h.counts[i]
		default:
			if first < 0 {
				first = i
			}
			last = i
			if id < l.cenMin {
				below = i
			} else if above < 0 {
				above = i
			}
		}
	}
	best, move := int64(math.MaxInt64), -1
	consider := func(i int, into int64, m int) {
		if i >= 0 && into+h.counts[i] < best {
			best, move = into+h.counts[i], m
		}
	}
	if first >= 0 && h.ids[first] < l.cenMin {
		consider(first, bottom, 0)
	}
	if last >= 0 && h.ids[last] > l.cenMin {
		consider(last, top, 1)
	}
	consider(below, central, 2)
	consider(above, central, 3)
	if move < 0 || best > limit && !force {
		return l, false
	}
	switch move {
	case 0:
		l.hasBottom, l.botMax = true, l.last(h.ids[first])
	case 1:
		l.hasTop, l.topMin = true, h.ids[last]
	case 2:
		l.cenMin = h.ids[below]
	case 3:
		l.cenMax = l.last(h.ids[above])
	}
	return l.align(), true
}

// sortedHistogram returns h (unsorted, with repeats) sorted, repeats summed.
func sortedHistogram(h histogram) histogram {
	order := make([]int, len(h.ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(h.ids[x], h.ids[y]) })
	var out histogram
	for _, i := range order {
		if n := len(out.ids); n > 0 && out.ids[n-1] == h.ids[i] {
			out.counts[n-1] += h.counts[i]
			continue
		}
		out.ids = append(out.ids, h.ids[i])
		out.counts = append(out.counts, h.counts[i])
	}
	return out
}
