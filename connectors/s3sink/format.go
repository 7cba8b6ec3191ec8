package s3sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/brotli"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Record-oriented formats. Ferry's converters hand the sink values without
// a Connect schema (JsonConverter with schemas.enable=true applies the
// schema to the payload and drops it), so the sink derives each object's
// schema from its records: a map becomes a record of its keys in name order,
// every field optional; integers are long (int for int8/16/32), other
// numbers double, time.Time timestamp-millis. A record whose schema differs
// from its object's commits the partition's open objects first, as
// Confluent's connector does on a schema change with
// schema.compatibility=NONE — so the cut is deterministic and exactly-once
// still holds.
const (
	AvroFormat    = "io.confluent.connect.s3.format.avro.AvroFormat"
	ParquetFormat = "io.confluent.connect.s3.format.parquet.ParquetFormat"

	KeyAvroCodec    = "avro.codec"
	KeyParquetCodec = "parquet.codec"
)

var avroCodecs = map[string]ocf.CodecName{"null": ocf.Null, "deflate": ocf.Deflate, "snappy": ocf.Snappy, "zstandard": ocf.ZStandard}

// parquetCodecs maps parquet.codec to the codec and Confluent's extension.
var parquetCodecs = map[string]struct {
	codec compress.Codec
	ext   string
}{
	"none": {&uncompressed.Codec{}, ".parquet"}, "snappy": {&snappy.Codec{}, ".snappy.parquet"},
	"gzip": {&gzip.Codec{}, ".gz.parquet"}, "brotli": {&brotli.Codec{}, ".br.parquet"},
	"lz4": {&lz4.Codec{}, ".lz4.parquet"}, "zstd": {&zstd.Codec{}, ".zstd.parquet"},
}

func isRowFormat(f string) bool { return f == AvroFormat || f == ParquetFormat }

// vtype is a derived schema.
type vtype struct {
	kind   string // null boolean int long double string bytes timestamp record array
	fields []vfield
	items  *vtype
}

type vfield struct {
	name string
	typ  *vtype
}

// id renders t as a compact string: equal ids, equal schemas.
func (t *vtype) id() string {
	switch t.kind {
	case "record":
		var b strings.Builder
		b.WriteString("{")
		for i, f := range t.fields {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(f.name + ":" + f.typ.id())
		}
		b.WriteString("}")
		return b.String()
	case "array":
		return "[" + t.items.id() + "]"
	}
	return t.kind
}

// infer derives the schema of v and returns v normalized for the encoders.
func infer(v any) (*vtype, any, error) {
	switch x := v.(type) {
	case nil:
		return &vtype{kind: "null"}, nil, nil
	case bool:
		return &vtype{kind: "boolean"}, x, nil
	case string:
		return &vtype{kind: "string"}, x, nil
	case []byte:
		return &vtype{kind: "bytes"}, x, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return &vtype{kind: "long"}, n, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, nil, fmt.Errorf("number %q: %w", x, err)
		}
		return &vtype{kind: "double"}, f, nil
	case float64:
		return &vtype{kind: "double"}, x, nil
	case float32:
		return &vtype{kind: "double"}, float64(x), nil
	case int64:
		return &vtype{kind: "long"}, x, nil
	case int:
		return &vtype{kind: "long"}, int64(x), nil
	case int32:
		return &vtype{kind: "int"}, x, nil
	case int16:
		return &vtype{kind: "int"}, int32(x), nil
	case int8:
		return &vtype{kind: "int"}, int32(x), nil
	case time.Time:
		return &vtype{kind: "timestamp"}, x.UTC(), nil
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Strings(names)
		t := &vtype{kind: "record"}
		out := make(map[string]any, len(x))
		for _, k := range names {
			ft, fv, err := infer(x[k])
			if err != nil {
				return nil, nil, fmt.Errorf("field %q: %w", k, err)
			}
			t.fields = append(t.fields, vfield{name: k, typ: ft})
			out[k] = fv
		}
		return t, out, nil
	case []any:
		items := &vtype{kind: "null"}
		out := make([]any, len(x))
		for i, e := range x {
			et, ev, err := infer(e)
			if err != nil {
				return nil, nil, err
			}
			if et.kind != "null" {
				if items.kind != "null" && items.id() != et.id() {
					return nil, nil, fmt.Errorf("array mixes %s and %s", items.id(), et.id())
				}
				items = et
			}
			out[i] = ev
		}
		return &vtype{kind: "array", items: items}, out, nil
	}
	return nil, nil, fmt.Errorf("unsupported value type %T", v)
}

