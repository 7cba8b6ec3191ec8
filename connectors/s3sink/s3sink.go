// Package s3sink is Ferry's S3 sink, configuration-compatible with
// Confluent's io.confluent.connect.s3.S3SinkConnector: it writes records as
// objects named <topics.dir>/<topic>/<encoded partition>/<topic>+<kafka
// partition>+<start offset>.<ext>, where the encoded partition comes from
// partitioner.class (partition=3, field=value, or a time path).
//
// As in Confluent's connector, a Kafka partition's open objects (one per
// encoded partition) are committed together: after flush.size records, when
// rotate.interval.ms is exceeded (or, with it, when the encoded partition
// changes), or at the next wall-clock multiple of rotate.schedule.interval.ms
// (counted from midnight in timezone), also on idle partitions.
// Committed objects upload in the background while records keep coming
// (upload.go); a partition's offset is reported durable only up to the end
// of its last batch that is in S3 with every batch before it.
//
// What holds in each mode:
//   - Without rotate.schedule.interval.ms and with a deterministic time
//     (timestamp.extractor=Record or RecordField, or no time-based rule),
//     object boundaries depend only on the records, so a task that resumes
//     from the last commit after a crash or rebalance rewrites the same keys
//     with the same content: every record is in S3 exactly once.
//   - With rotate.schedule.interval.ms the cut depends on the wall clock. Objects
//     are then written with If-None-Match: * and carry their end offset in
//     their metadata; a replay that meets an existing object skips the
//     records it holds and writes the rest under the next start offset
//     (scanning forward), so records are still written once and no object is
//     overwritten.
//   - With timestamp.extractor=Wallclock and a time-based partitioner or
//     rotate.interval.ms, a replay may cut differently: records may be
//     written twice.
package s3sink

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Class is the connector class, as Confluent names it.
const Class = "io.confluent.connect.s3.S3SinkConnector"

// uploadTimeout bounds one object upload, SDK retries included.
const uploadTimeout = 5 * time.Minute

// metaEndOffset is the user metadata holding an object's last offset.
const metaEndOffset = "kafka-end-offset"

// Plugin returns the sink's registration.
func Plugin() connect.Plugin {
	return connect.Plugin{
		Class:       Class,
		Aliases:     []string{"S3SinkConnector", "ferry.s3sink"},
		Kind:        connect.Sink,
		Doc:         "writes Kafka records to S3 as JSON, ByteArray, Avro or Parquet objects, with Confluent-compatible keys and configuration",
		Config:      ConfigSpec,
		Validate:    validate,
		NewSinkTask: func() connect.SinkTask { return &sinkTask{} },
	}
}

// Uploader is the part of the S3 client the sink uses.
type Uploader interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// headObjecter reads an object's metadata; the sink needs it only with
// rotate.schedule.interval.ms, after a conditional write found an object.
type headObjecter interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// openFile is one object being filled: its records' encoded values (and
// keys and headers when stored), with each record's offset and end position
// so that a tail can be cut off.
type openFile struct {
	encoded string
	offs    []int64
	vals    *spillBuf
	valEnd  []int64
	keys    companion // store.kafka.keys
	hdrs    companion // store.kafka.headers
	rows    []any     // Avro, Parquet: normalized values
	schema  *vtype    // Avro, Parquet: the rows' schema
}

// companion is the keys or headers object of an openFile, one entry per
// record: encoded lines (JSON, ByteArray) or rows (Avro, Parquet).
type companion struct {
	buf    bytes.Buffer
	ends   []int
	rows   []any
	schema *vtype // Avro, Parquet keys: the non-null keys' schema; nil while every key is null
}

// tail returns the companion of the records after index i.
func (c *companion) tail(i int) companion {
	nc := companion{schema: c.schema}
	if c.rows != nil {
		nc.rows = append([]any(nil), c.rows[i:]...)
	}
	if len(c.ends) > 0 {
		from := c.ends[i-1]
		nc.buf.Write(c.buf.Bytes()[from:])
		nc.ends = make([]int, 0, len(c.ends)-i)
		for _, e := range c.ends[i:] {
			nc.ends = append(nc.ends, e-from)
		}
	}
	return nc
}

// add appends one record's entry: an encoded line or a row.
func (c *companion) add(line []byte, row any, rowFormat bool) {
	if rowFormat {
		c.rows = append(c.rows, row)
		return
	}
	c.buf.Write(line)
	c.ends = append(c.ends, c.buf.Len())
}

func (f *openFile) start() int64 { return f.offs[0] }
func (f *openFile) last() int64  { return f.offs[len(f.offs)-1] }

