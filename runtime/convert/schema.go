package convert

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Reading Connect schemas and data out of the JsonConverter's envelope, as
// Kafka's JsonConverter.toConnectData does: asConnectSchema turns the
// envelope's "schema" into a Connect schema, convertToConnect shapes the
// payload after it. Ferry is stricter than Kafka where Kafka would quietly
// change a value (Jackson's intValue() makes 1.5 into 1 and "x" into 0): a
// payload that does not fit its schema is refused with the path of the
// field that does not fit, and errors.tolerance decides what happens to
// the record.

// pathError is a payload value that does not fit its schema, with where it
// is in the payload.
type pathError struct {
	path string // "address.zipcode", "items[2]", `tags["k"]`; "" for the whole value
	err  error
}

func (e *pathError) Error() string {
	if e.path == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("field %q: %v", e.path, e.err)
}

func (e *pathError) Unwrap() error { return e.err }

// under prefixes the path of err with step (a field name, or "[i]").
func under(step string, err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		p := step
		switch {
		case pe.path == "":
		case strings.HasPrefix(pe.path, "["):
			p += pe.path
		default:
			p += "." + pe.path
		}
		return &pathError{path: p, err: pe.err}
	}
	return &pathError{path: step, err: err}
}

// jsonKind names the JSON type of a decoded value, for error messages.
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + string(x)
	case string:
		if len(x) > 32 {
			x = x[:32] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// parseSchema turns a decoded JSON schema (Kafka's asConnectSchema) into a
// Connect schema. A null schema is nil: the payload is schemaless.
func (j *JSON) parseSchema(v any) (*connect.Schema, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a schema must be an object or null, got %s", jsonKind(v))
	}
	typ, ok := m["type"].(string)
	if !ok {
		return nil, errors.New("schema must contain a string 'type' field")
	}
	// Kafka's JSON names float32 and float64 "float" and "double"; the
	// Connect names are read too (Ferry wrote them before it followed
	// Kafka).
	switch typ {
	case "float":
		typ = connect.SchemaFloat32
	case "double":
		typ = connect.SchemaFloat64
	}
	s := &connect.Schema{Type: typ}
	switch typ {
	case connect.SchemaBoolean, connect.SchemaInt8, connect.SchemaInt16, connect.SchemaInt32, connect.SchemaInt64,
		connect.SchemaFloat32, connect.SchemaFloat64, connect.SchemaBytes, connect.SchemaString:
	case connect.SchemaArray:
		items, ok := m["items"]
		if !ok || items == nil {
			return nil, errors.New("array schema did not specify the element type (items)")
		}
		is, err := j.parseSchema(items)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		s.Items = is
	case connect.SchemaMap:
		for _, part := range []struct {
			key string
			dst **connect.Schema
		}{{"keys", &s.Keys}, {"values", &s.Values}} {
			sub, ok := m[part.key]
			if !ok || sub == nil {
				return nil, fmt.Errorf("map schema did not specify the %s type", strings.TrimSuffix(part.key, "s"))
			}
			ps, err := j.parseSchema(sub)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", part.key, err)
			}
			*part.dst = ps
		}
	case connect.SchemaStruct:
		fields, ok := m["fields"].([]any)
		if !ok {
			return nil, errors.New(`struct schema's "fields" is not an array`)
		}
		s.Fields = make([]connect.Field, 0, len(fields))
		for i, f := range fields {
			fm, _ := f.(map[string]any)
			name, ok := fm["field"].(string)
			if !ok {
				return nil, fmt.Errorf("struct schema's field %d has no string 'field' name", i)
			}
			if s.Field(name) != nil {
				return nil, fmt.Errorf("struct schema names field %q twice", name)
			}
			fs, err := j.parseSchema(f)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", name, err)
			}
			s.Fields = append(s.Fields, connect.Field{Name: name, Schema: fs})
		}
	default:
		return nil, fmt.Errorf("unknown schema type %q", typ)
	}
	if o, ok := m["optional"].(bool); ok {
		s.Optional = o
	}
	if n, ok := m["name"].(string); ok {
		s.Name = n
	}
	if v, ok := m["version"].(json.Number); ok {
		if n, err := strconv.ParseInt(string(v), 10, 32); err == nil {
			s.Version = int(n)
		}
	}
	if d, ok := m["doc"].(string); ok {
		s.Doc = d
	}
	if ps, ok := m["parameters"].(map[string]any); ok {
		s.Parameters = make(map[string]string, len(ps))
		for k, v := range ps {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("schema parameter %q must be a string, got %s", k, jsonKind(v))
			}
			s.Parameters[k] = str
		}
	}
	if err := checkLogical(s); err != nil {
		return nil, err
	}
	if d, ok := m["default"]; ok && d != nil {
		dv, err := j.toConnect(s, d)
		if err != nil {
			return nil, fmt.Errorf("default: %w", err)
		}
		s.Default = dv
	}
	return s, nil
}

