package transforms

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// castTypes are Cast's output types, as Kafka names them in the spec.
var castTypes = []string{"int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string"}

// cast is Cast$Key / Cast$Value.
type cast struct {
	side  side
	whole string            // non-empty: cast the whole key or value
	casts map[string]string // field → type
	order []string
	cache schemaCache
}

var _ connect.Transform = (*cast)(nil)

func validCastType(t string) bool {
	for _, c := range castTypes {
		if t == c {
			return true
		}
	}
	return false
}

func newCast(o *opts, s side) connect.Transform {
	t := &cast{side: s, casts: map[string]string{}}
	spec := o.requiredList("spec")
	for _, m := range spec {
		parts := strings.Split(m, ":")
		switch {
		case len(parts) == 1 && len(spec) == 1:
			typ := strings.ToLower(strings.TrimSpace(parts[0]))
			if !validCastType(typ) {
				o.bad("spec", "invalid type found in casting spec: %s (valid: %s)", parts[0], strings.Join(castTypes, ", "))
				continue
			}
			t.whole = typ
		case len(parts) == 2 && parts[0] != "":
			typ := strings.ToLower(strings.TrimSpace(parts[1]))
			if !validCastType(typ) {
				o.bad("spec", "invalid type found in casting spec: %s (valid: %s)", parts[1], strings.Join(castTypes, ", "))
				continue
			}
			f := strings.TrimSpace(parts[0])
			if _, dup := t.casts[f]; !dup {
				t.order = append(t.order, f)
			}
			t.casts[f] = typ
		case len(parts) == 1:
			o.bad("spec", "cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec")
		default:
			o.bad("spec", "invalid cast mapping: %s", m)
		}
	}
	return t
}

func (t *cast) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	if sc := t.side.schema(r); sc != nil {
		return t.applyWithSchema(r, sc, v)
	}
	if t.whole != "" {
		cv, err := castTo(v, t.whole)
		if err != nil {
			return nil, err
		}
		t.side.set(r, cv)
		return r, nil
	}
	m, err := requireMap(v, "cast types")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	for _, f := range t.order {
		cv, err := castTo(m[f], t.casts[f])
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
		out[f] = cv
	}
	t.side.set(r, out)
	return r, nil
}

