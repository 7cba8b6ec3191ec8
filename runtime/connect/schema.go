package connect

// Schema types, as Kafka Connect's Schema.Type names them in JSON.
const (
	SchemaInt8    = "int8"
	SchemaInt16   = "int16"
	SchemaInt32   = "int32"
	SchemaInt64   = "int64"
	SchemaFloat32 = "float32"
	SchemaFloat64 = "float64"
	SchemaBoolean = "boolean"
	SchemaString  = "string"
	SchemaBytes   = "bytes"
	SchemaArray   = "array"
	SchemaMap     = "map"
	SchemaStruct  = "struct"
)

// Schema is a Kafka Connect schema. A source task may give one with a key
// or value (SourceRecord.KeySchema, ValueSchema); a converter that writes
// schemas (JsonConverter with schemas.enable=true) puts it in the
// record, the others ignore it. Values keep their Go shape: a struct is a
// map[string]any, int64 an int64, and so on.
type Schema struct {
	Type     string
	Optional bool
	Name     string
	Version  int
	Doc      string
	Fields   []Field // struct
	Items    *Schema // array
	Keys     *Schema // map
	Values   *Schema // map
}

// Field is one field of a struct schema.
type Field struct {
	Name   string
	Schema *Schema
}

// JSON renders the schema as JsonConverter writes it in the "schema" of
// its envelope.
func (s *Schema) JSON() map[string]any {
	if s == nil {
		return nil
	}
	out := map[string]any{"type": s.Type, "optional": s.Optional}
	if s.Name != "" {
		out["name"] = s.Name
	}
	if s.Version != 0 {
		out["version"] = s.Version
	}
	if s.Doc != "" {
		out["doc"] = s.Doc
	}
	switch s.Type {
	case SchemaStruct:
		fields := make([]any, len(s.Fields))
		for i, f := range s.Fields {
			fm := f.Schema.JSON()
			fm["field"] = f.Name
			fields[i] = fm
		}
		out["fields"] = fields
	case SchemaArray:
		out["items"] = s.Items.JSON()
	case SchemaMap:
		out["keys"] = s.Keys.JSON()
		out["values"] = s.Values.JSON()
	}
	return out
}

// SchemaConverter is a Converter that can write a value's schema with it
// (JsonConverter). The runtime uses it for source records that carry a
// schema.
type SchemaConverter interface {
	Converter
	// FromSchemaAndValue converts value, described by schema, into raw
	// bytes.
	FromSchemaAndValue(topic string, schema *Schema, value any) ([]byte, error)
}
