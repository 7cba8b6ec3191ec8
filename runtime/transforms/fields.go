package transforms

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// insertField is InsertField$Key / InsertField$Value.
type insertField struct {
	side                                        side
	topic, partition, offset, timestamp, static insertSpec
	staticValue                                 string
	hasStaticValue                              bool
	cache                                       schemaCache
}

var _ connect.Transform = (*insertField)(nil)

// insertSpec is an inserted field: its name, and whether its schema is
// optional. Kafka's suffixes: "!" makes a field required, "?" (or none)
// optional.
type insertSpec struct {
	name     string
	optional bool
}

func parseInsertSpec(v string) insertSpec {
	v = strings.TrimSpace(v)
	switch {
	case strings.HasSuffix(v, "!"):
		return insertSpec{name: strings.TrimSuffix(v, "!")}
	case strings.HasSuffix(v, "?"):
		return insertSpec{name: strings.TrimSuffix(v, "?"), optional: true}
	}
	return insertSpec{name: v, optional: true}
}

func newInsertField(o *opts, s side) connect.Transform {
	t := &insertField{
		side:      s,
		topic:     parseInsertSpec(o.str("topic.field", "")),
		partition: parseInsertSpec(o.str("partition.field", "")),
		offset:    parseInsertSpec(o.str("offset.field", "")),
		timestamp: parseInsertSpec(o.str("timestamp.field", "")),
		static:    parseInsertSpec(o.str("static.field", "")),
	}
	t.staticValue, t.hasStaticValue = o.props["static.value"]
	return t
}

func (t *insertField) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil // tombstones pass unchanged, as in Kafka
	}
	if sc := t.side.schema(r); sc != nil {
		return t.applyWithSchema(r, sc, v)
	}
	m, err := requireMap(v, "field insertion")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m)+5)
	for k, x := range m {
		out[k] = x
	}
	if t.topic.name != "" {
		out[t.topic.name] = r.Topic
	}
	if t.partition.name != "" && r.Partition >= 0 {
		out[t.partition.name] = r.Partition
	}
	if t.offset.name != "" {
		if r.Offset < 0 {
			return nil, fmt.Errorf("only SinkRecord supported for [field insertion], found: SourceRecord")
		}
		out[t.offset.name] = r.Offset
	}
	if t.timestamp.name != "" && !r.Timestamp.IsZero() {
		out[t.timestamp.name] = r.Timestamp.UnixMilli()
	}
	if t.static.name != "" && t.hasStaticValue {
		out[t.static.name] = t.staticValue
	}
	t.side.set(r, out)
	return r, nil
}

