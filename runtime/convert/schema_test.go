package convert

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

func jsonConv(t *testing.T, props map[string]string) *JSON {
	t.Helper()
	c, err := New(connect.JSONConverterClass, props, false)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*JSON)
}

func dec(unscaled int64, scale int32) connect.Decimal {
	return connect.Decimal{Unscaled: big.NewInt(unscaled), Scale: scale}
}

// The envelope's schema is read into a connect.Schema with every member
// Kafka's asConnectSchema reads, and the payload is shaped after it, as in
// Kafka's JsonConverterTest.
func TestToSchemaAndValue(t *testing.T) {
	day10000 := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 10000)
	decimalSchema := func(scale string) *connect.Schema {
		return &connect.Schema{Type: "bytes", Name: connect.DecimalSchemaName, Version: 1, Parameters: map[string]string{"scale": scale}}
	}
	tests := []struct {
		name   string
		in     string
		schema *connect.Schema
		value  any
	}{
		{"boolean", `{"schema":{"type":"boolean"},"payload":true}`, &connect.Schema{Type: "boolean"}, true},
		{"metadata", `{"schema":{"type":"boolean","optional":false,"name":"bool","version":2,"doc":"the documentation","parameters":{"foo":"bar"}},"payload":true}`,
			&connect.Schema{Type: "boolean", Name: "bool", Version: 2, Doc: "the documentation", Parameters: map[string]string{"foo": "bar"}}, true},
		{"default for null", `{"schema":{"type":"boolean","default":true},"payload":null}`, &connect.Schema{Type: "boolean", Default: true}, true},
		{"optional null", `{"schema":{"type":"boolean","optional":true},"payload":null}`, &connect.Schema{Type: "boolean", Optional: true}, nil},
		{"int8", `{"schema":{"type":"int8"},"payload":12}`, &connect.Schema{Type: "int8"}, int8(12)},
		{"int16", `{"schema":{"type":"int16"},"payload":12}`, &connect.Schema{Type: "int16"}, int16(12)},
		{"int32", `{"schema":{"type":"int32"},"payload":12}`, &connect.Schema{Type: "int32"}, int32(12)},
		{"int64", `{"schema":{"type":"int64"},"payload":4398046511104}`, &connect.Schema{Type: "int64"}, int64(4398046511104)},
		{"int64 written 1.0e3", `{"schema":{"type":"int64"},"payload":1.0e3}`, &connect.Schema{Type: "int64"}, int64(1000)},
		{"float", `{"schema":{"type":"float"},"payload":12.34}`, &connect.Schema{Type: "float32"}, float32(12.34)},
		{"double", `{"schema":{"type":"double"},"payload":12.34}`, &connect.Schema{Type: "float64"}, 12.34},
		{"float64 (Ferry's old name)", `{"schema":{"type":"float64"},"payload":1}`, &connect.Schema{Type: "float64"}, 1.0},
		{"bytes", `{"schema":{"type":"bytes"},"payload":"dGVzdC1zdHJpbmc="}`, &connect.Schema{Type: "bytes"}, []byte("test-string")},
		{"string", `{"schema":{"type":"string"},"payload":"foo-bar-baz"}`, &connect.Schema{Type: "string"}, "foo-bar-baz"},
		{"array", `{"schema":{"type":"array","items":{"type":"int32"}},"payload":[1,2,3]}`,
			&connect.Schema{Type: "array", Items: &connect.Schema{Type: "int32"}}, []any{int32(1), int32(2), int32(3)}},
		{"map string keys", `{"schema":{"type":"map","keys":{"type":"string"},"values":{"type":"int32"}},"payload":{"key1":12,"key2":15}}`,
			&connect.Schema{Type: "map", Keys: &connect.Schema{Type: "string"}, Values: &connect.Schema{Type: "int32"}},
			map[string]any{"key1": int32(12), "key2": int32(15)}},
		{"map int keys", `{"schema":{"type":"map","keys":{"type":"int32"},"values":{"type":"int32"}},"payload":[[1,12],[2,15]]}`,
			&connect.Schema{Type: "map", Keys: &connect.Schema{Type: "int32"}, Values: &connect.Schema{Type: "int32"}},
			[]any{[]any{int32(1), int32(12)}, []any{int32(2), int32(15)}}},
		{"struct with absent optional field", `{"schema":{"type":"struct","fields":[{"field":"optional","type":"string","optional":true},{"field":"required","type":"string"}]},"payload":{"required":"required"}}`,
			&connect.Schema{Type: "struct", Fields: []connect.Field{
				{Name: "optional", Schema: &connect.Schema{Type: "string", Optional: true}},
				{Name: "required", Schema: &connect.Schema{Type: "string"}},
			}}, map[string]any{"optional": nil, "required": "required"}},
		{"struct absent field takes its default; unknown field dropped", `{"schema":{"type":"struct","fields":[{"field":"n","type":"int32","optional":true,"default":7},{"field":"s","type":"string"}]},"payload":{"s":"x","extra":1}}`,
			&connect.Schema{Type: "struct", Fields: []connect.Field{
				{Name: "n", Schema: &connect.Schema{Type: "int32", Optional: true, Default: int32(7)}},
				{Name: "s", Schema: &connect.Schema{Type: "string"}},
			}}, map[string]any{"n": int32(7), "s": "x"}},
		{"decimal base64", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"AJw="}`,
			decimalSchema("2"), dec(156, 2)},
		{"decimal negative", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"/2Q="}`,
			decimalSchema("2"), dec(-156, 2)},
		{"decimal numeric", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"4"}},"payload":1.5600}`,
			decimalSchema("4"), dec(15600, 4)},
		{"decimal numeric rescaled", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":1.5}`,
			decimalSchema("2"), dec(150, 2)},
		{"decimal default", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"default":"AJw=","parameters":{"scale":"2"}},"payload":null}`,
			&connect.Schema{Type: "bytes", Name: connect.DecimalSchemaName, Version: 1, Parameters: map[string]string{"scale": "2"}, Default: dec(156, 2)}, dec(156, 2)},
		{"date", `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Date","version":1},"payload":10000}`,
			&connect.Schema{Type: "int32", Name: connect.DateSchemaName, Version: 1}, day10000},
		{"time", `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Time","version":1},"payload":14400000}`,
			&connect.Schema{Type: "int32", Name: connect.TimeSchemaName, Version: 1}, time.UnixMilli(14400000).UTC()},
		{"timestamp", `{"schema":{"type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1},"payload":4000000000}`,
			&connect.Schema{Type: "int64", Name: connect.TimestampSchemaName, Version: 1}, time.UnixMilli(4000000000).UTC()},
		{"timestamp default", `{"schema":{"type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1,"optional":true,"default":42},"payload":null}`,
			&connect.Schema{Type: "int64", Name: connect.TimestampSchemaName, Version: 1, Optional: true, Default: time.UnixMilli(42).UTC()}, time.UnixMilli(42).UTC()},
		{"null schema: schemaless payload", `{"schema":null,"payload":{"field1":1}}`, nil, map[string]any{"field1": json.Number("1")}},
	}
	c := jsonConv(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, v, err := c.ToSchemaAndValue("t", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, tc.schema) {
				t.Errorf("schema\n got %#v\nwant %#v", s, tc.schema)
			}
			if !reflect.DeepEqual(v, tc.value) {
				t.Errorf("value\n got %#v\nwant %#v", v, tc.value)
			}
		})
	}
}