// avroSchema renders t as an Avro schema; name names records.
func avroSchema(t *vtype, name string) any {
	switch t.kind {
	case "record":
		fields := make([]any, len(t.fields))
		for i, f := range t.fields {
			ft := avroSchema(f.typ, name+"_"+sanitize(f.name))
			if f.typ.kind != "null" {
				ft = []any{"null", ft}
			}
			fields[i] = map[string]any{"name": sanitize(f.name), "type": ft, "default": nil}
		}
		return map[string]any{"type": "record", "name": name, "fields": fields}
	case "array":
		it := avroSchema(t.items, name+"_item")
		if t.items.kind != "null" {
			it = []any{"null", it}
		}
		return map[string]any{"type": "array", "items": it}
	case "timestamp":
		return map[string]any{"type": "long", "logicalType": "timestamp-millis"}
	}
	return t.kind
}

// sanitize makes a name Avro-legal.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// avroValue renames fields as the schema does.
func avroValue(t *vtype, v any, name string) any {
	switch t.kind {
	case "record":
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for _, f := range t.fields {
			fv := avroValue(f.typ, m[f.name], name+"_"+sanitize(f.name))
			if f.typ.kind == "record" && fv != nil {
				// A map in a union reads as {"type name": value}.
				fv = map[string]any{name + "_" + sanitize(f.name): fv}
			}
			out[sanitize(f.name)] = fv
		}
		return out
	case "array":
		a, _ := v.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			ev := avroValue(t.items, e, name+"_item")
			if t.items.kind == "record" && ev != nil {
				ev = map[string]any{name + "_item": ev}
			}
			out[i] = ev
		}
		return out
	}
	return v
}

