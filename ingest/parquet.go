package ingest

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// maxParquetBuffer bounds one buffer the Parquet reader allocates (256 MiB): a page's
// uncompressed size comes from its header, which a corrupt file can set to 2 GiB. A
// variable for tests.
var maxParquetBuffer = 256 << 20

// openParquet opens a Parquet file for reading on the caller's goroutine.
//
// The arrow Parquet reader trusts the file: corrupt metadata or pages make it panic
// (index out of range, nil metadata, "snappy: corrupt input"). What can be checked up
// front is checked by checkParquet before any page is read; what cannot (the pages
// themselves) is read by parquetSource, which recovers a panic into an error. That is
// only sound on the goroutine that panics, so the reader is driven column by column
// here instead of through pqarrow's record reader, whose GetFieldReaders reads on
// goroutines of its own; and columns holding structs, which pqarrow always reads on
// goroutines of its own, are left out (every reader of files reads flat columns).
func (r *FileReader) openParquet(opts FileOptions) (err error) {
	defer recoverParquet(&err, "")
	st, err := os.Stat(r.path)
	if err != nil {
		return err
	}
	mem := &cappedAllocator{mem: opts.Mem, max: maxParquetBuffer}
	pf, err := file.OpenParquetFile(r.path, false, file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		return err
	}
	r.closers = append(r.closers, pf.Close)
	if err := checkParquet(pf, st.Size(), opts.MaxColumns); err != nil {
		return err
	}
	ncols := pf.MetaData().Schema.NumColumns()
	batch := batchRows(opts.BatchRows, ncols)
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(batch)}, mem)
	if err != nil {
		return err
	}
	leaves := make(map[int]bool, ncols)
	for i := range ncols {
		leaves[i] = true
	}
	groups := make([]int, pf.NumRowGroups())
	for i := range groups {
		groups[i] = i
	}
	src := &parquetSource{batch: int64(batch), total: pf.NumRows(), mem: opts.Mem}
	r.src = src // released by Close, whatever happens below
	var fields []arrow.Field
	for i, sf := range fr.Manifest.Fields {
		if hasStruct(sf.Field.Type) {
			continue
		}
		// The context only bounds reads that run in parallel, which are not enabled.
		cr, err := fr.GetFieldReader(context.Background(), i, leaves, groups)
		if err != nil {
			return fmt.Errorf("column %q: %w", sf.Field.Name, err)
		}
		if cr == nil {
			continue
		}
		src.cols = append(src.cols, cr)
		fields = append(fields, *cr.Field())
	}
	md := fr.Manifest.SchemaMeta
	src.schema = arrow.NewSchema(fields, md)
	r.schema = src.schema
	return nil
}

// recoverParquet turns a panic of the Parquet reader into *err. It must be deferred
// directly by the function whose calls into the reader may panic.
func recoverParquet(err *error, where string) {
	p := recover()
	if p == nil {
		return
	}
	if where != "" {
		where += ": "
	}
	*err = fmt.Errorf("%scorrupt Parquet data: %v", where, p)
}

// hasStruct reports whether dt is or holds a struct (maps hold structs of key and value).
func hasStruct(dt arrow.DataType) bool {
	switch t := dt.(type) {
	case *arrow.StructType:
		return true
	case *arrow.MapType:
		return true
	case arrow.ListLikeType:
		return hasStruct(t.Elem())
	}
	return false
}

// checkParquet checks what the Parquet reader would otherwise trust in the metadata of
// a file of size bytes: the column count, and for every column chunk that its metadata
// is there, that its byte range lies inside the file (the reader allocates that range
// before reading it), its counts are not negative and its codec is known.
func checkParquet(pf *file.Reader, size int64, maxColumns int) (err error) {
	md := pf.MetaData()
	ncols := md.Schema.NumColumns()
	if ncols > maxColumns {
		return fmt.Errorf("%d columns, more than the limit of %d", ncols, maxColumns)
	}
	if md.NumRows < 0 {
		return fmt.Errorf("corrupt metadata: %d rows", md.NumRows)
	}
	var rows int64
	for g := range pf.NumRowGroups() {
		rg := md.RowGroup(g)
		if rg.NumRows() < 0 || rg.NumColumns() != ncols {
			return fmt.Errorf("corrupt metadata: row group %d has %d rows and %d columns, want %d", g, rg.NumRows(), rg.NumColumns(), ncols)
		}
		rows += rg.NumRows()
		for c := range ncols {
			if err := checkColumnChunk(rg, c, size); err != nil {
				return fmt.Errorf("corrupt metadata: row group %d, column %q: %w", g, md.Schema.Column(c).Path(), err)
			}
		}
	}
	if rows != md.NumRows {
		return fmt.Errorf("corrupt metadata: the row groups hold %d rows, the file %d", rows, md.NumRows)
	}
	return nil
}

