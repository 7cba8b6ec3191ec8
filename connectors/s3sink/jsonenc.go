package s3sink

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		// Keys and values in one pass over the map, sorted by key: no
		// lookup per key.
		var small [16]jsonField
		fields := small[:0]
		for k, v := range x {
			fields = append(fields, jsonField{k, v})
		}
		slices.SortFunc(fields, func(a, b jsonField) int { return strings.Compare(a.k, b.k) })
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
		return append(dst, '}'), nil
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

// jsonField is an object's member.
type jsonField struct {
	k string
	v any
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
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8 // eight bytes that need no escaping and are ASCII
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

// plain8 reports whether the eight bytes of s are all ASCII from ' ' up,
// other than '"' and '\\': bytes appendJSONString copies as they are. All
// eight are tested at once. With no high bit set in x, subtracting n from
// every byte sets a byte's high bit only where some byte is below n (a
// borrow starts at such a byte), so the test is exact: below ' ', or equal
// to '"' or '\\' (zero after the XOR, so below 1), or high bit set.
func plain8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
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
