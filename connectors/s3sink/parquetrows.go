package s3sink

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet objects are written from the object's Avro-encoded rows, under
// the Parquet schema parquet-avro derives from the Avro schema (as
// Confluent's ParquetFormat writes through AvroParquetWriter): records are
// groups with their fields in order, a union with null is an optional
// field, arrays are LIST groups (parquet-avro's old two-level structure,
// `repeated <item> array`, unless an array somewhere has optional items:
// then the three-level `repeated group list { element }` everywhere), maps
// are MAP groups of `repeated group key_value { key, value }`, and
// date, time-millis, timestamp-millis and decimal keep their logical types.

var (
	groupType = parquet.Group{}.Type()
	listType  = parquet.List(parquet.String()).Type()
	mapType   = parquet.Map(parquet.String(), parquet.String()).Type()
)

// pgroup is a group node whose fields keep their order (parquet.Group
// sorts them by name).
type pgroup struct {
	fields []parquet.Field
	typ    parquet.Type
}

func (g *pgroup) ID() int                     { return 0 }
func (g *pgroup) Type() parquet.Type          { return g.typ }
func (g *pgroup) Optional() bool              { return false }
func (g *pgroup) Repeated() bool              { return false }
func (g *pgroup) Required() bool              { return true }
func (g *pgroup) Leaf() bool                  { return false }
func (g *pgroup) Fields() []parquet.Field     { return g.fields }
func (g *pgroup) Encoding() encoding.Encoding { return nil }
func (g *pgroup) Compression() compress.Codec { return nil }
func (g *pgroup) GoType() reflect.Type        { return reflect.TypeOf(map[string]any(nil)) }
func (g *pgroup) String() string {
	var b strings.Builder
	b.WriteString("group {")
	for _, f := range g.fields {
		b.WriteString(" " + f.Name() + ": " + f.String() + ";")
	}
	b.WriteString(" }")
	return b.String()
}

// plainType is a physical type without the logical type parquet-go
// annotates its integers with (INT(32,true)): parquet-avro writes Avro int
// and long as plain int32 and int64.
type plainType struct{ parquet.Type }

func (plainType) LogicalType() *format.LogicalType { return nil }

// pfield names a node.
type pfield struct {
	parquet.Node
	name string
}

func (f pfield) Name() string                           { return f.name }
func (f pfield) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

// snode is a schema node with what shredding needs: its leaf column (or
// the range of its leaves) and the repetition level of its repeated child.
type snode struct {
	t          *rtype
	col        int // leaf
	first, end int // leaf columns under the node
	children   []*snode
	item       *snode // array item (two-level) or element (three-level); map value
	repLevel   int    // arrays and maps: the repetition level of their repeated child
}

type pbuilder struct {
	cols       int
	threeLevel bool
}

