package s3sink

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// openFile is one object being filled: its records' values, keys and
// headers, each encoded in its format as the record arrives, and the range
// of offsets it holds.
type openFile struct {
	encoded     string
	first, last int64
	n           int
	tomb        bool // behavior.on.null.values=write: tombstones, written as keys and headers only
	vals        stream
	keys        stream // store.kafka.keys
	hdrs        stream // store.kafka.headers
	// index holds, with conditional writes only, each record's offset and
	// the end of its value, key and headers in their buffers (indexEntry
	// bytes each): what cutting the object after an offset needs.
	index *spillBuf
}

const indexEntry = 32

// release frees the file's buffers.
func (f *openFile) release() {
	for _, s := range []*stream{&f.vals, &f.keys, &f.hdrs} {
		s.release()
	}
	if f.index != nil {
		f.index.Release()
	}
}

// entry reads record i's index entry.
func (f *openFile) entry(i int) (off int64, ends [3]int64, err error) {
	var b [indexEntry]byte
	if _, err := f.index.ReadAt(b[:], int64(i)*indexEntry); err != nil {
		return 0, ends, fmt.Errorf("read index: %w", err)
	}
	off = int64(binary.LittleEndian.Uint64(b[0:]))
	for k := range ends {
		ends[k] = int64(binary.LittleEndian.Uint64(b[8+8*k:]))
	}
	return off, ends, nil
}

// search returns the index of the first record after offset end.
func (f *openFile) search(end int64) (int, error) {
	lo, hi := 0, f.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		off, _, err := f.entry(m)
		if err != nil {
			return 0, err
		}
		if off <= end {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, nil
}

// tail returns the file of its records from index j on (0 < j < n).
func (f *openFile) tail(j int, mem *budget, dir string) (*openFile, error) {
	_, from, err := f.entry(j - 1)
	if err != nil {
		return nil, err
	}
	nf := &openFile{encoded: f.encoded, tomb: f.tomb, n: f.n - j, index: newSpillBuf(mem, dir)}
	ends := make([][]int64, 3)
	for i := j; i < f.n; i++ {
		off, e, err := f.entry(i)
		if err != nil {
			nf.release()
			return nil, err
		}
		if i == j {
			nf.first = off
		}
		nf.last = off
		var b [indexEntry]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(off))
		for k := range e {
			ends[k] = append(ends[k], e[k])
			binary.LittleEndian.PutUint64(b[8+8*k:], uint64(e[k]-from[k]))
		}
		if _, err := nf.index.Write(b[:]); err != nil {
			nf.release()
			return nil, err
		}
	}
	dst := []*stream{&nf.vals, &nf.keys, &nf.hdrs}
	for k, s := range []*stream{&f.vals, &f.keys, &f.hdrs} {
		if s.buf == nil {
			continue
		}
		ns, err := s.tail(from[k], ends[k], mem, dir)
		if err != nil {
			nf.release()
			return nil, err
		}
		*dst[k] = ns
	}
	return nf, nil
}

// tail returns the stream of the records that end at ends, from byte from
// on.
func (s *stream) tail(from int64, ends []int64, mem *budget, dir string) (stream, error) {
	ns := stream{buf: newSpillBuf(mem, dir), t: s.t, sid: s.sid}
	if _, err := io.Copy(ns.buf, io.NewSectionReader(s.buf, from, s.buf.Len()-from)); err != nil {
		ns.release()
		return stream{}, err
	}
	if s.t == nil {
		return ns, nil
	}
	for i, seg := range s.segs {
		switch {
		case seg.start <= from && (i+1 == len(s.segs) || s.segs[i+1].start > from):
			ns.segs = append(ns.segs, segment{0, seg.t})
		case seg.start > from:
			ns.segs = append(ns.segs, segment{seg.start - from, seg.t})
		}
	}
	for _, e := range ends {
		ns.endRow(e - from)
	}
	return ns, nil
}