// encodeAvro writes rows of schema t as an Avro container file. With
// nullable the file's schema is the union of null and t, so that rows may be
// nil (stored keys).
func encodeAvro(t *vtype, rows []any, codec string, nullable bool) ([]byte, error) {
	const name = "ConnectDefault"
	var sch any = avroSchema(t, name)
	nullable = nullable && t.kind != "null"
	if nullable {
		sch = []any{"null", sch}
	}
	js, err := json.Marshal(sch)
	if err != nil {
		return nil, err
	}
	schema, err := avro.Parse(string(js))
	if err != nil {
		return nil, fmt.Errorf("derived avro schema %s: %w", js, err)
	}
	var buf bytes.Buffer
	enc, err := ocf.NewEncoderWithSchema(schema, &buf, ocf.WithCodec(avroCodecs[codec]))
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		var v any
		if r != nil {
			v = avroValue(t, r, name)
			if nullable && t.kind == "record" {
				v = map[string]any{name: v} // a map in a union reads as {"type name": value}
			}
		}
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("avro encode: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func parquetNode(t *vtype) parquet.Node {
	switch t.kind {
	case "boolean":
		return parquet.Leaf(parquet.BooleanType)
	case "int":
		return parquet.Int(32)
	case "long":
		return parquet.Int(64)
	case "double":
		return parquet.Leaf(parquet.DoubleType)
	case "bytes":
		return parquet.Leaf(parquet.ByteArrayType)
	case "timestamp":
		return parquet.Timestamp(parquet.Millisecond)
	case "record":
		g := parquet.Group{}
		for _, f := range t.fields {
			g[f.name] = parquet.Optional(parquetNode(f.typ))
		}
		return g
	case "array":
		return parquet.List(parquet.Optional(parquetNode(t.items)))
	}
	return parquet.String() // string, and null (no parquet null type)
}

func encodeParquet(t *vtype, rows []any, codec string) ([]byte, error) {
	if t.kind != "record" {
		return nil, fmt.Errorf("ParquetFormat needs struct (map) values, got %s", t.id())
	}
	schema := parquet.NewSchema("ConnectDefault", parquetNode(t))
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[any](&buf, schema, parquet.Compression(parquetCodecs[codec].codec))
	prows := make([]any, len(rows))
	for i, r := range rows {
		prows[i] = parquetValue(t, r)
	}
	if _, err := w.Write(prows); err != nil {
		return nil, fmt.Errorf("parquet encode: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("parquet encode: %w", err)
	}
	return buf.Bytes(), nil
}

// encodeRows renders a row-format object.
func (s *settings) encodeRows(f *openFile) ([]byte, error) {
	if s.format == AvroFormat {
		return encodeAvro(f.schema, f.rows, s.avroCodec, false)
	}
	return encodeParquet(f.schema, f.rows, s.parquetCodec)
}

// Stored keys and headers in Avro and Parquet are Confluent's record views:
// a key is written as it is (Avro, its schema derived as a value's and
// nullable) or in a struct RecordKey{key} (Parquet, whose rows are
// structs); headers as an array of {key, value} with the value as text
// (connect.FormatValue, Kafka's Values.convertToString), in a struct
// RecordHeaders{headers} for Parquet.
var (
	headerType  = &vtype{kind: "array", items: &vtype{kind: "record", fields: []vfield{{"key", &vtype{kind: "string"}}, {"value", &vtype{kind: "string"}}}}}
	headersView = &vtype{kind: "record", fields: []vfield{{"headers", headerType}}}
)

// keyView is the Parquet envelope of keys of schema t.
func keyView(t *vtype) *vtype {
	return &vtype{kind: "record", fields: []vfield{{"key", t}}}
}

// encodeCompanion renders a keys (kind ".keys") or headers object in a row
// format.
func (s *settings) encodeCompanion(kind string, c *companion) ([]byte, error) {
	format, t := s.headersFormat, headerType
	if kind == ".keys" {
		format, t = s.keysFormat, c.schema
		if t == nil {
			t = &vtype{kind: "null"} // every key null
		}
	}
	if format == AvroFormat {
		return encodeAvro(t, c.rows, s.avroCodec, kind == ".keys")
	}
	field, view := "headers", headersView
	if kind == ".keys" {
		field, view = "key", keyView(t)
	}
	rows := make([]any, len(c.rows))
	for i, r := range c.rows {
		rows[i] = map[string]any{field: r}
	}
	return encodeParquet(view, rows, s.parquetCodec)
}

// headerView renders a record's headers as Confluent's header view: a list
// of {key, value} with the value as text (nil when the header has none).
func headerView(hs []connect.Header) []any {
	out := make([]any, len(hs))
	for i, h := range hs {
		var v any
		switch {
		case h.Data != nil:
			v = string(connect.FormatValue(h.Data))
		case h.Value != nil:
			v = string(h.Value)
		}
		out[i] = map[string]any{"key": h.Key, "value": v}
	}
	return out
}

// rowValue derives a record's schema and normalized value.
func rowValue(r *connect.Record) (*vtype, any, error) {
	t, v, err := infer(r.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("value at %s: %w", r.Coordinates(), err)
	}
	return t, v, nil
}

// parquetValue turns leaves into pointers: parquet-go writes an optional
// field's zero value (0, "", false) as null unless it is given a pointer.
func parquetValue(t *vtype, v any) any {
	if v == nil {
		return nil
	}
	switch t.kind {
	case "record":
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for _, f := range t.fields {
			out[f.name] = parquetValue(f.typ, m[f.name])
		}
		return out
	case "array":
		a, _ := v.([]any)
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = parquetValue(t.items, e)
		}
		return out
	}
	switch x := v.(type) {
	case bool:
		return &x
	case int32:
		return &x
	case int64:
		return &x
	case float64:
		return &x
	case string:
		return &x
	case time.Time:
		return &x
	}
	return v
}
