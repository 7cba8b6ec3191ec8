package transforms

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// sig renders a schema compactly: type (a logical type by its short
// name), "?" when optional, "=default", a struct's name and fields.
func sig(s *connect.Schema) string {
	if s == nil {
		return "null"
	}
	var b strings.Builder
	switch {
	case isLogical(s):
		b.WriteString(s.Name[strings.LastIndex(s.Name, ".")+1:])
	case s.Type == connect.SchemaStruct:
		b.WriteString("struct")
		if s.Name != "" {
			b.WriteString(" " + s.Name)
		}
		b.WriteString("{")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name + ":" + sig(f.Schema))
		}
		b.WriteString("}")
	case s.Type == connect.SchemaArray:
		b.WriteString("array<" + sig(s.Items) + ">")
	case s.Type == connect.SchemaMap:
		b.WriteString("map<" + sig(s.Keys) + "," + sig(s.Values) + ">")
	default:
		b.WriteString(s.Type)
	}
	if s.Optional {
		b.WriteString("?")
	}
	if s.Default != nil {
		fmt.Fprintf(&b, "=%v", s.Default)
	}
	return b.String()
}

func orderSchema(addressOptional bool) *connect.Schema {
	str := &connect.Schema{Type: connect.SchemaString}
	return &connect.Schema{Type: connect.SchemaStruct, Name: "shop.order", Version: 2, Fields: []connect.Field{
		{Name: "id", Schema: &connect.Schema{Type: connect.SchemaInt64}},
		{Name: "amount", Schema: &connect.Schema{Type: connect.SchemaFloat64}},
		{Name: "card", Schema: &connect.Schema{Type: connect.SchemaString, Optional: true}},
		{Name: "at", Schema: &connect.Schema{Type: connect.SchemaInt64, Name: connect.TimestampSchemaName, Version: 1}},
		{Name: "address", Schema: &connect.Schema{Type: connect.SchemaStruct, Name: "shop.address", Optional: addressOptional, Fields: []connect.Field{
			{Name: "city", Schema: str},
			{Name: "zip", Schema: &connect.Schema{Type: connect.SchemaInt32, Default: int32(10000)}},
		}}},
	}}
}

func orderValue() map[string]any {
	return map[string]any{"id": int64(7), "amount": 12.5, "card": "4111", "at": ts,
		"address": map[string]any{"city": "Lyon", "zip": int32(69001)}}
}

// schemaRec is a record read with a Connect schema for its key (int64) and
// value (shop.order).
func schemaRec(addressOptional bool) *connect.Record {
	r := rec(int64(7), orderValue())
	r.KeySchema, r.ValueSchema = &connect.Schema{Type: connect.SchemaInt64}, orderSchema(addressOptional)
	return r
}

