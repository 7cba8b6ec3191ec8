package s3sink

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Row schemas: the schema of an Avro or Parquet object, shaped as Avro
// (Parquet objects take the same schema through parquet-avro's rules, as
// Confluent's ParquetFormat does).
//
// A record that carries a Connect schema (Record.ValueSchema, KeySchema) is
// written under that schema mapped as Confluent's AvroData maps it
// (fromConnect). A record without one gets a schema derived from its value
// (derive), as Confluent's connector cannot (it refuses schemaless values in
// Avro and Parquet); within one object derived schemas widen rather than cut
// (merge): null fits any type, int and long widen to double, a missing field
// or a null makes a field optional, an empty array fits any items.

// kind is an Avro type.
type kind uint8

const (
	kNull kind = iota // derived only: every value seen was null
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kArray
	kMap
)

var kindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "array", "map"}

func (k kind) String() string { return kindNames[k] }

// Avro logical types, as AvroData writes Connect's.
const (
	logicalDecimal   = "decimal"
	logicalDate      = "date"
	logicalTime      = "time-millis"
	logicalTimestamp = "timestamp-millis"
)

// avroNamespace and defaultRecordName name records without a Connect name,
// as AvroData does (ConnectDefault, then ConnectDefault2, ... in schema
// order).
const (
	avroNamespace     = "io.confluent.connect.avro"
	defaultRecordName = "ConnectDefault"
	decimalPrecision  = 64 // AvroData's default when connect.decimal.precision is absent
)

// rtype is one node of a row schema.
type rtype struct {
	kind     kind
	optional bool // a union with null
	nullLast bool // the union is [T, "null"]: optional with a non-null default, as AvroData writes it

	logical          string
	precision, scale int // decimal

	props  []prop      // Avro properties of a non-record type, in order (connect.*, logicalType)
	rec    *recordDef  // kRecord
	items  *rtype      // kArray; nil in a derived schema: no element seen yet (fits any)
	values *rtype      // kMap (string keys)
	conn   connectKind // the Connect type a kInt stands for (int8, int16): values are range-checked
}

type connectKind uint8

const (
	connNone connectKind = iota
	connInt8
	connInt16
)

// recordDef is a record type. Records reached twice through the same
// recordDef are one Avro named type (defined once, then referenced).
type recordDef struct {
	name     string // full name; "" names it ConnectDefault<n> when rendered
	doc      string
	fields   []rfield
	props    []prop
	mapEntry bool // a Connect map with non-string keys: values are [key, value] pairs
}

type rfield struct {
	name  string // Avro name
	src   string // the key of the value's map
	t     *rtype
	def   any             // the value written when the value has none (a Connect default); nil: none
	defJS json.RawMessage // the field's "default" in the schema; nil: none
}

type prop struct {
	k string
	v json.RawMessage
}

