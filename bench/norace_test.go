//go:build !race

package bench

// raceEnabled is true under the race detector, which makes large runs too slow.
const raceEnabled = false
