package s3sink

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go/compress"
	pqsnappy "github.com/parquet-go/parquet-go/compress/snappy"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Avro binary encoding of row values. Rows are encoded as they arrive into
// the object's buffer (a spillBuf, so within the memory budget), and the
// container file (or the Parquet file) is built from that buffer when the
// object is committed.

// appendAvro appends the Avro binary encoding of v under t to dst. Values
// have the Go shapes of connect.Schema's doc; numbers are also accepted as
// json.Number and other Go numbers when they fit exactly.
func appendAvro(dst []byte, t *rtype, v any) ([]byte, error) {
	if t.optional {
		dst = appendBranch(dst, t, v == nil)
		if v == nil {
			return dst, nil
		}
	} else if v == nil {
		if t.kind == kNull {
			return dst, nil
		}
		return nil, errors.New("null for a required " + t.kind.String())
	}
	switch t.kind {
	case kNull:
		return nil, fmt.Errorf("%T for null", v)
	case kBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kInt:
		n, err := intValue(t, v)
		if err != nil {
			return nil, err
		}
		return binary.AppendVarint(dst, n), nil
	case kLong:
		n, err := longValue(t, v)
		if err != nil {
			return nil, err
		}
		return binary.AppendVarint(dst, n), nil
	case kFloat:
		f, ok := floatValue(v)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
	case kDouble:
		f, ok := floatValue(v)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case kString:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		dst = binary.AppendVarint(dst, int64(len(s)))
		return append(dst, s...), nil
	case kBytes:
		if t.logical == logicalDecimal || t.scale != 0 {
			return appendDecimal(dst, t, v)
		}
		switch b := v.(type) {
		case []byte:
			dst = binary.AppendVarint(dst, int64(len(b)))
			return append(dst, b...), nil
		case string:
			dst = binary.AppendVarint(dst, int64(len(b)))
			return append(dst, b...), nil
		}
		return nil, typeErr(t, v)
	case kRecord:
		if t.rec.mapEntry {
			pair, ok := v.([]any)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf("map entry: want a [key, value] pair, got %T", v)
			}
			var err error
			for i, f := range t.rec.fields {
				if dst, err = appendAvro(dst, f.t, pair[i]); err != nil {
					return nil, fmt.Errorf("map %s: %w", f.name, err)
				}
			}
			return dst, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(t, v)
		}
		var err error
		for _, f := range t.rec.fields {
			fv := m[f.src]
			if fv == nil {
				fv = f.def
			}
			if dst, err = appendAvro(dst, f.t, fv); err != nil {
				return nil, fmt.Errorf("field %q: %w", f.src, err)
			}
		}
		return dst, nil
	case kArray:
		a, ok := v.([]any)
		if !ok {
			return nil, typeErr(t, v)
		}
		if len(a) > 0 {
			if t.items == nil {
				return nil, errors.New("an element in an array of no elements")
			}
			dst = binary.AppendVarint(dst, int64(len(a)))
			var err error
			for i, e := range a {
				if dst, err = appendAvro(dst, t.items, e); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			}
		}
		return append(dst, 0), nil
	case kMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(t, v)
		}
		if len(m) > 0 {
			// Sorted: the same value always yields the same bytes.
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			dst = binary.AppendVarint(dst, int64(len(m)))
			var err error
			for _, k := range keys {
				dst = binary.AppendVarint(dst, int64(len(k)))
				dst = append(dst, k...)
				if dst, err = appendAvro(dst, t.values, m[k]); err != nil {
					return nil, fmt.Errorf("map value %q: %w", k, err)
				}
			}
		}
		return append(dst, 0), nil
	}
	return nil, fmt.Errorf("unknown type %v", t.kind)
}

// appendBranch writes the union index of an optional t: null's branch or
// the value's. Null is the second branch (index 1, zigzag 2) of a
// nullLast union and the first of the others.
func appendBranch(dst []byte, t *rtype, null bool) []byte {
	if null == t.nullLast {
		return append(dst, 2)
	}
	return append(dst, 0)
}

func typeErr(t *rtype, v any) error {
	return fmt.Errorf("%T does not fit %s", v, typeName(t.nonNull()))
}