func jsonString(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

// nonNull returns t without its union with null.
func (t *rtype) nonNull() *rtype {
	if !t.optional {
		return t
	}
	c := *t
	c.optional, c.nullLast = false, false
	return &c
}

// withNull returns t optional.
func (t *rtype) withNull() *rtype {
	if t.optional || t.kind == kNull {
		return t
	}
	c := *t
	c.optional = true
	return &c
}

// hasOptionalItems reports whether an array anywhere in t has optional
// items: parquet-avro then writes every list in the three-level structure
// (Confluent's ParquetFormat switches off the old two-level one).
func (t *rtype) hasOptionalItems() bool {
	seen := map[*recordDef]bool{}
	var walk func(t *rtype) bool
	walk = func(t *rtype) bool {
		switch t.kind {
		case kRecord:
			if seen[t.rec] {
				return false
			}
			seen[t.rec] = true
			for _, f := range t.rec.fields {
				if walk(f.t) {
					return true
				}
			}
		case kArray:
			return t.items == nil || t.items.optional || t.items.kind == kNull || walk(t.items)
		case kMap:
			return walk(t.values)
		}
		return false
	}
	return walk(t)
}

// ---- Connect schemas, mapped as AvroData maps them.

// connectSchemaID renders s as a string: equal ids, equal schemas (as
// Kafka's ConnectSchema.equals).
func connectSchemaID(s *connect.Schema) string {
	var b strings.Builder
	writeSchemaID(&b, s)
	return b.String()
}

func writeSchemaID(b *strings.Builder, s *connect.Schema) {
	if s == nil {
		b.WriteString("~")
		return
	}
	b.WriteString(s.Type)
	if s.Optional {
		b.WriteString("?")
	}
	if s.Name != "" {
		b.WriteString("<" + s.Name + ">")
	}
	if s.Version != 0 {
		b.WriteString("v" + strconv.Itoa(s.Version))
	}
	if s.Doc != "" {
		b.WriteString("d" + strconv.Quote(s.Doc))
	}
	if len(s.Parameters) > 0 {
		keys := make([]string, 0, len(s.Parameters))
		for k := range s.Parameters {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("p{")
		for _, k := range keys {
			b.WriteString(strconv.Quote(k) + "=" + strconv.Quote(s.Parameters[k]) + ",")
		}
		b.WriteString("}")
	}
	if s.Default != nil {
		// %v, not %#v: a Decimal's *big.Int prints as its number, not
		// its address.
		b.WriteString("=" + strconv.Quote(fmt.Sprintf("%T:%v", s.Default, s.Default)))
	}
	switch s.Type {
	case connect.SchemaStruct:
		b.WriteString("{")
		for _, f := range s.Fields {
			b.WriteString(strconv.Quote(f.Name) + ":")
			writeSchemaID(b, f.Schema)
			b.WriteString(",")
		}
		b.WriteString("}")
	case connect.SchemaArray:
		b.WriteString("[")
		writeSchemaID(b, s.Items)
		b.WriteString("]")
	case connect.SchemaMap:
		b.WriteString("(")
		writeSchemaID(b, s.Keys)
		b.WriteString(",")
		writeSchemaID(b, s.Values)
		b.WriteString(")")
	}
}

// connectMapper maps Connect schemas as AvroData.fromConnectSchema does
// (connect.meta.data=true unless meta is false, no enhanced Avro schema
// support). Equal non-optional structs map to one record, as AvroData's
// schema cache does.
type connectMapper struct {
	meta    bool
	records map[string]*recordDef
}

func fromConnect(s *connect.Schema, meta bool) (*rtype, error) {
	m := &connectMapper{meta: meta, records: map[string]*recordDef{}}
	return m.conv(s)
}

func (m *connectMapper) conv(s *connect.Schema) (*rtype, error) {
	if s == nil {
		return nil, fmt.Errorf("no schema")
	}
	t := &rtype{}
	switch s.Type {
	case connect.SchemaInt8:
		t.kind, t.conn = kInt, connInt8
	case connect.SchemaInt16:
		t.kind, t.conn = kInt, connInt16
	case connect.SchemaInt32:
		t.kind = kInt
	case connect.SchemaInt64:
		t.kind = kLong
	case connect.SchemaFloat32:
		t.kind = kFloat
	case connect.SchemaFloat64:
		t.kind = kDouble
	case connect.SchemaBoolean:
		t.kind = kBoolean
	case connect.SchemaString:
		t.kind = kString
	case connect.SchemaBytes:
		t.kind = kBytes
	case connect.SchemaArray:
		if s.Items == nil {
			return nil, fmt.Errorf("array schema without items")
		}
		items, err := m.conv(s.Items)
		if err != nil {
			return nil, err
		}
		t.kind, t.items = kArray, items
	case connect.SchemaMap:
		if s.Keys == nil || s.Values == nil {
			return nil, fmt.Errorf("map schema without keys or values")
		}
		if s.Keys.Type == connect.SchemaString && !s.Keys.Optional {
			values, err := m.conv(s.Values)
			if err != nil {
				return nil, err
			}
			t.kind, t.values = kMap, values
			break
		}
		// Avro maps have string keys: other maps are arrays of
		// MapEntry records.
		def := &recordDef{name: avroNamespace + ".MapEntry", mapEntry: true}
		if s.Name != "" {
			def.name = scrubFullName(s.Name)
			def.props = append(def.props, prop{"connect.internal.type", jsonString("MapEntry")})
		}
		for _, f := range []struct {
			name string
			s    *connect.Schema
		}{{"key", s.Keys}, {"value", s.Values}} {
			rf, err := m.field(f.name, f.name, f.s)
			if err != nil {
				return nil, err
			}
			def.fields = append(def.fields, rf)
		}
		t.kind, t.items = kArray, &rtype{kind: kRecord, rec: def}
	case connect.SchemaStruct:
		id := ""
		if !s.Optional {
			id = connectSchemaID(s)
			if def := m.records[id]; def != nil {
				return &rtype{kind: kRecord, rec: def}, nil
			}
		}
		def := &recordDef{doc: s.Parameters[avroNamespace+".record.doc"]}
		if s.Name != "" {
			def.name = scrubFullName(s.Name)
		}
		if id != "" {
			m.records[id] = def
		} else {
			// An optional struct is the union of null and the same
			// struct required, which AvroData caches.
			nn := *s
			nn.Optional, nn.Default = false, nil
			r, err := m.conv(&nn)
			if err != nil {
				return nil, err
			}
			r.optional, r.nullLast = true, s.Default != nil
			return r, nil
		}
		seen := map[string]bool{}
		for _, f := range s.Fields {
			name := scrubName(f.Name)
			if seen[name] {
				return nil, fmt.Errorf("struct %s has two fields named %q", s.Name, name)
			}
			seen[name] = true
			rf, err := m.field(name, f.Name, f.Schema)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			def.fields = append(def.fields, rf)
		}
		t.kind, t.rec = kRecord, def
		m.addProps(s, &def.props, "")
		return t, nil
	default:
		return nil, fmt.Errorf("unknown schema type %q", s.Type)
	}
	// Decimal carries its scale and precision first (AvroData's bytes
	// case), then the connect.* properties, then the logical type.
	if t.kind == kBytes && s.Name == connect.DecimalSchemaName {
		scale, _ := strconv.Atoi(s.Parameters[connect.DecimalScaleParameter])
		prec := decimalPrecision
		if p, err := strconv.Atoi(s.Parameters["connect.decimal.precision"]); err == nil {
			prec = p
		}
		t.scale, t.precision = scale, prec
		t.props = append(t.props, prop{"scale", jsonInt(scale)}, prop{"precision", jsonInt(prec)})
	}
	connType := ""
	switch t.conn {
	case connInt8:
		connType = "int8"
	case connInt16:
		connType = "int16"
	}
	m.addProps(s, &t.props, connType)
	switch {
	case s.Name == connect.DecimalSchemaName && t.kind == kBytes:
		if t.scale >= 0 && t.scale <= t.precision {
			t.logical = logicalDecimal
		}
	case s.Name == connect.DateSchemaName && t.kind == kInt:
		t.logical = logicalDate
	case s.Name == connect.TimeSchemaName && t.kind == kInt:
		t.logical = logicalTime
	case s.Name == connect.TimestampSchemaName && t.kind == kLong:
		t.logical = logicalTimestamp
	}
	if t.logical != "" {
		t.props = append(t.props, prop{"logicalType", jsonString(t.logical)})
	}
	if s.Optional {
		t.optional, t.nullLast = true, s.Default != nil
	}
	return t, nil
}

// addProps appends the connect.* properties AvroData writes with
// connect.meta.data=true.
func (m *connectMapper) addProps(s *connect.Schema, ps *[]prop, connType string) {
	if !m.meta {
		return
	}
	if s.Doc != "" {
		*ps = append(*ps, prop{"connect.doc", jsonString(s.Doc)})
	}
	if s.Version != 0 {
		*ps = append(*ps, prop{"connect.version", jsonInt(s.Version)})
	}
	if len(s.Parameters) > 0 {
		b, _ := json.Marshal(s.Parameters) // keys sorted
		*ps = append(*ps, prop{"connect.parameters", b})
	}
	if s.Default != nil {
		if js, err := defaultJSON(s, s.Default); err == nil {
			*ps = append(*ps, prop{"connect.default", js})
		}
	}
	if s.Name != "" {
		*ps = append(*ps, prop{"connect.name", jsonString(s.Name)})
	}
	if connType != "" {
		*ps = append(*ps, prop{"connect.type", jsonString(connType)})
	}
}

// field maps one field (or a map entry's key or value).
func (m *connectMapper) field(name, src string, s *connect.Schema) (rfield, error) {
	t, err := m.conv(s)
	if err != nil {
		return rfield{}, err
	}
	f := rfield{name: name, src: src, t: t}
	switch {
	case s.Default != nil:
		js, err := defaultJSON(s, s.Default)
		if err == nil {
			f.def, f.defJS = s.Default, js
		}
	case s.Optional:
		f.defJS = json.RawMessage("null")
	}
	return f, nil
}

func jsonInt(n int) json.RawMessage { return json.RawMessage(strconv.Itoa(n)) }

// defaultJSON renders a Connect default as an Avro default (AvroData's
// defaultValueFromConnect): bytes as ISO-8859-1 text, logical types as
// their numbers.
func defaultJSON(s *connect.Schema, v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("null"), nil
	}
	t, err := fromConnect(&connect.Schema{Type: s.Type, Name: s.Name, Parameters: s.Parameters, Items: s.Items, Keys: s.Keys, Values: s.Values, Fields: s.Fields}, false)
	if err != nil {
		return nil, err
	}
	enc, err := appendAvro(nil, t, v)
	if err != nil {
		return nil, err
	}
	r := &avroReader{b: enc}
	out, err := avroToJSON(r, t)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// avroToJSON renders one Avro datum as an Avro default in JSON.
func avroToJSON(r *avroReader, t *rtype) (json.RawMessage, error) {
	if t.optional {
		i := r.long()
		if (i == 0) != t.nullLast {
			return json.RawMessage("null"), r.err
		}
	}
	var v any
	switch t.kind {
	case kNull:
		return json.RawMessage("null"), nil
	case kBoolean:
		v = r.bool()
	case kInt, kLong:
		v = r.long()
	case kFloat:
		v = r.float()
	case kDouble:
		v = r.double()
	case kString:
		v = string(r.bytes())
	case kBytes:
		b := r.bytes()
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		v = string(rs)
	case kRecord:
		var sb strings.Builder
		sb.WriteString("{")
		for i, f := range t.rec.fields {
			js, err := avroToJSON(r, f.t)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				sb.WriteString(",")
			}
			sb.Write(jsonString(f.name))
			sb.WriteString(":")
			sb.Write(js)
		}
		sb.WriteString("}")
		return json.RawMessage(sb.String()), r.err
	case kArray, kMap:
		open, end := "[", "]"
		if t.kind == kMap {
			open, end = "{", "}"
		}
		var sb strings.Builder
		sb.WriteString(open)
		first := true
		for {
			n := r.blockCount()
			if n == 0 || r.err != nil {
				break
			}
			for ; n > 0; n-- {
				if !first {
					sb.WriteString(",")
				}
				first = false
				if t.kind == kMap {
					sb.Write(jsonString(string(r.bytes())))
					sb.WriteString(":")
					js, err := avroToJSON(r, t.values)
					if err != nil {
						return nil, err
					}
					sb.Write(js)
					continue
				}
				js, err := avroToJSON(r, t.items)
				if err != nil {
					return nil, err
				}
				sb.Write(js)
			}
		}
		sb.WriteString(end)
		return json.RawMessage(sb.String()), r.err
	}
	if r.err != nil {
		return nil, r.err
	}
	return json.Marshal(v)
}

// scrubName makes a name Avro-legal as AvroData's scrubbing does: a legal
// name is kept; another is URL-encoded, prefixed with x when it starts with
// a digit, and every other character becomes '_'.
func scrubName(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
	}
	if ok {
		return s
	}
	if s == "" {
		return "_"
	}
	enc := []byte(url.QueryEscape(s))
	if enc[0] >= '0' && enc[0] <= '9' {
		enc = append([]byte("x"), enc...)
	}
	for i, c := range enc {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			enc[i] = '_'
		}
	}
	return string(enc)
}

