package s3sink

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/ferryhq/ferry/runtime/connect"
)

func decimalSchema(scale string, optional bool) *connect.Schema {
	return &connect.Schema{Type: connect.SchemaBytes, Name: connect.DecimalSchemaName, Version: 1, Optional: optional,
		Parameters: map[string]string{connect.DecimalScaleParameter: scale}}
}

// orderSchema has a field of every kind AvroData maps.
func orderSchema() *connect.Schema {
	str := &connect.Schema{Type: connect.SchemaString}
	return &connect.Schema{Type: connect.SchemaStruct, Name: "com.example.Order", Version: 2, Doc: "an order", Fields: []connect.Field{
		{Name: "id", Schema: &connect.Schema{Type: connect.SchemaInt64}},
		{Name: "qty", Schema: &connect.Schema{Type: connect.SchemaInt8}},
		{Name: "small", Schema: &connect.Schema{Type: connect.SchemaInt16, Optional: true}},
		{Name: "price", Schema: decimalSchema("2", false)},
		{Name: "day", Schema: &connect.Schema{Type: connect.SchemaInt32, Name: connect.DateSchemaName, Version: 1}},
		{Name: "at", Schema: &connect.Schema{Type: connect.SchemaInt64, Name: connect.TimestampSchemaName, Version: 1}},
		{Name: "t", Schema: &connect.Schema{Type: connect.SchemaInt32, Name: connect.TimeSchemaName, Version: 1, Optional: true}},
		{Name: "note", Schema: &connect.Schema{Type: connect.SchemaString, Optional: true, Default: "none"}},
		{Name: "tags", Schema: &connect.Schema{Type: connect.SchemaArray, Items: str}},
		{Name: "attrs", Schema: &connect.Schema{Type: connect.SchemaMap, Keys: str, Values: str, Optional: true}},
		{Name: "counts", Schema: &connect.Schema{Type: connect.SchemaMap, Keys: &connect.Schema{Type: connect.SchemaInt32}, Values: &connect.Schema{Type: connect.SchemaInt64}}},
		{Name: "addr", Schema: &connect.Schema{Type: connect.SchemaStruct, Optional: true, Fields: []connect.Field{{Name: "city", Schema: str}}}},
		{Name: "raw", Schema: &connect.Schema{Type: connect.SchemaBytes}},
		{Name: "ratio", Schema: &connect.Schema{Type: connect.SchemaFloat32}},
		{Name: "score", Schema: &connect.Schema{Type: connect.SchemaFloat64}},
		{Name: "ok", Schema: &connect.Schema{Type: connect.SchemaBoolean}},
	}}
}

// orderValue is a value of orderSchema in the Go shapes of connect.Schema's
// doc.
func orderValue() map[string]any {
	return map[string]any{
		"id": int64(1), "qty": int8(-3), "small": nil, "price": connect.Decimal{Unscaled: big.NewInt(12345), Scale: 2},
		"day": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "at": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"t": time.Date(1970, 1, 1, 1, 0, 0, 0, time.UTC), "tags": []any{"a"}, "counts": []any{[]any{int32(1), int64(2)}},
		"addr": map[string]any{"city": "P"}, "raw": []byte{1, 2}, "ratio": float32(0.5), "score": 1e7, "ok": true,
	}
}

