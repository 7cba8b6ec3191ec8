package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// stdDecode is what decodeJSON did before parseJSON: encoding/json's
// Decoder with UseNumber, and no trailing data.
func stdDecode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

var jsonCorpus = []string{
	`{"id":1,"p":0,"pad":"xxxx"}`, `  {"a" : [1, 2.5, -0, 1e3, 1E+3, -1.25e-7, true, false, null] }  `,
	`{}`, `[]`, `[[]]`, `{"a":{}}`, `""`, `"plain"`, `0`, `-0.0`, `12345678901234567890123`,
	`"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u20ac\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d\ude00"`,
	`"\ud83d\u0041"`, `"caf\u00e9 café ☃ 😀"`, "\"bad \xff utf8 \xc3\x28\"", `{"a":1,"a":2}`,
	`{"k\u0000":"\u001f"}`, "\t\n\r 7 \n", `"\u2028\u2029"`,
	// invalid
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`,
	`tru`, `nul`, `falsey`, `"abc`, "\"a\x01b\"", `"\x"`, `"\u12"`, `"\u12g4"`, `"\ud83d\u12g4"`,
	`[1 2]`, `{"a":1}x`, `{"a":1} {"b":2}`, `[`, `["a",`, `NaN`, `Infinity`, `'a'`, "\"\\",
}

// parseJSON decodes exactly as encoding/json does (UseNumber) and refuses
// exactly what it refuses.
func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range jsonCorpus {
		checkSameDecode(t, []byte(in))
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	if _, err := decodeJSON([]byte(deep)); err == nil {
		t.Errorf("10001 levels of nesting accepted")
	}
	ok := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
	if _, err := decodeJSON([]byte(ok)); err != nil {
		t.Errorf("9999 levels: %v", err)
	}
}

func checkSameDecode(t *testing.T, in []byte) {
	t.Helper()
	want, werr := stdDecode(in)
	var keys keyCache
	shared := func(data []byte) (any, error) { return decodeShared(data, &keys) }
	for _, decode := range []func([]byte) (any, error){decodeJSON, shared} {
		got, gerr := decode(in)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%q: encoding/json error %v, parseJSON error %v", in, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parseJSON %#v, encoding/json %#v", in, got, want)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, in := range jsonCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkSameDecode(t, in) })
}

func BenchmarkDecodeJSON(b *testing.B) {
	in := []byte(`{"id":123456,"p":3,"pad":"` + strings.Repeat("x", 200) + `","nested":{"a":[1,2,3],"b":"caf\u00e9"}}`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var keys keyCache // as the converter keeps one
	for b.Loop() {
		if _, err := decodeShared(in, &keys); err != nil {
			b.Fatal(err)
		}
	}
}

// Values decoded stay as they were while later records are decoded and
// the collector runs: nothing of theirs is reused (their strings and
// numbers share backing arrays within a record only).
func TestParseJSONValuesIndependent(t *testing.T) {
	const n = 2000
	record := func(i int) string {
		return fmt.Sprintf(`{"id":%d,"s":"v%d","a":[%d,"e%d",{"k":"%d"}],"n":null,"t":true,"m":{"x":-%d.5}}`, i, i, i, i, i, i)
	}
	got := make([]any, n)
	var keys keyCache
	for i := range got {
		v, err := decodeShared([]byte(record(i)), &keys)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = v
	}
	runtime.GC()
	for i, v := range got {
		want, _ := stdDecode([]byte(record(i)))
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("record %d: now %#v, want %#v", i, v, want)
		}
		m := v.(map[string]any)
		if s, ok := m["s"].(string); !ok || s != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d: s is %#v", i, m["s"])
		}
		if id, ok := m["id"].(json.Number); !ok || id != json.Number(fmt.Sprint(i)) {
			t.Fatalf("record %d: id is %#v", i, m["id"])
		}
	}
}

// BenchmarkDecodeJSONFlat decodes the record scripts/bench-s3sink.sh
// produces: a flat object of two numbers and a string.
func BenchmarkDecodeJSONFlat(b *testing.B) {
	in := []byte(`{"id":1234567,"p":3,"pad":"` + strings.Repeat("x", 200) + `"}`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var keys keyCache // as the converter keeps one
	for b.Loop() {
		if _, err := decodeShared(in, &keys); err != nil {
			b.Fatal(err)
		}
	}
}

// Strings long enough for the eight-byte scan decode as encoding/json
// decodes them with a special byte at every position, closed or not.
func TestParseJSONLongStrings(t *testing.T) {
	for _, special := range []string{`\"`, `\\`, `\n`, `\u00e9`, "\x01", "é", "\xff", `"`, "\x7f", "~"} {
		for pos := 0; pos < 20; pos++ {
			s := strings.Repeat("a", pos) + special + strings.Repeat("b", 19-pos)
			checkSameDecode(t, []byte(`{"`+s+`":"`+s+`"}`))
			checkSameDecode(t, []byte(`"`+s))
		}
	}
}

// Keys of values decoded from a record's own memory are not part of it: a
// key kept (as a sink keeps field names) does not keep the record's bytes,
// whatever order or set of keys the records come with.
func TestParseJSONKeysOwnTheirMemory(t *testing.T) {
	var keys keyCache
	inRecord := func(s string, data []byte) bool {
		p, n := unsafe.StringData(s), len(data)
		base := unsafe.SliceData(data)
		return uintptr(unsafe.Pointer(p)) >= uintptr(unsafe.Pointer(base)) && uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(base))+uintptr(n)
	}
	for i, in := range []string{
		`{"id":1,"name":"a","tags":{"x":"1"}}`, `{"id":2,"name":"b","tags":{"x":"2"}}`, // same keys
		`{"name":"c","id":3}`, `{"extra":true,"id":4,"name":"d","tags":{}}`, // other orders and sets
		`[{"k\u00e9":1},{"plain":2}]`, `{"id":5,"name":"e","tags":{"x":"5"}}`,
	} {
		data := []byte(in)
		v, err := decodeShared(data, &keys)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					if inRecord(k, data) {
						t.Errorf("record %d: key %q is a part of the record's bytes", i, k)
					}
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(v)
		if want, _ := stdDecode([]byte(in)); !reflect.DeepEqual(v, want) {
			t.Fatalf("record %d: %#v, want %#v", i, v, want)
		}
	}
}
