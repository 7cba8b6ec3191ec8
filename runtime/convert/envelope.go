package convert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// The JsonConverter's envelope is written in Kafka's order: "schema" then
// "payload"; inside a schema, "type", then "fields" (or "items", or "keys"
// and "values"), "optional", "name", "version", "doc", "parameters",
// "default", and a struct field's "field" last (Kafka's
// JsonConverter.asJsonSchema); a struct payload's fields in the schema's
// order (convertToJson). Readers that compare bytes, or people reading
// records, see what Kafka Connect would have written. Two details cannot
// follow Kafka exactly: a schema's parameters are a Go map, so they are
// written with Decimal's "scale" first and the others sorted (Kafka keeps
// the order they were added in, which for Decimal also starts with
// "scale"); a map value's entries are sorted by key (Kafka's follow a
// HashMap's order).

// renderedSchema is a schema with its JSON.
type renderedSchema struct {
	s    *connect.Schema
	json []byte
}

var nullSchema = []byte("null")

// schemaJSON renders s as the envelope's "schema"; nil is null.
func (j *JSON) schemaJSON(s *connect.Schema) ([]byte, error) {
	var b bytes.Buffer
	if err := j.writeSchema(&b, s, ""); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return b.Bytes(), nil
}

// envelope renders {"schema":schema,"payload":…}, the payload written by
// payload.
func envelope(schema []byte, payload func(*bytes.Buffer) error) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"schema":`)
	b.Write(schema)
	b.WriteString(`,"payload":`)
	if err := payload(&b); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (j *JSON) writeSchema(b *bytes.Buffer, s *connect.Schema, field string) error {
	if s == nil {
		b.WriteString("null")
		return nil
	}
	b.WriteString(`{"type":`)
	b.WriteString(strconv.Quote(jsonTypeName(s.Type)))
	switch s.Type {
	case connect.SchemaStruct:
		b.WriteString(`,"fields":[`)
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := j.writeSchema(b, f.Schema, f.Name); err != nil {
				return fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
		b.WriteByte(']')
	case connect.SchemaArray:
		b.WriteString(`,"items":`)
		if err := j.writeSchema(b, s.Items, ""); err != nil {
			return err
		}
	case connect.SchemaMap:
		b.WriteString(`,"keys":`)
		if err := j.writeSchema(b, s.Keys, ""); err != nil {
			return err
		}
		b.WriteString(`,"values":`)
		if err := j.writeSchema(b, s.Values, ""); err != nil {
			return err
		}
	}
	b.WriteString(`,"optional":`)
	b.WriteString(strconv.FormatBool(s.Optional))
	if s.Name != "" {
		b.WriteString(`,"name":`)
		writeString(b, s.Name)
	}
	if s.Version != 0 {
		b.WriteString(`,"version":`)
		b.WriteString(strconv.Itoa(s.Version))
	}
	if s.Doc != "" {
		b.WriteString(`,"doc":`)
		writeString(b, s.Doc)
	}
	if len(s.Parameters) > 0 {
		b.WriteString(`,"parameters":{`)
		for i, k := range parameterOrder(s.Parameters) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeString(b, s.Parameters[k])
		}
		b.WriteByte('}')
	}
	if s.Default != nil {
		b.WriteString(`,"default":`)
		if err := j.writePayload(b, s, s.Default); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	if field != "" {
		b.WriteString(`,"field":`)
		writeString(b, field)
	}
	b.WriteByte('}')
	return nil
}

// jsonTypeName is the name JsonConverter writes for a schema type: Connect's
// own, but "float" and "double" for float32 and float64.
func jsonTypeName(typ string) string {
	switch typ {
	case connect.SchemaFloat32:
		return "float"
	case connect.SchemaFloat64:
		return "double"
	}
	return typ
}

// parameterOrder lists a schema's parameter names: Decimal's scale first,
// then the others sorted.
func parameterOrder(ps map[string]string) []string {
	keys := make([]string, 0, len(ps))
	for k := range ps {
		if k != connect.DecimalScaleParameter {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if _, ok := ps[connect.DecimalScaleParameter]; ok {
		keys = append([]string{connect.DecimalScaleParameter}, keys...)
	}
	return keys
}

// writePayload writes v as described by s (Kafka's convertToJson): a null
// value is the schema's default, or null when the schema is optional, and
// an error otherwise; a struct's fields go in its schema's order, and
// fields the schema does not name are an error, as in Kafka. Values have
// the Go shapes connect.Schema's doc lists; integers of another Go type,
// json.Number and, for logical types, their base representation are
// accepted when they fit.
func (j *JSON) writePayload(b *bytes.Buffer, s *connect.Schema, v any) error {
	if s == nil {
		return writeMarshal(b, v)
	}
	if v == nil {
		switch {
		case s.Default != nil && j.replaceNull:
			return j.writePayload(b, s, s.Default)
		case s.Optional:
			b.WriteString("null")
			return nil
		}
		return fmt.Errorf("null value for a required %s with no default", s.Type)
	}
	switch s.Name {
	case connect.DecimalSchemaName:
		return j.writeDecimal(b, s, v)
	case connect.DateSchemaName, connect.TimeSchemaName, connect.TimestampSchemaName:
		if t, ok := v.(time.Time); ok {
			n, err := fromLogicalTime(s.Name, t)
			if err != nil {
				return err
			}
			b.WriteString(strconv.FormatInt(n, 10))
			return nil
		}
	}
	switch s.Type {
	case connect.SchemaInt8, connect.SchemaInt16, connect.SchemaInt32, connect.SchemaInt64:
		n, err := goInteger(v, bitsOf(s.Type))
		if err != nil {
			return fmt.Errorf("%s: %w", s.Type, err)
		}
		b.WriteString(strconv.FormatInt(n, 10))
		return nil
	case connect.SchemaFloat32, connect.SchemaFloat64:
		bits := 64
		if s.Type == connect.SchemaFloat32 {
			bits = 32
		}
		f, ok := goFloat(v)
		if !ok {
			return fmt.Errorf("%s: a %T is not a number", s.Type, v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: %v has no JSON form", s.Type, f)
		}
		b.WriteString(javaDouble(f, bits))
		return nil
	case connect.SchemaBoolean:
		if x, ok := v.(bool); ok {
			b.WriteString(strconv.FormatBool(x))
			return nil
		}
	case connect.SchemaString:
		if x, ok := v.(string); ok {
			writeString(b, x)
			return nil
		}
	case connect.SchemaBytes:
		if x, ok := v.([]byte); ok {
			b.WriteByte('"')
			b.WriteString(base64.StdEncoding.EncodeToString(x))
			b.WriteByte('"')
			return nil
		}
	case connect.SchemaArray:
		if items, ok := v.([]any); ok {
			b.WriteByte('[')
			for i, it := range items {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := j.writePayload(b, s.Items, it); err != nil {
					return under("["+strconv.Itoa(i)+"]", err)
				}
			}
			b.WriteByte(']')
			return nil
		}
	case connect.SchemaMap:
		return j.writeMap(b, s, v)
	case connect.SchemaStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("struct schema %q: value is a %T, not an object", s.Name, v)
		}
		if len(m) > len(s.Fields) {
			return fmt.Errorf("struct schema %q: the value has fields the schema does not name", s.Name)
		}
		b.WriteByte('{')
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, f.Name)
			b.WriteByte(':')
			if err := j.writePayload(b, f.Schema, m[f.Name]); err != nil {
				return under(f.Name, err)
			}
		}
		b.WriteByte('}')
		return nil
	default:
		return fmt.Errorf("unknown schema type %q", s.Type)
	}
	return fmt.Errorf("%s: a %T does not fit", s.Type, v)
}

// writeMap writes a map: an object when its keys are strings, else an
// array of [key, value] pairs.
func (j *JSON) writeMap(b *bytes.Buffer, s *connect.Schema, v any) error {
	if m, ok := v.(map[string]any); ok && s.Keys.Type == connect.SchemaString {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := j.writePayload(b, s.Values, m[k]); err != nil {
				return under("["+strconv.Quote(k)+"]", err)
			}
		}
		b.WriteByte('}')
		return nil
	}
	pairs, ok := v.([]any)
	if !ok || s.Keys.Type == connect.SchemaString {
		return fmt.Errorf("map with %s keys: a %T does not fit (want map[string]any for string keys, else []any of [key, value] pairs)", s.Keys.Type, v)
	}
	b.WriteByte('[')
	for i, p := range pairs {
		kv, ok := p.([]any)
		if !ok || len(kv) != 2 {
			return under("["+strconv.Itoa(i)+"]", fmt.Errorf("a map entry is a [key, value] pair, got a %T", p))
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		if err := j.writePayload(b, s.Keys, kv[0]); err != nil {
			return under("["+strconv.Itoa(i)+"]", fmt.Errorf("key: %w", err))
		}
		b.WriteByte(',')
		if err := j.writePayload(b, s.Values, kv[1]); err != nil {
			return under("["+strconv.Itoa(i)+"]", fmt.Errorf("value: %w", err))
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return nil
}

// writeDecimal writes a Decimal at its schema's scale: base64 of the
// unscaled value's two's complement bytes, or a plain number with
// decimal.format=NUMERIC.
func (j *JSON) writeDecimal(b *bytes.Buffer, s *connect.Schema, v any) error {
	scale, err := decimalScale(s)
	if err != nil {
		return err
	}
	var d connect.Decimal
	switch x := v.(type) {
	case connect.Decimal:
		d = x
	case *connect.Decimal:
		d = *x
	case json.Number:
		if d, err = parseDecimal(string(x), scale); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	case []byte: // already the base representation
		d = connect.Decimal{Unscaled: fromTwosComplement(x), Scale: scale}
	default:
		return fmt.Errorf("%s: a %T is not a connect.Decimal", s.Name, v)
	}
	u, ok := rescale(d, scale)
	if !ok {
		return fmt.Errorf("%s: %s does not fit the schema's scale %d without rounding", s.Name, d, scale)
	}
	if j.decimalNumeric {
		b.WriteString(connect.Decimal{Unscaled: u, Scale: scale}.String())
		return nil
	}
	b.WriteByte('"')
	b.WriteString(base64.StdEncoding.EncodeToString(toTwosComplement(u)))
	b.WriteByte('"')
	return nil
}

// fromLogicalTime converts a time to a Date (days), Time (milliseconds
// since midnight) or Timestamp (milliseconds), refusing a Date with a time
// of day or a Time with a date, as Kafka does.
func fromLogicalTime(name string, t time.Time) (int64, error) {
	ms := t.UnixMilli()
	switch name {
	case connect.DateSchemaName:
		if ms%millisPerDay != 0 {
			return 0, fmt.Errorf("%s: %s has a time of day; a Date is midnight UTC", name, t.UTC().Format(time.RFC3339Nano))
		}
		return ms / millisPerDay, nil
	case connect.TimeSchemaName:
		if ms < 0 || ms >= millisPerDay {
			return 0, fmt.Errorf("%s: %s has a date; a Time is a time of day on 1970-01-01 UTC", name, t.UTC().Format(time.RFC3339Nano))
		}
	}
	return ms, nil
}

func bitsOf(typ string) int {
	switch typ {
	case connect.SchemaInt8:
		return 8
	case connect.SchemaInt16:
		return 16
	case connect.SchemaInt32:
		return 32
	}
	return 64
}

// goInteger reads an integer of any Go integer type (or json.Number, also
// written with a fraction or exponent) that fits in bits.
func goInteger(v any, bits int) (int64, error) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		return toInteger(x, bits)
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	default:
		var ok bool
		if n, ok = connect.AsInt64(v); !ok {
			return 0, fmt.Errorf("a %T is not an integer", v)
		}
	}
	if bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
		return 0, fmt.Errorf("%d is out of range for int%d", n, bits)
	}
	return n, nil
}

// goFloat reads a number of any Go numeric type (connect.AsFloat64, or a
// *big.Float).
func goFloat(v any) (float64, bool) {
	if x, ok := v.(*big.Float); ok {
		f, _ := x.Float64()
		return f, true
	}
	return connect.AsFloat64(v)
}

// writeMarshal writes a schemaless value as encoding/json does.
func writeMarshal(b *bytes.Buffer, v any) error {
	out, err := Marshal(v)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := Marshal(s) // a string always encodes
	b.Write(out)
}