// tail returns the file of the records after index i.
func (f *openFile) tail(i int) (*openFile, error) {
	nf := &openFile{encoded: f.encoded, offs: append([]int64(nil), f.offs[i:]...), schema: f.schema, vals: newSpillBuf(f.vals.b, f.vals.dir)}
	if f.rows != nil {
		nf.rows = append([]any(nil), f.rows[i:]...)
	}
	if len(f.valEnd) > 0 {
		from := f.valEnd[i-1]
		if _, err := io.Copy(nf.vals, io.NewSectionReader(f.vals, from, f.vals.Len()-from)); err != nil {
			return nil, err
		}
		for _, e := range f.valEnd[i:] {
			nf.valEnd = append(nf.valEnd, e-from)
		}
	}
	nf.keys, nf.hdrs = f.keys.tail(i), f.hdrs.tail(i)
	return nf, nil
}

// release frees the file's buffers.
func (f *openFile) release() {
	if f.vals != nil {
		f.vals.Release()
	}
	f.rows, f.keys, f.hdrs = nil, companion{}, companion{}
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
	schema    string               // Avro, Parquet: id of the open objects' schema
	keySchema string               // Avro, Parquet keys: id of the open keys objects' schema; "" before a non-null key
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

type sinkTask struct {
	mu      sync.Mutex
	client  Uploader
	s       *settings
	parts   map[connect.TopicPartition]*partState
	now     func() time.Time
	log     zerolog.Logger
	mem     *budget // the worker's, shared by its tasks
	dir     string  // where buffers spill
	scratch []byte  // a record's encoded value, before it is buffered

	slots    chan struct{}      // one per batch in flight
	uploads  sync.WaitGroup     // the batches in flight
	upCtx    context.Context    // the uploads'; cancelled by Stop
	upCancel context.CancelFunc //
	upMu     sync.Mutex
	upErr    error // the first failed upload's
}

var _ connect.SinkTask = (*sinkTask)(nil)

// Start reads the configuration and builds the S3 client.
func (t *sinkTask) Start(ctx context.Context, raw map[string]string) error {
	t.log = zerolog.Ctx(ctx).With().Str("connector_class", Class).Logger()
	cfg := connect.WithDefaults(ConfigSpec, raw)
	s, es := parseSettings(cfg)
	if len(es) > 0 {
		return fmt.Errorf("s3 sink configuration: %w", es)
	}
	t.s = s
	if unknown := unknownKeys(raw); len(unknown) > 0 {
		sort.Strings(unknown)
		t.log.Warn().Strs("keys", unknown).Msg("s3 sink ignores unknown configuration keys")
	}
	t.parts = map[connect.TopicPartition]*partState{}
	t.slots = make(chan struct{}, maxUploads)
	// Uploads outlive the Put that started them, so they do not take its
	// context; Stop cancels them.
	t.upCtx, t.upCancel = context.WithCancel(context.WithoutCancel(ctx))
	if t.mem == nil {
		t.mem = taskBudget(ctx)
	}
	if t.dir = os.Getenv("FERRY_DATA_DIR"); t.dir == "" {
		t.dir = os.TempDir()
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.client == nil {
		c, err := newClient(ctx, cfg, s)
		if err != nil {
			return err
		}
		t.client = c
	}
	return nil
}

func newClient(ctx context.Context, cfg map[string]string, s *settings) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg[KeyRegion])}
	if ak := strings.TrimSpace(cfg[KeyAccessKeyID]); ak != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(ak, strings.TrimSpace(cfg[KeySecretAccessKey]), "")))
	}
	// S3 errors (5xx, throttling, timeouts) are retried s3.part.retries
	// times, backing off from s3.retry.backoff.ms; no retry quota, so a
	// long outage is ridden out request by request.
	opts = append(opts, awsconfig.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = s.partRetries + 1
			o.Backoff = doublingBackoff(s.retryBackoff)
			o.RateLimiter = noRateLimit{}
		})
	}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if arn := strings.TrimSpace(cfg[KeySTSRoleARN]); arn != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), arn,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = cfg[KeySTSSessionName]
				if id := strings.TrimSpace(cfg[KeySTSExternalID]); id != "" {
					o.ExternalID = aws.String(id)
				}
			}))
	}
	storeURL := strings.TrimSpace(cfg[KeyStoreURL])
	pathStyle := storeURL != ""
	if v := strings.TrimSpace(cfg[KeyPathStyle]); v != "" {
		pathStyle = strings.EqualFold(v, "true")
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		if storeURL != "" {
			o.BaseEndpoint = aws.String(storeURL)
			// S3-compatible stores vary in their support of the newer
			// default integrity checksums; send them only when required.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}), nil
}

type doublingBackoff time.Duration

func (b doublingBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	d := time.Duration(b)
	for i := 1; i < attempt && d < 20*time.Second; i++ {
		d *= 2
	}
	return min(d, 20*time.Second), nil
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

// Open starts the partitions afresh: they are read again from the last
// committed offset, which is always the end of a committed batch.
func (t *sinkTask) Open(_ context.Context, tps []connect.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		if st := t.parts[tp]; st != nil {
			st.drain()
			st.drop()
		}
		t.parts[tp] = newPartState()
	}
	return nil
}

// Put buffers records and commits every batch that is complete: flush.size
// records, or past a rotation interval. It is also called with no records,
// so scheduled rotation happens on quiet partitions.
func (t *sinkTask) Put(ctx context.Context, records []connect.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.uploadErr(); err != nil {
		return err
	}
	// One reading of the clock per batch: a wall-clock time is the
	// batch's arrival, and reading it per record cost a few percent of
	// the JSON path's CPU.
	now := t.now()
	for i := range records {
		if err := t.put(ctx, &records[i], now); err != nil {
			return err
		}
	}
	if t.s.rotateSchedule > 0 {
		for tp, st := range t.parts {
			if st.count > 0 && !now.Before(st.rotateAt) {
				if err := t.commit(ctx, tp, st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *sinkTask) put(ctx context.Context, r *connect.Record, now time.Time) error {
	tp := r.OriginalTopicPartition()
	st := t.parts[tp]
	if st == nil {
		st = newPartState()
		t.parts[tp] = st
	}
	if name := r.TopicPartition(); name != st.name {
		if st.count > 0 {
			// Routed elsewhere from here on: the open objects are complete.
			if err := t.commit(ctx, tp, st); err != nil {
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
	if t.s.rotateSchedule > 0 && len(st.pending) > 0 {
		// Conditional writes: what the batches found in S3 decides where
		// this record goes.
		if err := t.settle(ctx, st, true); err != nil {
			return err
		}
	}
	if r.Value == nil {
		if !t.s.ignoreNull {
			return fmt.Errorf("null value at %s; set %s=ignore to skip tombstones", r.Coordinates(), KeyNullValues)
		}
		st.next = r.Offset + 1
		if st.count == 0 {
			st.settledTo(st.next) // nothing buffered: settled with what is pending
		}
		return nil
	}
	ts, err := t.s.recordTime(r, now)
	if err != nil {
		return err
	}
	encoded, err := t.s.part.encode(r, ts)
	if err != nil {
		return err
	}
	if skip, ok := st.skip[encoded]; ok && r.Offset <= skip {
		st.next = r.Offset + 1 // already in S3 (found by a conditional write)
		if st.count == 0 {
			st.settledTo(st.next)
		}
		return nil
	}
	if st.count > 0 && t.s.rotateInterval > 0 && (ts.Sub(st.firstTs) >= t.s.rotateInterval || encoded != st.current) {
		// This record opens the next batch.
		if err := t.commit(ctx, tp, st); err != nil {
			return err
		}
	}
	var val []byte
	var rowT, keyT *vtype
	var row, keyRow any
	vid, kid := st.schema, st.keySchema
	if isRowFormat(t.s.format) {
		if rowT, row, err = rowValue(r); err != nil {
			return err
		}
		vid = rowT.id()
	} else if val, err = t.s.appendValue(t.scratch[:0], r); err != nil {
		return err
	}
	if t.s.storeKeys && isRowFormat(t.s.keysFormat) {
		if keyT, keyRow, err = infer(r.Key); err != nil {
			return fmt.Errorf("key at %s: %w", r.Coordinates(), err)
		}
		if keyT.kind != "null" { // a null key fits any keys object
			kid = keyT.id()
		}
	}
	if vid != st.schema || (st.keySchema != "" && kid != st.keySchema) {
		if st.count > 0 {
			if err := t.commit(ctx, tp, st); err != nil { // schema change: rotate, as Confluent does
				return err
			}
		}
	}
	st.schema, st.keySchema = vid, kid
	f := st.files[encoded]
	if f == nil {
		f = &openFile{encoded: encoded, vals: newSpillBuf(t.mem, t.dir)}
		st.files[encoded] = f
	}
	if st.count == 0 {
		st.firstTs = ts
		if t.s.rotateSchedule > 0 {
			st.rotateAt = nextBoundary(now, t.s.rotateSchedule, t.s.loc)
		}
	}
	f.offs = append(f.offs, r.Offset)
	if rowT != nil {
		f.rows, f.schema = append(f.rows, row), rowT
	} else {
		t.scratch = val // reused for the next record: the buffer keeps a copy
		if _, err := f.vals.Write(val); err != nil {
			return fmt.Errorf("buffer record at %s: %w", r.Coordinates(), err)
		}
		f.valEnd = append(f.valEnd, f.vals.Len())
	}
	if t.s.storeKeys {
		var line []byte
		if keyT == nil {
			if line, err = t.s.appendKey(t.scratch[:0], r); err != nil {
				return err
			}
		} else if keyT.kind != "null" {
			f.keys.schema = keyT
		}
		f.keys.add(line, keyRow, keyT != nil)
	}
	if t.s.storeHeaders {
		view := headerView(r.Headers)
		var line []byte
		if !isRowFormat(t.s.headersFormat) {
			if line, err = appendJSON(t.scratch[:0], view); err != nil {
				return fmt.Errorf("encode headers at %s as JSON: %w", r.Coordinates(), err)
			}
			line = append(line, '\n')
		}
		f.hdrs.add(line, view, isRowFormat(t.s.headersFormat))
	}
	st.count++
	st.current = encoded
	st.next = r.Offset + 1
	if st.count < t.s.flushSize {
		return nil
	}
	return t.commit(ctx, tp, st)
}

// nextBoundary returns the first multiple of iv after now, counted from the
// start of now's day in loc and capped at the next day's start, as
// Confluent's scheduled rotation does (every hour on the hour, say).
func nextBoundary(now time.Time, iv time.Duration, loc *time.Location) time.Time {
	t := now.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	next := day.Add((now.Sub(day)/iv + 1) * iv)
	if nd := day.AddDate(0, 0, 1); next.After(nd) {
		next = nd
	}
	return next
}

// Key returns the object key of the default partitioner's object of tp
// starting at offset.
func (t *sinkTask) Key(tp connect.TopicPartition, start int64) string {
	return t.s.key(tp, "partition="+strconv.Itoa(int(tp.Partition)), start, "")
}

// formatOf is the format of the values (kind ""), keys (".keys") or
// headers (".headers") objects.
func (s *settings) formatOf(kind string) string {
	switch kind {
	case ".keys":
		return s.keysFormat
	case ".headers":
		return s.headersFormat
	}
	return s.format
}

// gzipped says whether an object of the format is gzipped: JSON and
// ByteArray ones with s3.compression.type=gzip.
func (s *settings) gzipped(format string) bool { return s.gzip && !isRowFormat(format) }

// ext is the extension of objects of the format, as Confluent's format
// classes name them.
func (s *settings) ext(format string) string {
	ext := ".json"
	switch format {
	case ByteArrayFormat:
		ext = s.baExt
	case AvroFormat:
		ext = ".avro"
	case ParquetFormat:
		ext = parquetCodecs[s.parquetCodec].ext
	}
	if s.gzipped(format) {
		ext += ".gz"
	}
	return ext
}

// key names an object as Confluent does; kind is "", ".keys" or ".headers",
// put before the extension of the kind's format (t+0+0000000000.keys.avro).
func (s *settings) key(tp connect.TopicPartition, encoded string, start int64, kind string) string {
	ext := kind + s.ext(s.formatOf(kind))
	dir := tp.Topic + s.dirDelim + encoded
	if s.topicsDir != "" {
		dir = s.topicsDir + s.dirDelim + dir
	}
	return dir + s.dirDelim + tp.Topic + s.fileDelim + strconv.Itoa(int(tp.Partition)) + s.fileDelim +
		fmt.Sprintf("%0*d", s.padWidth, start) + ext
}

// multipartClient is the part of the S3 client multipart uploads use.
type multipartClient interface {
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// objectAttrs are what every write of an object carries.
type objectAttrs struct {
	meta     map[string]string
	tagging  *string
	sse      types.ServerSideEncryption
	kms      *string
	cAlg     *string
	cKey     *string
	cKeyMD5  *string
	acl      types.ObjectCannedACL
	ifNoneMt *string
}

func (t *sinkTask) attrs(f *openFile, conditional bool) objectAttrs {
	a := objectAttrs{meta: map[string]string{metaEndOffset: strconv.FormatInt(f.last(), 10)}}
	if conditional {
		a.ifNoneMt = aws.String("*")
	}
	if t.s.tagging {
		a.tagging = aws.String(url.Values{
			"startOffset": {strconv.FormatInt(f.start(), 10)},
			"endOffset":   {strconv.FormatInt(f.last(), 10)},
			"recordCount": {strconv.Itoa(len(f.offs))},
		}.Encode())
	}
	switch {
	case t.s.sseCustomerKey != "":
		raw, _ := base64.StdEncoding.DecodeString(t.s.sseCustomerKey)
		sum := md5.Sum(raw)
		a.cAlg, a.cKey = aws.String("AES256"), aws.String(t.s.sseCustomerKey)
		a.cKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	case t.s.sse != "":
		a.sse = types.ServerSideEncryption(t.s.sse)
		if t.s.kmsKey != "" {
			a.kms = aws.String(t.s.kmsKey)
		}
	}
	if t.s.acl != "" {
		a.acl = types.ObjectCannedACL(t.s.acl)
	}
	return a
}

// hint explains the errors a user must fix.
func hint(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return ""
	}
	switch ae.ErrorCode() {
	case "NoSuchBucket":
		return " (the bucket does not exist)"
	case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return " (access denied: check the credentials and the bucket policy)"
	}
	return ""
}

func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict")
}

// existingEnd reads the last offset of an object an earlier attempt wrote.
func (t *sinkTask) existingEnd(ctx context.Context, key string) (int64, error) {
	h, ok := t.client.(headObjecter)
	if !ok {
		return 0, fmt.Errorf("s3://%s/%s exists and the client cannot read its metadata", t.s.bucket, key)
	}
	out, err := h.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(t.s.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("read metadata of existing s3://%s/%s: %w", t.s.bucket, key, err)
	}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, metaEndOffset) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				break
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("s3://%s/%s exists without a %s metadata entry; it was not written by this sink, refusing to overwrite it", t.s.bucket, key, metaEndOffset)
}

// appendValue appends a record value, rendered in the object format, to
// dst.
func (s *settings) appendValue(dst []byte, r *connect.Record) ([]byte, error) {
	if s.format == ByteArrayFormat {
		switch v := r.Value.(type) {
		case []byte:
			dst = append(dst, v...)
		case string:
			dst = append(dst, v...)
		default:
			return nil, fmt.Errorf("ByteArrayFormat needs byte values (value.converter=%s) at %s, got %T", connect.ByteArrayConverterClass, r.Coordinates(), r.Value)
		}
		return append(dst, s.baSep...), nil
	}
	dst, err := appendJSON(dst, r.Value)
	if err != nil {
		return nil, fmt.Errorf("encode value at %s as JSON: %w", r.Coordinates(), err)
	}
	return append(dst, '\n'), nil
}

// appendKey appends a record key, rendered in keys.format.class (JSON or
// ByteArray), to dst. A null key is JSON null, or nothing before the
// separator in ByteArray.
func (s *settings) appendKey(dst []byte, r *connect.Record) ([]byte, error) {
	if s.keysFormat == ByteArrayFormat {
		switch k := r.Key.(type) {
		case nil:
		case []byte:
			dst = append(dst, k...)
		case string:
			dst = append(dst, k...)
		default:
			return nil, fmt.Errorf("%s=%s needs byte keys (key.converter=%s) at %s, got %T", KeyKeysFormat, ByteArrayFormat, connect.ByteArrayConverterClass, r.Coordinates(), r.Key)
		}
		return append(dst, s.baSep...), nil
	}
	dst, err := appendJSON(dst, r.Key)
	if err != nil {
		return nil, fmt.Errorf("encode key at %s as JSON: %w", r.Coordinates(), err)
	}
	return append(dst, '\n'), nil
}

// PreCommit reports, per partition, the offset after the last committed
// batch; buffered records are not durable.
func (t *sinkTask) PreCommit(ctx context.Context, current map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[connect.TopicPartition]int64{}
	for tp := range current {
		st := t.parts[tp]
		if st == nil {
			continue
		}
		// A failed batch stops the partition there; Put reports the error.
		_ = t.settle(ctx, st, true)
		if st.durable >= 0 {
			out[tp] = st.durable
		}
	}
	return out, nil
}

// Close waits for the partitions' uploads in flight (nothing is written for
// a partition after it is let go) and drops their buffered records; their
// next owner re-reads them from the last commit.
func (t *sinkTask) Close(_ context.Context, tps []connect.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		if st := t.parts[tp]; st != nil {
			st.drain()
			st.drop()
		}
		delete(t.parts, tp)
	}
	return nil
}

// Stop cancels the uploads in flight and drops everything.
func (t *sinkTask) Stop() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.upCancel != nil {
		t.upCancel()
	}
	t.uploads.Wait()
	for _, st := range t.parts {
		st.drop()
	}
	t.parts = map[connect.TopicPartition]*partState{}
	return nil
}