// applyWithSchema inserts into a struct: the schema gains the fields
// (topic string, partition int32, offset int64, timestamp Timestamp, static
// string), optional unless named with "!", as Kafka's makeUpdatedSchema.
func (t *insertField) applyWithSchema(r *connect.Record, sc *connect.Schema, v any) (*connect.Record, error) {
	m, err := requireStruct(sc, v, "field insertion")
	if err != nil {
		return nil, err
	}
	upd, err := t.cache.get(sc, func() (*connect.Schema, error) {
		out := structLike(sc)
		out.Fields = append(make([]connect.Field, 0, len(sc.Fields)+5), sc.Fields...)
		for _, f := range []struct {
			spec insertSpec
			s    func(bool) *connect.Schema
		}{
			{t.topic, func(o bool) *connect.Schema { return primitive(connect.SchemaString, o) }},
			{t.partition, func(o bool) *connect.Schema { return primitive(connect.SchemaInt32, o) }},
			{t.offset, func(o bool) *connect.Schema { return primitive(connect.SchemaInt64, o) }},
			{t.timestamp, func(o bool) *connect.Schema { return logicalSchema(connect.TimestampSchemaName, o) }},
			{t.static, func(o bool) *connect.Schema { return primitive(connect.SchemaString, o) }},
		} {
			if f.spec.name == "" {
				continue
			}
			if err := addField(out, f.spec.name, f.s(f.spec.optional)); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(upd.Fields))
	for k, x := range m {
		out[k] = x
	}
	put := func(spec insertSpec, val any) error {
		if spec.name == "" {
			return nil
		}
		if val == nil && !spec.optional {
			return fmt.Errorf("invalid value: null used for required field %q", spec.name)
		}
		out[spec.name] = val
		return nil
	}
	var partition, ts, static any
	if r.Partition >= 0 {
		partition = r.Partition
	}
	if t.offset.name != "" && r.Offset < 0 {
		return nil, fmt.Errorf("only SinkRecord supported for [field insertion], found: SourceRecord")
	}
	if !r.Timestamp.IsZero() {
		ts = time.UnixMilli(r.Timestamp.UnixMilli()).UTC()
	}
	if t.hasStaticValue {
		static = t.staticValue
	}
	for _, f := range []struct {
		spec insertSpec
		val  any
	}{{t.topic, r.Topic}, {t.partition, partition}, {t.offset, r.Offset}, {t.timestamp, ts}, {t.static, static}} {
		if err := put(f.spec, f.val); err != nil {
			return nil, err
		}
	}
	t.side.setWithSchema(r, upd, out)
	return r, nil
}

// replaceField is ReplaceField$Key / ReplaceField$Value.
type replaceField struct {
	side             side
	include, exclude map[string]bool
	renames          map[string]string
	cache            schemaCache
}

var _ connect.Transform = (*replaceField)(nil)

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

func newReplaceField(o *opts, s side) connect.Transform {
	t := &replaceField{side: s, renames: map[string]string{}}
	// exclude/include replaced blacklist/whitelist (KIP-629); the old names
	// are still read when the new ones are absent.
	ex, in := "exclude", "include"
	if !o.has(ex) && o.has("blacklist") {
		ex = "blacklist"
	}
	if !o.has(in) && o.has("whitelist") {
		in = "whitelist"
	}
	t.exclude, t.include = setOf(o.list(ex)), setOf(o.list(in))
	for _, m := range o.list("renames") {
		parts := strings.Split(m, ":")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			o.bad("renames", "invalid rename mapping: %s", m)
			continue
		}
		t.renames[parts[0]] = parts[1]
	}
	return t
}

// keeps reports whether field k stays.
func (t *replaceField) keeps(k string) bool {
	return !t.exclude[k] && (len(t.include) == 0 || t.include[k])
}

func (t *replaceField) renamed(k string) string {
	if n, ok := t.renames[k]; ok {
		return n
	}
	return k
}

func (t *replaceField) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	if sc := t.side.schema(r); sc != nil {
		m, err := requireStruct(sc, v, "field replacement")
		if err != nil {
			return nil, err
		}
		upd, err := t.cache.get(sc, func() (*connect.Schema, error) {
			out := structLike(sc)
			for _, f := range sc.Fields {
				if t.keeps(f.Name) {
					if err := addField(out, t.renamed(f.Name), f.Schema); err != nil {
						return nil, err
					}
				}
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(upd.Fields))
		for _, f := range sc.Fields {
			if t.keeps(f.Name) {
				out[t.renamed(f.Name)] = m[f.Name]
			}
		}
		t.side.setWithSchema(r, upd, out)
		return r, nil
	}
	m, err := requireMap(v, "field replacement")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if !t.keeps(k) {
			continue
		}
		out[t.renamed(k)] = x
	}
	t.side.set(r, out)
	return r, nil
}

// maskField is MaskField$Key / MaskField$Value.
type maskField struct {
	side        side
	fields      []string
	replacement *string
}

var _ connect.Transform = (*maskField)(nil)

func newMaskField(o *opts, s side) connect.Transform {
	t := &maskField{side: s, fields: o.requiredList("fields")}
	if v, ok := o.props["replacement"]; ok {
		if v == "" {
			o.bad("replacement", "string may not be empty")
		}
		t.replacement = &v
	}
	return t
}

func (t *maskField) Apply(r *connect.Record) (*connect.Record, error) {
	// As in Kafka, a null key or value is an error (no tombstone pass-through).
	sc := t.side.schema(r)
	m, err := requireFields(sc, t.side.get(r), "mask fields")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	for _, f := range t.fields {
		if sc != nil {
			fs := sc.Field(f)
			if fs == nil {
				continue // Kafka masks the schema's fields that are listed
			}
			if fs.Schema.Type == connect.SchemaStruct && m[f] != nil {
				return nil, fmt.Errorf("field %q: cannot mask value of type Struct", f)
			}
		}
		mv, err := t.mask(m[f])
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
		out[f] = mv
	}
	t.side.set(r, out) // the shape is unchanged: a schema stays as it was
	return r, nil
}

// mask returns the type's empty value, or the replacement parsed as the
// value's type (numbers and strings only, as in Kafka).
func (t *maskField) mask(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t.replacement == nil {
		switch x := v.(type) {
		case bool:
			return false, nil
		case json.Number:
			return json.Number("0"), nil
		case float64:
			return float64(0), nil
		case float32:
			return float32(0), nil
		case int8:
			return int8(0), nil
		case int16:
			return int16(0), nil
		case int32:
			return int32(0), nil
		case int64:
			return int64(0), nil
		case int:
			return 0, nil
		case string:
			return "", nil
		case time.Time:
			return time.UnixMilli(0).UTC(), nil
		case connect.Decimal:
			return connect.Decimal{Unscaled: new(big.Int), Scale: x.Scale}, nil
		case []any:
			return []any{}, nil
		case map[string]any:
			return map[string]any{}, nil
		case []byte:
			return []byte{}, nil
		}
		return nil, fmt.Errorf("cannot mask value of type %T", v)
	}
	rep := *t.replacement
	numErr := func() error { return fmt.Errorf("unable to convert %s (string) to number", rep) }
	switch x := v.(type) {
	case string:
		return rep, nil
	case json.Number:
		if _, err := strconv.ParseFloat(rep, 64); err != nil {
			return nil, numErr()
		}
		return json.Number(rep), nil
	case float64, float32:
		f, err := strconv.ParseFloat(rep, 64)
		if err != nil {
			return nil, numErr()
		}
		return castTo(f, typeKind(v))
	case int8, int16, int32, int64, int:
		n, err := strconv.ParseInt(rep, 10, 64)
		if err != nil {
			return nil, numErr()
		}
		return castTo(n, typeKind(v))
	case connect.Decimal:
		r, ok := new(big.Rat).SetString(rep)
		if !ok {
			return nil, numErr()
		}
		d, ok := connect.DecimalFromRat(r, x.Scale)
		if !ok {
			return nil, fmt.Errorf("replacement %s does not fit the decimal's scale %d", rep, x.Scale)
		}
		return d, nil
	}
	return nil, fmt.Errorf("cannot mask value of type %T with a custom replacement", v)
}

// extractField is ExtractField$Key / ExtractField$Value.
type extractField struct {
	side side
	path []string
}

var _ connect.Transform = (*extractField)(nil)

func newExtractField(o *opts, s side) connect.Transform {
	f := o.required("field")
	t := &extractField{side: s, path: []string{f}}
	// field.syntax.version=V2 (KIP-821) reads dots as nesting.
	if o.oneOf("field.syntax.version", "V1", "V1", "V2") == "V2" {
		t.path = strings.Split(f, ".")
	}
	return t
}

func (t *extractField) Apply(r *connect.Record) (*connect.Record, error) {
	if sc := t.side.schema(r); sc != nil {
		return t.applyWithSchema(r, sc)
	}
	var cur any = t.side.get(r)
	for _, p := range t.path {
		if cur == nil {
			break
		}
		m, err := requireMap(cur, "field extraction")
		if err != nil {
			return nil, err
		}
		cur = m[p]
	}
	t.side.set(r, cur)
	return r, nil
}

// applyWithSchema extracts a field of a struct: the result's schema is the
// field's (Kafka's fieldPath.fieldFrom), its value the field's, or null
// when a struct on the way is null.
func (t *extractField) applyWithSchema(r *connect.Record, sc *connect.Schema) (*connect.Record, error) {
	cur := t.side.get(r)
	fs := sc
	for _, p := range t.path {
		if fs.Type != connect.SchemaStruct {
			return nil, fmt.Errorf("only Struct objects supported for [field extraction], found: %s", fs.Type)
		}
		f := fs.Field(p)
		if f == nil {
			return nil, fmt.Errorf("unknown field: %s", strings.Join(t.path, "."))
		}
		if cur != nil {
			m, err := requireStruct(fs, cur, "field extraction")
			if err != nil {
				return nil, err
			}
			cur = m[p]
		}
		fs = f.Schema
	}
	t.side.setWithSchema(r, fs, cur)
	return r, nil
}

// hoistField is HoistField$Key / HoistField$Value.
type hoistField struct {
	side  side
	field string
	cache schemaCache
}

var _ connect.Transform = (*hoistField)(nil)

func newHoistField(o *opts, s side) connect.Transform {
	return &hoistField{side: s, field: o.required("field")}
}

func (t *hoistField) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if sc := t.side.schema(r); sc != nil {
		// A struct of one field, of the value's schema (Kafka's
		// SchemaBuilder.struct().field(fieldName, schema)).
		upd, _ := t.cache.get(sc, func() (*connect.Schema, error) {
			return &connect.Schema{Type: connect.SchemaStruct, Fields: []connect.Field{{Name: t.field, Schema: sc}}}, nil
		})
		t.side.setWithSchema(r, upd, map[string]any{t.field: v})
		return r, nil
	}
	t.side.set(r, map[string]any{t.field: v})
	return r, nil
}