// Transforms keep a record's schemas in step with its values as Kafka's
// do: InsertField, ReplaceField, Cast, ExtractField, HoistField,
// ValueToKey, Flatten, TimestampConverter and HeaderFrom build the new
// schema; MaskField and the routers keep it. Each result is also written
// with the JsonConverter, which checks the value fits its schema.
func TestTransformsWithSchemas(t *testing.T) {
	const order = "struct shop.order{id:int64, amount:float64, card:string?, at:Timestamp, address:struct shop.address{city:string, zip:int32=10000}}"
	cases := []struct {
		name       string
		class      string
		props      map[string]string
		optional   bool // the address struct is optional
		keySig     string
		valueSig   string
		key, value any
		topic      string
		header     *connect.Header
	}{
		{name: "InsertField$Value adds typed fields, optional unless !", class: "InsertField$Value",
			props:    map[string]string{"topic.field": "t", "partition.field": "p!", "offset.field": "o", "timestamp.field": "ts?", "static.field": "s", "static.value": "x"},
			valueSig: strings.TrimSuffix(order, "}") + ", t:string?, p:int32, o:int64?, ts:Timestamp?, s:string?}",
			value: func() map[string]any {
				v := orderValue()
				v["t"], v["p"], v["o"], v["ts"], v["s"] = "orders", int32(2), int64(42), ts, "x"
				return v
			}()},
		{name: "ReplaceField drops and renames in schema order", class: "ReplaceField$Value",
			props:    map[string]string{"exclude": "card", "renames": "amount:total,id:order_id"},
			valueSig: "struct shop.order{order_id:int64, total:float64, at:Timestamp, address:struct shop.address{city:string, zip:int32=10000}}",
			value:    map[string]any{"order_id": int64(7), "total": 12.5, "at": ts, "address": map[string]any{"city": "Lyon", "zip": int32(69001)}}},
		{name: "MaskField keeps the schema", class: "MaskField$Value", props: map[string]string{"fields": "card,amount,at"},
			valueSig: order,
			value: func() map[string]any {
				v := orderValue()
				v["card"], v["amount"], v["at"] = "", 0.0, time.UnixMilli(0).UTC()
				return v
			}()},
		{name: "Cast fields changes their types", class: "Cast$Value", props: map[string]string{"spec": "id:string,amount:int32,at:string"},
			valueSig: "struct shop.order{id:string, amount:int32, card:string?, at:string, address:struct shop.address{city:string, zip:int32=10000}}",
			value: func() map[string]any {
				v := orderValue()
				v["id"], v["amount"], v["at"] = "7", int32(12), "2024-03-05T14:07:09.123Z"
				return v
			}()},
		{name: "Cast$Key whole value", class: "Cast$Key", props: map[string]string{"spec": "string"},
			keySig: "string", key: "7"},
		{name: "ExtractField takes the field's schema", class: "ExtractField$Value", props: map[string]string{"field": "address"},
			valueSig: "struct shop.address{city:string, zip:int32=10000}", value: map[string]any{"city": "Lyon", "zip": int32(69001)}},
		{name: "ExtractField nested V2", class: "ExtractField$Value", props: map[string]string{"field": "address.zip", "field.syntax.version": "V2"},
			valueSig: "int32=10000", value: int32(69001)},
		{name: "HoistField$Key wraps the schema", class: "HoistField$Key", props: map[string]string{"field": "id"},
			keySig: "struct{id:int64}", key: map[string]any{"id": int64(7)}},
		{name: "ValueToKey builds the key's struct schema", class: "ValueToKey", props: map[string]string{"fields": "address,id"},
			keySig: "struct{address:struct shop.address{city:string, zip:int32=10000}, id:int64}",
			key:    map[string]any{"id": int64(7), "address": map[string]any{"city": "Lyon", "zip": int32(69001)}}},
		{name: "Flatten joins nested names", class: "Flatten$Value", props: map[string]string{"delimiter": "_"},
			valueSig: "struct shop.order{id:int64, amount:float64, card:string?, at:Timestamp, address_city:string, address_zip:int32=10000}",
			value:    map[string]any{"id": int64(7), "amount": 12.5, "card": "4111", "at": ts, "address_city": "Lyon", "address_zip": int32(69001)}},
		{name: "Flatten: fields of an optional struct are optional", class: "Flatten$Value", optional: true,
			valueSig: "struct shop.order{id:int64, amount:float64, card:string?, at:Timestamp, address.city:string?, address.zip:int32?=10000}",
			value:    map[string]any{"id": int64(7), "amount": 12.5, "card": "4111", "at": ts, "address.city": "Lyon", "address.zip": int32(69001)}},
		{name: "TimestampConverter field to unix", class: "TimestampConverter$Value", props: map[string]string{"field": "at", "target.type": "unix"},
			valueSig: strings.Replace(order, "at:Timestamp", "at:int64", 1),
			value: func() map[string]any {
				v := orderValue()
				v["at"] = ts.UnixMilli()
				return v
			}()},
		{name: "TimestampConverter field to string", class: "TimestampConverter$Value", props: map[string]string{"field": "at", "target.type": "string", "format": "yyyy-MM-dd"},
			valueSig: strings.Replace(order, "at:Timestamp", "at:string", 1),
			value: func() map[string]any {
				v := orderValue()
				v["at"] = "2024-03-05"
				return v
			}()},
		{name: "TimestampConverter field to Date", class: "TimestampConverter$Value", props: map[string]string{"field": "at", "target.type": "Date"},
			valueSig: strings.Replace(order, "at:Timestamp", "at:Date", 1),
			value: func() map[string]any {
				v := orderValue()
				v["at"] = time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
				return v
			}()},
		{name: "TimestampConverter$Key whole unix value to Timestamp", class: "TimestampConverter$Key", props: map[string]string{"target.type": "Timestamp"},
			keySig: "Timestamp", key: time.UnixMilli(7).UTC()},
		{name: "HeaderFrom move drops the field from the schema", class: "HeaderFrom$Value", props: map[string]string{"fields": "card", "headers": "card", "operation": "move"},
			valueSig: strings.Replace(order, " card:string?,", "", 1),
			value: func() map[string]any {
				v := orderValue()
				delete(v, "card")
				return v
			}(),
			header: &connect.Header{Key: "card", Data: "4111"}},
		{name: "HeaderFrom copy keeps the schema", class: "HeaderFrom$Value", props: map[string]string{"fields": "id", "headers": "id", "operation": "copy"},
			valueSig: order, value: orderValue(), header: &connect.Header{Key: "id", Data: int64(7)}},
		{name: "RegexRouter keeps the schemas", class: "RegexRouter", props: map[string]string{"regex": "orders", "replacement": "o2"},
			valueSig: order, value: orderValue(), topic: "o2"},
	}
	enc, err := convert.New(connect.JSONConverterClass, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chain(t, Prefix+tc.class, tc.props)
			if err != nil {
				t.Fatal(err)
			}
			in := schemaRec(tc.optional)
			inValue, inSchema := in.ValueSchema, sig(in.ValueSchema)
			out, err := c.Apply(in)
			if err != nil {
				t.Fatal(err)
			}
			wantKeySig, wantKey := "int64", any(int64(7))
			if tc.keySig != "" {
				wantKeySig, wantKey = tc.keySig, tc.key
			}
			wantValueSig, wantValue := order, any(orderValue())
			if tc.valueSig != "" {
				wantValueSig, wantValue = tc.valueSig, tc.value
			}
			if got := sig(out.KeySchema); got != wantKeySig {
				t.Errorf("key schema\n got %s\nwant %s", got, wantKeySig)
			}
			if got := sig(out.ValueSchema); got != wantValueSig {
				t.Errorf("value schema\n got %s\nwant %s", got, wantValueSig)
			}
			if !reflect.DeepEqual(out.Key, wantKey) {
				t.Errorf("key %#v, want %#v", out.Key, wantKey)
			}
			if !reflect.DeepEqual(out.Value, wantValue) {
				t.Errorf("value\n got %#v\nwant %#v", out.Value, wantValue)
			}
			if tc.topic != "" && out.Topic != tc.topic {
				t.Errorf("topic %q, want %q", out.Topic, tc.topic)
			}
			if tc.header != nil && (len(out.Headers) != 1 || !reflect.DeepEqual(out.Headers[0], *tc.header)) {
				t.Errorf("headers %+v, want %+v", out.Headers, *tc.header)
			}
			if sig(inValue) != inSchema {
				t.Errorf("the input schema was changed in place: %s", sig(inValue))
			}
			// Each value fits its new schema.
			sc := enc.(connect.SchemaConverter)
			if _, err := sc.FromSchemaAndValue("t", out.KeySchema, out.Key); err != nil {
				t.Errorf("key does not fit its schema: %v", err)
			}
			if _, err := sc.FromSchemaAndValue("t", out.ValueSchema, out.Value); err != nil {
				t.Errorf("value does not fit its schema: %v", err)
			}
		})
	}
}

