package datagen

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// checkJSONTypes checks that payload, as decoded from JSON with UseNumber,
// has the shape and types schema (as JsonConverter writes it) declares.
func checkJSONTypes(t *testing.T, path string, schema map[string]any, payload any) {
	t.Helper()
	typ, _ := schema["type"].(string)
	switch typ {
	case connect.SchemaInt8, connect.SchemaInt16, connect.SchemaInt32, connect.SchemaInt64:
		n, ok := payload.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			t.Errorf("%s: %#v is not an integer (%s)", path, payload, typ)
		}
	case "float", "double": // Kafka's JSON names of float32 and float64
		n, ok := payload.(json.Number)
		if _, err := n.Float64(); !ok || err != nil {
			t.Errorf("%s: %#v is not a number (%s)", path, payload, typ)
		}
	case connect.SchemaString:
		if _, ok := payload.(string); !ok {
			t.Errorf("%s: %#v is not a string", path, payload)
		}
	case connect.SchemaStruct:
		obj, ok := payload.(map[string]any)
		if !ok {
			t.Errorf("%s: %#v is not an object", path, payload)
			return
		}
		fields, _ := schema["fields"].([]any)
		if len(fields) != len(obj) {
			t.Errorf("%s: schema has %d fields, payload %d (%v)", path, len(fields), len(obj), obj)
		}
		for _, f := range fields {
			fm := f.(map[string]any)
			name := fm["field"].(string)
			if fm["optional"] != false {
				t.Errorf("%s.%s: optional %v, want false", path, name, fm["optional"])
			}
			v, ok := obj[name]
			if !ok {
				t.Errorf("%s: field %q missing from the payload", path, name)
				continue
			}
			checkJSONTypes(t, path+"."+name, fm, v)
		}
	default:
		t.Errorf("%s: unexpected schema type %q", path, typ)
	}
}

// With schemas.enable=true the JsonConverter writes each record in the
// schema/payload envelope with the quickstart's struct schema, and reads it
// back; with false it writes the plain value, as before.
func TestRecordsCarryConnectSchemas(t *testing.T) {
	want := map[string]struct {
		name   string
		key    string
		fields map[string]string
	}{
		"users":     {"ksql.users", "string", map[string]string{"registertime": "int64", "userid": "string", "regionid": "string", "gender": "string"}},
		"pageviews": {"ksql.pageviews", "int64", map[string]string{"viewtime": "int64", "userid": "string", "pageid": "string"}},
		"orders":    {"ksql.orders", "int64", map[string]string{"ordertime": "int64", "orderid": "int64", "itemid": "string", "orderunits": "double", "address": "struct"}},
	}
	withSchemas, plain := &convert.JSON{}, &convert.JSON{}
	if err := withSchemas.Configure(map[string]string{"schemas.enable": "true"}, false); err != nil {
		t.Fatal(err)
	}
	if err := plain.Configure(map[string]string{"schemas.enable": "false"}, false); err != nil {
		t.Fatal(err)
	}
	for _, q := range Quickstarts() {
		t.Run(q, func(t *testing.T) {
			w := want[q]
			recs := poll(t, start(t, map[string]string{KeyTopic: "t", KeyQuickstart: q, KeyMaxInterval: "0", KeySeed: "9", KeyBatch: "50"}, nil))
			for _, r := range recs {
				for _, c := range []struct {
					what   string
					schema *connect.Schema
					value  any
				}{{"key", r.KeySchema, r.Key}, {"value", r.ValueSchema, r.Value}} {
					raw, err := withSchemas.FromSchemaAndValue("t", c.schema, c.value)
					if err != nil {
						t.Fatalf("%s: %v", c.what, err)
					}
					var env map[string]any
					d := json.NewDecoder(bytes.NewReader(raw))
					d.UseNumber()
					if err := d.Decode(&env); err != nil || len(env) != 2 {
						t.Fatalf("%s %s is not an envelope: %v", c.what, raw, err)
					}
					schema, _ := env["schema"].(map[string]any)
					if schema == nil {
						t.Fatalf("%s %s has no schema", c.what, raw)
					}
					checkJSONTypes(t, q+"."+c.what, schema, env["payload"])
					if _, err := withSchemas.ToValue("t", raw); err != nil {
						t.Errorf("JsonConverter cannot read back %s: %v", raw, err)
					}
				}
				kraw, _ := withSchemas.FromSchemaAndValue("t", r.KeySchema, r.Key)
				var kenv struct{ Schema map[string]any }
				_ = json.Unmarshal(kraw, &kenv)
				if kenv.Schema["type"] != w.key {
					t.Errorf("key schema %v, want %s", kenv.Schema, w.key)
				}
				vraw, _ := withSchemas.FromSchemaAndValue("t", r.ValueSchema, r.Value)
				var venv struct{ Schema map[string]any }
				_ = json.Unmarshal(vraw, &venv)
				if venv.Schema["name"] != w.name || venv.Schema["type"] != "struct" {
					t.Errorf("value schema %v, want struct %s", venv.Schema, w.name)
				}
				got := map[string]string{}
				for _, f := range venv.Schema["fields"].([]any) {
					fm := f.(map[string]any)
					got[fm["field"].(string)] = fm["type"].(string)
				}
				for name, typ := range w.fields {
					if got[name] != typ {
						t.Errorf("field %s is %q, want %q", name, got[name], typ)
					}
				}
				// schemas.enable=false: the plain value, no envelope.
				p, err := plain.FromSchemaAndValue("t", r.ValueSchema, r.Value)
				if err != nil || bytes.Contains(p, []byte(`"schema"`)) || bytes.Contains(p, []byte(`"payload"`)) {
					t.Errorf("schemas.enable=false wrote %s (%v)", p, err)
				}
			}
		})
	}
}
