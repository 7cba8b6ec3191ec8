package s3sink

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ferryhq/ferry/runtime/connect"
)

// JSON output. Confluent's JsonFormat writes a schemaless value (what
// JsonConverter with schemas.enable=false hands it) with Jackson: objects
// become java.util.HashMaps, so their keys come out in hash-table order;
// integers are longs and other numbers doubles (1.50 → 1.5, 1e3 → 1000.0).
// The record's original bytes are therefore not what Confluent writes (nor
// is any fixed rule short of emulating Java's HashMap), so Ferry does not
// copy them through: it writes the value as encoding/json does without HTML
// escaping — no whitespace, object keys sorted, numbers exactly as they
// were written — so the same record always yields the same bytes, which is
// what a replay after a crash relies on. appendJSON is that encoding without
// reflection for the types converters produce; any other type goes through
// encoding/json itself, so the output is the same byte for byte.

// appendJSON appends v's JSON encoding to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // as encoding/json writes Number's zero value
		}
		if !validNumber(s) {
			return appendJSONSlow(dst, v) // for its error
		}
		return append(dst, s...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case float64:
		return appendGoFloat(dst, x, 64)
	case float32:
		return appendGoFloat(dst, float64(x), 32)
	case []byte:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"'), nil
	case connect.Decimal:
		return append(dst, x.String()...), nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendJSONObject(dst, x)
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendJSON(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendJSONSlow(dst, v)
}

// appendJSONObject appends m's members, sorted by key.
func appendJSONObject(dst []byte, m map[string]any) ([]byte, error) {
	slot := shapeSlot(len(m))
	if slot != nil {
		if shape := slot.Load(); shape != nil {
			if out, ok := shape.append(dst, m); ok {
				return out, nil
			}
		}
	}
	// Keys and values in one pass over the map, sorted by key: no lookup
	// per key.
	var small [16]jsonField
	fields := small[:0]
	for k, v := range m {
		fields = append(fields, jsonField{k, v})
	}
	sortFields(fields)
	dst = append(dst, '{')
	var err error
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.k)
		dst = append(dst, ':')
		if dst, err = appendJSON(dst, f.v); err != nil {
			return nil, err
		}
	}
	if slot != nil {
		slot.Store(newObjectShape(fields))
	}
	return append(dst, '}'), nil
}

// Records of a topic are mostly objects of the same keys, so the shape
// (sorted keys) of the last object written of each size is kept: an
// object of that size holding all of its keys (it then holds no other) is
// written by looking its values up in that order, which costs less than
// collecting and sorting its members. Sizes from 1 to
// len(objectShapes)-1 are kept; a shape is never written once stored.
var objectShapes [33]atomic.Pointer[objectShape]

// objectShape is the keys of an object, sorted, and what its encoding
// writes before each value: `{"key":` for the first, `,"key":` after.
type objectShape struct {
	keys  []string
	heads []string
}

// shapeSlot returns where the shape of objects of n members is kept, or
// nil.
func shapeSlot(n int) *atomic.Pointer[objectShape] {
	if n <= 0 || n >= len(objectShapes) {
		return nil
	}
	return &objectShapes[n]
}

// newObjectShape returns the shape of an object whose members, sorted,
// are fields. Its strings are copies: a shape must not hold on to a
// record's memory.
func newObjectShape(fields []jsonField) *objectShape {
	s := &objectShape{keys: make([]string, len(fields)), heads: make([]string, len(fields))}
	var head []byte
	for i, f := range fields {
		s.keys[i] = strings.Clone(f.k)
		head = append(head[:0], ',')
		if i == 0 {
			head[0] = '{'
		}
		head = appendJSONString(head, f.k)
		s.heads[i] = string(append(head, ':'))
	}
	return s
}

// append appends m, whose size is len(s.keys), if it holds every one of
// s.keys. Else, or if a value cannot be encoded, it reports false, and the
// caller writes m the general way (which also returns the error
// encoding/json would).
func (s *objectShape) append(dst []byte, m map[string]any) ([]byte, bool) {
	start := len(dst)
	for i, k := range s.keys {
		v, ok := m[k]
		if !ok {
			return dst[:start], false
		}
		dst = append(dst, s.heads[i]...)
		out, err := appendJSON(dst, v)
		if err != nil {
			return dst[:start], false
		}
		dst = out
	}
	return append(dst, '}'), true
}