// valueToKey is ValueToKey: the key becomes a map of the named fields of
// the value.
type valueToKey struct {
	fields []string
	cache  schemaCache
}

var _ connect.Transform = (*valueToKey)(nil)

func newValueToKey(o *opts) connect.Transform {
	return &valueToKey{fields: o.requiredList("fields")}
}

func (t *valueToKey) Apply(r *connect.Record) (*connect.Record, error) {
	const purpose = "copying fields from value to key"
	if sc := r.ValueSchema; sc != nil {
		m, err := requireStruct(sc, r.Value, purpose)
		if err != nil {
			return nil, err
		}
		// The key's schema: a struct of the value's fields, with their
		// schemas, in the order listed.
		ks, err := t.cache.get(sc, func() (*connect.Schema, error) {
			out := &connect.Schema{Type: connect.SchemaStruct}
			for _, f := range t.fields {
				vf := sc.Field(f)
				if vf == nil {
					return nil, fmt.Errorf("field does not exist: %s", f)
				}
				if err := addField(out, f, vf.Schema); err != nil {
					return nil, err
				}
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		key := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			key[f] = m[f]
		}
		keySide.setWithSchema(r, ks, key)
		return r, nil
	}
	m, err := requireMap(r.Value, purpose)
	if err != nil {
		return nil, err
	}
	key := make(map[string]any, len(t.fields))
	for _, f := range t.fields {
		key[f] = m[f]
	}
	// A schemaless value makes a schemaless key.
	keySide.setWithSchema(r, nil, key)
	return r, nil
}

// flatten is Flatten$Key / Flatten$Value.
type flatten struct {
	side      side
	delimiter string
	cache     schemaCache
}

var _ connect.Transform = (*flatten)(nil)

func newFlatten(o *opts, s side) connect.Transform {
	return &flatten{side: s, delimiter: o.str("delimiter", ".")}
}

func (t *flatten) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	if sc := t.side.schema(r); sc != nil {
		m, err := requireStruct(sc, v, "flattening")
		if err != nil {
			return nil, err
		}
		upd, err := t.cache.get(sc, func() (*connect.Schema, error) {
			out := structLike(sc)
			out.Optional = sc.Optional
			var parentDefault map[string]any
			if d, ok := sc.Default.(map[string]any); ok {
				parentDefault = d
			}
			if err := t.flattenSchema(out, "", sc, sc.Optional, parentDefault); err != nil {
				return nil, err
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(upd.Fields))
		t.flattenStruct(out, "", sc, m)
		t.side.setWithSchema(r, upd, out)
		return r, nil
	}
	m, err := requireMap(v, "flattening")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	t.flatten(out, "", m)
	t.side.set(r, out)
	return r, nil
}

func (t *flatten) name(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + t.delimiter + field
}

// flattenSchema adds sc's fields to out, a nested struct's under its
// name: a field is optional when it or a struct around it is, and keeps its
// default or takes its part of the default of the struct around it (Kafka's
// Flatten.buildUpdatedSchema).
func (t *flatten) flattenSchema(out *connect.Schema, prefix string, sc *connect.Schema, optional bool, parentDefault map[string]any) error {
	for _, f := range sc.Fields {
		name := t.name(prefix, f.Name)
		fieldOptional := optional || f.Schema.Optional
		def := f.Schema.Default
		if def == nil && parentDefault != nil {
			def = parentDefault[f.Name]
		}
		if f.Schema.Type == connect.SchemaStruct {
			sub, _ := def.(map[string]any)
			if err := t.flattenSchema(out, name, f.Schema, fieldOptional, sub); err != nil {
				return err
			}
			continue
		}
		fs := *f.Schema
		fs.Optional, fs.Default = fieldOptional, def
		if err := addField(out, name, &fs); err != nil {
			return err
		}
	}
	return nil
}

// flattenStruct copies m's fields into out, a nested struct's under its
// name (a null nested struct makes its fields null).
func (t *flatten) flattenStruct(out map[string]any, prefix string, sc *connect.Schema, m map[string]any) {
	for _, f := range sc.Fields {
		name := t.name(prefix, f.Name)
		if f.Schema.Type == connect.SchemaStruct {
			sub, _ := m[f.Name].(map[string]any)
			t.flattenStruct(out, name, f.Schema, sub)
			continue
		}
		out[name] = m[f.Name] // nil when m is nil
	}
}

func (t *flatten) flatten(out map[string]any, prefix string, m map[string]any) {
	for k, v := range m {
		name := t.name(prefix, k)
		if sub, ok := v.(map[string]any); ok {
			t.flatten(out, name, sub)
			continue
		}
		out[name] = v
	}
}
