package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

func (r *FileReader) openJSONL(opts FileOptions) error {
	f, err := r.openFile()
	if err != nil {
		return err
	}
	src := &jsonlSource{path: r.path}
	if opts.Spec != nil {
		src.spec = *opts.Spec
		src.spec.RequireEventTime = src.spec.EventTime != ""
	} else {
		spec, err := inferJSONSpec(f, opts)
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if opts.EventTime != "" && !slices.ContainsFunc(spec.Fields, func(f Field) bool { return f.Path == opts.EventTime }) {
			return fmt.Errorf("event time path %q not found in the first lines", opts.EventTime)
		}
		spec.EventTime = opts.EventTime
		spec.RequireEventTime = opts.EventTime != ""
		src.spec, src.inferred, src.keepTime = spec, true, opts.EventTime != ""
	}
	src.spec.MaxMessageBytes = -1
	dec, err := NewJSONDecoder(src.spec, opts.Mem)
	if err != nil {
		return err
	}
	src.dec = dec
	r.closers = append(r.closers, func() error { dec.Release(); return nil })
	src.schema = dec.Schema()
	if src.inferred {
		// Drop the bookkeeping columns: the caller asked for the file's columns, plus
		// ColEventTime at the end as for the other formats.
		fields := append([]arrow.Field(nil), src.schema.Fields()[3:]...)
		if src.keepTime {
			fields = append(fields, src.schema.Field(0))
		}
		src.schema = arrow.NewSchema(fields, nil)
	}
	src.batch = batchRows(opts.BatchRows, src.schema.NumFields())
	src.sc = newLineScanner(f, opts.MaxLineBytes)
	src.maxLine = opts.MaxLineBytes
	r.src, r.schema = src, src.schema
	return nil
}

// jsonlSource decodes JSON lines in batches with a JSONDecoder.
type jsonlSource struct {
	path     string
	spec     Spec
	inferred bool // spec was inferred: drop the bookkeeping columns
	keepTime bool // inferred with an event time: keep ColEventTime, moved to the end
	schema   *arrow.Schema
	dec      *JSONDecoder
	sc       *bufio.Scanner
	maxLine  int
	batch    int
	line     int // lines read so far
	arena    []byte
	ends     []int
	lines    []int
	msgs     []Message
	cur      arrow.Record
	err      error
}

func (s *jsonlSource) Next() bool {
	releaseRecord(&s.cur)
	if s.err != nil {
		return false
	}
	s.arena, s.ends, s.lines = s.arena[:0], s.ends[:0], s.lines[:0]
	for len(s.ends) < s.batch && len(s.arena) < maxBatchBytes && s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		s.arena = append(s.arena, b...)
		s.ends = append(s.ends, len(s.arena))
		s.lines = append(s.lines, s.line)
	}
	if err := s.sc.Err(); err != nil {
		s.err = lineError(s.line+1, err, s.maxLine)
		return false
	}
	if len(s.ends) == 0 {
		return false
	}
	s.msgs = s.msgs[:0]
	start := 0
	for _, end := range s.ends {
		s.msgs = append(s.msgs, Message{Value: s.arena[start:end]})
		start = end
	}
	rec, rej := s.dec.Decode(s.msgs)
	if len(rej) > 0 {
		rec.Release()
		s.err = fmt.Errorf("line %d: %s: %w", s.lines[rej[0].Index], rej[0].Reason, rej[0].Err)
		return false
	}
	if !s.inferred {
		s.cur = rec
		return true
	}
	defer rec.Release()
	cols := append(make([]arrow.Array, 0, rec.NumCols()), rec.Columns()[3:]...)
	if s.keepTime {
		cols = append(cols, rec.Column(0))
	}
	s.cur = array.NewRecord(s.schema, cols, rec.NumRows())
	return true
}

func (s *jsonlSource) Record() arrow.Record { return s.cur }

func (s *jsonlSource) Err() error { return s.err }

func (s *jsonlSource) Release() {
	releaseRecord(&s.cur)
}

// newLineScanner scans lines of at most maxLine bytes.
func newLineScanner(rd io.Reader, maxLine int) *bufio.Scanner {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine+1)), maxLine+1) // +1: the newline
	return sc
}

// lineError is the error for line n of a scan that failed with err.
func lineError(n int, err error, maxLine int) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than the limit of %d bytes", n, maxLine)
	}
	return fmt.Errorf("line %d: %w", n, err)
}

// inferJSONSpec samples up to opts.InferRows non-blank lines (all if negative) and
// returns a Spec with one field per scalar leaf path, in first-seen order, failing
// past opts.MaxColumns paths.
func inferJSONSpec(rd io.Reader, opts FileOptions) (Spec, error) {
	n := opts.InferRows
	type leaf struct {
		path    string
		numeric bool // only numbers (or nulls) so far
		nonNull bool
	}
	var leaves []*leaf
	byPath := map[string]*leaf{}
	sc := newLineScanner(rd, opts.MaxLineBytes)
	line := 0
	for sampled := 0; (n < 0 || sampled < n) && sc.Scan(); {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		sampled++
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var walk func(prefix string, depth int) error
		walk = func(prefix string, depth int) error {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if depth > maxDepth {
				return errors.New("nesting too deep")
			}
			switch v := tok.(type) {
			case json.Delim:
				if v == '[' {
					for dec.More() {
						if err := walk("", depth+1); err != nil {
							return err
						}
					}
					_, err := dec.Token()
					return err
				}
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key := kt.(string)
					p := ""
					if prefix != "" || depth == 0 {
						p = key
						if prefix != "" {
							p = prefix + "." + key
						}
						if key == "" || strings.Contains(key, ".") || strings.HasPrefix(p, "__") {
							p = ""
						}
					}
					if err := walk(p, depth+1); err != nil {
						return err
					}
				}
				_, err := dec.Token()
				return err
			default:
				if prefix == "" {
					return nil
				}
				l := byPath[prefix]
				if l == nil {
					if len(leaves) == opts.MaxColumns {
						return fmt.Errorf("more than the limit of %d columns (distinct value paths)", opts.MaxColumns)
					}
					l = &leaf{path: prefix, numeric: true}
					byPath[prefix] = l
					leaves = append(leaves, l)
				}
				if v != nil {
					l.nonNull = true
					if _, isNum := v.(json.Number); !isNum {
						l.numeric = false
					}
				}
				return nil
			}
		}
		if b[0] != '{' {
			return Spec{}, fmt.Errorf("line %d: not a JSON object", line)
		}
		if err := walk("", 0); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Spec{}, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Spec{}, lineError(line+1, err, opts.MaxLineBytes)
	}
	var spec Spec
	for _, l := range leaves {
		typ := String
		if l.numeric && l.nonNull {
			typ = Number
		}
		spec.Fields = append(spec.Fields, Field{Name: l.path, Path: l.path, Type: typ})
	}
	if len(spec.Fields) == 0 {
		return Spec{}, errors.New("no JSON values found to infer columns from")
	}
	return spec, nil
}
