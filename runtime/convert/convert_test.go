package convert

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/runtime/connect"
)

func TestToValue(t *testing.T) {
	schemaless := map[string]string{"schemas.enable": "false"}
	tests := []struct {
		name    string
		class   string
		props   map[string]string
		in      []byte
		want    any
		wantErr bool
	}{
		{"json plain object", connect.JSONConverterClass, schemaless, []byte(`{"a":1,"b":[true,null,"x"]}`),
			map[string]any{"a": json.Number("1"), "b": []any{true, nil, "x"}}, false},
		{"json keeps int64 exact", connect.JSONConverterClass, schemaless, []byte(`9007199254740993`), json.Number("9007199254740993"), false},
		{"json plain string", connect.JSONConverterClass, schemaless, []byte(`"hi"`), "hi", false},
		{"json null record", connect.JSONConverterClass, schemaless, nil, nil, false},
		{"json invalid", connect.JSONConverterClass, schemaless, []byte(`not json`), nil, true},
		{"json trailing garbage", connect.JSONConverterClass, schemaless, []byte(`{"a":1} x`), nil, true},
		{"json trailing space ok", connect.JSONConverterClass, schemaless, []byte("{\"a\":1}\n "), map[string]any{"a": json.Number("1")}, false},
		{"json envelope default on", connect.JSONConverterClass, nil,
			[]byte(`{"schema":{"type":"struct","fields":[{"field":"id","type":"int64"},{"field":"blob","type":"bytes"}]},"payload":{"id":7,"blob":"aGk="}}`),
			map[string]any{"id": int64(7), "blob": []byte("hi")}, false},
		{"json envelope null schema", connect.JSONConverterClass, nil, []byte(`{"schema":null,"payload":[1,2]}`), []any{json.Number("1"), json.Number("2")}, false},
		{"json envelope array of bytes", connect.JSONConverterClass, nil,
			[]byte(`{"schema":{"type":"array","items":{"type":"bytes"}},"payload":["AQ=="]}`), []any{[]byte{1}}, false},
		{"json envelope missing", connect.JSONConverterClass, nil, []byte(`{"a":1}`), nil, true},
		{"json envelope extra field", connect.JSONConverterClass, nil, []byte(`{"schema":null,"payload":1,"x":2}`), nil, true},
		{"json envelope bad base64", connect.JSONConverterClass, nil, []byte(`{"schema":{"type":"bytes"},"payload":"%%%"}`), nil, true},
		{"string", connect.StringConverterClass, nil, []byte(`{"a":1}`), `{"a":1}`, false},
		{"string null", connect.StringConverterClass, nil, nil, nil, false},
		{"string empty", connect.StringConverterClass, nil, []byte{}, "", false},
		{"bytes", connect.ByteArrayConverterClass, nil, []byte{0, 0xff}, []byte{0, 0xff}, false},
		{"bytes null", connect.ByteArrayConverterClass, nil, nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.class, tc.props, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ToValue("t", tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestEnvelopeError(t *testing.T) {
	c, _ := New(connect.JSONConverterClass, map[string]string{"schemas.enable": "true"}, true)
	if _, err := c.ToValue("t", []byte(`{"a":1}`)); !errors.Is(err, ErrEnvelope) {
		t.Errorf("got %v, want ErrEnvelope (it tells the user to set schemas.enable=false)", err)
	}
}

func TestFromValue(t *testing.T) {
	tests := []struct {
		class string
		props map[string]string
		in    any
		want  string
	}{
		{connect.JSONConverterClass, map[string]string{"schemas.enable": "false"}, map[string]any{"b": "<x>", "a": json.Number("1")}, `{"a":1,"b":"<x>"}`},
		{connect.JSONConverterClass, nil, "s", `{"schema":null,"payload":"s"}`},
		{connect.StringConverterClass, nil, "s", "s"},
		{connect.StringConverterClass, nil, 1.5, "1.5"},
		{connect.ByteArrayConverterClass, nil, []byte("b"), "b"},
	}
	for _, tc := range tests {
		c, _ := New(tc.class, tc.props, false)
		got, err := c.FromValue("t", tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s(%v) = %q, %v; want %q", tc.class, tc.in, got, err, tc.want)
		}
	}
	c, _ := New(connect.ByteArrayConverterClass, nil, false)
	if _, err := c.FromValue("t", "not bytes"); err == nil {
		t.Error("ByteArrayConverter accepted a string")
	}
}

func TestFromConfig(t *testing.T) {
	// Defaults are MSK Connect's: StringConverter for keys and values.
	c, err := FromConfig(nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*String); !ok {
		t.Errorf("default value converter %T, want StringConverter", c)
	}
	worker := map[string]string{"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false"}
	c, _ = FromConfig(nil, worker, false)
	if j, ok := c.(*JSON); !ok || j.Schemas {
		t.Errorf("worker properties: got %#v, want JSON without schemas", c)
	}
	// The connector overrides the worker, including the converter's properties.
	conn := map[string]string{"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "true"}
	c, _ = FromConfig(conn, worker, false)
	if j, ok := c.(*JSON); !ok || !j.Schemas {
		t.Errorf("connector override: got %#v, want JSON with schemas", c)
	}
	// A connector-level class does not inherit the worker's converter properties.
	c, _ = FromConfig(map[string]string{"value.converter": connect.JSONConverterClass}, worker, false)
	if j, ok := c.(*JSON); !ok || !j.Schemas {
		t.Errorf("connector class without properties: got %#v, want JSON with the default schemas.enable=true", c)
	}
	c, _ = FromConfig(map[string]string{"key.converter": connect.ByteArrayConverterClass}, worker, true)
	if _, ok := c.(*ByteArray); !ok {
		t.Errorf("key converter %T, want ByteArray", c)
	}
	if _, err := FromConfig(map[string]string{"value.converter": "io.confluent.connect.avro.AvroConverter"}, nil, false); err == nil {
		t.Error("unsupported converter accepted")
	}
	if _, err := FromConfig(map[string]string{"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "maybe"}, nil, false); err == nil {
		t.Error("bad schemas.enable accepted")
	}
}

// A record's values may share its bytes, but the schemas read from it are
// cached, so they must not: overwriting the first record's bytes leaves
// the cached schema as it was read.
func TestJSONCachedSchemaOwnsItsMemory(t *testing.T) {
	c, err := New(connect.JSONConverterClass, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	const msg = `{"schema":{"type":"struct","name":"com.example.Order","fields":[{"field":"id","type":"int64"},{"field":"note","type":"string","optional":true}]},"payload":{"id":7,"note":"first"}}`
	first := []byte(msg)
	sc := c.(connect.SchemaConverter)
	s1, _, err := sc.ToSchemaAndValue("t", first)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		first[i] = 'x'
	}
	s2, v, err := sc.ToSchemaAndValue("t", []byte(strings.Replace(msg, "first", "second", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if s2 != s1 {
		t.Fatalf("the second record's schema was read again, not taken from the cache")
	}
	if s2.Name != "com.example.Order" || len(s2.Fields) != 2 || s2.Fields[0].Name != "id" || s2.Fields[1].Name != "note" {
		t.Fatalf("cached schema changed with the first record's bytes: %+v", s2)
	}
	if want := map[string]any{"id": int64(7), "note": "second"}; !reflect.DeepEqual(v, want) {
		t.Fatalf("value %#v, want %#v", v, want)
	}
}