// partState is one Kafka partition's open objects and what is durable.
type partState struct {
	files     map[string]*openFile // by encoded partition
	count     int                  // records in files
	current   string               // encoded partition of the last record
	next      int64                // offset after the last record handled; -1 before any
	durable   int64                // offset after the last committed batch; -1 none
	skip      map[string]int64     // per encoded partition: records up to here are already in S3
	pending   []*batch             // committed batches not yet settled, in commit order
	held      []connect.Record     // conditional writes: records waiting for pending to settle
	heldBytes int64
	// name is the topic-partition the open objects are named after: the
	// record's topic after transforms (a RegexRouter renames it), while the
	// state itself is keyed by where the records were read, which is what
	// PreCommit reports on.
	name connect.TopicPartition

	firstTs  time.Time // time (per timestamp.extractor) of the batch's first record
	rotateAt time.Time // rotate.schedule.interval.ms: the wall-clock boundary the batch is committed at
}

// drop releases every open file.
func (st *partState) drop() {
	for _, f := range st.files {
		f.release()
	}
	st.files, st.count = map[string]*openFile{}, 0
}

func newPartState() *partState {
	return &partState{files: map[string]*openFile{}, next: -1, durable: -1}
}

// recordBytes estimates what a held record costs.
func recordBytes(r *connect.Record) int64 {
	n := int64(len(r.RawKey) + len(r.RawValue) + 200)
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// put handles one record of the partition st: buffered, held back,
// skipped or handed to the errant record reporter.
func (t *sinkTask) put(ctx context.Context, st *partState, r *connect.Record, now time.Time) error {
	if t.s.conditional && (len(st.held) > 0 || len(st.pending) > 0) {
		// Conditional writes: what the partition's batches find in S3
		// decides where its next record goes, so its records wait (only
		// this partition's) until they have settled.
		if err := t.release(ctx, st, now); err != nil {
			return err
		}
		if len(st.held) > 0 || len(st.pending) > 0 {
			st.held = append(st.held, *r)
			n := recordBytes(r)
			st.heldBytes += n
			t.heldBytes += n
			return nil
		}
	}
	return t.add(ctx, st, r, now)
}

// release handles the partition's held records once its batches have
// settled, until a commit makes it wait again.
func (t *sinkTask) release(ctx context.Context, st *partState, now time.Time) error {
	for {
		if err := t.settle(ctx, st, false); err != nil {
			return err
		}
		if len(st.pending) > 0 || len(st.held) == 0 {
			return nil
		}
		r := st.held[0]
		st.held[0] = connect.Record{}
		st.held = st.held[1:]
		n := recordBytes(&r)
		st.heldBytes -= n
		t.heldBytes -= n
		if len(st.held) == 0 {
			st.held = nil
		}
		if err := t.add(ctx, st, &r, now); err != nil {
			return err
		}
	}
}

// dropHeld forgets the partition's held records.
func (t *sinkTask) dropHeld(st *partState) {
	t.heldBytes -= st.heldBytes
	st.held, st.heldBytes = nil, 0
}

// skipped marks a record handled without buffering it.
func (st *partState) skipped(r *connect.Record) {
	st.next = r.Offset + 1
	if st.count == 0 {
		st.settledTo(st.next) // nothing buffered: settled with what is pending
	}
}

// errant hands a record the sink cannot write to the runtime's errant
// record reporter, which skips it (errors.tolerance=all, to the dead letter
// queue when one is set) or returns the error that fails the task
// (errors.tolerance=none). A skipped record counts as handled: the same
// record is skipped the same way on a replay. Without a reporter (outside
// the runtime) the error fails the task.
func (t *sinkTask) errant(ctx context.Context, st *partState, r *connect.Record, err error) error {
	if t.reporter == nil {
		return err
	}
	if rerr := t.reporter.Report(ctx, r, err); rerr != nil {
		return rerr
	}
	st.skipped(r)
	return nil
}

// add handles one record in order.
func (t *sinkTask) add(ctx context.Context, st *partState, r *connect.Record, now time.Time) error {
	if name := r.TopicPartition(); name != st.name {
		if st.count > 0 {
			// Routed elsewhere from here on: the open objects are complete.
			if err := t.commit(ctx, st); err != nil {
				return err
			}
		}
		st.name = name
	}
	if st.next >= 0 && r.Offset < st.next {
		// Redelivered from an earlier offset: start the batch over there.
		if err := t.settle(ctx, st, true); err != nil {
			return err
		}
		st.drop()
	}
	tomb := r.Value == nil
	if tomb {
		switch t.s.nullBehavior {
		case "ignore":
			if t.s.reportNullToDLQ && t.reporter != nil {
				if err := t.reporter.Report(ctx, r, fmt.Errorf("null value (tombstone) at %s skipped (%s=ignore)", r.Coordinates(), KeyNullValues)); err != nil {
					return err
				}
			}
			st.skipped(r)
			return nil
		case "write":
		default:
			return t.errant(ctx, st, r, fmt.Errorf("null value (tombstone) at %s; set %s=ignore to skip tombstones, or write to store their keys", r.Coordinates(), KeyNullValues))
		}
	}
	ts, err := t.s.recordTime(r, now, tomb)
	if err != nil {
		return t.errant(ctx, st, r, err)
	}
	encoded := t.s.tombstonePart
	if !tomb {
		if encoded, err = t.s.part.encode(r, ts); err != nil {
			return t.errant(ctx, st, r, err)
		}
	}
	if skip, ok := st.skip[encoded]; ok && r.Offset <= skip {
		st.skipped(r) // already in S3 (found by a conditional write)
		return nil
	}
	if st.count > 0 && t.s.rotateInterval > 0 && (ts.Sub(st.firstTs) >= t.s.rotateInterval || t.s.rotateOnPartition && encoded != st.current) {
		// This record opens the next batch.
		if err := t.commit(ctx, st); err != nil {
			return err
		}
	}
	if st.count > 0 && t.s.maxOpenFiles > 0 && st.files[encoded] == nil && len(st.files) >= t.s.maxOpenFiles {
		if err := t.commit(ctx, st); err != nil {
			return err
		}
	}
	f := st.files[encoded]
	e, cut, err := t.encode(r, f, tomb)
	if err == nil && cut {
		// A schema change: the record opens the next batch, as in
		// Confluent's connector, with its own schema.
		e, _, err = t.encode(r, nil, tomb)
	}
	if err != nil {
		return t.errant(ctx, st, r, err)
	}
	if cut && st.count > 0 {
		if err := t.commit(ctx, st); err != nil {
			return err
		}
		f = nil
	}
	if f == nil {
		f = &openFile{encoded: encoded, tomb: tomb, first: r.Offset}
		if !tomb {
			f.vals = stream{buf: newSpillBuf(t.mem, t.dir), sid: e.vsid, cs: e.vcs}
		}
		if t.s.storeKeys {
			f.keys = stream{buf: newSpillBuf(t.mem, t.dir), sid: e.ksid}
		}
		if t.s.storeHeaders {
			f.hdrs = stream{buf: newSpillBuf(t.mem, t.dir)}
		}
		if t.s.conditional {
			f.index = newSpillBuf(t.mem, t.dir)
		}
		st.files[encoded] = f
	}
	if st.count == 0 {
		st.firstTs = ts
		if t.s.rotateSchedule > 0 {
			st.rotateAt = nextBoundary(now, t.s.rotateSchedule, t.s.loc)
		}
	}
	if err := t.append(f, r, &e); err != nil {
		return fmt.Errorf("buffer record at %s: %w", r.Coordinates(), err)
	}
	st.count++
	st.current = encoded
	st.next = r.Offset + 1
	if st.count < t.s.flushSize {
		return nil
	}
	return t.commit(ctx, st)
}

// append buffers a record's encodings in f.
func (t *sinkTask) append(f *openFile, r *connect.Record, e *encodings) error {
	if !f.tomb {
		if err := f.vals.add(e.val, e.vt); err != nil {
			return err
		}
	}
	if t.s.storeKeys {
		if err := f.keys.add(e.key, e.kt); err != nil {
			return err
		}
	}
	if t.s.storeHeaders {
		if err := f.hdrs.add(e.hdr, e.ht); err != nil {
			return err
		}
	}
	f.last = r.Offset
	f.n++
	if f.index != nil {
		var b [indexEntry]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(r.Offset))
		for k, s := range []*stream{&f.vals, &f.keys, &f.hdrs} {
			if s.buf != nil {
				binary.LittleEndian.PutUint64(b[8+8*k:], uint64(s.buf.Len()))
			}
		}
		if _, err := f.index.Write(b[:]); err != nil {
			return err
		}
	}
	return nil
}

