// Package bench holds driftmon's cross-package benchmarks: what one core does from
// message bytes to updated sketches, and what a window costs to evaluate. Figures, with
// the command that produced them, are in bench/README.md; package-level benchmarks live
// next to their code (ingest, sketch, detectors).
package bench
