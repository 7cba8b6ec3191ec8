package s3sink

import (
	"fmt"
	"maps"
	"strings"

	"github.com/ferryhq/ferry/runtime/connect"
)

// schema.compatibility, as Confluent's StorageSchemaCompatibility applies
// it to records with a Connect schema. An object's schema is its first
// record's. With NONE any other schema cuts the object. With BACKWARD and
// FULL a record of a newer version (or of an incompatible schema) cuts it,
// and one of the same or an older version is projected onto the object's
// schema (fields it lacks take their defaults) and written under it;
// FORWARD is the same with older and newer swapped. Those three need every
// schema to carry a version.

// compatibility decides for a record of schema rec in an object of schema
// cur: cut the object, or project the record onto cur.
func (s *settings) compatibility(rec, cur *connect.Schema) (cut, project bool, err error) {
	if s.compat == "NONE" {
		return true, false, nil
	}
	if rec.Version == 0 || cur.Version == 0 {
		return false, false, fmt.Errorf("%s=%s needs a version in every schema; this record's schema %q has version %d and its object's %d",
			KeySchemaCompat, s.compat, rec.Name, rec.Version, cur.Version)
	}
	if incompatible(rec, cur) {
		return true, false, nil
	}
	if s.compat == "FORWARD" {
		return rec.Version < cur.Version, rec.Version >= cur.Version, nil
	}
	return rec.Version > cur.Version, rec.Version <= cur.Version, nil
}

// promotable reports whether values of type a widen to b (int8 up to
// float64).
func promotable(a, b string) bool {
	order := []string{connect.SchemaInt8, connect.SchemaInt16, connect.SchemaInt32, connect.SchemaInt64, connect.SchemaFloat32, connect.SchemaFloat64}
	ia, ib := -1, -1
	for i, t := range order {
		if t == a {
			ia = i
		}
		if t == b {
			ib = i
		}
	}
	return ia >= 0 && ib >= ia
}

// userParams are a schema's parameters less the ones AvroData adds to
// carry Avro docs and defaults.
func userParams(p map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		if !strings.HasPrefix(k, avroNamespace+".") && !strings.HasPrefix(k, "connect.record.doc") {
			out[k] = v
		}
	}
	return out
}

// incompatible reports whether a record of schema orig cannot be projected
// onto cur (storage-common's checkSchemaCompatibility).
func incompatible(orig, cur *connect.Schema) bool {
	switch {
	case orig.Type != cur.Type && !promotable(orig.Type, cur.Type):
		return true
	case orig.Name != cur.Name:
		return true
	case !maps.Equal(userParams(orig.Parameters), userParams(cur.Parameters)):
		return true
	case orig.Optional && !cur.Optional && cur.Default == nil:
		return true
	}
	switch orig.Type {
	case connect.SchemaStruct:
		for _, f := range orig.Fields {
			if cf := cur.Field(f.Name); cf != nil && incompatible(f.Schema, cf.Schema) {
				return true
			}
		}
		for _, f := range cur.Fields {
			if orig.Field(f.Name) == nil && !f.Schema.Optional && f.Schema.Default == nil {
				return true
			}
		}
	case connect.SchemaArray:
		return incompatible(orig.Items, cur.Items)
	case connect.SchemaMap:
		return incompatible(orig.Keys, cur.Keys) || incompatible(orig.Values, cur.Values)
	}
	return false
}

// project returns v, of schema src, as a value of schema dst (Kafka's
// SchemaProjector): struct fields dst lacks are dropped, fields src lacks
// take dst's default (or null when optional), numbers widen.
func project(src *connect.Schema, v any, dst *connect.Schema) (any, error) {
	if v == nil {
		switch {
		case dst.Default != nil:
			return dst.Default, nil
		case dst.Optional:
			return nil, nil
		}
		return nil, fmt.Errorf("null for a required %s", dst.Type)
	}
	switch dst.Type {
	case connect.SchemaStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%T is not a struct", v)
		}
		out := make(map[string]any, len(dst.Fields))
		for _, f := range dst.Fields {
			sf := src.Field(f.Name)
			if sf == nil {
				if f.Schema.Default == nil && !f.Schema.Optional {
					return nil, fmt.Errorf("required field %q is missing from the record's schema", f.Name)
				}
				out[f.Name] = f.Schema.Default
				continue
			}
			pv, err := project(sf.Schema, m[f.Name], f.Schema)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			out[f.Name] = pv
		}
		return out, nil
	case connect.SchemaArray:
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%T is not an array", v)
		}
		out := make([]any, len(a))
		for i, e := range a {
			pv, err := project(src.Items, e, dst.Items)
			if err != nil {
				return nil, err
			}
			out[i] = pv
		}
		return out, nil
	case connect.SchemaMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				pv, err := project(src.Values, e, dst.Values)
				if err != nil {
					return nil, err
				}
				out[k] = pv
			}
			return out, nil
		}
		pairs, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%T is not a map", v)
		}
		out := make([]any, len(pairs))
		for i, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return nil, fmt.Errorf("map entry: want a [key, value] pair")
			}
			k, err := project(src.Keys, kv[0], dst.Keys)
			if err != nil {
				return nil, err
			}
			e, err := project(src.Values, kv[1], dst.Values)
			if err != nil {
				return nil, err
			}
			out[i] = []any{k, e}
		}
		return out, nil
	}
	// Primitives (numbers widen as they are written).
	return v, nil
}