// encodings are one record's value, key and headers encoded in their
// formats, before they are buffered: for a row format, under the schema
// given with them.
type encodings struct {
	val, key, hdr []byte
	vt, kt, ht    *rtype
	vsid, ksid    string
	vcs           *connect.Schema // the Connect schema the value is written under
}

// encode encodes a record for the open file f (nil: a new one). cut says
// that the record's schema does not fit f's: f is complete and the record
// opens a new object.
func (t *sinkTask) encode(r *connect.Record, f *openFile, tomb bool) (e encodings, cut bool, err error) {
	var vs, ks, hs *stream
	if f != nil {
		vs, ks, hs = &f.vals, &f.keys, &f.hdrs
	}
	if !tomb {
		val, vsch, c, err := t.projectValue(r, vs)
		switch {
		case err != nil:
		case isRowFormat(t.s.format):
			var c2 bool
			e.vt, e.vsid, c2, err = t.target(vs, val, vsch, &t.valSchemas, nil)
			c = c || c2
			if err == nil && t.s.format == ParquetFormat && (vs == nil || e.vt != vs.t) {
				err = parquetWritable(e.vt)
			}
			if err == nil {
				t.sval, err = appendAvro(t.sval[:0], e.vt, val)
			}
		default:
			if vsch != nil {
				e.vsid, _, err = t.valSchemas.get(vsch, false, t.s.connectMeta)
				c = c || vs != nil && vs.sid != e.vsid
			}
			if err == nil {
				t.sval, err = t.s.appendValue(t.sval[:0], val, vsch)
			}
		}
		if err != nil {
			return e, false, fmt.Errorf("value at %s: %w", r.Coordinates(), err)
		}
		e.val, e.vcs, cut = t.sval, vsch, cut || c
	}
	if t.s.storeKeys {
		var c bool
		if isRowFormat(t.s.keysFormat) {
			e.kt, e.ksid, c, err = t.target(ks, r.Key, r.KeySchema, &t.keySchemas, nil)
			if err == nil && t.s.keysFormat == ParquetFormat && (ks == nil || e.kt != ks.t) {
				err = parquetWritable(parquetView(".keys", e.kt))
			}
			if err == nil {
				t.skey, err = appendAvro(t.skey[:0], e.kt, r.Key)
			}
		} else {
			if r.KeySchema != nil {
				e.ksid, _, err = t.keySchemas.get(r.KeySchema, false, t.s.connectMeta)
				c = ks != nil && ks.sid != e.ksid
			}
			if err == nil {
				t.skey, err = t.s.appendKey(t.skey[:0], r)
			}
		}
		if err != nil {
			return e, false, fmt.Errorf("key at %s: %w", r.Coordinates(), err)
		}
		e.key, cut = t.skey, cut || c
	}
	if t.s.storeHeaders {
		view := headerView(r.Headers)
		var c bool
		if isRowFormat(t.s.headersFormat) {
			e.ht, _, c, err = t.target(hs, view, nil, nil, headersType)
			if err == nil {
				t.shdr, err = appendAvro(t.shdr[:0], e.ht, view)
			}
		} else if t.shdr, err = appendJSON(t.shdr[:0], view); err == nil {
			t.shdr = append(t.shdr, '\n')
		}
		if err != nil {
			return e, false, fmt.Errorf("headers at %s: %w", r.Coordinates(), err)
		}
		e.hdr, cut = t.shdr, cut || c
	}
	return e, cut, nil
}