// A Connect schema maps as Confluent's AvroData maps it.
func TestAvroSchemaFromConnect(t *testing.T) {
	rt, err := fromConnect(orderSchema(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"record","name":"Order","namespace":"com.example","fields":[` +
		`{"name":"id","type":"long"},` +
		`{"name":"qty","type":{"type":"int","connect.type":"int8"}},` +
		`{"name":"small","type":["null",{"type":"int","connect.type":"int16"}],"default":null},` +
		`{"name":"price","type":{"type":"bytes","scale":2,"precision":64,"connect.version":1,"connect.parameters":{"scale":"2"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}},` +
		`{"name":"day","type":{"type":"int","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Date","logicalType":"date"}},` +
		`{"name":"at","type":{"type":"long","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Timestamp","logicalType":"timestamp-millis"}},` +
		`{"name":"t","type":["null",{"type":"int","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Time","logicalType":"time-millis"}],"default":null},` +
		`{"name":"note","type":[{"type":"string","connect.default":"none"},"null"],"default":"none"},` +
		`{"name":"tags","type":{"type":"array","items":"string"}},` +
		`{"name":"attrs","type":["null",{"type":"map","values":"string"}],"default":null},` +
		`{"name":"counts","type":{"type":"array","items":{"type":"record","name":"MapEntry","namespace":"io.confluent.connect.avro","fields":[{"name":"key","type":"int"},{"name":"value","type":"long"}]}}},` +
		`{"name":"addr","type":["null",{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"city","type":"string"}]}],"default":null},` +
		`{"name":"raw","type":"bytes"},{"name":"ratio","type":"float"},{"name":"score","type":"double"},{"name":"ok","type":"boolean"}],` +
		`"connect.doc":"an order","connect.version":2,"connect.name":"com.example.Order"}`
	got := string(avroSchemaJSON(rt))
	if got != want {
		t.Fatalf("schema\n%s\nwant\n%s", got, want)
	}
	parsed, err := avro.Parse(got)
	if err != nil {
		t.Fatalf("not a valid Avro schema: %v", err)
	}
	// The binary encoding reads back with another Avro implementation.
	enc, err := appendAvro(nil, rt, orderValue())
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(parsed, enc, &v); err != nil {
		t.Fatal(err)
	}
	price, _ := v["price"].(*big.Rat)
	counts, _ := v["counts"].([]any)
	if v["id"] != int64(1) || v["qty"] != -3 || v["small"] != nil || price == nil || price.FloatString(2) != "123.45" ||
		v["note"] != "none" || v["ratio"] != float32(0.5) || v["score"] != 1e7 || len(counts) != 1 ||
		!v["day"].(time.Time).Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || v["t"] != time.Hour {
		t.Errorf("read back %#v", v)
	}
	if entry := counts[0].(map[string]any); entry["key"] != 1 || entry["value"] != int64(2) {
		t.Errorf("map entry %#v", counts[0])
	}
	// A value that does not fit its schema is refused.
	bad := orderValue()
	bad["qty"] = int64(300)
	if _, err := appendAvro(nil, rt, bad); err == nil || !strings.Contains(err.Error(), `field "qty": 300 is out of range`) {
		t.Errorf("int8 out of range: %v", err)
	}
	bad = orderValue()
	delete(bad, "id")
	if _, err := appendAvro(nil, rt, bad); err == nil || !strings.Contains(err.Error(), `field "id": null for a required long`) {
		t.Errorf("missing required field: %v", err)
	}
}

// Without connect.meta.data the schema carries no connect.* properties.
func TestAvroSchemaWithoutConnectMetaData(t *testing.T) {
	rt, err := fromConnect(orderSchema(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(avroSchemaJSON(rt)); strings.Contains(got, `"connect.`) || !strings.Contains(got, `"logicalType":"date"`) {
		t.Errorf("schema %s", got)
	}
}