// checkLogical checks a logical type's base type and parameters.
func checkLogical(s *connect.Schema) error {
	want := ""
	switch s.Name {
	case connect.DecimalSchemaName:
		want = connect.SchemaBytes
		if _, err := decimalScale(s); err != nil {
			return err
		}
	case connect.DateSchemaName, connect.TimeSchemaName:
		want = connect.SchemaInt32
	case connect.TimestampSchemaName:
		want = connect.SchemaInt64
	default:
		return nil
	}
	if s.Type != want {
		return fmt.Errorf("logical type %s must have type %s, not %s", s.Name, want, s.Type)
	}
	return nil
}

// decimalScale reads a Decimal schema's scale parameter.
func decimalScale(s *connect.Schema) (int32, error) {
	v, ok := s.Parameters[connect.DecimalScaleParameter]
	if !ok {
		return 0, fmt.Errorf("invalid Decimal schema: the %q parameter is missing", connect.DecimalScaleParameter)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid Decimal schema: scale %q is not an integer", v)
	}
	return int32(n), nil
}

const millisPerDay = 24 * 60 * 60 * 1000

// toConnect shapes a decoded payload value v after schema s (Kafka's
// convertToConnect): numbers become the schema's Go integer or float type,
// bytes are base64-decoded, logical types become connect.Decimal and
// time.Time, structs get every field of their schema (absent or null ones
// their default, if any), maps with non-string keys their pairs. v is
// changed in place where it is a map or slice.
func (j *JSON) toConnect(s *connect.Schema, v any) (any, error) {
	if v == nil {
		switch {
		case s.Default != nil && j.replaceNull:
			return s.Default, nil
		case s.Optional:
			return nil, nil
		}
		return nil, fmt.Errorf("null value for a required %s", s.Type)
	}
	switch s.Name {
	case connect.DecimalSchemaName:
		return j.toDecimal(s, v)
	case connect.DateSchemaName:
		n, err := toInteger(v, 32)
		if err != nil {
			return nil, fmt.Errorf("%s (int32 days since the epoch): %w", s.Name, err)
		}
		return time.UnixMilli(n * millisPerDay).UTC(), nil
	case connect.TimeSchemaName:
		n, err := toInteger(v, 32)
		if err != nil {
			return nil, fmt.Errorf("%s (int32 milliseconds since midnight): %w", s.Name, err)
		}
		if n < 0 || n > millisPerDay {
			return nil, fmt.Errorf("%s: %d is not a number of milliseconds from 0 to %d", s.Name, n, millisPerDay)
		}
		return time.UnixMilli(n).UTC(), nil
	case connect.TimestampSchemaName:
		n, err := toInteger(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s (int64 milliseconds since the epoch): %w", s.Name, err)
		}
		return time.UnixMilli(n).UTC(), nil
	}
	switch s.Type {
	case connect.SchemaBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case connect.SchemaInt8:
		n, err := toInteger(v, 8)
		if err != nil {
			return nil, fmt.Errorf("int8: %w", err)
		}
		return int8(n), nil
	case connect.SchemaInt16:
		n, err := toInteger(v, 16)
		if err != nil {
			return nil, fmt.Errorf("int16: %w", err)
		}
		return int16(n), nil
	case connect.SchemaInt32:
		n, err := toInteger(v, 32)
		if err != nil {
			return nil, fmt.Errorf("int32: %w", err)
		}
		return int32(n), nil
	case connect.SchemaInt64:
		n, err := toInteger(v, 64)
		if err != nil {
			return nil, fmt.Errorf("int64: %w", err)
		}
		return n, nil
	case connect.SchemaFloat32, connect.SchemaFloat64:
		num, ok := v.(json.Number)
		if !ok {
			break
		}
		bits := 64
		if s.Type == connect.SchemaFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(num), bits)
		if err != nil {
			return nil, fmt.Errorf("%s: %s is out of range", s.Type, num)
		}
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	case connect.SchemaString:
		if str, ok := v.(string); ok {
			return str, nil
		}
	case connect.SchemaBytes:
		str, ok := v.(string)
		if !ok {
			break
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("bytes: invalid base64: %w", err)
		}
		return b, nil
	case connect.SchemaArray:
		arr, ok := v.([]any)
		if !ok {
			break
		}
		for i := range arr {
			cv, err := j.toConnect(s.Items, arr[i])
			if err != nil {
				return nil, under("["+strconv.Itoa(i)+"]", err)
			}
			arr[i] = cv
		}
		return arr, nil
	case connect.SchemaMap:
		return j.toMap(s, v)
	case connect.SchemaStruct:
		obj, ok := v.(map[string]any)
		if !ok {
			break
		}
		for _, f := range s.Fields {
			cv, err := j.toConnect(f.Schema, obj[f.Name])
			if err != nil {
				return nil, under(f.Name, err)
			}
			obj[f.Name] = cv
		}
		if len(obj) > len(s.Fields) {
			// As Kafka's Struct, the value holds its schema's fields only.
			for k := range obj {
				if s.Field(k) == nil {
					delete(obj, k)
				}
			}
		}
		return obj, nil
	}
	return nil, fmt.Errorf("expected %s, got %s", expectedJSON(s.Type), jsonKind(v))
}

