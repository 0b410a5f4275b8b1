package sketch

import (
	"math"
	"slices"
)

// floatKey maps a float64 (not NaN) to a uint64 with the same order.
func floatKey(x float64) uint64 {
	u := math.Float64bits(x)
	return u ^ (uint64(int64(u)>>63) | 1<<63)
}

// keyFloat is the inverse of floatKey.
func keyFloat(k uint64) float64 {
	return math.Float64frombits(k ^ (uint64(int64(^k)>>63) | 1<<63))
}

// sortKeys sorts keys ascending, using *tmp (grown as needed) as the second
// buffer. It is a least-significant-digit radix sort on the top 32 bits
// (sign, exponent and 20 bits of mantissa: a relative resolution of 1e-6),
// which leaves keys in order up to ties in those bits, and then sorts each
// run of tied keys by comparison. Typical data has no or short runs; data
// whose values all agree in their top 32 bits falls back to an ordinary
// sort. A comparison sort of a buffer costs about log2(1600) ≈ 11
// mispredicted branches per value; this costs four passes and a scan.
func sortKeys(keys []uint64, tmp *[]uint64) {
	if len(keys) < 64 {
		slices.Sort(keys)
		return
	}
	if cap(*tmp) < len(keys) {
		*tmp = make([]uint64, len(keys))
	}
	var counts [4][256]uint32
	for _, k := range keys {
		counts[0][byte(k>>32)]++
		counts[1][byte(k>>40)]++
		counts[2][byte(k>>48)]++
		counts[3][byte(k>>56)]++
	}
	src, dst := keys, (*tmp)[:len(keys)]
	for d := range counts {
		c := &counts[d]
		shift := uint(32 + 8*d)
		if c[byte(src[0]>>shift)] == uint32(len(src)) {
			continue // every key has the same digit
		}
		var sum uint32
		for i, v := range c {
			c[i], sum = sum, sum+v
		}
		for _, k := range src {
			b := byte(k >> shift)
			dst[c[b]] = k
			c[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
	for i := 0; i < len(keys); {
		hi := keys[i] >> 32
		j := i + 1
		for j < len(keys) && keys[j]>>32 == hi {
			j++
		}
		switch {
		case j-i > 16:
			slices.Sort(keys[i:j])
		case j-i > 1:
			insertionSort(keys[i:j])
		}
		i = j
	}
}

func insertionSort(keys []uint64) {
	for i := 1; i < len(keys); i++ {
		k, j := keys[i], i
		for ; j > 0 && keys[j-1] > k; j-- {
			keys[j] = keys[j-1]
		}
		keys[j] = k
	}
}