// Derived schemas widen: null fits any type, int and long widen to double,
// a missing field becomes optional, an empty array fits any items; other
// changes do not fit.
func TestDeriveAndMerge(t *testing.T) {
	d := func(v any) *rtype {
		t.Helper()
		rt, err := derive(v)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	render := func(rt *rtype) string { return string(avroSchemaJSON(rt)) }
	for _, c := range []struct {
		a, b any
		want string // "" no fit
	}{
		{map[string]any{"a": nil}, map[string]any{"a": "y"}, `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"a","type":["null","string"],"default":null}]}`},
		{map[string]any{"n": int32(1)}, map[string]any{"n": json.Number("2")}, `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"n","type":"long"}]}`},
		{map[string]any{"n": json.Number("1")}, map[string]any{"n": 2.5}, `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"n","type":"double"}]}`},
		{map[string]any{"a": "x"}, map[string]any{"b": true}, `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"a","type":["null","string"],"default":null},{"name":"b","type":["null","boolean"],"default":null}]}`},
		{[]any{}, []any{"x", nil}, `{"type":"array","items":["null","string"]}`},
		{[]any{map[string]any{"k": "v"}}, []any{}, `{"type":"array","items":{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"k","type":"string"}]}}`},
		{map[string]any{"a": "x"}, map[string]any{"a": json.Number("1")}, ""},
		{"s", []byte("b"), ""},
		{time.Now(), json.Number("1"), ""},
	} {
		m, ok := merge(d(c.a), d(c.b))
		switch {
		case c.want == "" && ok:
			t.Errorf("%#v and %#v merged to %s, want no fit", c.a, c.b, render(m))
		case c.want != "" && !ok:
			t.Errorf("%#v and %#v: no fit, want %s", c.a, c.b, c.want)
		case ok && render(m) != c.want:
			t.Errorf("%#v and %#v: %s, want %s", c.a, c.b, render(m), c.want)
		}
		if ok && (!fits(m, c.a) || !fits(m, c.b)) {
			t.Errorf("%s does not fit both %#v and %#v", render(m), c.a, c.b)
		}
	}
	if !fits(d(map[string]any{"a": "x"}), map[string]any{"a": "y"}) || fits(d(map[string]any{"a": "x"}), map[string]any{"a": nil}) ||
		fits(d(map[string]any{"a": "x"}), map[string]any{"a": "x", "b": "y"}) || fits(d(map[string]any{"a": "x"}), map[string]any{}) {
		t.Error("fits is wrong on records")
	}
}

// Rows written under a schema before it widened are rewritten under the
// widened one: the container reads back every row.
func TestTranscodeWidened(t *testing.T) {
	vals := []any{
		map[string]any{"n": int32(1), "tags": []any{}},
		map[string]any{"n": json.Number("7"), "tags": []any{"a"}, "extra": nil},
		map[string]any{"n": 2.5, "tags": []any{"b", nil}, "extra": map[string]any{"x": true}},
	}
	var rows [][]byte
	var types []*rtype
	var cur *rtype
	for _, v := range vals {
		dt, err := derive(v)
		if err != nil {
			t.Fatal(err)
		}
		if cur == nil {
			cur = dt
		} else if cur, _ = merge(cur, dt); cur == nil {
			t.Fatal("no fit")
		}
		enc, err := appendAvro(nil, cur, v)
		if err != nil {
			t.Fatal(err)
		}
		rows, types = append(rows, enc), append(types, cur)
	}
	final := types[len(types)-1]
	parsed, err := avro.Parse(string(avroSchemaJSON(final)))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for i, row := range rows {
		out, err := transcode(nil, &avroReader{b: row}, types[i], final)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		var m map[string]any
		if err := avro.Unmarshal(parsed, out, &m); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		got = append(got, m)
	}
	if got[0]["n"] != 1.0 || got[1]["n"] != 7.0 || got[2]["n"] != 2.5 || got[0]["extra"] != nil {
		t.Errorf("rows %v", got)
	}
	if tags := got[2]["tags"].([]any); len(tags) != 2 || tags[0] != "b" || tags[1] != nil {
		t.Errorf("tags %v", got[2]["tags"])
	}
}

// JSON with a Connect schema is what Kafka's JsonConverter
// (schemas.enable=false) writes, as Confluent's JsonFormat: fields in
// schema order, defaults for absent fields, Java's number rendering, base64
// bytes and decimals, logical types as numbers.
func TestSchemaJSONAsJsonConverter(t *testing.T) {
	got, err := appendSchemaJSON(nil, orderSchema(), orderValue(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":1,"qty":-3,"small":null,"price":"MDk=","day":19723,"at":1704067200000,"t":3600000,"note":"none","tags":["a"],"attrs":null,` +
		`"counts":[[1,2]],"addr":{"city":"P"},"raw":"AQI=","ratio":0.5,"score":1.0E7,"ok":true}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, _ = appendSchemaJSON(nil, orderSchema(), orderValue(), true)
	if !strings.Contains(string(got), `"price":123.45,`) {
		t.Errorf("NUMERIC decimal: %s", got)
	}
	if !json.Valid(got) {
		t.Errorf("not JSON: %s", got)
	}
	neg, _ := appendSchemaJSON(nil, decimalSchema("0", false), connect.Decimal{Unscaled: big.NewInt(-129)}, false)
	if string(neg) != `"/38="` { // -129 is ff 7f
		t.Errorf("negative decimal %s", neg)
	}
	if _, err := appendSchemaJSON(nil, &connect.Schema{Type: connect.SchemaInt32}, nil, false); err == nil {
		t.Error("null for a required int32 accepted")
	}
}

// Doubles and floats print as Java's Double.toString and Float.toString.
func TestJavaFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {1.5, 64, "1.5"}, {100, 64, "100.0"}, {0.001, 64, "0.001"}, {0.0001, 64, "1.0E-4"},
		{1234567, 64, "1234567.0"}, {1e7, 64, "1.0E7"}, {12345678.9, 64, "1.23456789E7"}, {-2.5e-5, 64, "-2.5E-5"},
		{0, 64, "0.0"}, {math.Copysign(0, -1), 64, "-0.0"}, {math.NaN(), 64, "NaN"}, {math.Inf(-1), 64, "-Infinity"},
		{0.1, 64, "0.1"}, {float64(float32(0.1)), 32, "0.1"}, {1.0 / 3, 64, "0.3333333333333333"}, {1e21, 64, "1.0E21"},
	} {
		if got := string(appendJavaFloat(nil, c.f, c.bits)); got != c.want {
			t.Errorf("%v (%d bits): %s, want %s", c.f, c.bits, got, c.want)
		}
	}
}

// The container file's bytes depend only on its rows and key: a replay
// writes the same object.
func TestAvroObjectDeterministic(t *testing.T) {
	rt, _ := fromConnect(orderSchema(), true)
	task := &sinkTask{s: &settings{avroCodec: "deflate"}}
	build := func() []byte {
		s := &stream{buf: newSpillBuf(&budget{limit: 1 << 20}, t.TempDir())}
		defer s.release()
		for i := 0; i < 3000; i++ {
			enc, err := appendAvro(nil, rt, orderValue())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.add(enc, rt); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		if err := task.rowObject(&out, AvroFormat, s, "k", ""); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	a, b := build(), build()
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same rows differ")
	}
	_, rows := readAvro(t, a)
	if len(rows) != 3000 {
		t.Fatalf("%d rows", len(rows))
	}
}

// Parquet has no empty group: a struct without fields is refused when the
// record arrives, as is a value that is not a struct.
func TestParquetWritable(t *testing.T) {
	for v, want := range map[string]string{`{"a":1}`: "", `{}`: "without fields", `{"a":{}}`: `field "a"`, `"s"`: "needs struct values", `{"a":[{}]}`: "without fields"} {
		var x any
		d := json.NewDecoder(strings.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&x); err != nil {
			t.Fatal(err)
		}
		rt, err := derive(x)
		if err != nil {
			t.Fatal(err)
		}
		err = parquetWritable(rt)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", v, err, want)
		}
	}
}

// Equal schemas have equal ids, also with a Decimal default parsed twice.
func TestConnectSchemaID(t *testing.T) {
	a, b := decimalSchema("2", true), decimalSchema("2", true)
	a.Default = connect.Decimal{Unscaled: big.NewInt(5), Scale: 2}
	b.Default = connect.Decimal{Unscaled: big.NewInt(5), Scale: 2}
	if connectSchemaID(a) != connectSchemaID(b) {
		t.Errorf("%s != %s", connectSchemaID(a), connectSchemaID(b))
	}
	b.Default = connect.Decimal{Unscaled: big.NewInt(6), Scale: 2}
	if connectSchemaID(a) == connectSchemaID(b) {
		t.Error("different defaults, same id")
	}
	if c := orderSchema(); connectSchemaID(c) != connectSchemaID(orderSchema()) {
		t.Error("equal schemas, different ids")
	}
}

// A decimal's text is read at the schema's scale, exactly or not at all.
func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  string // unscaled; "" for an error
	}{
		{"1.5", 2, "150"}, {"-12.340", 3, "-12340"}, {"1e3", 0, "1000"}, {"1200", -2, "12"},
		{"1.505", 2, ""}, {"1250", -2, ""}, {"x", 0, ""},
	} {
		d, err := parseDecimal(c.in, c.scale)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("parseDecimal(%q, %d) = %v, want an error", c.in, c.scale, d)
		case c.want != "" && (err != nil || d.Unscaled.String() != c.want || int(d.Scale) != c.scale):
			t.Errorf("parseDecimal(%q, %d) = %v, %v; want unscaled %s", c.in, c.scale, d, err, c.want)
		}
	}
}
