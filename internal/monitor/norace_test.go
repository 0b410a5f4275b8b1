//go:build !race

package monitor

// raceEnabled says the race detector is on (see TestAvroAndArrowIPCGiveTheFindingsOfJSON).
const raceEnabled = false
