package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// Column names of the bookkeeping columns every decoded record starts with. They begin
// with "__" so that they cannot collide with a configured feature name (Validate rejects
// feature names with that prefix).
const (
	// ColEventTime holds the event time as Int64 unix nanoseconds; never null.
	ColEventTime = "__event_time"
	// ColModel holds the model name as String; null when the message has none.
	ColModel = "__model"
	// ColModelVersion holds the model version as String; null when the message has none.
	ColModelVersion = "__model_version"
	// ColEventID is the one reserved name a Spec field may have: a String field of this
	// name carries each event's id, which a stream that joins late labels needs.
	ColEventID = "__event_id"
)

// DefaultMaxMessageBytes is the size above which a message is rejected as too large when
// Spec.MaxMessageBytes is zero.
const DefaultMaxMessageBytes = 1 << 20

// Type says how a field's JSON value is turned into an Arrow column.
type Type uint8

const (
	// Number fields become Float64 columns (features monitored as numeric).
	Number Type = iota + 1
	// String fields become String columns (features monitored as categorical).
	String
)

// String returns the name used in configuration files: "number" or "string".
func (t Type) String() string {
	switch t {
	case Number:
		return "number"
	case String:
		return "string"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Field is one value extracted from every message into its own column.
type Field struct {
	// Name is the Arrow column name, usually the feature name ("car_value").
	Name string
	// Path is the dotted path of the value inside the event object
	// ("features.car_value"). Keys containing dots cannot be addressed.
	Path string
	// Type selects the column type: Number → Float64, String → String.
	Type Type
}

// Spec says which values of a JSON event the decoder extracts. Paths are dotted
// ("prediction.y_pred_proba") and relative to the event object, which is the whole
// message unless Envelope names a nested object.
type Spec struct {
	// EventTime is the path of the event time: an RFC 3339 string or a unix timestamp
	// number (see JSONDecoder for the unit heuristic). Empty or absent in a message →
	// the message's Kafka time is used.
	EventTime string
	// RequireEventTime rejects messages whose event time is absent or null
	// (ReasonBadTime) instead of falling back to the message's Kafka time.
	RequireEventTime bool
	// Model and ModelVersion are the paths of the model name and version; empty or
	// absent → null.
	Model, ModelVersion string
	// Fields are the features and prediction outputs, one column each, in this order.
	Fields []Field
	// Envelope is the optional dotted path of the object that holds the event, for
	// producers that wrap events (e.g. "data" for CloudEvents). All other paths are then
	// relative to it. A message without that object is rejected (ReasonMissingEnvelope).
	Envelope string
	// MaxMessageBytes rejects larger messages as ReasonTooLarge; 0 means
	// DefaultMaxMessageBytes, negative means no limit.
	MaxMessageBytes int
}

// Validate reports every problem of the spec at once (joined), each naming the offending
// field, so that a configuration can be fixed in one pass.
func (s Spec) Validate() error {
	var errs []error
	checkPath := func(what, p string, optional bool) {
		if p == "" {
			if !optional {
				errs = append(errs, fmt.Errorf("%s: path is empty", what))
			}
			return
		}
		for _, seg := range strings.Split(p, ".") {
			if seg == "" {
				errs = append(errs, fmt.Errorf("%s: path %q has an empty segment", what, p))
				return
			}
		}
	}
	checkPath("event_time", s.EventTime, true)
	checkPath("model", s.Model, true)
	checkPath("model_version", s.ModelVersion, true)
	checkPath("envelope", s.Envelope, true)
	if len(s.Fields) == 0 {
		errs = append(errs, errors.New("fields: at least one field is required"))
	}
	seen := make(map[string]int, len(s.Fields))
	for i, f := range s.Fields {
		what := fmt.Sprintf("fields[%d]", i)
		if f.Name != "" {
			what = fmt.Sprintf("fields[%d] (%s)", i, f.Name)
		}
		switch {
		case f.Name == "":
			errs = append(errs, fmt.Errorf("%s: name is empty", what))
		case strings.HasPrefix(f.Name, "__") && f.Name != ColEventID:
			errs = append(errs, fmt.Errorf("%s: name must not start with \"__\" (reserved)", what))
		default:
			if j, dup := seen[f.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: name duplicates fields[%d]", what, j))
			}
			seen[f.Name] = i
		}
		checkPath(what, f.Path, false)
		if f.Type != Number && f.Type != String {
			errs = append(errs, fmt.Errorf("%s: type %s is neither number nor string", what, f.Type))
		}
	}
	return errors.Join(errs...)
}

// Schema returns the Arrow schema of the records the decoder produces: the three
// bookkeeping columns, then one column per field in spec order.
func (s Spec) Schema() *arrow.Schema {
	fields := make([]arrow.Field, 0, 3+len(s.Fields))
	fields = append(fields,
		arrow.Field{Name: ColEventTime, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: ColModel, Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: ColModelVersion, Type: arrow.BinaryTypes.String, Nullable: true},
	)
	for _, f := range s.Fields {
		var dt arrow.DataType = arrow.PrimitiveTypes.Float64
		if f.Type == String {
			dt = arrow.BinaryTypes.String
		}
		fields = append(fields, arrow.Field{Name: f.Name, Type: dt, Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// Message is one raw event as it came off the wire, with its Kafka coordinates.
type Message struct {
	// Value is the message payload.
	Value []byte
	// Time is the Kafka message time, the event time when the event carries none.
	Time time.Time
	// Partition, Offset and Topic say where the message came from.
	Partition int
	Offset    int64
	Topic     string
}

// Reason classifies why a message was rejected, for per-reason counters and dead-letter
// headers.
type Reason string

// Rejection reasons.
const (
	// ReasonMalformed: not a single well-formed JSON object (truncated, garbage, trailing
	// data, invalid UTF-8 in an extracted string, nesting deeper than 512).
	ReasonMalformed Reason = "malformed"
	// ReasonWrongType: a field holds a value of the wrong JSON type (e.g. a string in a
	// number field, an object in a string field).
	ReasonWrongType Reason = "wrong_type"
	// ReasonBadTime: the event-time value is present but not a usable time.
	ReasonBadTime Reason = "bad_time"
	// ReasonTooLarge: the message exceeds Spec.MaxMessageBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonMissingEnvelope: Spec.Envelope is set but the message has no such object.
	ReasonMissingEnvelope Reason = "missing_envelope"
)

// Rejected describes a message that did not become a row.
type Rejected struct {
	// Index is the position of the message in the slice passed to Decode.
	Index int
	// Reason is the category, suitable as a metric label.
	Reason Reason
	// Err says what was wrong and where (field path or byte offset). It never contains
	// field values, which may be personal data.
	Err error
}