// With schemas, the errors are Kafka's: a struct is required where Kafka
// requires one, fields must exist, a field name cannot be inserted twice.
func TestTransformsWithSchemasRefuse(t *testing.T) {
	for _, tc := range []struct {
		name, class string
		props       map[string]string
		want        string
	}{
		{"InsertField name taken", "InsertField$Value", map[string]string{"topic.field": "id"}, `field "id": the schema already has a field of that name`},
		{"InsertField on a primitive key", "InsertField$Key", map[string]string{"topic.field": "t"}, "only Struct objects supported for [field insertion], found: int64"},
		{"ExtractField unknown field", "ExtractField$Value", map[string]string{"field": "nope"}, "unknown field: nope"},
		{"ValueToKey unknown field", "ValueToKey", map[string]string{"fields": "nope"}, "field does not exist: nope"},
		{"MaskField struct", "MaskField$Value", map[string]string{"fields": "address"}, "cannot mask value of type Struct"},
		{"Cast struct", "Cast$Value", map[string]string{"spec": "address:string"}, "does not support casting to/from STRUCT"},
		{"TimestampConverter non-timestamp", "TimestampConverter$Value", map[string]string{"field": "amount", "target.type": "unix"}, "does not correspond to a known timestamp type"},
		{"HeaderFrom unknown field", "HeaderFrom$Value", map[string]string{"fields": "nope", "headers": "h", "operation": "copy"}, `field "nope" is not in the value's schema`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chain(t, Prefix+tc.class, tc.props)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Apply(schemaRec(false)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A source record's schemas go through the chain and come out updated.
func TestApplySourceKeepsSchemas(t *testing.T) {
	c, err := connect.NewRegistry().BuildChain(map[string]string{
		"transforms": "r,i", "transforms.r.type": Prefix + "ReplaceField$Value", "transforms.r.exclude": "card",
		"transforms.i.type": Prefix + "InsertField$Value", "transforms.i.topic.field": "src",
	})
	if err != nil {
		t.Fatal(err)
	}
	sr := &connect.SourceRecord{Topic: "orders", Key: int64(7), KeySchema: &connect.Schema{Type: connect.SchemaInt64},
		Value: orderValue(), ValueSchema: orderSchema(false)}
	out, err := c.ApplySource(sr, ts)
	if err != nil {
		t.Fatal(err)
	}
	want := "struct shop.order{id:int64, amount:float64, at:Timestamp, address:struct shop.address{city:string, zip:int32=10000}, src:string?}"
	if got := sig(out.ValueSchema); got != want {
		t.Errorf("value schema\n got %s\nwant %s", got, want)
	}
	if out.KeySchema != sr.KeySchema {
		t.Errorf("key schema %s, want the record's (no transform touched the key)", sig(out.KeySchema))
	}
}
