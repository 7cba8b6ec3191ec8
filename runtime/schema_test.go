package runtime

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
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
		// Read back with its schema, each field has its schema's Go type.
		m := v.(map[string]any)
		if _, ok := m["orderid"].(int64); !ok {
			t.Errorf("orderid %#v is not an int64", m["orderid"])
		}
		if _, ok := m["orderunits"].(float64); !ok {
			t.Errorf("orderunits %#v is not a float64", m["orderunits"])
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
		if n, ok := k.(int64); !ok || n != m["orderid"].(int64) {
			t.Errorf("key %v, want the orderid %v", k, m["orderid"])
		}
	}
}

// A sink reading with the JsonConverter (schemas.enable=true) hands its
// task each record's Connect schema and a value of the schema's Go types;
// a transform's change is encoded with the schema it made; a record whose
// payload does not fit its schema goes where errors.tolerance says.
func TestSinkRecordsCarrySchemas(t *testing.T) {
	addr := newCluster(t, 1, "pay")
	cl := newClient(t, addr, manualPartitioner())
	schema := `{"type":"struct","fields":[` +
		`{"type":"int64","optional":false,"field":"id"},` +
		`{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"amount"},` +
		`{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"at"},` +
		`{"type":"string","optional":true,"default":"EUR","field":"currency"},` +
		`{"type":"string","optional":true,"field":"card"}` +
		`],"optional":false,"name":"shop.payment","version":1}`
	produce(t, cl, "pay", 0,
		`{"schema":`+schema+`,"payload":{"id":1,"amount":"AJw=","at":1735689600000,"card":"4111"}}`,
		`{"schema":`+schema+`,"payload":{"id":"two","amount":"AJw=","at":1735689600000}}`,
		`{"schema":`+schema+`,"payload":{"id":3,"amount":"/2Q=","at":1735689600001,"currency":"USD"}}`)
	c := &capture{}
	spec := testSpec("schemas", addr, 1, 1, map[string]string{
		"topics": "pay", "offset.flush.interval.ms": "100",
		"value.converter":  connect.JSONConverterClass,
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "pay-dlq", "errors.deadletterqueue.context.headers.enable": "true",
		"transforms": "drop,src", "transforms.drop.type": "org.apache.kafka.connect.transforms.ReplaceField$Value", "transforms.drop.exclude": "card",
		"transforms.src.type": "org.apache.kafka.connect.transforms.InsertField$Value", "transforms.src.topic.field": "src",
	})
	w := startWorker(t, spec, 0, captureRegistry(t, c))
	eventually(t, 20*time.Second, "2 records delivered", func() bool { return len(c.records()) == 2 })
	eventually(t, 10*time.Second, "commit past the record that did not fit", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("schemas"))[connect.TopicPartition{Topic: "pay", Partition: 0}] == 3
	})
	w.stop(t)

	got := c.records()
	want := []map[string]any{
		{"id": int64(1), "amount": connect.Decimal{Unscaled: big.NewInt(156), Scale: 2}, "at": time.UnixMilli(1735689600000).UTC(), "currency": "EUR", "src": "pay"},
		{"id": int64(3), "amount": connect.Decimal{Unscaled: big.NewInt(-156), Scale: 2}, "at": time.UnixMilli(1735689600001).UTC(), "currency": "USD", "src": "pay"},
	}
	conv := &convert.JSON{}
	if err := conv.Configure(nil, false); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if !reflect.DeepEqual(r.Value, want[i]) {
			t.Errorf("record %d value\n got %#v\nwant %#v", i, r.Value, want[i])
		}
		s := r.ValueSchema
		if s == nil || s.Name != "shop.payment" || len(s.Fields) != 5 || s.Field("card") != nil || s.Field("src") == nil || !s.Field("src").Schema.Optional {
			t.Fatalf("record %d schema %+v, want shop.payment without card, with an optional src", i, s)
		}
		// The raw value is the transformed value in the envelope of its
		// new schema, and reads back the same.
		rs, rv, err := conv.ToSchemaAndValue("pay", r.RawValue)
		if err != nil {
			t.Fatalf("record %d raw value %s: %v", i, r.RawValue, err)
		}
		if !reflect.DeepEqual(rv, r.Value) || !reflect.DeepEqual(rs, s) {
			t.Errorf("record %d raw value %s reads back as %#v / %+v", i, r.RawValue, rv, rs)
		}
		if !bytes.Contains(r.RawValue, []byte(`{"type":"string","optional":true,"field":"src"}`)) || bytes.Contains(r.RawValue, []byte(`"card"`)) {
			t.Errorf("record %d raw value %s: want src in the schema and no card", i, r.RawValue)
		}
	}
	h := deadLetterHeaders(t, addr, "pay-dlq")
	if h["__connect.errors.offset"] != "1" || h["__connect.errors.stage"] != "VALUE_CONVERTER" ||
		!strings.Contains(h["__connect.errors.exception.message"], `field "id": int64: expected an integer, got the string "two"`) {
		t.Errorf("dead letter headers %v, want the record at offset 1 refused by the value converter, naming the field", h)
	}
}

// Transforms on a source record keep its schema: with schemas.enable=true
// a transformed datagen order is written with its updated struct schema,
// not a null one.
func TestSourceTransformsKeepSchemas(t *testing.T) {
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("srcschemas", addr, 1, map[string]string{
		"value.converter.schemas.enable": "true", "records.per.second": "500",
		"transforms": "drop,origin", "transforms.drop.type": "org.apache.kafka.connect.transforms.ReplaceField$Value", "transforms.drop.exclude": "address",
		"transforms.origin.type": "org.apache.kafka.connect.transforms.InsertField$Value", "transforms.origin.static.field": "origin!", "transforms.origin.static.value": "datagen",
	})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "records produced", func() bool { return w.w.Metrics(0).RecordsOut >= 10 })
	w.stop(t)
	conv := &convert.JSON{}
	if err := conv.Configure(nil, false); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, addr, "orders")
	if len(recs) < 10 {
		t.Fatalf("read %d records", len(recs))
	}
	for _, r := range recs {
		s, v, err := conv.ToSchemaAndValue("orders", r.Value)
		if err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		if s == nil || s.Name != "ksql.orders" || s.Field("address") != nil || s.Field("origin") == nil || s.Field("origin").Schema.Optional {
			t.Fatalf("value %s: want the ksql.orders schema without address, with a required origin", r.Value)
		}
		if m := v.(map[string]any); m["origin"] != "datagen" || m["orderid"] == nil {
			t.Errorf("value %#v", m)
		}
	}
}