// scrubFullName scrubs each dotted part of a full name.
func scrubFullName(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = scrubName(p)
	}
	return strings.Join(parts, ".")
}

// ---- Schemas derived from values.

// derive returns the schema of a value without a Connect schema: a map is
// a record of its keys in name order, integers are long (int for the
// Connect int8/16/32 shapes), other numbers double, time.Time a
// timestamp-millis long, a Decimal a decimal of its scale. Every type is
// required except null; merge widens.
func derive(v any) (*rtype, error) {
	switch x := v.(type) {
	case nil:
		return &rtype{kind: kNull}, nil
	case bool:
		return &rtype{kind: kBoolean}, nil
	case string:
		return &rtype{kind: kString}, nil
	case []byte:
		return &rtype{kind: kBytes}, nil
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return &rtype{kind: kLong}, nil
		}
		if _, err := x.Float64(); err != nil {
			return nil, fmt.Errorf("number %q: %w", x, err)
		}
		return &rtype{kind: kDouble}, nil
	case float64, float32:
		return &rtype{kind: kDouble}, nil
	case int64, int:
		return &rtype{kind: kLong}, nil
	case int32, int16, int8:
		return &rtype{kind: kInt}, nil
	case time.Time:
		return timestampType(), nil
	case connect.Decimal:
		return decimalType(int(x.Scale)), nil
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		slices.Sort(names)
		def := &recordDef{}
		seen := make(map[string]bool, len(names))
		for _, k := range names {
			ft, err := derive(x[k])
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", k, err)
			}
			name := scrubName(k)
			if seen[name] {
				return nil, fmt.Errorf("fields %q and another are both named %q in Avro", k, name)
			}
			seen[name] = true
			def.fields = append(def.fields, rfield{name: name, src: k, t: ft, defJS: nullDefault(ft)})
		}
		return &rtype{kind: kRecord, rec: def}, nil
	case []any:
		var items *rtype
		for _, e := range x {
			et, err := derive(e)
			if err != nil {
				return nil, err
			}
			if items == nil {
				items = et
				continue
			}
			m, ok := merge(items, et)
			if !ok {
				return nil, fmt.Errorf("array mixes %s and %s", typeName(items), typeName(et))
			}
			items = m
		}
		return &rtype{kind: kArray, items: items}, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func timestampType() *rtype {
	return &rtype{kind: kLong, logical: logicalTimestamp, props: []prop{{"logicalType", jsonString(logicalTimestamp)}}}
}

