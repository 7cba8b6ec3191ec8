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
// A partition's offset is reported durable only up to the end of its last
// committed batch.
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
	"compress/gzip"
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
	keys    bytes.Buffer
	keyEnd  []int
	hdrs    bytes.Buffer
	hdrEnd  []int
	rows    []any  // Avro, Parquet: normalized values
	schema  *vtype // Avro, Parquet: the rows' schema
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
	cut := func(b *bytes.Buffer, ends []int) (bytes.Buffer, []int) {
		var nb bytes.Buffer
		if len(ends) == 0 {
			return nb, nil
		}
		from := ends[i-1]
		nb.Write(b.Bytes()[from:])
		ne := make([]int, 0, len(ends)-i)
		for _, e := range ends[i:] {
			ne = append(ne, e-from)
		}
		return nb, ne
	}
	nf.keys, nf.keyEnd = cut(&f.keys, f.keyEnd)
	nf.hdrs, nf.hdrEnd = cut(&f.hdrs, f.hdrEnd)
	return nf, nil
}

// release frees the file's buffers.
func (f *openFile) release() {
	if f.vals != nil {
		f.vals.Release()
	}
	f.rows = nil
}

// partState is one Kafka partition's open objects and what is durable.
type partState struct {
	files   map[string]*openFile // by encoded partition
	count   int                  // records in files
	current string               // encoded partition of the last record
	next    int64                // offset after the last record handled; -1 before any
	durable int64                // offset after the last committed batch; -1 none
	skip    map[string]int64     // per encoded partition: records up to here are already in S3
	schema  string               // Avro, Parquet: id of the open objects' schema
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
	mu     sync.Mutex
	client Uploader
	s      *settings
	parts  map[connect.TopicPartition]*partState
	now    func() time.Time
	log    zerolog.Logger
	mem    *budget      // the worker's, shared by its tasks
	dir    string       // where buffers spill
	part   bytes.Buffer // one multipart part (or a whole small object)
}

var _ connect.SinkTask = (*sinkTask)(nil)

// Start reads the configuration and builds the S3 client.
func (t *sinkTask) Start(ctx context.Context, raw map[string]string) error {
	t.log = zerolog.Ctx(ctx).With().Str("connector_class", Class).Logger()
	cfg := connect.WithDefaults(ConfigSpec, raw)
	s, err := parseSettings(cfg)
	if err != nil {
		return err
	}
	t.s = s
	if unknown := unknownKeys(raw); len(unknown) > 0 {
		sort.Strings(unknown)
		t.log.Warn().Strs("keys", unknown).Msg("s3 sink ignores unknown configuration keys")
	}
	t.parts = map[connect.TopicPartition]*partState{}
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
		if t.client, err = newClient(ctx, cfg, s); err != nil {
			return err
		}
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
	for i := range records {
		if err := t.put(ctx, &records[i]); err != nil {
			return err
		}
	}
	if t.s.rotateSchedule > 0 {
		now := t.now()
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

func (t *sinkTask) put(ctx context.Context, r *connect.Record) error {
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
		st.drop()
	}
	if r.Value == nil {
		if !t.s.ignoreNull {
			return fmt.Errorf("null value at %s; set %s=ignore to skip tombstones", r.Coordinates(), KeyNullValues)
		}
		st.next = r.Offset + 1
		if st.count == 0 {
			st.durable = st.next // nothing buffered: everything up to here is settled
		}
		return nil
	}
	now := t.now()
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
			st.durable = st.next
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
	var rowT *vtype
	var row any
	if isRowFormat(t.s.format) {
		if rowT, row, err = rowValue(r); err != nil {
			return err
		}
		if id := rowT.id(); id != st.schema {
			if st.count > 0 {
				if err := t.commit(ctx, tp, st); err != nil { // schema change: rotate, as Confluent does
					return err
				}
			}
			st.schema = id
		}
	} else if val, err = t.s.encodeValue(r); err != nil {
		return err
	}
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
		if _, err := f.vals.Write(val); err != nil {
			return fmt.Errorf("buffer record at %s: %w", r.Coordinates(), err)
		}
		f.valEnd = append(f.valEnd, f.vals.Len())
	}
	if t.s.storeKeys {
		b, err := encodeJSON(r.Key)
		if err != nil {
			return fmt.Errorf("encode key at %s as JSON: %w", r.Coordinates(), err)
		}
		f.keys.Write(b)
		f.keys.WriteByte('\n')
		f.keyEnd = append(f.keyEnd, f.keys.Len())
	}
	if t.s.storeHeaders {
		b, err := encodeHeaders(r.Headers)
		if err != nil {
			return fmt.Errorf("encode headers at %s as JSON: %w", r.Coordinates(), err)
		}
		f.hdrs.Write(b)
		f.hdrs.WriteByte('\n')
		f.hdrEnd = append(f.hdrEnd, f.hdrs.Len())
	}
	st.count++
	st.current = encoded
	st.next = r.Offset + 1
	if st.count < t.s.flushSize {
		return nil
	}
	return t.commit(ctx, tp, st)
}

