package convert

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/ferryhq/ferry/runtime/connect"
)

// The JsonConverter's envelope is written in Kafka's order: "schema" then
// "payload"; inside a schema, "type", then "fields" (or "items", or "keys"
// and "values"), "optional", "name", "version", "doc", and a struct field's
// "field" last (Kafka's JsonConverter.asJsonSchema); a struct payload's
// fields in the schema's order (convertToJson). Readers that compare bytes,
// or people reading records, see what Kafka Connect would have written.

// renderedSchema is a schema with its JSON.
type renderedSchema struct {
	s    *connect.Schema
	json []byte
}

var nullSchema = []byte("null")

// schemaJSON renders s as the envelope's "schema"; nil is null.
func schemaJSON(s *connect.Schema) []byte {
	var b bytes.Buffer
	writeSchema(&b, s, "")
	return b.Bytes()
}

// envelope renders {"schema":schema,"payload":v}, schema being s's JSON.
func envelope(schema []byte, s *connect.Schema, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"schema":`)
	b.Write(schema)
	b.WriteString(`,"payload":`)
	if err := writePayload(&b, s, v); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeSchema(b *bytes.Buffer, s *connect.Schema, field string) {
	if s == nil {
		b.WriteString("null")
		return
	}
	b.WriteString(`{"type":`)
	b.WriteString(strconv.Quote(s.Type))
	switch s.Type {
	case connect.SchemaStruct:
		b.WriteString(`,"fields":[`)
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			writeSchema(b, f.Schema, f.Name)
		}
		b.WriteByte(']')
	case connect.SchemaArray:
		b.WriteString(`,"items":`)
		writeSchema(b, s.Items, "")
	case connect.SchemaMap:
		b.WriteString(`,"keys":`)
		writeSchema(b, s.Keys, "")
		b.WriteString(`,"values":`)
		writeSchema(b, s.Values, "")
	}
	b.WriteString(`,"optional":`)
	b.WriteString(strconv.FormatBool(s.Optional))
	if s.Name != "" {
		b.WriteString(`,"name":`)
		writeString(b, s.Name)
	}
	if s.Version != 0 {
		b.WriteString(`,"version":`)
		b.WriteString(strconv.Itoa(s.Version))
	}
	if s.Doc != "" {
		b.WriteString(`,"doc":`)
		writeString(b, s.Doc)
	}
	if field != "" {
		b.WriteString(`,"field":`)
		writeString(b, field)
	}
	b.WriteByte('}')
}

// writePayload writes v; a struct's fields go in its schema's order (a
// field the value lacks is null, as Kafka writes an unset optional field),
// and fields the schema does not name are an error, as in Kafka.
func writePayload(b *bytes.Buffer, s *connect.Schema, v any) error {
	if s != nil && v != nil {
		switch s.Type {
		case connect.SchemaStruct:
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("struct schema %q: value is a %T, not an object", s.Name, v)
			}
			if len(m) > len(s.Fields) {
				return fmt.Errorf("struct schema %q: the value has fields the schema does not name", s.Name)
			}
			b.WriteByte('{')
			for i, f := range s.Fields {
				if i > 0 {
					b.WriteByte(',')
				}
				writeString(b, f.Name)
				b.WriteByte(':')
				if err := writePayload(b, f.Schema, m[f.Name]); err != nil {
					return fmt.Errorf("field %s: %w", f.Name, err)
				}
			}
			b.WriteByte('}')
			return nil
		case connect.SchemaArray:
			if items, ok := v.([]any); ok {
				b.WriteByte('[')
				for i, it := range items {
					if i > 0 {
						b.WriteByte(',')
					}
					if err := writePayload(b, s.Items, it); err != nil {
						return err
					}
				}
				b.WriteByte(']')
				return nil
			}
		}
	}
	out, err := Marshal(v)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := Marshal(s) // a string always encodes
	b.Write(out)
}
