package sketch

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/axiomhq/hyperloglog"
)

// Categorical summarises the values of one categorical feature in one
// window: exact counts for the first MaxCategories distinct categories, an
// Other bucket for the rest, nulls, and a HyperLogLog of every distinct
// value (so Distinct stays meaningful past MaxCategories).
//
// Each distinct category is hashed into the HyperLogLog once, when it is
// first counted; values that land in Other are hashed every time. The
// estimate is only computed by Distinct, never per row.
type Categorical struct {
	maxCategories int

	index  map[string]int32 // category → slot in values/counts
	values []string
	counts []int64
	count  int64 // non-null values, including Other
	other  int64
	nulls  int64
	hll    *hyperloglog.Sketch

	buf []byte // scratch for formatting numbers and booleans
}

// CategoryCount is one category and how often it was seen.
type CategoryCount struct {
	Value string
	Count int64
}

func newCategorical(opts Options) *Categorical {
	return &Categorical{
		maxCategories: opts.MaxCategories,
		index:         make(map[string]int32),
		hll:           hyperloglog.New14(),
	}
}

// observe counts one value. s may be a view into Arrow memory: it is copied
// only when it becomes a new category.
func (c *Categorical) observe(s string) {
	c.count++
	if i, ok := c.index[s]; ok {
		c.counts[i]++
		return
	}
	if i := c.insert(s); i >= 0 {
		c.counts[i]++
		return
	}
	c.other++
}

// observeBytes counts one value held in a scratch buffer; the map lookup
// with string(b) does not allocate.
func (c *Categorical) observeBytes(b []byte) {
	c.count++
	if i, ok := c.index[string(b)]; ok {
		c.counts[i]++
		return
	}
	if i := c.insert(string(b)); i >= 0 {
		c.counts[i]++
		return
	}
	c.other++
}

// slot returns the slot of s, creating the category if there is room, or -1
// when s belongs to Other. It does not count anything.
func (c *Categorical) slot(s string) int32 {
	if i, ok := c.index[s]; ok {
		return i
	}
	return c.insert(s)
}

// insert adds a new category (copying s) and hashes it into the
// HyperLogLog; it returns -1 when the category table is full.
func (c *Categorical) insert(s string) int32 {
	c.hll.Insert(unsafe.Slice(unsafe.StringData(s), len(s)))
	if len(c.values) >= c.maxCategories {
		return -1
	}
	s = strings.Clone(s)
	i := int32(len(c.values))
	c.index[s] = i
	c.values = append(c.values, s)
	c.counts = append(c.counts, 0)
	return i
}

// Count returns the number of non-null values, including those in Other.
func (c *Categorical) Count() int64 { return c.count }

// Nulls returns the number of null values (including rows whose column was
// missing from the record).
func (c *Categorical) Nulls() int64 { return c.nulls }

// Total returns every value seen, nulls included.
func (c *Categorical) Total() int64 { return c.count + c.nulls }

// Other returns the number of values whose category arrived after
// MaxCategories categories were already counted.
func (c *Categorical) Other() int64 { return c.other }

// Len returns the number of categories counted exactly.
func (c *Categorical) Len() int { return len(c.values) }

// CountOf returns the count of one category (0 if unseen or in Other).
func (c *Categorical) CountOf(v string) int64 {
	if i, ok := c.index[v]; ok {
		return c.counts[i]
	}
	return 0
}

// Counts returns the exactly counted categories sorted by value.
func (c *Categorical) Counts() []CategoryCount {
	out := make([]CategoryCount, 0, len(c.values))
	for i, v := range c.values {
		if c.counts[i] > 0 {
			out = append(out, CategoryCount{Value: v, Count: c.counts[i]})
		}
	}
	slices.SortFunc(out, func(a, b CategoryCount) int { return strings.Compare(a.Value, b.Value) })
	return out
}

// Distinct returns the number of distinct non-null values: exact while no
// value went to Other, else the HyperLogLog estimate (about 0.8% relative
// error at precision 14). It costs up to ~0.5 ms; call it at window close.
func (c *Categorical) Distinct() float64 {
	if c.other == 0 {
		return float64(len(c.values))
	}
	return math.Max(float64(c.hll.Estimate()), float64(len(c.values)))
}

// merge adds o into c; see mergeAll.
func (c *Categorical) merge(o *Categorical) error {
	return c.mergeAll([]*Categorical{o})
}

// mergeAll adds every part into c. When the union has more categories than
// MaxCategories, the most frequent are kept (ties by value) and the rest go
// to Other, so the result does not depend on the order of the parts.
func (c *Categorical) mergeAll(parts []*Categorical) error {
	for _, o := range parts {
		if err := c.hll.Merge(o.hll); err != nil {
			return fmt.Errorf("cannot merge distinct-count sketches: %w", err)
		}
	}
	total := make(map[string]int64, len(c.values))
	for i, v := range c.values {
		total[v] += c.counts[i]
	}
	for _, o := range parts {
		for i, v := range o.values {
			total[v] += o.counts[i]
		}
		c.count += o.count
		c.other += o.other
		c.nulls += o.nulls
	}
	all := make([]CategoryCount, 0, len(total))
	for v, k := range total {
		all = append(all, CategoryCount{Value: v, Count: k})
	}
	slices.SortFunc(all, func(a, b CategoryCount) int {
		if x := cmp.Compare(b.Count, a.Count); x != 0 {
			return x
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(all) > c.maxCategories {
		for _, cc := range all[c.maxCategories:] {
			c.other += cc.Count
		}
		all = all[:c.maxCategories]
	}
	slices.SortFunc(all, func(a, b CategoryCount) int { return strings.Compare(a.Value, b.Value) })
	c.reset(all)
	return nil
}

// reset replaces the category table with cats (already sorted by value).
func (c *Categorical) reset(cats []CategoryCount) {
	clear(c.index)
	c.values = c.values[:0]
	c.counts = c.counts[:0]
	for i, cc := range cats {
		c.index[cc.Value] = int32(i)
		c.values = append(c.values, cc.Value)
		c.counts = append(c.counts, cc.Count)
	}
}

// clone returns a deep copy.
func (c *Categorical) clone() *Categorical {
	d := &Categorical{
		maxCategories: c.maxCategories,
		index:         make(map[string]int32, len(c.index)),
		values:        slices.Clone(c.values),
		counts:        slices.Clone(c.counts),
		count:         c.count,
		other:         c.other,
		nulls:         c.nulls,
		hll:           c.hll.Clone(),
	}
	for k, v := range c.index {
		d.index[k] = v
	}
	return d
}