// jsonField is an object's member.
type jsonField struct {
	k string
	v any
}

// sortFields sorts an object's members by key: insertion sort for the
// few members objects mostly have.
func sortFields(fields []jsonField) {
	if len(fields) > 12 {
		slices.SortFunc(fields, func(a, b jsonField) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].k < fields[j-1].k; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

// appendJSONSlow encodes v with encoding/json, without HTML escaping.
func appendJSONSlow(dst []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping off:
// '"', '\\' and control characters escaped, invalid UTF-8 as \ufffd, and
// U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Read as bytes, sixteen or eight at a time where they need no
	// escaping and are ASCII (never written).
	raw := unsafe.Slice(unsafe.StringData(s), len(s))
	start := 0
	for i := 0; i < len(s); {
		if i+16 <= len(raw) && plainWord(binary.LittleEndian.Uint64(raw[i:])) && plainWord(binary.LittleEndian.Uint64(raw[i+8:])) {
			i += 16
			continue
		}
		if i+8 <= len(raw) && plainWord(binary.LittleEndian.Uint64(raw[i:])) {
			i += 8
			continue
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the eight bytes of x are all ASCII from ' '
// up, other than '"' and '\\'. All eight are tested at once. With no high
// bit set in x, subtracting n from every byte sets a byte's high bit only
// where some byte is below n (a borrow starts at such a byte), so the test
// is exact: below ' ', or equal to '"' or '\\' (zero after the XOR, so
// below 1), or high bit set.
func plainWord(x uint64) bool {
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return (x|(x-' '*ones)|(q-ones)|(b-ones))&highs == 0
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	i := 0
	digits := func() int { // skips digits, returns how many
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		digits()
	default:
		return false
	}
	if i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
		i++
		digits()
	}
	if i+1 < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if s[i] == '+' || s[i] == '-' {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendGoFloat formats f as encoding/json does.
func appendGoFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 {
		if bits == 64 && (a < 1e-6 || a >= 1e21) || bits == 32 && (float32(a) < 1e-6 || float32(a) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendJavaFloat formats f as Java's Double.toString (bits 64) or
// Float.toString (32) does, which is how Jackson writes Kafka's
// JsonConverter numbers: the shortest digits that read back as f, in plain
// notation with at least one fractional digit from 10^-3 to below 10^7
// ("1.0", "0.001"), else computerized scientific ("1.0E7", "1.5E-4").
func appendJavaFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	start := len(dst)
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		dst = strconv.AppendFloat(dst, f, 'f', -1, bits)
		if bytes.IndexByte(dst[start:], '.') < 0 {
			dst = append(dst, '.', '0')
		}
		return dst
	}
	dst = strconv.AppendFloat(dst, f, 'E', -1, bits) // d.dddE±dd
	e := start + bytes.IndexByte(dst[start:], 'E')
	exp, _ := strconv.Atoi(string(dst[e+1:]))
	dst = dst[:e]
	if bytes.IndexByte(dst[start:], '.') < 0 {
		dst = append(dst, '.', '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}

// appendSchemaJSON appends v, described by the Connect schema s, as Kafka's
// JsonConverter with schemas.enable=false writes it, which is what
// Confluent's JsonFormat writes: struct fields in schema order (an absent
// one as its default), integers as numbers, floats as Java prints them,
// bytes in base64, Decimal in base64 of its unscaled bytes (or as a number
// with numeric, json.decimal.format=NUMERIC), Date, Time and Timestamp as
// their day and millisecond numbers, a map with string keys as an object
// (keys sorted) and other maps as arrays of [key, value].
func appendSchemaJSON(dst []byte, s *connect.Schema, v any, numeric bool) ([]byte, error) {
	if v == nil {
		switch {
		case s.Default != nil:
			v = s.Default
		case s.Optional:
			return append(dst, "null"...), nil
		default:
			return nil, fmt.Errorf("null for a required %s", s.Type)
		}
	}
	switch s.Name {
	case connect.DecimalSchemaName:
		scale, _ := strconv.Atoi(s.Parameters[connect.DecimalScaleParameter])
		d, err := decimalOf(v, scale)
		if err != nil {
			return nil, err
		}
		if numeric {
			return append(dst, d.String()...), nil
		}
		return decimalBase64(dst, d), nil
	case connect.DateSchemaName, connect.TimeSchemaName, connect.TimestampSchemaName:
		if tm, ok := v.(time.Time); ok {
			ms := tm.UnixMilli()
			switch s.Name {
			case connect.DateSchemaName:
				return strconv.AppendInt(dst, floorDiv(ms, 86400000), 10), nil
			case connect.TimeSchemaName:
				return strconv.AppendInt(dst, mod(ms, 86400000), 10), nil
			}
			return strconv.AppendInt(dst, ms, 10), nil
		}
	}
	bad := func() ([]byte, error) { return nil, fmt.Errorf("%T does not fit schema type %s", v, s.Type) }
	switch s.Type {
	case connect.SchemaInt8, connect.SchemaInt16, connect.SchemaInt32, connect.SchemaInt64:
		n, ok := integer(v)
		if !ok {
			return bad()
		}
		return strconv.AppendInt(dst, n, 10), nil
	case connect.SchemaFloat32, connect.SchemaFloat64:
		f, ok := floatValue(v)
		if !ok {
			return bad()
		}
		if s.Type == connect.SchemaFloat32 {
			return appendJavaFloat(dst, float64(float32(f)), 32), nil
		}
		return appendJavaFloat(dst, f, 64), nil
	case connect.SchemaBoolean:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		return strconv.AppendBool(dst, b), nil
	case connect.SchemaString:
		str, ok := v.(string)
		if !ok {
			return bad()
		}
		return appendJSONString(dst, str), nil
	case connect.SchemaBytes:
		var b []byte
		switch x := v.(type) {
		case []byte:
			b = x
		case string:
			b = []byte(x)
		default:
			return bad()
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	case connect.SchemaArray:
		a, ok := v.([]any)
		if !ok || s.Items == nil {
			return bad()
		}
		dst = append(dst, '[')
		var err error
		for i, e := range a {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendSchemaJSON(dst, s.Items, e, numeric); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case connect.SchemaMap:
		if s.Keys == nil || s.Values == nil {
			return bad()
		}
		var err error
		if s.Keys.Type == connect.SchemaString {
			m, ok := v.(map[string]any)
			if !ok {
				return bad()
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			dst = append(dst, '{')
			for i, k := range keys {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, k)
				dst = append(dst, ':')
				if dst, err = appendSchemaJSON(dst, s.Values, m[k], numeric); err != nil {
					return nil, err
				}
			}
			return append(dst, '}'), nil
		}
		pairs, ok := v.([]any)
		if !ok {
			return bad()
		}
		dst = append(dst, '[')
		for i, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return nil, errors.New("map entry: want a [key, value] pair")
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			if dst, err = appendSchemaJSON(dst, s.Keys, kv[0], numeric); err != nil {
				return nil, err
			}
			dst = append(dst, ',')
			if dst, err = appendSchemaJSON(dst, s.Values, kv[1], numeric); err != nil {
				return nil, err
			}
			dst = append(dst, ']')
		}
		return append(dst, ']'), nil
	case connect.SchemaStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		dst = append(dst, '{')
		var err error
		for i, f := range s.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, f.Name)
			dst = append(dst, ':')
			if dst, err = appendSchemaJSON(dst, f.Schema, m[f.Name], numeric); err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("unknown schema type %q", s.Type)
}

// decimalOf reads a Decimal value at scale.
func decimalOf(v any, scale int) (connect.Decimal, error) {
	switch x := v.(type) {
	case connect.Decimal:
		return x, nil
	case *connect.Decimal:
		return *x, nil
	case json.Number:
		return parseDecimal(string(x), scale)
	case float64:
		return parseDecimal(strconv.FormatFloat(x, 'f', -1, 64), scale)
	case []byte:
		return connect.Decimal{Unscaled: fromTwosComplement(x), Scale: int32(scale)}, nil
	}
	return connect.Decimal{}, fmt.Errorf("%T is not a decimal", v)
}
