package ingest

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"sync"
)

// appendNumberText appends the text form of a valid JSON number literal: integer literals
// verbatim (so that large IDs stay exact; "-0" becomes "0"), anything else as the
// shortest decimal of its float64 value.
func appendNumberText(dst, lit []byte) []byte {
	integer := true
	for _, c := range lit {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if string(lit) == "-0" {
			return append(dst, '0')
		}
		return append(dst, lit...)
	}
	f, _ := strconv.ParseFloat(bytesString(lit), 64)
	return appendFloatText(dst, f)
}

// appendFloatText formats f as its shortest decimal text: plain notation for magnitudes in
// [1e-6, 1e21), exponent notation otherwise, and "0" for both zeros.
func appendFloatText(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat converts a valid JSON number literal whose value is an integer below 2^53
// times or divided by a power of ten up to 1e22, which covers what producers log
// (8–17 significant digits, small exponents); ok is false for anything else, and the
// caller then uses strconv.ParseFloat. The scanner computes the same while it
// validates a number it captures (scanner.number, scanner.float); this is that, for a
// literal on its own.
func fastFloat(b []byte) (f float64, ok bool) {
	sc := scanner{cursor: cursor{b: b}}
	if !sc.number() || sc.i != len(b) {
		return 0, false
	}
	return sc.float()
}

// float returns the value of the number the scanner has just read (see fastFloat), by
// the two algorithms strconv.ParseFloat itself tries first, without its second pass over
// the digits: Clinger's fast path when the mantissa is below 2^53 and the power of ten
// within ±22 (both exact in float64, so one multiplication or division rounds
// correctly), else Eisel–Lemire for mantissas of up to 19 digits, which is what the
// shortest round-trip text of a float64 (most JSON encoders' output) needs. ok is false
// for more digits or when Eisel–Lemire cannot decide; strconv.ParseFloat then does.
func (s *scanner) float() (f float64, ok bool) {
	m, exp := s.mant, s.exp
	if s.digits > 19 {
		return 0, false
	}
	if m >= 1<<53 || exp < -22 || exp > 22 {
		return eiselLemire64(m, exp, s.neg)
	}
	f = float64(m)
	switch {
	case exp > 0:
		f *= pow10[exp]
	case exp < 0:
		f /= pow10[-exp]
	}
	if s.neg {
		f = -f
	}
	return f, true
}

// eiselLemire64 is strconv's eiselLemire64 (Go's source, BSD licence; the algorithm is
// Daniel Lemire's, https://nigeltao.github.io/blog/2020/eisel-lemire.html): the float64
// nearest to man × 10^exp10, or ok false when the 128-bit approximation cannot tell.
func eiselLemire64(man uint64, exp10 int, neg bool) (f float64, ok bool) {
	if man == 0 {
		if neg {
			f = math.Copysign(0, -1)
		}
		return f, true
	}
	if exp10 < powersOfTenMinExp10 || powersOfTenMaxExp10 < exp10 {
		return 0, false
	}
	pow := &powersOfTen()[exp10-powersOfTenMinExp10]

	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	const float64ExponentBias = 1023
	retExp2 := uint64(217706*exp10>>16+64+float64ExponentBias) - uint64(clz)

	xHi, xLo := bits.Mul64(man, pow[1])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[0])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}

	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb

	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false // half-way ambiguity
	}

	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal, infinite or NaN
	}
	retBits := retExp2<<52 | retMantissa&0x000FFFFFFFFFFFFF
	if neg {
		retBits |= 0x8000000000000000
	}
	return math.Float64frombits(retBits), true
}

// The powers of ten eiselLemire64 knows: 1e-348 … 1e347.
const (
	powersOfTenMinExp10 = -348
	powersOfTenMaxExp10 = +347
)

// powersOfTen returns, for each power of ten from 1e-348 to 1e347, the 128-bit
// approximation (rounded down, most significant bit set) of its mantissa as {low 64
// bits, high 64 bits}: strconv's detailedPowersOfTen, computed once on first use instead
// of copied as 700 lines of constants.
var powersOfTen = sync.OnceValue(func() *[powersOfTenMaxExp10 - powersOfTenMinExp10 + 1][2]uint64 {
	var t [powersOfTenMaxExp10 - powersOfTenMinExp10 + 1][2]uint64
	ten := big.NewInt(10)
	for q := powersOfTenMinExp10; q <= powersOfTenMaxExp10; q++ {
		p := new(big.Int).Exp(ten, big.NewInt(int64(max(q, -q))), nil)
		var m *big.Int
		if q >= 0 {
			if n := p.BitLen(); n > 128 {
				m = p.Rsh(p, uint(n-128))
			} else {
				m = p.Lsh(p, uint(128-n))
			}
		} else {
			// floor(2^k / 10^-q), k chosen so that the quotient has 128 bits; 10^-q is
			// not a power of two, so 2^(127+bitlen) / 10^-q lies strictly within
			// (2^127, 2^128).
			m = new(big.Int).Lsh(big.NewInt(1), uint(127+p.BitLen()))
			m.Quo(m, p)
		}
		lo := new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64))
		t[q-powersOfTenMinExp10] = [2]uint64{lo.Uint64(), new(big.Int).Rsh(m, 64).Uint64()}
	}
	return &t
})

// float32Value widens f to the float64 nearest to f's shortest decimal form, so that a
// float32 0.1 becomes 0.1, as it would if the producer had written it as JSON text,
// rather than 0.10000000149011612.
func float32Value(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return float64(f)
	}
	var buf [32]byte
	v, _ := strconv.ParseFloat(bytesString(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	return v
}

// nonFiniteValue returns the value a Number field takes from a string: NaN, +Inf or -Inf
// for "NaN", "Infinity" (also "+Infinity") and "-Infinity", the spellings JSON producers
// use for the values JSON numbers cannot carry; ok is false for any other string.
func nonFiniteValue(s []byte) (f float64, ok bool) {
	switch bytesString(s) {
	case "NaN":
		return math.NaN(), true
	case "Infinity", "+Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	return 0, false
}

// appendValueText appends the text a String field holds for the number f: its shortest
// decimal, as the JSON decoder writes numbers, or "NaN", "Infinity", "-Infinity", the
// spellings a JSON Number field accepts for the values JSON numbers cannot carry.
func appendValueText(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return appendFloatText(dst, f)
}
