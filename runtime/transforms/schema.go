package transforms

import (
	"fmt"
	"maps"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Schemas. A record whose key or value has a Connect schema (the
// JsonConverter read one, or a source task gave one) is transformed as
// Kafka's transforms transform a Struct: the value is a map[string]any
// holding its struct schema's fields, and a transform that changes its
// shape builds the schema of the result the way Kafka's does (a new struct
// schema with the schema's name, version, doc and parameters; the fields
// in the schema's order). Schemas are shared between records, so they are
// never changed in place; each transform remembers the schema it built for
// the last few input schemas, as Kafka's schemaUpdateCache does.

// schema returns the schema of the part of r the transform works on.
func (s side) schema(r *connect.Record) *connect.Schema {
	if s == keySide {
		return r.KeySchema
	}
	return r.ValueSchema
}

// setWithSchema replaces the key or value and its schema; the raw bytes
// are dropped and encoded again by the runtime.
func (s side) setWithSchema(r *connect.Record, sc *connect.Schema, v any) {
	if s == keySide {
		r.Key, r.KeySchema, r.RawKey = v, sc, nil
	} else {
		r.Value, r.ValueSchema, r.RawValue = v, sc, nil
	}
}

// requireStruct is Kafka's Requirements.requireStruct: with a schema, the
// value must be a struct.
func requireStruct(sc *connect.Schema, v any, purpose string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if sc.Type != connect.SchemaStruct || !ok {
		found := sc.Type
		if !ok {
			found = typeName(v)
		}
		return nil, fmt.Errorf("only Struct objects supported for [%s], found: %s", purpose, found)
	}
	return m, nil
}

// requireFields is requireStruct for a value with a schema (sc non-nil),
// requireMap for one without.
func requireFields(sc *connect.Schema, v any, purpose string) (map[string]any, error) {
	if sc != nil {
		return requireStruct(sc, v, purpose)
	}
	return requireMap(v, purpose)
}

// structLike is Kafka's SchemaUtil.copySchemaBasics(src, SchemaBuilder.struct()):
// a required struct schema with src's name, version, doc and parameters,
// and no fields yet.
func structLike(src *connect.Schema) *connect.Schema {
	return &connect.Schema{Type: connect.SchemaStruct, Name: src.Name, Version: src.Version, Doc: src.Doc, Parameters: maps.Clone(src.Parameters)}
}

// addField appends a field to a struct schema being built, refusing a name
// it already has (Kafka's SchemaBuilder does the same).
func addField(s *connect.Schema, name string, fs *connect.Schema) error {
	if s.Field(name) != nil {
		return fmt.Errorf("cannot create field %q: the schema already has a field of that name", name)
	}
	s.Fields = append(s.Fields, connect.Field{Name: name, Schema: fs})
	return nil
}

// primitive returns a schema of a primitive type.
func primitive(typ string, optional bool) *connect.Schema {
	return &connect.Schema{Type: typ, Optional: optional}
}

// logicalSchema returns Kafka's schema of a logical type (version 1, as
// Date.SCHEMA and the others).
func logicalSchema(name string, optional bool) *connect.Schema {
	typ := connect.SchemaInt32
	if name == connect.TimestampSchemaName {
		typ = connect.SchemaInt64
	}
	return &connect.Schema{Type: typ, Name: name, Version: 1, Optional: optional}
}

// isLogical reports whether s is one of Kafka's logical types.
func isLogical(s *connect.Schema) bool {
	switch s.Name {
	case connect.DecimalSchemaName, connect.DateSchemaName, connect.TimeSchemaName, connect.TimestampSchemaName:
		return true
	}
	return false
}

// schemaCache remembers the schema a transform built for an input schema.
type schemaCache map[*connect.Schema]*connect.Schema

// maxCachedSchemas bounds a schemaCache: a connector's records carry a few
// schemas; when more arrive the cache starts over.
const maxCachedSchemas = 64

// get returns the schema built for in, building it with build once.
func (c *schemaCache) get(in *connect.Schema, build func() (*connect.Schema, error)) (*connect.Schema, error) {
	if out, ok := (*c)[in]; ok {
		return out, nil
	}
	out, err := build()
	if err != nil {
		return nil, err
	}
	if *c == nil || len(*c) >= maxCachedSchemas {
		*c = schemaCache{}
	}
	(*c)[in] = out
	return out, nil
}