// commit uploads the partition's open objects and marks them durable.
func (t *sinkTask) commit(ctx context.Context, tp connect.TopicPartition, st *partState) error {
	names := make([]string, 0, len(st.files))
	for n := range st.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.upload(ctx, st.name, st, st.files[n]); err != nil {
			return err
		}
		st.files[n].release()
		delete(st.files, n)
	}
	st.durable = st.next
	st.count = 0
	for enc, end := range st.skip {
		if end < st.durable {
			delete(st.skip, enc) // records up to end are behind the commit now
		}
	}
	return nil
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

func (s *settings) ext() string {
	ext := ".json"
	switch s.format {
	case ByteArrayFormat:
		ext = s.baExt
	case AvroFormat:
		ext = ".avro"
	case ParquetFormat:
		ext = parquetCodecs[s.parquetCodec].ext
	}
	if s.gzip {
		ext += ".gz"
	}
	return ext
}

// key names an object as Confluent does; kind is "", ".keys" or ".headers".
func (s *settings) key(tp connect.TopicPartition, encoded string, start int64, kind string) string {
	ext := s.ext()
	if kind != "" {
		ext = kind + ".json"
		if s.gzip {
			ext += ".gz"
		}
	}
	dir := tp.Topic + s.dirDelim + encoded
	if s.topicsDir != "" {
		dir = s.topicsDir + s.dirDelim + dir
	}
	return dir + s.dirDelim + tp.Topic + s.fileDelim + strconv.Itoa(int(tp.Partition)) + s.fileDelim +
		fmt.Sprintf("%0*d", s.padWidth, start) + ext
}

// upload writes f (and its keys and headers objects). With scheduled
// rotation the writes are conditional; an object found in place was written
// by an earlier attempt: its records are skipped and the rest of f is
// written after them.
func (t *sinkTask) upload(ctx context.Context, tp connect.TopicPartition, st *partState, f *openFile) error {
	conditional := t.s.rotateSchedule > 0
	kinds := []struct {
		kind string
		buf  *bytes.Buffer
	}{{"", nil}}
	if t.s.storeKeys {
		kinds = append(kinds, struct {
			kind string
			buf  *bytes.Buffer
		}{".keys", &f.keys})
	}
	if t.s.storeHeaders {
		kinds = append(kinds, struct {
			kind string
			buf  *bytes.Buffer
		}{".headers", &f.hdrs})
	}
	// The records' object goes last: when it exists, its companions do.
	for i := len(kinds) - 1; i >= 0; i-- {
		k := kinds[i]
		key := t.s.key(tp, f.encoded, f.start(), k.kind)
		var body io.Reader
		switch {
		case i > 0:
			body = bytes.NewReader(k.buf.Bytes())
		case isRowFormat(t.s.format):
			data, err := t.s.encodeRows(f)
			if err != nil {
				return fmt.Errorf("encode s3://%s/%s: %w", t.s.bucket, key, err)
			}
			body = bytes.NewReader(data)
		default:
			body = io.NewSectionReader(f.vals, 0, f.vals.Len())
		}
		err := t.put1(ctx, key, body, f, conditional)
		if err == nil {
			continue
		}
		if !conditional || !isPreconditionFailed(err) {
			return err
		}
		end, herr := t.existingEnd(ctx, key)
		if herr != nil {
			return herr
		}
		if i > 0 {
			continue // a companion in place: rewritten from the records' object's view below
		}
		if st.skip == nil {
			st.skip = map[string]int64{}
		}
		st.skip[f.encoded] = max(st.skip[f.encoded], end)
		t.log.Info().Str("key", key).Int64("end_offset", end).Msg("object already written by an earlier attempt; continuing after it")
		j := sort.Search(len(f.offs), func(i int) bool { return f.offs[i] > end })
		if j == len(f.offs) {
			return nil
		}
		rest, err := f.tail(j)
		if err != nil {
			return fmt.Errorf("cut s3://%s/%s after offset %d: %w", t.s.bucket, key, end, err)
		}
		defer rest.release()
		return t.upload(ctx, tp, st, rest)
	}
	return nil
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

// put1 writes one object from body: in one PutObject when it fits in
// s3.part.size, else as a multipart upload, one part in memory at a time.
func (t *sinkTask) put1(ctx context.Context, key string, body io.Reader, f *openFile, conditional bool) error {
	if t.s.gzip {
		gz := newSpillBuf(t.mem, t.dir)
		defer gz.Release()
		zw := gzip.NewWriter(gz)
		if _, err := io.Copy(zw, body); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		body = io.NewSectionReader(gz, 0, gz.Len())
	}
	// A hung request must not hold the partition (and the group's
	// rebalances) forever; the task fails and restarts from the commit.
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	t.part.Reset()
	n, err := io.CopyN(&t.part, body, t.s.partSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", key, err)
	}
	a := t.attrs(f, conditional)
	mp, ok := t.client.(multipartClient)
	if n < t.s.partSize || !ok {
		if _, err := io.Copy(&t.part, body); err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		in := &s3.PutObjectInput{
			Bucket: aws.String(t.s.bucket), Key: aws.String(key),
			Body: bytes.NewReader(t.part.Bytes()), ContentLength: aws.Int64(int64(t.part.Len())),
			Metadata: a.meta, Tagging: a.tagging, ServerSideEncryption: a.sse, SSEKMSKeyId: a.kms,
			SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5, ACL: a.acl, IfNoneMatch: a.ifNoneMt,
		}
		if _, err := t.client.PutObject(ctx, in); err != nil {
			return fmt.Errorf("upload s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err))
		}
		return nil
	}
	created, err := mp.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(t.s.bucket), Key: aws.String(key),
		Metadata: a.meta, Tagging: a.tagging, ServerSideEncryption: a.sse, SSEKMSKeyId: a.kms,
		SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5, ACL: a.acl,
	})
	if err != nil {
		return fmt.Errorf("start multipart upload of s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err))
	}
	abort := func(cause error) error {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer acancel()
		_, _ = mp.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId})
		return cause
	}
	var parts []types.CompletedPart
	for num := int32(1); ; num++ {
		out, err := mp.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(t.part.Bytes()), ContentLength: aws.Int64(int64(t.part.Len())),
			SSECustomerAlgorithm: a.cAlg, SSECustomerKey: a.cKey, SSECustomerKeyMD5: a.cKeyMD5,
		})
		if err != nil {
			return abort(fmt.Errorf("upload part %d of s3://%s/%s: %w%s", num, t.s.bucket, key, err, hint(err)))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		t.part.Reset()
		n, err := io.CopyN(&t.part, body, t.s.partSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return abort(fmt.Errorf("read %s: %w", key, err))
		}
		if n == 0 {
			break
		}
	}
	if _, err := mp.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(t.s.bucket), Key: aws.String(key), UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: a.ifNoneMt,
	}); err != nil {
		return abort(fmt.Errorf("complete multipart upload of s3://%s/%s: %w%s", t.s.bucket, key, err, hint(err)))
	}
	return nil
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

