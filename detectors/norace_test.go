//go:build !race

package detectors

// raceEnabled shortens the slowest statistical tests under the race detector.
const raceEnabled = false
