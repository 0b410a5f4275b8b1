// Package sketch holds small, mergeable per-feature summaries of a window of
// inference events: a t-digest plus exact counts for numeric features, exact
// category counts plus a HyperLogLog for categorical ones, a joint sketch of the
// numeric features' co-moments (Joint), counts of pairs of numeric features on
// nested lattices (Grid) and the label-join metrics (Performance). A Profile is all
// features of one window; it is what baselines, checkpoints and live windows
// contain, and what the detectors package compares. It owns their merge and their
// versioned, checksummed binary encoding.
//
// Nothing in this package is safe for concurrent use: a Profile has one owning
// goroutine, and readers get a Clone or its encoding. (Profile.Update may share one
// batch's features out among goroutines of its own; it returns when they are done.)
//
// It imports no other driftmon package but internal/wire, the leaf that reads its
// encoding's varints: detectors, internal/window and the monitor build on it, never the
// other way.
package sketch
