package sketch

import (
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Update adds rows of rec to the profile: rows nil means every row,
// otherwise the listed row indices (indices outside the record are
// ignored). Each feature reads the column of the same name; a feature whose
// column is missing from rec counts those rows as nulls, as does a column
// whose Arrow type cannot be read as the feature's kind (also counted in
// Feature.TypeErrors).
//
// Numeric features accept Float64, Float32, Int8–64, Uint8–64 and Bool
// (false=0, true=1). Categorical features accept String, LargeString, Bool
// ("true"/"false"), Int8–64 and Uint8–64 (decimal text), Float32/Float64
// (shortest text as encoding/json writes it) and dictionaries of strings.
//
// There is one type switch per column and then a typed loop; counting a
// numeric value or an already-known category does not allocate.
func (p *Profile) Update(rec arrow.Record, rows []int) { p.UpdateFrom(rec, rows, nil) }

// UpdateFrom is Update for rows from several sources, such as the partitions of
// a Kafka topic: sources[r] is record row r's source (nil: all 0). The pair
// grids keep each source's rows apart (see Grid), so that the profile depends on
// the order of the rows within each source only, not on how sources interleave.
func (p *Profile) UpdateFrom(rec arrow.Record, rows []int, sources []int32) {
	if rec == nil {
		return
	}
	idx := p.rowIndex(rows, int(rec.NumRows()))
	if len(idx) == 0 {
		return
	}
	p.Rows += int64(len(idx))
	cols := p.columns(rec.Schema())
	// Task i < len(Features) updates feature i; then the joint sketch and the
	// pair grids, each a task.
	tasks := len(p.Features)
	joint, grid := -1, -1
	if p.Joint != nil {
		joint = tasks
		tasks++
	}
	if p.Grid != nil {
		grid = tasks
		tasks++
	}
	// Then one task per segment key.
	segs := tasks
	tasks += len(p.Segments)
	task := func(i int) {
		switch {
		case i == joint:
			p.Joint.update(rec, idx, cols)
			return
		case i == grid:
			p.Grid.update(rec, idx, cols, sources)
			return
		case i >= segs:
			s := p.Segments[i-segs]
			s.update(rec, idx, p.columnOf(rec.Schema(), s.Key.By))
			return
		}
		f := p.Features[i]
		if cols[i] < 0 {
			f.addNulls(int64(len(idx)))
			return
		}
		col := rec.Column(cols[i])
		var ok bool
		if f.Cat != nil {
			ok = updateCategorical(f.Cat, col, idx)
		} else {
			ok = updateNumeric(f.Num, col, idx)
		}
		if !ok {
			f.addNulls(int64(len(idx)))
			f.TypeErrors += int64(len(idx))
		}
	}
	workers := min(runtime.GOMAXPROCS(0), tasks, maxUpdateWorkers)
	if workers < 2 || len(idx)*tasks < parallelUpdateValues {
		for i := range tasks {
			task(i)
		}
		return
	}
	// Each sketch is updated by one goroutine with the same rows in the same order
	// as one goroutine would: the sketches are the same to the bit, whatever the
	// number of cores. Only the features are shared out, never a feature's rows.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < tasks; i = int(next.Add(1) - 1) {
				task(i)
			}
		}()
	}
	for i := int(next.Add(1) - 1); i < tasks; i = int(next.Add(1) - 1) {
		task(i)
	}
	wg.Wait()
}

// An Update of at least parallelUpdateValues values (rows × sketches) shares its
// sketches out among up to maxUpdateWorkers goroutines: below it, starting them costs
// more than it saves (a 1,000-row batch of 25 features is 25,000).
const (
	parallelUpdateValues = 8192
	maxUpdateWorkers     = 8
)

// rowIndex returns the valid row indices to read, reusing a buffer.
func (p *Profile) rowIndex(rows []int, n int) []int {
	buf := p.rowBuf[:0]
	if rows == nil {
		if cap(buf) < n {
			buf = make([]int, 0, n)
		}
		for i := 0; i < n; i++ {
			buf = append(buf, i)
		}
	} else {
		for _, r := range rows {
			if r >= 0 && r < n {
				buf = append(buf, r)
			}
		}
	}
	p.rowBuf = buf
	return buf
}