// encodeValue renders a record value in the object format.
func (s *settings) encodeValue(r *connect.Record) ([]byte, error) {
	if s.format == ByteArrayFormat {
		var b []byte
		switch v := r.Value.(type) {
		case []byte:
			b = v
		case string:
			b = []byte(v)
		default:
			return nil, fmt.Errorf("ByteArrayFormat needs byte values (value.converter=%s) at %s, got %T", connect.ByteArrayConverterClass, r.Coordinates(), r.Value)
		}
		out := make([]byte, 0, len(b)+len(s.baSep))
		return append(append(out, b...), s.baSep...), nil
	}
	b, err := encodeJSON(r.Value)
	if err != nil {
		return nil, fmt.Errorf("encode value at %s as JSON: %w", r.Coordinates(), err)
	}
	return append(b, '\n'), nil
}

// encodeHeaders renders headers as a JSON array of {"key","value"}.
func encodeHeaders(hs []connect.Header) ([]byte, error) {
	type kv struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	out := make([]kv, len(hs))
	for i, h := range hs {
		v := h.Data
		if v == nil && h.Value != nil {
			v = string(h.Value)
		}
		out[i] = kv{h.Key, v}
	}
	return encodeJSON(out)
}

// encodeJSON writes v as JSON (see appendJSON for how, and how that relates
// to Confluent's JsonFormat).
func encodeJSON(v any) ([]byte, error) {
	return appendJSON(nil, v)
}

// PreCommit reports, per partition, the offset after the last committed
// batch; buffered records are not durable.
func (t *sinkTask) PreCommit(_ context.Context, current map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[connect.TopicPartition]int64{}
	for tp := range current {
		if st := t.parts[tp]; st != nil && st.durable >= 0 {
			out[tp] = st.durable
		}
	}
	return out, nil
}

// Close drops the partitions' buffered records; their next owner re-reads
// them from the last commit.
func (t *sinkTask) Close(_ context.Context, tps []connect.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		if st := t.parts[tp]; st != nil {
			st.drop()
		}
		delete(t.parts, tp)
	}
	return nil
}

// Stop drops everything.
func (t *sinkTask) Stop() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.parts {
		st.drop()
	}
	t.parts = map[connect.TopicPartition]*partState{}
	return nil
}