// applyWithSchema casts with Kafka's getOrBuildSchema: a cast field's
// schema becomes the target type (optional if it was, its default cast
// too), the others stay; a whole-value cast makes a schema of the target
// type. A logical type cast to another type loses its name.
func (t *cast) applyWithSchema(r *connect.Record, sc *connect.Schema, v any) (*connect.Record, error) {
	upd, err := t.cache.get(sc, func() (*connect.Schema, error) {
		if t.whole != "" {
			return castSchema(sc, t.whole)
		}
		if sc.Type != connect.SchemaStruct {
			return nil, fmt.Errorf("only Struct objects supported for [cast types], found: %s", sc.Type)
		}
		out := structLike(sc)
		out.Optional = sc.Optional
		for _, f := range sc.Fields {
			fs := f.Schema
			if typ, ok := t.casts[f.Name]; ok {
				var err error
				if fs, err = castSchema(fs, typ); err != nil {
					return nil, fmt.Errorf("field %q: %w", f.Name, err)
				}
			}
			out.Fields = append(out.Fields, connect.Field{Name: f.Name, Schema: fs})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if t.whole != "" {
		cv, err := castWithSchema(sc, v, t.whole)
		if err != nil {
			return nil, err
		}
		t.side.setWithSchema(r, upd, cv)
		return r, nil
	}
	m, err := requireStruct(sc, v, "cast types")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for _, f := range sc.Fields {
		x := m[f.Name]
		if typ, ok := t.casts[f.Name]; ok {
			cv, err := castWithSchema(f.Schema, x, typ)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			x = cv
		}
		out[f.Name] = x
	}
	t.side.setWithSchema(r, upd, out)
	return r, nil
}

// castSchema is the schema of a value of schema s cast to typ.
func castSchema(s *connect.Schema, typ string) (*connect.Schema, error) {
	switch s.Type {
	case connect.SchemaStruct, connect.SchemaArray, connect.SchemaMap:
		return nil, fmt.Errorf("cast transformation does not support casting to/from %s", strings.ToUpper(s.Type))
	}
	out := &connect.Schema{Type: typ, Optional: s.Optional}
	if typ == s.Type || !isLogical(s) {
		out.Name, out.Version, out.Doc, out.Parameters = s.Name, s.Version, s.Doc, s.Parameters
	}
	if typ == s.Type && isLogical(s) {
		return s, nil // nothing changes
	}
	if s.Default != nil {
		d, err := castWithSchema(s, s.Default, typ)
		if err != nil {
			return nil, fmt.Errorf("default: %w", err)
		}
		out.Default = d
	}
	return out, nil
}

// castWithSchema casts v, described by s, to typ as Kafka's
// castValueToType: a Date, Time or Timestamp cast to a string is its ISO
// 8601 text (Values.dateFormatFor), cast to a number its base
// representation.
func castWithSchema(s *connect.Schema, v any, typ string) (any, error) {
	if t, ok := v.(time.Time); ok && typ == "string" {
		switch s.Name {
		case connect.DateSchemaName:
			return t.UTC().Format("2006-01-02"), nil
		case connect.TimeSchemaName:
			return t.UTC().Format("15:04:05.000Z"), nil
		}
		return castTo(t, typ)
	}
	return castTo(encodeLogical(s, v), typ)
}

// encodeLogical turns a Date, Time or Timestamp value into its base
// representation (days, milliseconds of the day, milliseconds), as Kafka's
// Cast.encodeLogicalType before a cast.
func encodeLogical(s *connect.Schema, v any) any {
	t, ok := v.(time.Time)
	if !ok {
		return v
	}
	switch s.Name {
	case connect.DateSchemaName:
		return int32(t.UnixMilli() / (24 * 3600 * 1000))
	case connect.TimeSchemaName:
		return int32(t.UnixMilli() % (24 * 3600 * 1000))
	}
	return t.UnixMilli()
}

// typeKind names the Connect type of a Go value, as Cast's messages do.
func typeKind(v any) string {
	switch x := v.(type) {
	case int8:
		return "int8"
	case int16:
		return "int16"
	case int32:
		return "int32"
	case int64, int:
		return "int64"
	case float32:
		return "float32"
	case float64:
		return "float64"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "int64"
		}
		return "float64"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []byte:
		return "bytes"
	case time.Time:
		return "timestamp"
	case connect.Decimal:
		return "decimal"
	case []any:
		return "array"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// castTo converts v to a Cast output type with Java's conversions: numbers
// to integers truncate (and wrap), booleans are 1/0, numbers are true when
// non-zero, a string is true only when it is "true" (any case), strings
// parse as the target number type.
func castTo(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.(type) {
	case []any, map[string]any:
		return nil, fmt.Errorf("cast transformation does not support casting to/from %s", strings.ToUpper(typeKind(v)))
	}
	switch typ {
	case "int8", "int16", "int32", "int64":
		n, err := toInt64(v, typ)
		if err != nil {
			return nil, err
		}
		switch typ {
		case "int8":
			return int8(n), nil
		case "int16":
			return int16(n), nil
		case "int32":
			return int32(n), nil
		}
		return n, nil
	case "float32", "float64":
		f, err := toFloat64(v)
		if err != nil {
			return nil, err
		}
		if typ == "float32" {
			return float32(f), nil
		}
		return f, nil
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return strings.EqualFold(x, "true"), nil
		case []byte, time.Time:
			return nil, fmt.Errorf("cast transformation does not support casting %s to boolean", typeKind(v))
		case connect.Decimal:
			return x.Unscaled != nil && x.Unscaled.Sign() != 0, nil
		}
		f, err := toFloat64(v)
		if err != nil {
			return nil, err
		}
		return f != 0, nil
	case "string":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return base64.StdEncoding.EncodeToString(x), nil
		}
		return string(connect.FormatValue(v)), nil
	}
	return nil, fmt.Errorf("unknown cast type %q", typ)
}

func bitsOf(typ string) int {
	switch typ {
	case "int8":
		return 8
	case "int16":
		return 16
	case "int32":
		return 32
	}
	return 64
}

func toInt64(v any, typ string) (int64, error) {
	if n, ok := connect.AsInt64(v); ok {
		return n, nil
	}
	switch x := v.(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case float32:
		return truncate(float64(x)), nil
	case float64:
		return truncate(x), nil
	case json.Number: // not an int64: truncated
		f, err := x.Float64()
		if err != nil {
			return 0, fmt.Errorf("value %s cannot be cast to %s", x, typ)
		}
		return truncate(f), nil
	case string:
		n, err := strconv.ParseInt(x, 10, bitsOf(typ))
		if err != nil {
			return 0, fmt.Errorf("value (%s) was out of range for requested data type %s", x, typ)
		}
		return n, nil
	case time.Time:
		return x.UnixMilli(), nil
	case connect.Decimal:
		f, _ := decimalFloat(x).Float64()
		return truncate(f), nil
	}
	return 0, fmt.Errorf("cast transformation does not support casting %s to %s", typeKind(v), typ)
}

func truncate(f float64) int64 {
	if math.IsNaN(f) {
		return 0
	}
	return int64(f)
}

func toFloat64(v any) (float64, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case json.Number:
		return x.Float64()
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("value (%s) was out of range for requested data type", x)
		}
		return f, nil
	case time.Time:
		return float64(x.UnixMilli()), nil
	case connect.Decimal:
		f, _ := decimalFloat(x).Float64()
		return f, nil
	}
	if f, ok := connect.AsFloat64(v); ok {
		return f, nil
	}
	return 0, fmt.Errorf("cast transformation does not support casting %s to a number", typeKind(v))
}

// decimalFloat is d's value as a big.Float.
func decimalFloat(d connect.Decimal) *big.Float {
	f, _, _ := big.ParseFloat(d.String(), 10, 64, big.ToNearestEven)
	if f == nil {
		return new(big.Float)
	}
	return f
}