// intValue reads an int: a Go integer or an integral json.Number in range;
// for date and time-millis also a time.Time (days since the epoch,
// milliseconds since midnight, UTC).
func intValue(t *rtype, v any) (int64, error) {
	if tm, ok := v.(time.Time); ok {
		switch t.logical {
		case logicalDate:
			return floorDiv(tm.UnixMilli(), 86400000), nil
		case logicalTime:
			return mod(tm.UnixMilli(), 86400000), nil
		}
		return 0, typeErr(t, v)
	}
	n, ok := integer(v)
	if !ok {
		return 0, typeErr(t, v)
	}
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	switch t.conn {
	case connInt8:
		lo, hi = math.MinInt8, math.MaxInt8
	case connInt16:
		lo, hi = math.MinInt16, math.MaxInt16
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range for %s", n, typeName(t.nonNull()))
	}
	return n, nil
}

func floorDiv(a, b int64) int64 { return (a - mod(a, b)) / b }

// longValue reads a long; for timestamp-millis also a time.Time.
func longValue(t *rtype, v any) (int64, error) {
	if tm, ok := v.(time.Time); ok {
		if t.logical == logicalTimestamp {
			return tm.UnixMilli(), nil
		}
		return 0, typeErr(t, v)
	}
	n, ok := integer(v)
	if !ok {
		return 0, typeErr(t, v)
	}
	return n, nil
}

// integer reads a Go integer, an integral json.Number or an integral
// float.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

func floatValue(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	if n, ok := integer(v); ok {
		return float64(n), true
	}
	return 0, false
}

// appendDecimal writes a decimal's unscaled bytes at the schema's scale.
func appendDecimal(dst []byte, t *rtype, v any) ([]byte, error) {
	var d connect.Decimal
	switch x := v.(type) {
	case connect.Decimal:
		d = x
	case *connect.Decimal:
		d = *x
	case []byte:
		dst = binary.AppendVarint(dst, int64(len(x)))
		return append(dst, x...), nil // already the unscaled bytes
	case json.Number:
		var err error
		if d, err = parseDecimal(string(x), t.scale); err != nil {
			return nil, err
		}
	case float64:
		var err error
		if d, err = parseDecimal(strconv.FormatFloat(x, 'f', -1, 64), t.scale); err != nil {
			return nil, err
		}
	default:
		return nil, typeErr(t, v)
	}
	var tmp [32]byte
	b, err := decimalBytes(tmp[:0], d, t.scale)
	if err != nil {
		return nil, err
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...), nil
}

// avroReader reads Avro binary from a slice (b) or a buffered reader.
type avroReader struct {
	b   []byte
	r   *bufio.Reader
	n   int64 // bytes read
	err error
	buf []byte
}

func (a *avroReader) fail(err error) {
	if a.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		a.err = err
	}
}

func (a *avroReader) byte1() byte {
	if a.err != nil {
		return 0
	}
	if a.r == nil {
		if len(a.b) == 0 {
			a.fail(io.ErrUnexpectedEOF)
			return 0
		}
		c := a.b[0]
		a.b = a.b[1:]
		a.n++
		return c
	}
	c, err := a.r.ReadByte()
	if err != nil {
		a.fail(err)
		return 0
	}
	a.n++
	return c
}