// target returns the schema a row-format value (v, with its Connect schema
// cs or none) is written under in the stream s (nil: a new object), and
// whether s's object must be cut first: on any change of Connect schema
// (schema.compatibility=NONE), or when a derived schema cannot widen to
// fit v. seed is the schema a derived one starts from.
func (t *sinkTask) target(s *stream, v any, cs *connect.Schema, cache *schemaCache, seed func() *rtype) (*rtype, string, bool, error) {
	if cs != nil {
		sid, rt, err := cache.get(cs, true, t.s.connectMeta)
		if err != nil {
			return nil, "", false, err
		}
		return rt, sid, s != nil && s.sid != sid, nil
	}
	if s != nil && s.t != nil && s.sid == "" && fits(s.t, v) {
		return s.t, "", false, nil
	}
	dt, err := derive(v)
	if err != nil {
		return nil, "", false, err
	}
	if s != nil && s.t != nil && s.sid == "" {
		if m, ok := merge(s.t, dt); ok {
			return m, "", false, nil
		}
	}
	if seed != nil {
		m, ok := merge(seed(), dt)
		if !ok {
			return nil, "", false, fmt.Errorf("%s does not fit %s", typeName(dt), typeName(seed()))
		}
		dt = m
	}
	return dt, "", s != nil, nil
}

