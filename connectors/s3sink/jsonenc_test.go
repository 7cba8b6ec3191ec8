package s3sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// stdJSON is encoding/json without HTML escaping: what appendJSON must match.
func stdJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var encodeCorpus = []any{
	nil, true, false, "", "plain", "<&> \"q\" \\ / \b\f\n\r\t \x00\x01\x1f\x7f", "café ☃ 😀 \u2028\u2029", "bad \xff utf8 \xc3\x28",
	json.Number("12"), json.Number("-0.5e+10"), json.Number(""), json.Number("1.5E-3"), json.Number("9007199254740993"),
	int64(-42), int(7), int32(3), int8(1), int16(-300), 1.5, 1e21, 1e20, 1e-7, 1e-6, 123456789.125, math.Copysign(0, -1), 5e-324, math.MaxFloat64,
	float32(0.1), float32(1e21), float32(3.4e38), float32(1e-7), []byte("bytes"), []byte(nil), []byte{},
	time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
	map[string]any{}, map[string]any(nil), []any{}, []any(nil), map[string]string{"b": "1", "a": "2"},
	map[string]any{"b": 1, "a": []any{"x", map[string]any{"z": nil, "y": json.Number("0")}}, "": "empty", "é": true, "A": false},
	[]any{map[string]any{"k\u2028": "\x00"}, []any{[]any{}}, int64(math.MaxInt64)},
	map[string]any{"pad": strings.Repeat("x", 300), "id": json.Number("123"), "p": json.Number("0")},
	// refused by encoding/json: appendJSON must refuse them too
	json.Number("01"), json.Number("1."), json.Number("abc"), json.Number("-"), json.Number("1e"), json.Number(".5"),
	math.NaN(), map[string]any{"a": math.Inf(1)}, []any{make(chan int)},
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range encodeCorpus {
		checkSameEncode(t, v)
	}
}

func checkSameEncode(t *testing.T, v any) {
	t.Helper()
	want, werr := stdJSON(v)
	got, gerr := appendJSON([]byte("prefix"), v)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%#v: encoding/json error %v, appendJSON error %v", v, werr, gerr)
	}
	if werr == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("%#v: appendJSON %s, encoding/json %s", v, got[len("prefix"):], want)
	}
}

// Objects written after others of their size (the remembered sorted keys
// fit them, fit them in part, or not at all; values that fail) encode as
// encoding/json encodes them, every time.
func TestAppendJSONObjectShapes(t *testing.T) {
	many := func(prefix string, n int) map[string]any {
		m := map[string]any{}
		for i := 0; i < n; i++ {
			m[fmt.Sprintf("%s%02d", prefix, n-i)] = json.Number(fmt.Sprint(i))
		}
		return m
	}
	seq := []any{
		map[string]any{"b": json.Number("1"), "a": "x"},
		map[string]any{"b": json.Number("2"), "a": "y"},
		map[string]any{"a": "z", "c": true},
		map[string]any{"b": nil, "c": false},
		map[string]any{"c": json.Number("01"), "b": json.Number("1")}, // fails at its second key
		map[string]any{"b": json.Number("01"), "c": json.Number("1")}, // fails at its first
		map[string]any{"b": json.Number("01"), "a": json.Number("bad")},
		map[string]any{"a": "z", "c": true},
		[]any{map[string]any{"x": json.Number("1")}, map[string]any{"x": json.Number("2")}, map[string]any{"y": json.Number("3")}},
		map[string]any{"n": map[string]any{"b": json.Number("1"), "a": "x"}, "m": []any{map[string]any{"a": "q", "c": "r"}}},
		many("k", 12), many("k", 12), many("j", 12), many("k", 40), many("k", 40), many("k", 32), many("j", 32),
	}
	for round := 0; round < 3; round++ {
		for _, v := range seq {
			checkSameEncode(t, v)
		}
	}
}

// Any JSON document, decoded as the converter does, encodes the same.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x\u2028"]}`, `"\ud83d"`, `[1.50,-0,1e3]`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		checkSameEncode(t, v)
		checkSameEncode(t, string(in))
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	v := map[string]any{"id": json.Number("123456"), "p": json.Number("3"), "pad": strings.Repeat("x", 200),
		"nested": map[string]any{"a": []any{json.Number("1"), json.Number("2")}, "b": "café"}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendJSON(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendJSONFlat encodes the record scripts/bench-s3sink.sh
// produces, as the converter decodes it.
func BenchmarkAppendJSONFlat(b *testing.B) {
	v := map[string]any{"id": json.Number("1234567"), "p": json.Number("3"), "pad": strings.Repeat("x", 200)}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendJSON(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
