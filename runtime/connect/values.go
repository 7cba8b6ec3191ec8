package connect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseString infers a typed value from text as Kafka Connect's
// Values.parseString does for SimpleHeaderConverter and InsertHeader:
// true/false (any case) → bool, an integer → int64, a decimal → float64,
// a JSON array or object → []any / map[string]any (numbers json.Number),
// anything else (including "") → the string itself.
func ParseString(s string) any {
	t := strings.TrimSpace(s)
	if t == "" {
		return s
	}
	switch strings.ToLower(t) {
	case "true":
		return true
	case "false":
		return false
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n
	}
	if strings.ContainsAny(t, "0123456789") && !strings.ContainsAny(t, "xXpP_") {
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return f
		}
	}
	if (t[0] == '[' && t[len(t)-1] == ']') || (t[0] == '{' && t[len(t)-1] == '}') {
		dec := json.NewDecoder(strings.NewReader(t))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil && !dec.More() {
			return v
		}
	}
	return s
}

// FormatValue renders a value as text as Kafka Connect's
// Values.convertToString does: strings as they are, numbers and booleans as
// literals, time.Time as ISO-8601 UTC with milliseconds, a Decimal in plain
// notation (BigDecimal.toPlainString), []byte as base64,
// maps and lists as compact JSON. nil gives nil.
func FormatValue(v any) []byte {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	case []byte:
		return []byte(base64.StdEncoding.EncodeToString(x))
	case bool:
		return []byte(strconv.FormatBool(x))
	case json.Number:
		return []byte(x.String())
	case float64:
		return []byte(FormatDouble(x))
	case float32:
		return []byte(FormatDouble(float64(x)))
	case time.Time:
		return []byte(x.UTC().Format("2006-01-02T15:04:05.000Z"))
	case Decimal:
		return []byte(x.String())
	case map[string]any, []any:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return []byte(fmt.Sprint(x))
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	return []byte(fmt.Sprint(v))
}

// FormatDouble renders f as Java's Double.toString does for the common
// cases: integral values keep ".0" ("1.0"), others the shortest form.
func FormatDouble(f float64) string {
	if f == float64(int64(f)) && f > -1e7 && f < 1e7 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// AsInt64 returns v as an int64 when it is an integer in one of the Go
// shapes values take: int8, int16, int32, int64 or int, or a json.Number
// (a schemaless JSON number) holding an integer that fits in 64 bits.
func AsInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

// AsFloat64 returns v as a float64 when it is a number: a float64, a
// float32, a json.Number within float64's range, or an integer AsInt64
// reads.
func AsFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	n, ok := AsInt64(v)
	return float64(n), ok
}
