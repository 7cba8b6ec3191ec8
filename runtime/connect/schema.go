package connect

import (
	"math/big"
	"strings"
)

// Schema types, as Kafka Connect's Schema.Type names them (lowercase).
// JsonConverter's envelope writes float32 and float64 as "float" and
// "double".
const (
	SchemaInt8    = "int8"
	SchemaInt16   = "int16"
	SchemaInt32   = "int32"
	SchemaInt64   = "int64"
	SchemaFloat32 = "float32"
	SchemaFloat64 = "float64"
	SchemaBoolean = "boolean"
	SchemaString  = "string"
	SchemaBytes   = "bytes"
	SchemaArray   = "array"
	SchemaMap     = "map"
	SchemaStruct  = "struct"
)

// Logical types: a schema of one of these names over its base type (Kafka
// Connect's Decimal, Date, Time and Timestamp).
const (
	DecimalSchemaName   = "org.apache.kafka.connect.data.Decimal"   // bytes; Parameters[DecimalScaleParameter]
	DateSchemaName      = "org.apache.kafka.connect.data.Date"      // int32: days since the epoch
	TimeSchemaName      = "org.apache.kafka.connect.data.Time"      // int32: milliseconds since midnight
	TimestampSchemaName = "org.apache.kafka.connect.data.Timestamp" // int64: milliseconds since the epoch

	DecimalScaleParameter = "scale"
)

// Schema is a Kafka Connect schema. A source task may give one with a key
// or value (SourceRecord.KeySchema, ValueSchema); a converter that reads or
// writes schemas (JsonConverter with schemas.enable=true) carries it in the
// record (Record.KeySchema, ValueSchema), the others ignore it.
//
// A value described by a schema has the Go shape of the schema's type, as
// Kafka Connect's Java types: int8, int16, int32, int64, float32, float64,
// bool, string, []byte, []any (array), map[string]any (struct, and map with
// string keys; a map with other keys is []any of two-element []any pairs),
// nil for an absent optional value. Logical types: Decimal is a Decimal,
// Date, Time and Timestamp are a time.Time in UTC.
type Schema struct {
	Type       string
	Optional   bool
	Name       string
	Version    int
	Doc        string
	Parameters map[string]string
	Default    any     // the value of an absent field, in the shape above; nil: none
	Fields     []Field // struct
	Items      *Schema // array
	Keys       *Schema // map
	Values     *Schema // map
}

// Field returns the struct field called name, or nil.
func (s *Schema) Field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// Decimal is a value of the Decimal logical type, as Java's BigDecimal:
// Unscaled × 10^-Scale.
type Decimal struct {
	Unscaled *big.Int
	Scale    int32
}

// DecimalFromRat returns r as a Decimal of the given scale, when r ×
// 10^scale is a whole number (r needs no rounding at that scale).
func DecimalFromRat(r *big.Rat, scale int32) (Decimal, bool) {
	p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(scale, -scale))), nil))
	x := new(big.Rat)
	if scale >= 0 {
		x.Mul(r, p)
	} else {
		x.Quo(r, p)
	}
	if !x.IsInt() {
		return Decimal{}, false
	}
	return Decimal{Unscaled: new(big.Int).Set(x.Num()), Scale: scale}, true
}

// String renders d in plain decimal notation ("-12.340" for -12340 at
// scale 3).
func (d Decimal) String() string {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	if d.Scale <= 0 {
		return new(big.Int).Mul(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Scale)), nil)).String()
	}
	digits := new(big.Int).Abs(u).String()
	sign := ""
	if u.Sign() < 0 {
		sign = "-"
	}
	if pad := int(d.Scale) + 1 - len(digits); pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	cut := len(digits) - int(d.Scale)
	return sign + digits[:cut] + "." + digits[cut:]
}

// Field is one field of a struct schema.
type Field struct {
	Name   string
	Schema *Schema
}

// SchemaConverter is a Converter that reads and writes Connect schemas with
// the data (JsonConverter). The runtime reads sink records with
// ToSchemaAndValue (setting Record.KeySchema and ValueSchema) and writes
// records that carry a schema with FromSchemaAndValue.
type SchemaConverter interface {
	Converter
	// ToSchemaAndValue converts raw bytes into a value and the schema that
	// describes it (nil when the data carries none); the value has the
	// schema's Go shape (Schema's doc).
	ToSchemaAndValue(topic string, data []byte) (*Schema, any, error)
	// FromSchemaAndValue converts value, described by schema, into raw
	// bytes.
	FromSchemaAndValue(topic string, schema *Schema, value any) ([]byte, error)
}