func decimalType(scale int) *rtype {
	return &rtype{kind: kBytes, logical: logicalDecimal, scale: scale, precision: decimalPrecision,
		props: []prop{{"scale", jsonInt(scale)}, {"precision", jsonInt(decimalPrecision)}, {"logicalType", jsonString(logicalDecimal)}}}
}

// nullDefault is a derived field's default: null when it may be null.
func nullDefault(t *rtype) json.RawMessage {
	if t.optional || t.kind == kNull {
		return json.RawMessage("null")
	}
	return nil
}

// typeName names a type for messages.
func typeName(t *rtype) string {
	s := t.kind.String()
	if t.logical != "" {
		s += "(" + t.logical + ")"
	}
	if t.optional {
		s = "optional " + s
	}
	return s
}

// merge widens a derived schema so that values of both fit, or reports
// that none does.
func merge(a, b *rtype) (*rtype, bool) {
	opt := a.optional || b.optional
	switch {
	case a.kind == kNull:
		if b.kind == kNull {
			return a, true
		}
		return b.withNull(), true
	case b.kind == kNull:
		return a.withNull(), true
	}
	res := func(t *rtype) (*rtype, bool) {
		if opt {
			t = t.withNull()
		}
		return t, true
	}
	if a.kind == b.kind && a.logical == b.logical && a.scale == b.scale && a.conn == b.conn {
		switch a.kind {
		case kRecord:
			return mergeRecords(a, b, opt)
		case kArray:
			items, ok := a.items, true
			switch {
			case a.items == nil:
				items = b.items
			case b.items != nil:
				items, ok = merge(a.items, b.items)
			}
			if !ok {
				return nil, false
			}
			if items == a.items {
				return res(a)
			}
			return res(&rtype{kind: kArray, items: items})
		case kMap:
			values, ok := merge(a.values, b.values)
			if !ok {
				return nil, false
			}
			return res(&rtype{kind: kMap, values: values})
		}
		return res(a)
	}
	if a.logical != "" || b.logical != "" {
		return nil, false
	}
	num := func(k kind) int {
		switch k {
		case kInt:
			return 1
		case kLong:
			return 2
		case kDouble:
			return 3
		}
		return 0
	}
	na, nb := num(a.kind), num(b.kind)
	if na == 0 || nb == 0 {
		return nil, false
	}
	if na > nb {
		return res(&rtype{kind: a.kind})
	}
	return res(&rtype{kind: b.kind})
}

