// Package bench holds driftmon's cross-package benchmarks and comparisons: what one core
// does from message bytes to updated sketches in each message format, end-to-end
// throughput through Kafka next to a bare kafka-go consumer, memory per feature-window,
// detection on the NannyML car-loan data, and the same windows through Evidently and
// whylogs (bench/peers). bench/cmd/rss measures resident memory over millions of events.
// Figures, with the command that produced them, are in bench/README.md; package-level
// benchmarks live next to their code (ingest, sketch, detectors).
//
// It measures the product from outside, through exported APIs; nothing of driftmon
// imports bench.
package bench