// A payload that does not fit its schema is refused with the path of the
// value that does not fit; so is a schema Kafka would not read.
func TestToSchemaAndValueRefuses(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"string for int32", `{"schema":{"type":"struct","fields":[{"field":"n","type":"int32"}]},"payload":{"n":"x"}}`, `field "n": int32: expected an integer, got the string "x"`},
		{"fraction for int64", `{"schema":{"type":"int64"},"payload":1.5}`, "expected an integer, got the number 1.5"},
		{"int8 out of range", `{"schema":{"type":"int8"},"payload":300}`, "300 is out of range for int8"},
		{"required field missing", `{"schema":{"type":"struct","fields":[{"field":"a","type":"struct","fields":[{"field":"zip","type":"int64"}]}]},"payload":{"a":{}}}`, `field "a.zip": null value for a required int64`},
		{"nested array item", `{"schema":{"type":"struct","fields":[{"field":"tags","type":"array","items":{"type":"string"}}]},"payload":{"tags":["a",2]}}`, `field "tags[1]": expected a string, got the number 2`},
		{"map value", `{"schema":{"type":"map","keys":{"type":"string"},"values":{"type":"boolean"}},"payload":{"k":1}}`, `field "[\"k\"]": expected a boolean`},
		{"bad base64", `{"schema":{"type":"bytes"},"payload":"%%%"}`, "invalid base64"},
		{"object for string", `{"schema":{"type":"string"},"payload":{}}`, "expected a string, got an object"},
		{"decimal that needs rounding", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"1"}},"payload":1.25}`, "does not fit scale 1"},
		{"time past a day", `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Time"},"payload":86400001}`, "milliseconds from 0"},
		{"unknown type", `{"schema":{"type":"varchar"},"payload":"x"}`, `unknown schema type "varchar"`},
		{"no type", `{"schema":{"optional":true},"payload":"x"}`, "'type'"},
		{"array without items", `{"schema":{"type":"array"},"payload":[]}`, "element type"},
		{"decimal without scale", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal"},"payload":"AA=="}`, "scale"},
		{"bad parameter", `{"schema":{"type":"string","parameters":{"a":1}},"payload":"x"}`, `parameter "a" must be a string`},
		{"bad default", `{"schema":{"type":"int32","default":"x"},"payload":null}`, "default: int32"},
		{"duplicate field", `{"schema":{"type":"struct","fields":[{"field":"a","type":"int32"},{"field":"a","type":"int32"}]},"payload":{}}`, `field "a" twice`},
		{"not an envelope", `{"a":1}`, "schemas.enable=false"},
		{"invalid JSON", `{"schema":`, "invalid JSON"},
	}
	c := jsonConv(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.ToSchemaAndValue("t", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// replace.null.with.default=false keeps an optional field's null null.
func TestReplaceNullWithDefault(t *testing.T) {
	in := []byte(`{"schema":{"type":"int32","optional":true,"default":5},"payload":null}`)
	if _, v, err := jsonConv(t, nil).ToSchemaAndValue("t", in); err != nil || v != int32(5) {
		t.Errorf("default on: got %#v, %v; want 5", v, err)
	}
	c := jsonConv(t, map[string]string{"replace.null.with.default": "false"})
	if _, v, err := c.ToSchemaAndValue("t", in); err != nil || v != nil {
		t.Errorf("default off: got %#v, %v; want nil", v, err)
	}
	if _, err := New(connect.JSONConverterClass, map[string]string{"replace.null.with.default": "maybe"}, false); err == nil {
		t.Error("bad replace.null.with.default accepted")
	}
}

// What is read is written back byte for byte in Kafka's member order, and
// the schema is parsed once per distinct text.
func TestSchemaRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"schema":{"type":"struct","fields":[` +
			`{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"price"},` +
			`{"type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date","version":1,"default":0,"field":"day"},` +
			`{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Time","version":1,"field":"at"},` +
			`{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"ts"},` +
			`{"type":"double","optional":false,"field":"units"},` +
			`{"type":"float","optional":false,"field":"ratio"},` +
			`{"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false},"optional":false,"field":"names"},` +
			`{"type":"array","items":{"type":"bytes","optional":false},"optional":false,"field":"blobs"},` +
			`{"type":"string","optional":true,"default":"none","field":"note"}` +
			`],"optional":false,"name":"shop.order","version":3,"doc":"an order"},` +
			`"payload":{"price":"AJw=","day":10000,"at":14400000,"ts":4000000000,"units":3.0,"ratio":0.5,"names":[[1,"a"],[2,"b"]],"blobs":["AQ=="],"note":"none"}}`,
		`{"schema":{"type":"double","optional":false},"payload":1.0E7}`,
		`{"schema":{"type":"double","optional":false},"payload":1.234E-5}`,
		`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"0"}},"payload":"gA=="}`,
	} {
		c := jsonConv(t, nil)
		s, v, err := c.ToSchemaAndValue("t", []byte(in))
		if err != nil {
			t.Fatalf("read %s: %v", in, err)
		}
		out, err := c.FromSchemaAndValue("t", s, v)
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if string(out) != in {
			t.Errorf("round trip\n got %s\nwant %s", out, in)
		}
		s2, _, _ := c.ToSchemaAndValue("t", []byte(in))
		if s2 != s {
			t.Error("the same schema text was parsed twice (not cached)")
		}
	}
}

// decimal.format=NUMERIC writes a Decimal as a JSON number; both formats
// are read whatever the setting.
func TestDecimalFormat(t *testing.T) {
	s := &connect.Schema{Type: "bytes", Name: connect.DecimalSchemaName, Version: 1, Parameters: map[string]string{"scale": "4"}}
	for format, want := range map[string]string{"": `"AJw="`, "base64": `"AJw="`, "NUMERIC": `1.5600`, "numeric": `1.5600`} {
		props := map[string]string{"schemas.enable": "false"}
		if format != "" {
			props["decimal.format"] = format
		}
		c := jsonConv(t, props)
		v := dec(156, 2)
		if format == "" || strings.EqualFold(format, "base64") {
			v = dec(156, 4) // 0.0156
		}
		got, err := c.FromSchemaAndValue("t", s, v)
		if err != nil || string(got) != want {
			t.Errorf("decimal.format=%q: got %s, %v; want %s", format, got, err, want)
		}
	}
	if _, err := New(connect.JSONConverterClass, map[string]string{"decimal.format": "HEX"}, false); err == nil || !strings.Contains(err.Error(), "BASE64 or NUMERIC") {
		t.Errorf("decimal.format=HEX: %v", err)
	}
	if _, err := jsonConv(t, map[string]string{"decimal.format": "NUMERIC", "schemas.enable": "false"}).FromSchemaAndValue("t",
		&connect.Schema{Type: "bytes", Name: connect.DecimalSchemaName, Parameters: map[string]string{"scale": "1"}}, dec(125, 2)); err == nil {
		t.Error("a decimal that needs rounding to fit its schema's scale was written")
	}
}

// Writing with a schema follows it: required nulls are refused, defaults
// stand in for nulls, logical types need their shape.
func TestFromSchemaAndValueChecks(t *testing.T) {
	c := jsonConv(t, nil)
	for _, tc := range []struct {
		name   string
		schema *connect.Schema
		value  any
		want   string // output, or the error's text after "error: "
	}{
		{"optional null", &connect.Schema{Type: "boolean", Optional: true}, nil, `{"schema":{"type":"boolean","optional":true},"payload":null}`},
		{"null takes the default", &connect.Schema{Type: "int32", Default: int32(3)}, nil, `{"schema":{"type":"int32","optional":false,"default":3},"payload":3}`},
		{"required null", &connect.Schema{Type: "string"}, nil, "error: null value for a required string"},
		{"mismatch", &connect.Schema{Type: "float64"}, true, "error: float64: a bool is not a number"},
		{"int out of range", &connect.Schema{Type: "int8"}, int64(200), "error: 200 is out of range for int8"},
		{"date with a time of day", &connect.Schema{Type: "int32", Name: connect.DateSchemaName}, time.UnixMilli(1000), "error: " + connect.DateSchemaName + ": 1970-01-01T00:00:01Z has a time of day"},
		{"struct field path", &connect.Schema{Type: "struct", Fields: []connect.Field{{Name: "a", Schema: &connect.Schema{Type: "struct", Fields: []connect.Field{{Name: "b", Schema: &connect.Schema{Type: "int64"}}}}}}},
			map[string]any{"a": map[string]any{"b": "x"}}, `error: field "a.b": int64: a string is not an integer`},
	} {
		got, err := c.FromSchemaAndValue("t", tc.schema, tc.value)
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("%s: got %s, %v; want an error containing %q", tc.name, got, err, strings.TrimPrefix(tc.want, "error: "))
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestTwosComplement(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 156, -156, 255, 256, -32768, -32769, 1 << 40, -(1 << 40)} {
		b := toTwosComplement(big.NewInt(n))
		if got := fromTwosComplement(b); got.Int64() != n {
			t.Errorf("%d → %x → %d", n, b, got)
		}
		// The fewest bytes, as Java's BigInteger.toByteArray.
		if len(b) > 1 && ((b[0] == 0 && b[1]&0x80 == 0) || (b[0] == 0xff && b[1]&0x80 != 0)) {
			t.Errorf("%d → %x has a redundant leading byte", n, b)
		}
	}
}