// expectedJSON says what JSON a schema type is written as.
func expectedJSON(typ string) string {
	switch typ {
	case connect.SchemaBoolean:
		return "a boolean"
	case connect.SchemaFloat32, connect.SchemaFloat64:
		return "a number (" + typ + ")"
	case connect.SchemaString:
		return "a string"
	case connect.SchemaBytes:
		return "a base64 string (bytes)"
	case connect.SchemaArray:
		return "an array"
	case connect.SchemaStruct:
		return "an object (struct)"
	}
	return typ
}

// toMap reads a map: an object when its keys are strings, else an array of
// [key, value] pairs (Kafka's encoding), which stays a []any of pairs.
func (j *JSON) toMap(s *connect.Schema, v any) (any, error) {
	if s.Keys.Type == connect.SchemaString {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a map with string keys is a JSON object, got %s", jsonKind(v))
		}
		for k, x := range obj {
			cv, err := j.toConnect(s.Values, x)
			if err != nil {
				return nil, under("["+strconv.Quote(k)+"]", err)
			}
			obj[k] = cv
		}
		return obj, nil
	}
	pairs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("a map with %s keys is a JSON array of [key, value] pairs, got %s", s.Keys.Type, jsonKind(v))
	}
	for i, p := range pairs {
		kv, ok := p.([]any)
		if !ok || len(kv) != 2 {
			return nil, under("["+strconv.Itoa(i)+"]", fmt.Errorf("a map entry is a [key, value] pair, got %s", jsonKind(p)))
		}
		k, err := j.toConnect(s.Keys, kv[0])
		if err != nil {
			return nil, under("["+strconv.Itoa(i)+"]", fmt.Errorf("key: %w", err))
		}
		x, err := j.toConnect(s.Values, kv[1])
		if err != nil {
			return nil, under("["+strconv.Itoa(i)+"]", fmt.Errorf("value: %w", err))
		}
		kv[0], kv[1] = k, x
	}
	return pairs, nil
}