func mergeRecords(a, b *rtype, opt bool) (*rtype, bool) {
	def := &recordDef{}
	i, j := 0, 0
	fa, fb := a.rec.fields, b.rec.fields
	same := true
	for i < len(fa) || j < len(fb) {
		var f rfield
		switch {
		case j == len(fb) || i < len(fa) && fa[i].name < fb[j].name:
			f = fa[i]
			if !f.t.optional && f.t.kind != kNull {
				same = false
			}
			f.t = f.t.withNull()
			i++
		case i == len(fa) || fb[j].name < fa[i].name:
			f = fb[j]
			same = false
			f.t = f.t.withNull()
			j++
		default:
			if fa[i].src != fb[j].src {
				return nil, false // two keys scrubbed to one name
			}
			t, ok := merge(fa[i].t, fb[j].t)
			if !ok {
				return nil, false
			}
			f = fa[i]
			if t != fa[i].t {
				same = false
			}
			f.t = t
			i, j = i+1, j+1
		}
		f.defJS = nullDefault(f.t)
		def.fields = append(def.fields, f)
	}
	if same {
		if opt && !a.optional {
			return a.withNull(), true
		}
		return a, true
	}
	t := &rtype{kind: kRecord, rec: def}
	if opt {
		t = t.withNull()
	}
	return t, true
}

