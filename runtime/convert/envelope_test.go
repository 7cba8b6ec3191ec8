package convert

import (
	"testing"

	"github.com/ferryhq/ferry/runtime/connect"
)

// The envelope's bytes are Kafka's JsonConverter's: "schema" before
// "payload", schema members in asJsonSchema's order with a field's name
// last, struct fields in the schema's order, an unset field null.
func TestEnvelopeInKafkasOrder(t *testing.T) {
	addr := &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.address", Fields: []connect.Field{
		{Name: "zip", Schema: &connect.Schema{Type: connect.SchemaInt32}},
		{Name: "city", Schema: &connect.Schema{Type: connect.SchemaString, Optional: true}},
	}}
	s := &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.orders", Version: 2, Doc: "an order", Fields: []connect.Field{
		{Name: "ordertime", Schema: &connect.Schema{Type: connect.SchemaInt64}},
		{Name: "tags", Schema: &connect.Schema{Type: connect.SchemaArray, Items: &connect.Schema{Type: connect.SchemaString}}},
		{Name: "attrs", Schema: &connect.Schema{Type: connect.SchemaMap, Keys: &connect.Schema{Type: connect.SchemaString}, Values: &connect.Schema{Type: connect.SchemaInt64}, Optional: true}},
		{Name: "address", Schema: addr},
	}}
	v := map[string]any{
		"address":   map[string]any{"zip": int32(12345)},
		"attrs":     map[string]any{"b": int64(2), "a": int64(1)},
		"tags":      []any{"x", "y"},
		"ordertime": int64(1735689601521),
	}
	got, err := (&JSON{Schemas: true}).FromSchemaAndValue("orders", s, v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":{"type":"struct","fields":[` +
		`{"type":"int64","optional":false,"field":"ordertime"},` +
		`{"type":"array","items":{"type":"string","optional":false},"optional":false,"field":"tags"},` +
		`{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int64","optional":false},"optional":true,"field":"attrs"},` +
		`{"type":"struct","fields":[{"type":"int32","optional":false,"field":"zip"},{"type":"string","optional":true,"field":"city"}],"optional":false,"name":"ksql.address","field":"address"}` +
		`],"optional":false,"name":"ksql.orders","version":2,"doc":"an order"},` +
		`"payload":{"ordertime":1735689601521,"tags":["x","y"],"attrs":{"a":1,"b":2},"address":{"zip":12345,"city":null}}}`
	if string(got) != want {
		t.Errorf("envelope\n got %s\nwant %s", got, want)
	}

	// A value with a field its schema does not name is refused, as Kafka does.
	if _, err := (&JSON{Schemas: true}).FromSchemaAndValue("orders", addr, map[string]any{"zip": 1, "city": "x", "extra": 2}); err == nil {
		t.Error("a field the schema does not name was written")
	}
}