// columns maps each feature to its column in schema (-1 if missing),
// cached by schema pointer.
func (p *Profile) columns(schema *arrow.Schema) []int {
	if schema == p.schema && len(p.cols) == len(p.Features) {
		return p.cols
	}
	p.cols = p.cols[:0]
	for _, f := range p.Features {
		c := -1
		if is := schema.FieldIndices(f.Name); len(is) > 0 {
			c = is[0]
		}
		p.cols = append(p.cols, c)
	}
	p.schema = schema
	return p.cols
}

// columnOf is the index of the column named name in schema, -1 when missing.
func (p *Profile) columnOf(schema *arrow.Schema, name string) int {
	if i, ok := p.byName[name]; ok && i < len(p.cols) {
		return p.cols[i]
	}
	if is := schema.FieldIndices(name); len(is) > 0 {
		return is[0]
	}
	return -1
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// addNumbers adds vals[r] for every r in idx (nulls per col's validity) to
// n. It is Numeric.add for a whole column: the moments of the batch are
// computed in two passes and merged once (no division per value), and each
// mode has its own tight loop.
func addNumbers[T number](n *Numeric, col arrow.Array, vals []T, idx []int) {
	hasNulls := col.NullN() > 0
	b := batch{lo: n.min, hi: n.max}
	rest := idx
	if n.exact != nil {
		rest = addExact(n, col, hasNulls, vals, idx, &b)
	}
	if len(rest) > 0 {
		addDigest(n, col, hasNulls, vals, rest, &b)
	}
	if b.count == 0 {
		return
	}
	mean := b.sum / float64(b.count)
	var m2 float64
	for _, r := range idx {
		if hasNulls && col.IsNull(r) {
			continue
		}
		if x := float64(vals[r]); x-x == 0 {
			d := x - mean
			m2 += d * d
		}
	}
	n.mean, n.m2 = mergeMoments(n.count, n.mean, n.m2, b.count, mean, m2)
	n.count += b.count
	n.min, n.max = b.lo, b.hi
	n.stale = true
}

// batch is what addNumbers gathers about the finite values of one column.
type batch struct {
	count  int64
	sum    float64
	lo, hi float64
}

// addExact counts the values of idx in exact mode, through a small cache in
// front of the map so that a repeated value costs no map access. When a
// value is one distinct value too many, the feature leaves exact mode
// (spill) and the rows after it are returned for the digest.
func addExact[T number](n *Numeric, col arrow.Array, hasNulls bool, vals []T, idx []int, b *batch) (rest []int) {
	var cache exactCache
	defer cache.flush(n)
	for j, r := range idx {
		if hasNulls && col.IsNull(r) {
			n.nulls++
			continue
		}
		x := float64(vals[r])
		if x-x != 0 {
			n.addNonFinite(x)
			continue
		}
		x += 0 // -0 → +0, so equal values have equal bits
		b.count++
		b.sum += x
		if x < b.lo {
			b.lo = x
		}
		if x > b.hi {
			b.hi = x
		}
		if !cache.count(n, x) {
			return idx[j+1:]
		}
	}
	return nil
}

// addDigest queues the values of idx for the digest.
func addDigest[T number](n *Numeric, col arrow.Array, hasNulls bool, vals []T, idx []int, b *batch) {
	pending := n.pending
	full := n.full()
	count, sum, lo, hi := b.count, b.sum, b.lo, b.hi
	for _, r := range idx {
		if hasNulls && col.IsNull(r) {
			n.nulls++
			continue
		}
		x := float64(vals[r])
		if x-x != 0 {
			n.addNonFinite(x)
			continue
		}
		x += 0 // -0 → +0, so equal values have equal bits
		count++
		sum += x
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
		if len(pending) >= full {
			n.pending = pending
			n.grow()
			pending, full = n.pending, n.full()
		}
		pending = append(pending, floatKey(x))
	}
	n.pending = pending
	if count > b.count {
		n.dirty = true // not for a batch of nulls: nothing to compress
	}
	b.count, b.sum, b.lo, b.hi = count, sum, lo, hi
}

// exactCache is a small direct-mapped cache of exact counts: a value's slot
// holds the count seen since it was cached, added to the map on eviction
// and at the end of a batch (flush), so n.exact is complete between
// batches.
type exactCache struct {
	slots [64]struct {
		bits  uint64
		count int64
		used  bool
	}
}

// count counts x (finite, not -0) in exact mode. It reports false when x was
// one distinct value too many: the counts then went to the digest (spill)
// and x with them.
func (c *exactCache) count(n *Numeric, x float64) bool {
	bits := math.Float64bits(x)
	s := &c.slots[((bits^bits>>32)*0x9E3779B97F4A7C15)>>58]
	if s.used && s.bits == bits {
		s.count++
		return true
	}
	if s.used && s.count > 0 {
		n.exact[math.Float64frombits(s.bits)] += s.count
	}
	n.exact[x]++
	s.bits, s.count, s.used = bits, 0, true
	if len(n.exact) > n.maxExact {
		c.flush(n)
		n.spill()
		return false
	}
	return true
}

// flush adds the cached counts to the map and empties the cache.
func (c *exactCache) flush(n *Numeric) {
	for i := range c.slots {
		s := &c.slots[i]
		if s.used && s.count > 0 && n.exact != nil {
			n.exact[math.Float64frombits(s.bits)] += s.count
		}
		s.used, s.count = false, 0
	}
}

// updateNumeric reports false when col's type cannot be read as numbers.
func updateNumeric(n *Numeric, col arrow.Array, idx []int) bool {
	switch a := col.(type) {
	case *array.Float64:
		addNumbers(n, col, a.Float64Values(), idx)
	case *array.Float32:
		addNumbers(n, col, a.Float32Values(), idx)
	case *array.Int64:
		addNumbers(n, col, a.Int64Values(), idx)
	case *array.Int32:
		addNumbers(n, col, a.Int32Values(), idx)
	case *array.Int16:
		addNumbers(n, col, a.Int16Values(), idx)
	case *array.Int8:
		addNumbers(n, col, a.Int8Values(), idx)
	case *array.Uint64:
		addNumbers(n, col, a.Uint64Values(), idx)
	case *array.Uint32:
		addNumbers(n, col, a.Uint32Values(), idx)
	case *array.Uint16:
		addNumbers(n, col, a.Uint16Values(), idx)
	case *array.Uint8:
		addNumbers(n, col, a.Uint8Values(), idx)
	case *array.Boolean:
		for _, r := range idx {
			switch {
			case a.IsNull(r):
				n.nulls++
			case a.Value(r):
				n.add(1)
			default:
				n.add(0)
			}
		}
	case *array.Null:
		n.nulls += int64(len(idx))
	default:
		return false
	}
	return true
}

// updateCategorical reports false when col's type cannot be read as
// categories.
func updateCategorical(c *Categorical, col arrow.Array, idx []int) bool {
	hasNulls := col.NullN() > 0
	switch a := col.(type) {
	case *array.String:
		for _, r := range idx {
			if hasNulls && a.IsNull(r) {
				c.nulls++
				continue
			}
			c.observe(a.Value(r))
		}
	case *array.LargeString:
		for _, r := range idx {
			if hasNulls && a.IsNull(r) {
				c.nulls++
				continue
			}
			c.observe(a.Value(r))
		}
	case *array.Boolean:
		slots := [2]int32{-2, -2}
		for _, r := range idx {
			if hasNulls && a.IsNull(r) {
				c.nulls++
				continue
			}
			k := 0
			if a.Value(r) {
				k = 1
			}
			if slots[k] == -2 {
				slots[k] = c.slot(strconv.FormatBool(k == 1))
			}
			c.countSlot(slots[k])
		}
	case *array.Dictionary:
		var value func(int) string
		var n int
		switch d := a.Dictionary().(type) {
		case *array.String:
			value, n = d.Value, d.Len()
		case *array.LargeString:
			value, n = d.Value, d.Len()
		default:
			return false
		}
		buf := slotBuf(n)
		defer slotPool.Put(buf)
		slots := *buf
		for _, r := range idx {
			if hasNulls && a.IsNull(r) {
				c.nulls++
				continue
			}
			k := a.GetValueIndex(r)
			if k < 0 || k >= n {
				c.nulls++
				continue
			}
			if slots[k] == -2 {
				slots[k] = c.slot(value(k))
			}
			c.countSlot(slots[k])
		}
	case *array.Int64:
		observeInts(c, col, a.Int64Values(), idx)
	case *array.Int32:
		observeInts(c, col, a.Int32Values(), idx)
	case *array.Int16:
		observeInts(c, col, a.Int16Values(), idx)
	case *array.Int8:
		observeInts(c, col, a.Int8Values(), idx)
	case *array.Uint64:
		observeUints(c, col, a.Uint64Values(), idx)
	case *array.Uint32:
		observeUints(c, col, a.Uint32Values(), idx)
	case *array.Uint16:
		observeUints(c, col, a.Uint16Values(), idx)
	case *array.Uint8:
		observeUints(c, col, a.Uint8Values(), idx)
	case *array.Float64:
		observeFloats(c, col, a.Float64Values(), idx, 64)
	case *array.Float32:
		observeFloats(c, col, a.Float32Values(), idx, 32)
	case *array.Null:
		c.nulls += int64(len(idx))
	default:
		return false
	}
	return true
}

// countSlot counts one value whose slot (or -1 for Other) is known.
func (c *Categorical) countSlot(s int32) {
	c.count++
	if s >= 0 {
		c.counts[s]++
		return
	}
	c.other++
}

// slotBuf returns n slots set to -2 ("not resolved yet"), from slotPool: features
// may be updated on several goroutines at once. Put it back when done.
func slotBuf(n int) *[]int32 {
	buf := slotPool.Get().(*[]int32)
	if cap(*buf) < n {
		*buf = make([]int32, n)
	}
	*buf = (*buf)[:n]
	for i := range *buf {
		(*buf)[i] = -2
	}
	return buf
}

var slotPool = sync.Pool{New: func() any { return new([]int32) }}

func observeInts[T ~int8 | ~int16 | ~int32 | ~int64](c *Categorical, col arrow.Array, vals []T, idx []int) {
	hasNulls := col.NullN() > 0
	for _, r := range idx {
		if hasNulls && col.IsNull(r) {
			c.nulls++
			continue
		}
		c.buf = strconv.AppendInt(c.buf[:0], int64(vals[r]), 10)
		c.observeBytes(c.buf)
	}
}

func observeUints[T ~uint8 | ~uint16 | ~uint32 | ~uint64](c *Categorical, col arrow.Array, vals []T, idx []int) {
	hasNulls := col.NullN() > 0
	for _, r := range idx {
		if hasNulls && col.IsNull(r) {
			c.nulls++
			continue
		}
		c.buf = strconv.AppendUint(c.buf[:0], uint64(vals[r]), 10)
		c.observeBytes(c.buf)
	}
}

func observeFloats[T ~float32 | ~float64](c *Categorical, col arrow.Array, vals []T, idx []int, bits int) {
	hasNulls := col.NullN() > 0
	for _, r := range idx {
		if hasNulls && col.IsNull(r) {
			c.nulls++
			continue
		}
		c.buf = AppendFloatText(c.buf[:0], float64(vals[r]), bits)
		c.observeBytes(c.buf)
	}
}

// AppendFloatText appends the shortest decimal text of f the way
// encoding/json writes numbers ("3", "0.5", "1e-07", "1e+21"), so a number
// read from a file and the same number decoded from JSON by ingest become
// the same category. bits is 32 or 64. NaN and ±Inf become "NaN", "+Inf"
// and "-Inf".
func AppendFloatText(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}