// parquetSchema builds the Parquet schema of rows of t (a record) and its
// shredding plan.
func parquetSchema(t *rtype) (*parquet.Schema, *snode, error) {
	if t.kind != kRecord {
		return nil, nil, fmt.Errorf("ParquetFormat needs struct values, got %s", typeName(t))
	}
	b := &pbuilder{threeLevel: t.hasOptionalItems()}
	root := t.nonNull()
	n, sn, err := b.node(root, 0)
	if err != nil {
		return nil, nil, err
	}
	sn.t = t
	name := root.rec.name
	if name == "" {
		name = avroNamespace + "." + defaultRecordName
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return parquet.NewSchema(name, n), sn, nil
}

// parquetWritable says why rows of t cannot be written as Parquet: they
// are not structs, or a struct in them has no field (Parquet has no empty
// group).
func parquetWritable(t *rtype) error {
	if t.nonNull().kind != kRecord {
		return fmt.Errorf("%s needs struct values (a Connect struct, or a JSON object), got %s", ParquetFormat, typeName(t))
	}
	seen := map[*recordDef]bool{}
	var walk func(t *rtype) error
	walk = func(t *rtype) error {
		switch {
		case t == nil:
		case t.kind == kRecord:
			if seen[t.rec] {
				return nil
			}
			seen[t.rec] = true
			if len(t.rec.fields) == 0 {
				return fmt.Errorf("%s cannot write a struct without fields", ParquetFormat)
			}
			for _, f := range t.rec.fields {
				if err := walk(f.t); err != nil {
					return fmt.Errorf("field %q: %w", f.name, err)
				}
			}
		case t.kind == kArray:
			return walk(t.items)
		case t.kind == kMap:
			return walk(t.values)
		}
		return nil
	}
	return walk(t)
}

// field builds a field: optional for a union with null (and for null, which
// Parquet has no type of: an always-null optional string), required else.
func (b *pbuilder) field(name string, t *rtype, rep int) (parquet.Field, *snode, error) {
	n, sn, err := b.node(t, rep)
	if err != nil {
		return nil, nil, err
	}
	if t.optional || t.kind == kNull {
		n = parquet.Optional(n)
	}
	return pfield{n, name}, sn, nil
}

// node builds t's node, not yet made optional; rep is the repetition level
// of the enclosing repeated field.
func (b *pbuilder) node(t *rtype, rep int) (parquet.Node, *snode, error) {
	sn := &snode{t: t, first: b.cols}
	defer func() { sn.end = b.cols }()
	leaf := func(n parquet.Node) (parquet.Node, *snode, error) {
		sn.col = b.cols
		b.cols++
		return n, sn, nil
	}
	switch t.kind {
	case kNull, kString:
		return leaf(parquet.String())
	case kBoolean:
		return leaf(parquet.Leaf(parquet.BooleanType))
	case kInt:
		switch t.logical {
		case logicalDate:
			return leaf(parquet.Date())
		case logicalTime:
			return leaf(parquet.Time(parquet.Millisecond))
		}
		return leaf(parquet.Leaf(plainType{parquet.Int32Type}))
	case kLong:
		if t.logical == logicalTimestamp {
			return leaf(parquet.Timestamp(parquet.Millisecond))
		}
		return leaf(parquet.Leaf(plainType{parquet.Int64Type}))
	case kFloat:
		return leaf(parquet.Leaf(parquet.FloatType))
	case kDouble:
		return leaf(parquet.Leaf(parquet.DoubleType))
	case kBytes:
		if t.logical == logicalDecimal {
			return leaf(parquet.Decimal(t.scale, t.precision, parquet.ByteArrayType))
		}
		return leaf(parquet.Leaf(parquet.ByteArrayType))
	case kRecord:
		g := &pgroup{typ: groupType}
		for _, f := range t.rec.fields {
			pf, cn, err := b.field(f.name, f.t, rep)
			if err != nil {
				return nil, nil, err
			}
			g.fields = append(g.fields, pf)
			sn.children = append(sn.children, cn)
		}
		if len(g.fields) == 0 {
			return nil, nil, fmt.Errorf("parquet cannot hold a record without fields")
		}
		return g, sn, nil
	case kArray:
		sn.repLevel = rep + 1
		items := t.items
		if items == nil {
			items = &rtype{kind: kNull} // no element in any array
		}
		if b.threeLevel {
			ef, en, err := b.field("element", items, rep+1)
			if err != nil {
				return nil, nil, err
			}
			sn.item = en
			list := &pgroup{typ: groupType, fields: []parquet.Field{ef}}
			return &pgroup{typ: listType, fields: []parquet.Field{pfield{parquet.Repeated(list), "list"}}}, sn, nil
		}
		in, en, err := b.node(items, rep+1)
		if err != nil {
			return nil, nil, err
		}
		sn.item = en
		return &pgroup{typ: listType, fields: []parquet.Field{pfield{parquet.Repeated(in), "array"}}}, sn, nil
	case kMap:
		sn.repLevel = rep + 1
		key := &snode{t: &rtype{kind: kString}, col: b.cols, first: b.cols, end: b.cols + 1}
		b.cols++
		vf, vn, err := b.field("value", t.values, rep+1)
		if err != nil {
			return nil, nil, err
		}
		sn.children = []*snode{key}
		sn.item = vn
		kv := &pgroup{typ: groupType, fields: []parquet.Field{pfield{parquet.String(), "key"}, vf}}
		return &pgroup{typ: mapType, fields: []parquet.Field{pfield{parquet.Repeated(kv), "key_value"}}}, sn, nil
	}
	return nil, nil, fmt.Errorf("no parquet type for %s", t.kind)
}

// shredder turns Avro-encoded rows into Parquet rows.
type shredder struct {
	root  *snode
	cols  [][]parquet.Value
	arena [][]byte // byte values of the rows being built, in chunks that never move
}

func newShredder(root *snode) *shredder {
	return &shredder{root: root, cols: make([][]parquet.Value, root.end)}
}

// keep copies b into the arena.
func (s *shredder) keep(b []byte) []byte {
	if n := len(s.arena); n > 0 {
		c := s.arena[n-1]
		if cap(c)-len(c) >= len(b) {
			start := len(c)
			c = append(c, b...)
			s.arena[n-1] = c
			return c[start:len(c):len(c)]
		}
	}
	c := make([]byte, 0, max(64<<10, len(b)))
	c = append(c, b...)
	s.arena = append(s.arena, c)
	return c[:len(b):len(b)]
}

// row reads one datum and appends its Parquet row to dst.
func (s *shredder) row(dst parquet.Row, r *avroReader) (parquet.Row, error) {
	for i := range s.cols {
		s.cols[i] = s.cols[i][:0]
	}
	t := s.root.t
	if t.optional && r.isNull(t) {
		return nil, fmt.Errorf("null row")
	}
	for _, c := range s.root.children {
		s.value(r, c, 0, 0)
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, c := range s.cols {
		dst = append(dst, c...)
	}
	return dst, nil
}

func (s *shredder) nulls(n *snode, rep, def int) {
	for c := n.first; c < n.end; c++ {
		s.cols[c] = append(s.cols[c], parquet.NullValue().Level(rep, def, c))
	}
}

// value emits the datum of n read from r: rep is the repetition level of
// its first value, def the definition level of its parent.
func (s *shredder) value(r *avroReader, n *snode, rep, def int) {
	t := n.t
	if t.optional || t.kind == kNull {
		if r.isNull(t) {
			s.nulls(n, rep, def)
			return
		}
		def++
	}
	if r.err != nil {
		return
	}
	var v parquet.Value
	switch t.kind {
	case kRecord:
		for _, c := range n.children {
			s.value(r, c, rep, def)
		}
		return
	case kArray, kMap:
		first := true
		for {
			cnt := r.blockCount()
			if cnt == 0 || r.err != nil {
				break
			}
			for ; cnt > 0; cnt-- {
				rl := n.repLevel
				if first {
					rl, first = rep, false
				}
				if t.kind == kMap {
					k := n.children[0].col
					s.cols[k] = append(s.cols[k], parquet.ByteArrayValue(s.keep(r.bytes())).Level(rl, def+1, k))
				}
				s.value(r, n.item, rl, def+1)
			}
		}
		if first {
			s.nulls(n, rep, def) // empty
		}
		return
	case kBoolean:
		v = parquet.BooleanValue(r.bool())
	case kInt:
		v = parquet.Int32Value(int32(r.long()))
	case kLong:
		v = parquet.Int64Value(r.long())
	case kFloat:
		v = parquet.FloatValue(r.float())
	case kDouble:
		v = parquet.DoubleValue(r.double())
	case kString, kBytes:
		v = parquet.ByteArrayValue(s.keep(r.bytes()))
	}
	s.cols[n.col] = append(s.cols[n.col], v.Level(rep, def, n.col))
}

// parquetRowGroupBytes ends a row group after this many bytes of encoded
// rows, which bounds what the writer holds in memory while it builds an
// object.
const parquetRowGroupBytes = 8 << 20

// writeParquet writes the rows of t read from src (size bytes of Avro
// datums) as a Parquet file to w, with t's Avro schema in its metadata as
// parquet-avro writes it.
func writeParquet(w io.Writer, t *rtype, src io.Reader, size int64, codec compress.Codec) error {
	schema, root, err := parquetSchema(t)
	if err != nil {
		return err
	}
	pw := parquet.NewWriter(w, schema, parquet.Compression(codec), parquet.PageBufferSize(64<<10),
		parquet.KeyValueMetadata("parquet.avro.schema", string(avroSchemaJSON(t))),
		parquet.KeyValueMetadata("writer.model.name", "avro"))
	sh := newShredder(root)
	r := &avroReader{r: bufio.NewReaderSize(src, 64<<10)}
	rows := make([]parquet.Row, 0, 256)
	var groupStart int64
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if _, err := pw.WriteRows(rows); err != nil {
			return fmt.Errorf("parquet write: %w", err)
		}
		for i := range rows {
			rows[i] = rows[i][:0]
		}
		rows = rows[:0]
		for i := range sh.arena {
			sh.arena[i] = nil
		}
		sh.arena = sh.arena[:0]
		return nil
	}
	for r.n < size {
		var row parquet.Row
		if len(rows) < cap(rows) {
			row = rows[:len(rows)+1][len(rows)]
		}
		row, err := sh.row(row[:0], r)
		if err != nil {
			return fmt.Errorf("parquet row: %w", err)
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return err
			}
		}
		if r.n-groupStart >= parquetRowGroupBytes {
			if err := flush(); err != nil {
				return err
			}
			if err := pw.Flush(); err != nil {
				return fmt.Errorf("parquet row group: %w", err)
			}
			groupStart = r.n
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("parquet close: %w", err)
	}
	return nil
}
