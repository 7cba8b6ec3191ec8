package convert

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ferryhq/ferry/runtime/connect"
)

func TestSimpleHeaderConverter(t *testing.T) {
	c, err := HeaderFromConfig(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*SimpleHeader); !ok {
		t.Fatalf("default header converter %T, want SimpleHeaderConverter", c)
	}
	for in, want := range map[string]any{
		"true":       true,
		"FALSE":      false,
		"42":         int64(42),
		"-7":         int64(-7),
		"1.5":        1.5,
		"hello":      "hello",
		"":           "",
		`[1,"a"]`:    []any{json.Number("1"), "a"},
		`{"k":"v"}`:  map[string]any{"k": "v"},
		"{not json}": "{not json}",
		"2024-01-01": "2024-01-01",
	} {
		got, err := c.ToValue("t", []byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q → %#v (%v), want %#v", in, got, err, want)
		}
	}
	if v, _ := c.ToValue("t", nil); v != nil {
		t.Errorf("null header → %#v", v)
	}
	for _, tc := range []struct {
		in   any
		want string
	}{{true, "true"}, {int64(42), "42"}, {1.0, "1.0"}, {"s", "s"}, {map[string]any{"a": json.Number("1")}, `{"a":1}`}, {[]any{"x"}, `["x"]`}} {
		b, err := c.FromValue("t", tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("%#v → %q (%v), want %q", tc.in, b, err, tc.want)
		}
	}
}

func TestHeaderConverterFromConfig(t *testing.T) {
	worker := map[string]string{"header.converter": connect.StringConverterClass}
	c, err := HeaderFromConfig(nil, worker)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.ToValue("t", []byte("42")); v != "42" {
		t.Errorf("StringConverter header → %#v, want the text", v)
	}
	c, err = HeaderFromConfig(map[string]string{"header.converter": connect.JSONConverterClass, "header.converter.schemas.enable": "false"}, worker)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.ToValue("t", []byte(`{"a":1}`)); err != nil || !reflect.DeepEqual(v, map[string]any{"a": json.Number("1")}) {
		t.Errorf("JsonConverter header → %#v (%v)", v, err)
	}
	c, err = HeaderFromConfig(map[string]string{"header.converter": connect.ByteArrayConverterClass}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.ToValue("t", []byte{1, 2}); !reflect.DeepEqual(v, []byte{1, 2}) {
		t.Errorf("ByteArrayConverter header → %#v", v)
	}
	if _, err := HeaderFromConfig(map[string]string{"header.converter": "com.example.Nope"}, nil); err == nil {
		t.Error("unknown header converter accepted")
	}
}