// schemaCache maps the Connect schemas records carry: converters hand the
// same *Schema for records of one schema, so the last one is kept.
type schemaCache struct {
	last    *connect.Schema
	lastSid string
	lastT   *rtype
	bySid   map[string]*rtype
}

// get returns the schema's id and, with mapped, its row schema.
func (c *schemaCache) get(s *connect.Schema, mapped, meta bool) (string, *rtype, error) {
	if s == c.last && (!mapped || c.lastT != nil) {
		return c.lastSid, c.lastT, nil
	}
	sid := connectSchemaID(s)
	var rt *rtype
	if mapped {
		rt = c.bySid[sid]
		if rt == nil {
			var err error
			if rt, err = fromConnect(s, meta); err != nil {
				return "", nil, fmt.Errorf("schema %s: %w", s.Name, err)
			}
			if c.bySid == nil || len(c.bySid) >= 256 {
				c.bySid = map[string]*rtype{}
			}
			c.bySid[sid] = rt
		}
	}
	c.last, c.lastSid, c.lastT = s, sid, rt
	return sid, rt, nil
}

// projectValue applies schema.compatibility to a record in the values
// stream s (nil: a new object): it returns the value and the schema it is
// written under (the object's, projected, when the record's is older), and
// whether the object is cut.
func (t *sinkTask) projectValue(r *connect.Record, s *stream) (any, *connect.Schema, bool, error) {
	val, sch := r.Value, r.ValueSchema
	if sch == nil || s == nil || s.cs == nil || s.cs == sch || t.s.compat == "NONE" || connectSchemaID(sch) == s.sid {
		return val, sch, false, nil
	}
	cut, proj, err := t.s.compatibility(sch, s.cs)
	if err != nil || !proj {
		return val, sch, cut, err
	}
	if val, err = project(sch, val, s.cs); err != nil {
		return nil, nil, false, err
	}
	return val, s.cs, false, nil
}