// fits reports whether v can be written under the derived schema t as it
// is, without widening it.
func fits(t *rtype, v any) bool {
	if v == nil {
		return t.optional || t.kind == kNull
	}
	switch x := v.(type) {
	case bool:
		return t.kind == kBoolean
	case string:
		return t.kind == kString
	case []byte:
		return t.kind == kBytes && t.logical == ""
	case json.Number:
		if t.kind == kDouble {
			return true
		}
		if t.kind == kLong && t.logical == "" {
			_, err := x.Int64()
			return err == nil
		}
		return false
	case float64, float32:
		return t.kind == kDouble
	case int64, int:
		return t.logical == "" && (t.kind == kLong || t.kind == kDouble)
	case int32, int16, int8:
		return t.logical == "" && t.conn == connNone && (t.kind == kInt || t.kind == kLong || t.kind == kDouble)
	case time.Time:
		return t.kind == kLong && t.logical == logicalTimestamp
	case connect.Decimal:
		return t.kind == kBytes && t.logical == logicalDecimal && t.scale == int(x.Scale)
	case map[string]any:
		if t.kind != kRecord {
			return false
		}
		found := 0
		for _, f := range t.rec.fields {
			fv, ok := x[f.src]
			if !ok {
				if !f.t.optional && f.t.kind != kNull {
					return false
				}
				continue
			}
			found++
			if !fits(f.t, fv) {
				return false
			}
		}
		return found == len(x)
	case []any:
		if t.kind != kArray {
			return false
		}
		for _, e := range x {
			if t.items == nil || !fits(t.items, e) {
				return false
			}
		}
		return true
	}
	return false
}

// ---- Rendering.

// avroSchemaJSON renders t as an Avro schema, naming unnamed records
// ConnectDefault, ConnectDefault2, ... in order and defining each record
// once.
func avroSchemaJSON(t *rtype) []byte {
	r := &schemaRenderer{names: map[*recordDef]string{}}
	var b strings.Builder
	r.render(&b, t)
	return []byte(b.String())
}

type schemaRenderer struct {
	names map[*recordDef]string
	n     int
}

func (r *schemaRenderer) render(b *strings.Builder, t *rtype) {
	if t.optional {
		if t.nullLast {
			b.WriteString("[")
			r.base(b, t)
			b.WriteString(`,"null"]`)
			return
		}
		b.WriteString(`["null",`)
		r.base(b, t)
		b.WriteString("]")
		return
	}
	r.base(b, t)
}

