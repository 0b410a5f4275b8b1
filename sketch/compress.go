package sketch

import (
	"math"
	"sync"

	"github.com/influxdata/tdigest"
)

// compress merges the pending values into the centroids in one pass of the
// merging t-digest, as influxdata/tdigest's process does, if anything is
// pending. It keeps the library's rule: walking the values in ascending
// order, a value joins the current centroid while the centroid's cumulative
// weight stays within the limit of the k1 scale function
// (q(k) = (sin(min(k, δ)·π/δ − π/2) + 1)/2 for compression δ) one unit of k
// after where the centroid started, and opens a new centroid otherwise.
//
// Two things differ from the library, for speed, not in kind:
//   - the next limit is computed from sin(asin(z)+π/δ) expanded into
//     z·cos(π/δ) + √(1−z²)·sin(π/δ), one square root instead of an arcsine
//     and a sine per centroid;
//   - a centroid's mean is its first value plus the weighted mean of the
//     offsets from it, one division per centroid instead of one per value.
//     Equal values keep exactly their value, and a mean never leaves the
//     range of its members, so centroids stay sorted.
//
// Both round differently from the library in the last bits, so a digest
// built from the same values may hold slightly different centroids than it
// did with the library's process; its accuracy is the same (TestCDFError,
// detectors' accuracy tests).
func (n *Numeric) compress() {
	if !n.dirty {
		return
	}
	n.dirty, n.spilled = false, false
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sortKeys(n.pending, &sc.tmp)

	total := float64(len(n.pending))
	for _, c := range n.cents {
		total += c.Weight
	}
	if total == 0 {
		n.cents, n.pending = n.cents[:0], n.pending[:0]
		return
	}
	cz := compressor{total: total}
	delta := math.Pi / n.compression
	cz.cos, cz.sin = math.Cos(delta), math.Sin(delta)
	cz.out = sc.out[:0]

	cents, keys := n.cents, n.pending
	i := 0
	for _, k := range keys {
		x := keyFloat(k)
		for i < len(cents) && cents[i].Mean <= x {
			cz.add(cents[i].Mean, cents[i].Weight)
			i++
		}
		// The common case, inlined: a value that joins the current
		// centroid (before the first, limit is 0 and nothing joins).
		if p := cz.soFar + 1; p <= cz.limit {
			cz.soFar = p
			cz.weight++
			cz.offsets += x - cz.first
			cz.last = x
			continue
		}
		cz.add(x, 1)
	}
	for ; i < len(cents); i++ {
		cz.add(cents[i].Mean, cents[i].Weight)
	}
	cz.close()
	n.cents = append(n.cents[:0], cz.out...)
	sc.out = cz.out[:0]
	n.pending = n.pending[:0]
}

// compressor is the state of one compress pass: the centroid being built
// (its first member, the weighted sum of its members' offsets from it, its
// weight and its last member) and the cumulative weight and limit of the
// merging t-digest.
type compressor struct {
	total, soFar, limit float64
	cos, sin            float64
	started             bool
	first, offsets      float64
	weight, last        float64
	out                 []tdigest.Centroid
}

// add feeds the next (mean, weight) in ascending order of mean.
func (c *compressor) add(m, w float64) {
	if !c.started {
		c.started = true
		c.first, c.last, c.weight, c.offsets = m, m, w, 0
		c.soFar = w
		c.limit = c.total * (1 - c.cos) / 2 // q(1)
		return
	}
	if p := c.soFar + w; p <= c.limit {
		c.soFar = p
		c.weight += w
		c.offsets += w * (m - c.first)
		c.last = m
		return
	}
	c.close()
	z := 2*c.soFar/c.total - 1 // q before this value, mapped to [-1, 1]
	if z >= c.cos {
		c.limit = c.total // k has reached δ: q(k) is 1 from here on
	} else {
		c.limit = c.total * (z*c.cos + math.Sqrt(max(0, 1-z*z))*c.sin + 1) / 2
	}
	c.soFar += w
	c.first, c.last, c.weight, c.offsets = m, m, w, 0
}

// close appends the centroid being built.
func (c *compressor) close() {
	if !c.started {
		return
	}
	m := c.first
	if c.offsets != 0 {
		m = min(c.first+c.offsets/c.weight, c.last)
	}
	c.out = append(c.out, tdigest.Centroid{Mean: m, Weight: c.weight})
}

// scratch is the memory one compress pass needs and no feature keeps: the
// radix sort's second buffer and the new centroids. A pool shares it among
// all features, so a window of a thousand numeric features does not hold a
// thousand copies.
type scratch struct {
	tmp []uint64
	out []tdigest.Centroid
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}