// checkColumnChunk checks column c of row group rg.
func checkColumnChunk(rg *metadata.RowGroupMetaData, c int, size int64) (err error) {
	defer func() {
		// ColumnChunk dereferences the chunk's metadata without checking it is there.
		if p := recover(); p != nil {
			err = fmt.Errorf("missing or corrupt column metadata (%v)", p)
		}
	}()
	cc, err := rg.ColumnChunk(c)
	if err != nil {
		return err
	}
	start, n := cc.DataPageOffset(), cc.TotalCompressedSize()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
		start = cc.DictionaryPageOffset()
	}
	if start < 0 || n < 0 || start > size || n > size-start {
		return fmt.Errorf("%d bytes at offset %d do not lie within the file's %d", n, start, size)
	}
	if cc.NumValues() < 0 {
		return fmt.Errorf("%d values", cc.NumValues())
	}
	if _, err := compress.GetCodec(cc.Compression()); err != nil {
		return err
	}
	return nil
}

// parquetSource reads the columns of a Parquet file batch by batch on the caller's
// goroutine, turning a panic of the reader into an error that names the column and rows.
type parquetSource struct {
	cols   []*pqarrow.ColumnReader
	schema *arrow.Schema
	mem    memory.Allocator
	batch  int64
	total  int64 // rows the metadata promises
	rows   int64 // rows read so far
	cur    arrow.Record
	err    error
}

func (s *parquetSource) Next() bool {
	releaseRecord(&s.cur)
	if s.err != nil || len(s.cols) == 0 || s.rows >= s.total {
		return false
	}
	arrs := make([]arrow.Array, 0, len(s.cols))
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	want := min(s.batch, s.total-s.rows)
	for i, cr := range s.cols {
		a, err := s.read(cr, want)
		if err == nil && int64(a.Len()) != want {
			err = fmt.Errorf("%d values where the metadata promises %d", a.Len(), want)
			a.Release()
		}
		if err != nil {
			s.err = fmt.Errorf("rows %d to %d, column %q: %w", s.rows+1, s.rows+want, s.schema.Field(i).Name, err)
			return false
		}
		arrs = append(arrs, a)
	}
	s.cur = array.NewRecord(s.schema, arrs, want)
	s.rows += want
	return true
}

// read reads the next n values of a column as one array.
func (s *parquetSource) read(cr *pqarrow.ColumnReader, n int64) (a arrow.Array, err error) {
	defer recoverParquet(&err, "")
	ch, err := cr.NextBatch(n)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	switch len(ch.Chunks()) {
	case 0:
		return array.MakeArrayOfNull(s.mem, ch.DataType(), 0), nil
	case 1:
		a := ch.Chunk(0)
		a.Retain()
		return a, nil
	}
	return array.Concatenate(ch.Chunks(), s.mem)
}

func (s *parquetSource) Record() arrow.Record { return s.cur }
func (s *parquetSource) Err() error           { return s.err }

// Release releases the column readers. One that panicked may be inconsistent: what it
// holds is left to the garbage collector rather than risking another panic.
func (s *parquetSource) Release() {
	releaseRecord(&s.cur)
	for _, cr := range s.cols {
		func() {
			defer func() { _ = recover() }()
			cr.Release()
		}()
	}
	s.cols = nil
}

// cappedAllocator refuses, by panicking as the Parquet reader's allocations are
// recovered from, a single allocation larger than max.
type cappedAllocator struct {
	mem memory.Allocator
	max int
}

func (a *cappedAllocator) check(size int) {
	if size < 0 || size > a.max {
		panic(fmt.Errorf("needs a buffer of %d bytes, more than the limit of %d", size, a.max))
	}
}

func (a *cappedAllocator) Allocate(size int) []byte {
	a.check(size)
	return a.mem.Allocate(size)
}

func (a *cappedAllocator) Reallocate(size int, b []byte) []byte {
	a.check(size)
	return a.mem.Reallocate(size, b)
}

func (a *cappedAllocator) Free(b []byte) { a.mem.Free(b) }
