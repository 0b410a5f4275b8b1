package sketch

import "fmt"

// Kind says how a feature is summarised and compared.
type Kind uint8

// The kinds of feature a profile can hold.
const (
	// KindNumeric features are summarised by a t-digest, moments and
	// (while there are few distinct values) exact value counts. (The
	// constants carry a Kind prefix because Numeric and Categorical are the
	// summary types.)
	KindNumeric Kind = iota + 1
	// KindCategorical features are summarised by exact category counts, an
	// "other" bucket and a HyperLogLog distinct count.
	KindCategorical
)

// String returns "numeric" or "categorical", the names used in configuration.
func (k Kind) String() string {
	switch k {
	case KindNumeric:
		return "numeric"
	case KindCategorical:
		return "categorical"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind maps a configuration name ("numeric", "categorical") to a Kind.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "numeric":
		return KindNumeric, nil
	case "categorical":
		return KindCategorical, nil
	}
	return 0, fmt.Errorf("cannot parse kind %q: want numeric or categorical", s)
}

// Field names one column of the Arrow records a profile summarises and how
// to summarise it.
type Field struct {
	Name string
	Kind Kind
}

// Default option values, chosen from the accuracy budget in DESIGN.md §4.
const (
	// DefaultCompression keeps KS errors around 1e-3 at 1e4 values while a
	// digest stays a few kilobytes.
	DefaultCompression = 200
	// DefaultMaxExact is the number of distinct values up to which a numeric
	// feature keeps exact counts (t-digest CDFs are poor on ties).
	DefaultMaxExact = 256
	// DefaultMaxCategories bounds the memory of one categorical feature.
	DefaultMaxCategories = 1000
)

// Options tunes the sketches of a profile. The zero value means defaults.
type Options struct {
	// Compression is the t-digest compression; 0 means DefaultCompression.
	// Higher is more accurate and larger (about 2×Compression centroids).
	Compression float64
	// MaxExact is the number of distinct values up to which a numeric
	// feature keeps exact value counts; 0 means DefaultMaxExact.
	MaxExact int
	// MaxCategories is the number of categories counted exactly; later
	// new categories go to Other. 0 means DefaultMaxCategories.
	MaxCategories int
	// JointFeatures is how many numeric fields (the first, in profile order)
	// the Joint sketch covers; 0 means DefaultJointFeatures, negative none.
	// Fewer than two numeric fields make no joint sketch.
	JointFeatures int
	// GridPairs caps the pairs of numeric fields the pair grids (Grid) cover:
	// every pair of the first d numeric fields in profile order, d the largest
	// with d(d−1)/2 ≤ GridPairs. 0 means DefaultGridPairs, negative none. It
	// bounds the grids' cost per row whatever the number of fields.
	GridPairs int
	// Segments are the keys whose values keep profiles of their own (see
	// Segments); a key that is not a categorical field is ignored.
	Segments []SegmentKey
}

// withDefaults fills zero or invalid fields with their defaults.
func (o Options) withDefaults() Options {
	if !(o.Compression >= 10) || o.Compression > 1e5 {
		o.Compression = DefaultCompression
	}
	if o.MaxExact <= 0 {
		o.MaxExact = DefaultMaxExact
	}
	if o.MaxCategories <= 0 {
		o.MaxCategories = DefaultMaxCategories
	}
	if o.JointFeatures == 0 {
		o.JointFeatures = DefaultJointFeatures
	}
	if o.GridPairs == 0 {
		o.GridPairs = DefaultGridPairs
	}
	return o
}
