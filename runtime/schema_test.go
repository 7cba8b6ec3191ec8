package runtime

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// A source record's Connect schemas reach Kafka through the JsonConverter
// with schemas.enable=true: datagen's orders arrive in the schema/payload
// envelope with their struct schema, and read back with the payload's types.
func TestSourceSchemasThroughJsonConverter(t *testing.T) {
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("schemas", addr, 1, map[string]string{
		"key.converter": connect.JSONConverterClass, "key.converter.schemas.enable": "true",
		"value.converter.schemas.enable": "true", "records.per.second": "500",
	})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "records produced", func() bool { return w.w.Metrics(0).RecordsOut >= 20 })
	w.stop(t)
	recs := readAll(t, addr, "orders")
	if len(recs) < 20 {
		t.Fatalf("read %d records", len(recs))
	}
	conv := &convert.JSON{}
	if err := conv.Configure(map[string]string{"schemas.enable": "true"}, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		var env struct {
			Schema struct {
				Type   string
				Name   string
				Fields []struct{ Field, Type string }
			}
			Payload map[string]any
		}
		d := json.NewDecoder(bytes.NewReader(r.Value))
		d.UseNumber()
		if err := d.Decode(&env); err != nil || env.Schema.Type != "struct" || env.Schema.Name != "ksql.orders" || len(env.Schema.Fields) != 5 {
			t.Fatalf("value %s: not an envelope with the orders schema (%v)", r.Value, err)
		}
		v, err := conv.ToValue("orders", r.Value)
		if err != nil {
			t.Fatalf("JsonConverter reads back %s: %v", r.Value, err)
		}
		m := v.(map[string]any)
		if n, ok := m["orderid"].(json.Number); !ok {
			t.Errorf("orderid %#v is not a number", m["orderid"])
		} else if _, err := n.Int64(); err != nil {
			t.Errorf("orderid %v is not an integer", n)
		}
		if _, ok := m["orderunits"].(json.Number); !ok {
			t.Errorf("orderunits %#v is not a number", m["orderunits"])
		}
		if _, ok := m["itemid"].(string); !ok {
			t.Errorf("itemid %#v is not a string", m["itemid"])
		}
		if a, ok := m["address"].(map[string]any); !ok || a["city"] == nil {
			t.Errorf("address %#v is not a struct", m["address"])
		}
		k, err := conv.ToValue("orders", r.Key)
		if err != nil || !bytes.Contains(r.Key, []byte(`"schema":{"type":"int64","optional":false}`)) {
			t.Errorf("key %s: want an int64 schema (%v)", r.Key, err)
		}
		if n, ok := k.(json.Number); !ok || n.String() != m["orderid"].(json.Number).String() {
			t.Errorf("key %v, want the orderid %v", k, m["orderid"])
		}
	}
}
