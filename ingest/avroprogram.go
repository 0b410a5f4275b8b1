package ingest

import (
	"time"

	"github.com/hamba/avro/v2"
)

// avroProgram is the compiled form of one registry schema id, or why there is none.
type avroProgram struct {
	root    *avroNode
	reason  Reason
	err     error
	retryAt time.Time // for failures: when to ask the registry again
}

// avroOp is the kind of an Avro value, as the walker dispatches on it.
type avroOp uint8

const (
	opNull avroOp = iota
	opBoolean
	opInt
	opLong
	opFloat
	opDouble
	opBytes
	opString
	opFixed
	opEnum
	opUnion
	opRecord
	opArray
	opMap
)

var avroOpNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string",
	"fixed", "enum", "union", "record", "array", "map"}

// primitiveOps maps the primitive types to their ops.
var primitiveOps = map[avro.Type]avroOp{
	avro.Boolean: opBoolean,
	avro.Int:     opInt,
	avro.Long:    opLong,
	avro.Float:   opFloat,
	avro.Double:  opDouble,
	avro.Bytes:   opBytes,
	avro.String:  opString,
}

// avroTimeUnit is the event-time meaning of an int or long given by its logical type.
type avroTimeUnit uint8

const (
	unitGuess     avroTimeUnit = iota // no time logical type: the JSON unit heuristic
	unitMillis                        // timestamp-millis, local-timestamp-millis
	unitMicros                        // timestamp-micros, local-timestamp-micros
	unitNanos                         // timestamp-nanos, local-timestamp-nanos
	unitDays                          // date
	unitTimeOfDay                     // time-millis, time-micros: not an event time
)

// avroNode is one schema position in a compiled program. Nodes under which the spec
// wants nothing are shared per named type, so recursive schemas compile to cycles.
type avroNode struct {
	op       avroOp
	unit     avroTimeUnit
	decimal  bool
	scale    int
	size     int                  // fixed
	symbols  [][]byte             // enum
	fields   []*avroNode          // record, in writer order
	branches []*avroNode          // union
	items    *avroNode            // array items; map values under keys not in keys
	keys     map[string]*avroNode // map values under keys the spec wants
	zero     bool                 // the value takes no bytes (null, empty record, fixed 0)
	slots    []int                // slots whose path ends here
	envelope bool
}

type avroCompiler struct {
	skip map[avro.Schema]*avroNode
}

// node compiles schema s at the trie position t (nil when nothing below is wanted).
func (c *avroCompiler) node(s avro.Schema, t *pathNode) *avroNode {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if t == nil || (len(t.slots) == 0 && len(t.children) == 0 && !t.envelope) {
		return c.skipNode(s)
	}
	n := &avroNode{slots: t.slots, envelope: t.envelope}
	c.fill(n, s, t)
	return n
}

// skipNode returns the shared node that reads past a value of s.
func (c *avroCompiler) skipNode(s avro.Schema) *avroNode {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n := c.skip[s]; n != nil {
		return n
	}
	n := &avroNode{}
	c.skip[s] = n // before filling: a record may contain itself
	c.fill(n, s, nil)
	return n
}

func (c *avroCompiler) fill(n *avroNode, s avro.Schema, t *pathNode) {
	child := func(seg string) *pathNode {
		if t == nil {
			return nil
		}
		return t.children[seg]
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		n.op, n.zero = opNull, true
	case *avro.PrimitiveSchema:
		n.op = primitiveOps[s.Type()]
		c.logical(n, s.Logical(), s.Prop("logicalType"))
	case *avro.FixedSchema:
		n.op, n.size, n.zero = opFixed, s.Size(), s.Size() == 0
		c.logical(n, s.Logical(), nil)
	case *avro.EnumSchema:
		n.op = opEnum
		for _, sym := range s.Symbols() {
			n.symbols = append(n.symbols, []byte(sym))
		}
	case *avro.UnionSchema:
		n.op = opUnion
		for _, b := range s.Types() {
			if t == nil {
				n.branches = append(n.branches, c.skipNode(b))
				continue
			}
			// Every branch fills the union's slots itself.
			n.branches = append(n.branches, c.node(b, t))
		}
	case *avro.RecordSchema:
		n.op, n.zero = opRecord, true
		for _, f := range s.Fields() {
			fn := c.node(f.Type(), child(f.Name()))
			n.fields = append(n.fields, fn)
			n.zero = n.zero && fn.zero
		}
	case *avro.ArraySchema:
		n.op = opArray
		n.items = c.skipNode(s.Items())
	case *avro.MapSchema:
		n.op = opMap
		n.items = c.skipNode(s.Values())
		if t != nil {
			for key, kt := range t.children {
				if n.keys == nil {
					n.keys = make(map[string]*avroNode)
				}
				n.keys[key] = c.node(s.Values(), kt)
			}
		}
	default:
		// Unreachable for schemas hamba/avro parses; a zero-width null keeps the walker sane.
		n.op, n.zero = opNull, true
	}
}

// logical records the logical type of a primitive or fixed. Logical types hamba/avro does
// not know (timestamp-nanos) remain a plain "logicalType" property.
func (c *avroCompiler) logical(n *avroNode, ls avro.LogicalSchema, prop any) {
	lt := ""
	if ls != nil {
		lt = string(ls.Type())
		if d, ok := ls.(*avro.DecimalLogicalSchema); ok {
			n.decimal, n.scale = true, d.Scale()
		}
	} else if s, ok := prop.(string); ok {
		lt = s
	}
	switch avro.LogicalType(lt) {
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		n.unit = unitMillis
	case avro.TimestampMicros, avro.LocalTimestampMicros:
		n.unit = unitMicros
	case "timestamp-nanos", "local-timestamp-nanos":
		if n.op == opLong {
			n.unit = unitNanos
		}
	case avro.Date:
		n.unit = unitDays
	case avro.TimeMillis, avro.TimeMicros:
		n.unit = unitTimeOfDay
	}
}