// toInteger reads an integer that fits in bits. A number written with a
// fraction or exponent is accepted when its value is a whole number.
func toInteger(v any, bits int) (int64, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("expected an integer, got %s", jsonKind(v))
	}
	n, err := strconv.ParseInt(string(num), 10, bits)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, strconv.ErrSyntax) {
		r, ok := new(big.Rat).SetString(string(num))
		if !ok || !r.IsInt() {
			return 0, fmt.Errorf("expected an integer, got %s", jsonKind(v))
		}
		if r.Num().IsInt64() {
			n = r.Num().Int64()
			if bits == 64 || (n >= -1<<(bits-1) && n < 1<<(bits-1)) {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("%s is out of range for int%d", num, bits)
}

// toDecimal reads a Decimal: base64 of the unscaled value's big-endian
// two's complement bytes (decimal.format=BASE64), or a JSON number
// (NUMERIC); Kafka reads both whatever the setting. A number is scaled to
// the schema's scale when that is exact.
func (j *JSON) toDecimal(s *connect.Schema, v any) (any, error) {
	scale, err := decimalScale(s)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string:
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid base64: %w", s.Name, err)
		}
		return connect.Decimal{Unscaled: fromTwosComplement(b), Scale: scale}, nil
	case json.Number:
		d, err := parseDecimal(string(x), scale)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s: expected a base64 string or a number, got %s", s.Name, jsonKind(v))
}

// parseDecimal reads decimal text as a Decimal of the given scale.
func parseDecimal(text string, scale int32) (connect.Decimal, error) {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return connect.Decimal{}, fmt.Errorf("%q is not a decimal number", text)
	}
	d, ok := connect.DecimalFromRat(r, scale)
	if !ok {
		return connect.Decimal{}, fmt.Errorf("%s does not fit scale %d without rounding", text, scale)
	}
	return d, nil
}

// rescale returns d's unscaled value at scale, when that is exact.
func rescale(d connect.Decimal, scale int32) (*big.Int, bool) {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	if d.Scale == scale {
		return u, true
	}
	// u × 10^-d.Scale at scale is u × 10^(scale - d.Scale).
	r, ok := connect.DecimalFromRat(new(big.Rat).SetInt(u), scale-d.Scale)
	return r.Unscaled, ok
}

// fromTwosComplement reads big-endian two's complement bytes (Java's
// BigInteger(byte[])).
func fromTwosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

// toTwosComplement writes n as Java's BigInteger.toByteArray does: the
// fewest big-endian two's complement bytes, at least one.
func toTwosComplement(n *big.Int) []byte {
	if n == nil || n.Sign() == 0 {
		return []byte{0}
	}
	if n.Sign() > 0 {
		b := n.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// Negative: 2^(8k) + n for the smallest k whose top bit is set.
	k := (n.BitLen() + 8) / 8
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(k)*8), n)
	b := m.Bytes()
	for len(b) < k {
		b = append([]byte{0xff}, b...)
	}
	if b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	// The fewest bytes: drop a leading 0xff whose next byte keeps the sign.
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return b
}

// javaDouble renders f as Java's Double.toString (what Jackson writes for
// a double): "1.0", "0.001", "1.0E7", "1.234E-5".
func javaDouble(f float64, bits int) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'g', -1, bits) // not JSON; refused by the caller
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	a := math.Abs(f)
	if a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits) // 1.234E-05
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}