func (a *avroReader) long() int64 {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := a.byte1()
		if a.err != nil {
			return 0
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	a.fail(errors.New("avro: varint overflow"))
	return 0
}

// raw returns the next n bytes, valid until the next read.
func (a *avroReader) raw(n int64) []byte {
	if a.err != nil {
		return nil
	}
	if n < 0 {
		a.fail(fmt.Errorf("avro: negative length %d", n))
		return nil
	}
	if a.r == nil {
		if int64(len(a.b)) < n {
			a.fail(io.ErrUnexpectedEOF)
			return nil
		}
		out := a.b[:n]
		a.b = a.b[n:]
		a.n += n
		return out
	}
	if int64(cap(a.buf)) < n {
		a.buf = make([]byte, n)
	}
	a.buf = a.buf[:n]
	if _, err := io.ReadFull(a.r, a.buf); err != nil {
		a.fail(err)
		return nil
	}
	a.n += n
	return a.buf
}

func (a *avroReader) bytes() []byte { return a.raw(a.long()) }
func (a *avroReader) bool() bool    { return a.byte1() != 0 }
func (a *avroReader) float() float32 {
	b := a.raw(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}
func (a *avroReader) double() float64 {
	b := a.raw(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// blockCount reads an array or map block's count (a negative count is
// followed by the block's size, which is skipped).
func (a *avroReader) blockCount() int64 {
	n := a.long()
	if n < 0 {
		a.long()
		n = -n
	}
	return n
}

// isNull reads the union index of an optional t and reports whether the
// value is null.
func (a *avroReader) isNull(t *rtype) bool {
	if !t.optional {
		return t.kind == kNull
	}
	i := a.long()
	return (i == 0) != t.nullLast
}

// transcode rewrites one datum written under from as a datum of to, a
// widening of from (merge): fields from lacks are null, ints become longs
// or doubles, unions with null appear.
func transcode(dst []byte, r *avroReader, from, to *rtype) ([]byte, error) {
	null := r.isNull(from)
	if r.err != nil {
		return nil, r.err
	}
	if to.optional {
		dst = appendBranch(dst, to, null)
	}
	if null {
		if to.optional || to.kind == kNull {
			return dst, nil
		}
		return nil, fmt.Errorf("transcode: null for a required %s", to.kind)
	}
	switch to.kind {
	case kBoolean:
		return append(dst, r.byte1()), r.err
	case kInt, kLong:
		if from.kind != kInt && from.kind != kLong {
			return nil, fmt.Errorf("transcode %s to %s", from.kind, to.kind)
		}
		return binary.AppendVarint(dst, r.long()), r.err
	case kFloat:
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(r.float())), r.err
	case kDouble:
		var f float64
		switch from.kind {
		case kInt, kLong:
			f = float64(r.long())
		case kFloat:
			f = float64(r.float())
		case kDouble:
			f = r.double()
		default:
			return nil, fmt.Errorf("transcode %s to double", from.kind)
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), r.err
	case kString, kBytes:
		b := r.bytes()
		dst = binary.AppendVarint(dst, int64(len(b)))
		return append(dst, b...), r.err
	case kRecord:
		ff := from.rec.fields
		i := 0
		var err error
		for _, f := range to.rec.fields {
			if i < len(ff) && ff[i].name == f.name {
				if dst, err = transcode(dst, r, ff[i].t, f.t); err != nil {
					return nil, err
				}
				i++
				continue
			}
			// A field the older schema lacks.
			if dst, err = appendAvro(dst, f.t, nil); err != nil {
				return nil, fmt.Errorf("transcode field %q: %w", f.name, err)
			}
		}
		if i != len(ff) {
			return nil, errors.New("transcode: the target schema lacks a field")
		}
		return dst, nil
	case kArray, kMap:
		for {
			n := r.blockCount()
			if r.err != nil {
				return nil, r.err
			}
			dst = binary.AppendVarint(dst, n)
			if n == 0 {
				return dst, nil
			}
			var err error
			for ; n > 0; n-- {
				if to.kind == kMap {
					k := r.bytes()
					dst = binary.AppendVarint(dst, int64(len(k)))
					dst = append(dst, k...)
					if dst, err = transcode(dst, r, from.values, to.values); err != nil {
						return nil, err
					}
					continue
				}
				if from.items == nil || to.items == nil {
					return nil, errors.New("transcode: an element in an array of no elements")
				}
				if dst, err = transcode(dst, r, from.items, to.items); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("transcode to %s", to.kind)
}

// skipDatum reads past one datum of t.
func skipDatum(r *avroReader, t *rtype) {
	if r.isNull(t) || r.err != nil {
		return
	}
	switch t.kind {
	case kBoolean:
		r.byte1()
	case kInt, kLong:
		r.long()
	case kFloat:
		r.raw(4)
	case kDouble:
		r.raw(8)
	case kString, kBytes:
		r.bytes()
	case kRecord:
		for _, f := range t.rec.fields {
			skipDatum(r, f.t)
		}
	case kArray, kMap:
		for {
			n := r.blockCount()
			if n == 0 || r.err != nil {
				return
			}
			for ; n > 0; n-- {
				if t.kind == kMap {
					r.bytes()
					skipDatum(r, t.values)
				} else if t.items != nil {
					skipDatum(r, t.items)
				}
			}
		}
	}
}

// ---- Object container files.

// avroBlockSize is when a container block ends: after the record that
// takes its uncompressed size to this, as Java's DataFileWriter does with
// its default sync interval.
const avroBlockSize = 64000

// blockMark is where a container block ends in a row stream.
type blockMark struct {
	end   int64
	count int64
}

// avroCodec compresses container blocks.
type avroCodec interface {
	name() string
	compress(dst, src []byte) ([]byte, error)
}

type nullCodec struct{}

func (nullCodec) name() string                             { return "null" }
func (nullCodec) compress(dst, src []byte) ([]byte, error) { return append(dst[:0], src...), nil }

// deflateCodec is raw deflate (RFC 1951) at Java's default level. Its
// writers are pooled: each holds about a megabyte of state.
type deflateCodec struct{}

var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.DefaultCompression)
	return w
}}

func (deflateCodec) name() string { return "deflate" }
func (deflateCodec) compress(dst, src []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst[:0])
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(buf)
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pqCodec is a Parquet codec used for Avro blocks: snappy (a raw snappy
// block followed by the CRC-32 of the uncompressed data, big-endian, as
// the Avro spec has it) and zstandard (a zstd frame).
type pqCodec struct {
	n   string
	c   compress.Codec
	crc bool
}

func (c pqCodec) name() string { return c.n }
func (c pqCodec) compress(dst, src []byte) ([]byte, error) {
	z, err := c.c.Encode(dst[:0], src)
	if err != nil {
		return nil, err
	}
	if c.crc {
		z = binary.BigEndian.AppendUint32(z, crc32.ChecksumIEEE(src))
	}
	return z, nil
}

var (
	avroSnappy = pqCodec{"snappy", &pqsnappy.Codec{}, true}
	avroZstd   = pqCodec{"zstandard", &pqzstd.Codec{}, false}
)

func newAvroCodec(name string) avroCodec {
	switch name {
	case "deflate":
		return deflateCodec{}
	case "snappy":
		return avroSnappy
	case "zstandard":
		return avroZstd
	}
	return nullCodec{}
}

// syncMarker is a container's sync marker: derived from the object's key,
// so that a replay writes the same bytes.
func syncMarker(key string) [16]byte { return md5.Sum([]byte("ferry-s3-sink:" + key)) }

// writeOCFHeader writes a container file's header.
func writeOCFHeader(w io.Writer, schema []byte, codec string, sync [16]byte) error {
	var b []byte
	b = append(b, 'O', 'b', 'j', 1)
	b = binary.AppendVarint(b, 2)
	for _, kv := range [][2][]byte{{[]byte("avro.schema"), schema}, {[]byte("avro.codec"), []byte(codec)}} {
		b = binary.AppendVarint(b, int64(len(kv[0])))
		b = append(b, kv[0]...)
		b = binary.AppendVarint(b, int64(len(kv[1])))
		b = append(b, kv[1]...)
	}
	b = append(b, 0)
	b = append(b, sync[:]...)
	_, err := w.Write(b)
	return err
}

// ocfWriter writes container blocks.
type ocfWriter struct {
	w     io.Writer
	codec avroCodec
	sync  [16]byte
	buf   []byte
}

func (o *ocfWriter) block(count int64, data []byte) error {
	if count == 0 {
		return nil
	}
	z, err := o.codec.compress(o.buf[:0], data)
	if err != nil {
		return fmt.Errorf("avro %s: %w", o.codec.name(), err)
	}
	o.buf = z
	var hdr []byte
	hdr = binary.AppendVarint(hdr, count)
	hdr = binary.AppendVarint(hdr, int64(len(z)))
	if _, err := o.w.Write(hdr); err != nil {
		return err
	}
	if _, err := o.w.Write(z); err != nil {
		return err
	}
	_, err = o.w.Write(o.sync[:])
	return err
}
