package s3sink

import (
	"bufio"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/brotli"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Record-oriented formats. Each record is encoded in Avro binary as it
// arrives, into the object's buffer (within the memory budget, spilling to
// disk); the Avro container or Parquet file is built from that buffer when
// the object is committed, into another budgeted buffer, and uploaded part
// by part like any object. The schema of an object is the records' Connect
// schema mapped as Confluent's AvroData maps it, or one derived from the
// values (rowschema.go).
const (
	AvroFormat    = "io.confluent.connect.s3.format.avro.AvroFormat"
	ParquetFormat = "io.confluent.connect.s3.format.parquet.ParquetFormat"

	KeyAvroCodec    = "avro.codec"
	KeyParquetCodec = "parquet.codec"
)

// avroCodecs are the avro.codec values Ferry writes: Confluent's null,
// deflate and snappy, and the Avro spec's zstandard.
var avroCodecs = map[string]bool{"null": true, "deflate": true, "snappy": true, "zstandard": true}

// parquetCodecs maps parquet.codec to the codec and Confluent's extension
// (parquet-mr's CompressionCodecName.getExtension).
var parquetCodecs = map[string]struct {
	codec compress.Codec
	ext   string
}{
	"none": {&uncompressed.Codec{}, ".parquet"}, "snappy": {&snappy.Codec{}, ".snappy.parquet"},
	"gzip": {&gzip.Codec{}, ".gz.parquet"}, "brotli": {&brotli.Codec{}, ".br.parquet"},
	"lz4_raw": {&lz4.Codec{}, ".lz4raw.parquet"}, "zstd": {&zstd.Codec{}, ".zstd.parquet"},
	// parquet-mr's LZ4 is Hadoop's framing, deprecated by the Parquet
	// format and written by no Go library: lz4 writes LZ4_RAW, named as
	// Confluent names LZ4_RAW objects (config.go warns).
	"lz4": {&lz4.Codec{}, ".lz4raw.parquet"},
}

func isRowFormat(f string) bool { return f == AvroFormat || f == ParquetFormat }

// stream is one object's records in one format: the values, keys or
// headers of an openFile.
type stream struct {
	buf *spillBuf
	// Row formats: the object's schema, widened as records come when it
	// is derived; sid is the records' Connect schema id ("" when
	// derived).
	t   *rtype
	sid string
	cs  *connect.Schema // the Connect schema the records are written under
	// segs are where the schema widened: rows from segs[i].start are
	// written under segs[i].t and rewritten under t when the object is
	// built.
	segs []segment
	// marks end the Avro container blocks of a single-segment stream.
	marks      []blockMark
	blockStart int64
	blockCount int64
}

type segment struct {
	start int64
	t     *rtype
}

// add appends one record's encoding; under t for a row format.
func (s *stream) add(enc []byte, t *rtype) error {
	if t != nil && t != s.t {
		s.segs = append(s.segs, segment{start: s.buf.Len(), t: t})
		s.t = t
	}
	if _, err := s.buf.Write(enc); err != nil {
		return err
	}
	if t != nil {
		s.endRow(s.buf.Len())
	}
	return nil
}

// endRow counts a row ending at byte end in the open container block, and
// ends the block there once it holds avroBlockSize bytes.
func (s *stream) endRow(end int64) {
	s.blockCount++
	if end-s.blockStart >= avroBlockSize {
		s.marks = append(s.marks, blockMark{end: end, count: s.blockCount})
		s.blockStart, s.blockCount = end, 0
	}
}

func (s *stream) release() {
	if s.buf != nil {
		s.buf.Release()
	}
}

// rowObject builds a row-format object of the stream (values, keys or
// headers: kind "", ".keys" or ".headers") into w. key names the object
// (its Avro sync marker).
func (t *sinkTask) rowObject(w io.Writer, format string, s *stream, key, kind string) error {
	src, sch := io.Reader(io.NewSectionReader(s.buf, 0, s.buf.Len())), s.t
	size := s.buf.Len()
	if len(s.segs) > 1 {
		// The schema widened: rewrite every row under the last one.
		tb := newSpillBuf(t.mem, t.dir)
		defer tb.Release()
		marks, last, err := transcodeStream(tb, s)
		if err != nil {
			return err
		}
		if format == AvroFormat {
			return t.writeAvro(w, tb, tb.Len(), marks, last, sch, key)
		}
		src, size = io.NewSectionReader(tb, 0, tb.Len()), tb.Len()
	} else if format == AvroFormat {
		return t.writeAvro(w, s.buf, s.buf.Len(), s.marks, s.blockCount, sch, key)
	}
	return writeParquet(w, parquetView(kind, sch), src, size, parquetCodecs[t.s.parquetCodec].codec)
}

// transcodeStream rewrites every row of s under s.t into dst, marking
// container blocks; last counts the rows after the last mark.
func transcodeStream(dst *spillBuf, s *stream) (marks []blockMark, last int64, err error) {
	var buf []byte
	var count int64
	for i, seg := range s.segs {
		end := s.buf.Len()
		if i+1 < len(s.segs) {
			end = s.segs[i+1].start
		}
		r := &avroReader{r: bufio.NewReaderSize(io.NewSectionReader(s.buf, seg.start, end-seg.start), 64<<10)}
		for r.n < end-seg.start {
			if buf, err = transcode(buf, r, seg.t, s.t); err != nil {
				return nil, 0, fmt.Errorf("rewrite rows under the widened schema: %w", err)
			}
			count++
			if len(buf) >= avroBlockSize {
				if _, err := dst.Write(buf); err != nil {
					return nil, 0, err
				}
				marks = append(marks, blockMark{end: dst.Len(), count: count})
				buf, count = buf[:0], 0
			}
		}
	}
	_, err = dst.Write(buf)
	return marks, count, err
}

// writeAvro writes a container file of the size bytes of rows in src,
// cut into blocks at marks; the rest is the last block, of last rows.
func (t *sinkTask) writeAvro(w io.Writer, src io.ReaderAt, size int64, marks []blockMark, last int64, sch *rtype, key string) error {
	codec := newAvroCodec(t.s.avroCodec)
	sync := syncMarker(key)
	if err := writeOCFHeader(w, avroSchemaJSON(sch), codec.name(), sync); err != nil {
		return err
	}
	o := &ocfWriter{w: w, codec: codec, sync: sync}
	var data []byte
	var start int64
	block := func(end, count int64) error {
		if int64(cap(data)) < end-start {
			data = make([]byte, end-start)
		}
		data = data[:end-start]
		if _, err := src.ReadAt(data, start); err != nil && !(err == io.EOF && len(data) == 0) {
			return fmt.Errorf("read rows: %w", err)
		}
		start = end
		return o.block(count, data)
	}
	for _, m := range marks {
		if err := block(m.end, m.count); err != nil {
			return err
		}
	}
	if start < size {
		return block(size, last)
	}
	return nil
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