func (r *schemaRenderer) base(b *strings.Builder, t *rtype) {
	switch t.kind {
	case kRecord:
		if name, ok := r.names[t.rec]; ok {
			b.Write(jsonString(name))
			return
		}
		full := t.rec.name
		if full == "" {
			r.n++
			full = avroNamespace + "." + defaultRecordName
			if r.n > 1 {
				full += strconv.Itoa(r.n)
			}
		}
		r.names[t.rec] = full
		ns, name := "", full
		if i := strings.LastIndexByte(full, '.'); i >= 0 {
			ns, name = full[:i], full[i+1:]
		}
		b.WriteString(`{"type":"record","name":`)
		b.Write(jsonString(name))
		if ns != "" {
			b.WriteString(`,"namespace":`)
			b.Write(jsonString(ns))
		}
		if t.rec.doc != "" {
			b.WriteString(`,"doc":`)
			b.Write(jsonString(t.rec.doc))
		}
		b.WriteString(`,"fields":[`)
		for i, f := range t.rec.fields {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"name":`)
			b.Write(jsonString(f.name))
			b.WriteString(`,"type":`)
			r.render(b, f.t)
			if f.defJS != nil {
				b.WriteString(`,"default":`)
				b.Write(f.defJS)
			}
			b.WriteString("}")
		}
		b.WriteString("]")
		writeProps(b, t.rec.props)
		b.WriteString("}")
		return
	case kArray:
		b.WriteString(`{"type":"array","items":`)
		if t.items == nil {
			b.WriteString(`"null"`) // no element yet: every array is empty
		} else {
			r.render(b, t.items)
		}
		writeProps(b, t.props)
		b.WriteString("}")
		return
	case kMap:
		b.WriteString(`{"type":"map","values":`)
		r.render(b, t.values)
		writeProps(b, t.props)
		b.WriteString("}")
		return
	}
	if len(t.props) == 0 {
		b.WriteString(`"` + t.kind.String() + `"`)
		return
	}
	b.WriteString(`{"type":"` + t.kind.String() + `"`)
	writeProps(b, t.props)
	b.WriteString("}")
}

func writeProps(b *strings.Builder, ps []prop) {
	for _, p := range ps {
		b.WriteString(",")
		b.Write(jsonString(p.k))
		b.WriteString(":")
		b.Write(p.v)
	}
}

// parquetView returns the schema Parquet objects of kind ("", ".keys" or
// ".headers") are written under: the rows' own t for values; for keys and
// headers t wrapped in a one-field record, as Confluent's Parquet views
// RecordKey{key} and RecordHeaders{headers} are (the Avro encoding of such
// a record is its field's).
func parquetView(kind string, t *rtype) *rtype {
	var name, field string
	switch kind {
	case ".keys":
		name, field = "RecordKey", "key"
	case ".headers":
		name, field = "RecordHeaders", "headers"
	default:
		return t
	}
	return &rtype{kind: kRecord, rec: &recordDef{name: name, fields: []rfield{{name: field, src: field, t: t, defJS: nullDefault(t)}}}}
}

// headersType is the schema of Confluent's header view: an array of
// {key, value} with the value as text. A null value makes the value field
// optional within its object.
func headersType() *rtype {
	return &rtype{kind: kArray, items: &rtype{kind: kRecord, rec: &recordDef{fields: []rfield{
		{name: "key", src: "key", t: &rtype{kind: kString}},
		{name: "value", src: "value", t: &rtype{kind: kString}},
	}}}}
}

// decimalBytes renders d's unscaled value at scale as Java's
// BigInteger.toByteArray does: big-endian two's complement, minimal.
func decimalBytes(dst []byte, d connect.Decimal, scale int) ([]byte, error) {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	if diff := scale - int(d.Scale); diff != 0 {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(diff, -diff))), nil)
		if diff > 0 {
			u = new(big.Int).Mul(u, p)
		} else {
			q, r := new(big.Int).QuoRem(u, p, new(big.Int))
			if r.Sign() != 0 {
				return nil, fmt.Errorf("decimal %s does not fit scale %d", d, scale)
			}
			u = q
		}
	}
	return twosComplement(dst, u), nil
}

func twosComplement(dst []byte, u *big.Int) []byte {
	n := u.BitLen()/8 + 1
	if u.Sign() < 0 {
		// n bytes hold 2^(8n) + u, the smallest n that keeps the sign
		// bit: one more than ^u (= -u-1) takes.
		n = new(big.Int).Not(u).BitLen()/8 + 1
		v := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
		u = v.Add(v, u)
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	u.FillBytes(dst[start:])
	return dst
}

// parseDecimal reads a decimal number's text at scale.
func parseDecimal(s string, scale int) (connect.Decimal, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return connect.Decimal{}, fmt.Errorf("%q is not a number", s)
	}
	d, ok := connect.DecimalFromRat(r, int32(scale))
	if !ok {
		return connect.Decimal{}, fmt.Errorf("%s does not fit scale %d", s, scale)
	}
	return d, nil
}

// decimalBase64 is Kafka's JsonConverter rendering of a decimal with
// decimal.format=BASE64.
func decimalBase64(dst []byte, d connect.Decimal) []byte {
	var tmp [32]byte
	b, _ := decimalBytes(tmp[:0], d, int(d.Scale))
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// fromTwosComplement reads big-endian two's complement bytes.
func fromTwosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}
