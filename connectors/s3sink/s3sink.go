// Package s3sink is Ferry's S3 sink, configuration-compatible with
// Confluent's io.confluent.connect.s3.S3SinkConnector: it writes records as
// objects named <topics.dir>/<topic>/<encoded partition>/<topic>+<kafka
// partition>+<start offset>.<ext>, where the encoded partition comes from
// partitioner.class (partition=3, field=value, or a time path).
// docs/s3sink.md is the user's page: guarantees, formats and schemas,
// configuration against Confluent's, memory and speed.
//
// As in Confluent's connector, a Kafka partition's open objects (one per
// encoded partition) are committed together: after flush.size records, when
// rotate.interval.ms is exceeded (or, with it, when the encoded partition
// changes), at the next wall-clock multiple of rotate.schedule.interval.ms
// (counted from midnight in timezone), also on idle partitions, or when a
// record's schema does not fit the open object. Records are encoded as they
// arrive (put.go) into buffers drawn from the worker's memory budget
// (memory.go); committed objects upload in the background while records
// keep coming (upload.go); a partition's offset is reported durable only up
// to the end of its last batch that is in S3 with every batch before it.
// A record the sink cannot write goes to the runtime's errant record
// reporter when it arrives.
//
// What holds in each mode:
//   - Without rotate.schedule.interval.ms and with a deterministic time
//     (timestamp.extractor=Record or RecordField, or no time-based rule),
//     object boundaries depend only on the records, so a task that resumes
//     from the last commit after a crash or rebalance rewrites the same keys
//     with the same content: every record is in S3 exactly once.
//   - With rotate.schedule.interval.ms the cut depends on the wall clock.
//     Objects are then written with If-None-Match: * and carry their end
//     offset in their metadata; a replay that meets an existing object skips
//     the records it holds and writes the rest under the next start offset
//     (scanning forward), so records are still written once and no object
//     is overwritten. A partition's records wait while its batch uploads
//     (other partitions go on), since what the upload finds decides where
//     they go.
//   - With timestamp.extractor=Wallclock and a time-based partitioner or
//     rotate.interval.ms, a replay may cut differently: records may be
//     written twice.
package s3sink

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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

type sinkTask struct {
	mu       sync.Mutex
	client   Uploader
	s        *settings
	parts    map[connect.TopicPartition]*partState
	now      func() time.Time
	log      zerolog.Logger
	mem      *budget // the worker's, shared by its tasks
	dir      string  // where buffers spill
	reporter connect.ErrantRecordReporter

	sval, skey, shdr []byte // a record's encodings, before they are buffered
	valSchemas       schemaCache
	keySchemas       schemaCache
	heldBytes        int64 // records held back (conditional writes), in every partition

	slots    chan struct{}      // one per batch in flight
	uploads  sync.WaitGroup     // the batches in flight
	upCtx    context.Context    // the uploads'; cancelled by Stop
	upCancel context.CancelFunc //
	upMu     sync.Mutex
	upErr    error // the first failed upload's
}

var _ connect.SinkTask = (*sinkTask)(nil)

// Start reads the configuration, builds the S3 client and checks that the
// bucket is there and reachable.
func (t *sinkTask) Start(ctx context.Context, raw map[string]string) error {
	t.log = zerolog.Ctx(ctx).With().Str("connector_class", Class).Logger()
	cfg := withLegacyKeys(connect.WithDefaults(ConfigSpec, raw))
	s, es := parseSettings(cfg)
	if len(es) > 0 {
		return fmt.Errorf("s3 sink configuration: %w", es)
	}
	t.s = s
	if unknown := unknownKeys(raw); len(unknown) > 0 {
		sort.Strings(unknown)
		t.log.Warn().Strs("keys", unknown).Msg("s3 sink ignores unknown configuration keys")
	}
	if ignored := ignoredIn(raw); len(ignored) > 0 {
		t.log.Warn().Strs("keys", ignored).Msg("s3 sink accepts these Confluent keys and does not act on them")
	}
	if s.format == ParquetFormat && cfg[KeyParquetCodec] == "lz4" {
		t.log.Warn().Msg("parquet.codec=lz4 writes LZ4_RAW objects named .lz4raw.parquet: Hadoop's LZ4 framing, which Confluent's lz4 writes, is deprecated by the Parquet format and no Go library writes it")
	}
	t.reporter = connect.ErrantRecordReporterFrom(ctx)
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
	return t.checkBucket(ctx, cfg)
}

// bucketHeader checks a bucket.
type bucketHeader interface {
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, opts ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
}

// checkBucket asks S3 for the bucket, so that a missing bucket, denied
// access or a wrong region fail the task when it starts, naming the key to
// fix, rather than at the first upload.
func (t *sinkTask) checkBucket(ctx context.Context, cfg map[string]string) error {
	h, ok := t.client.(bucketHeader)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := h.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(t.s.bucket)})
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch status {
	case http.StatusNotFound:
		return fmt.Errorf("s3 bucket %q (%s) does not exist%s: %w", t.s.bucket, KeyBucket, endpointNote(cfg), err)
	case http.StatusForbidden:
		return fmt.Errorf("access to s3 bucket %q denied: check the credentials (%s, %s, %s) and the bucket policy: %w",
			t.s.bucket, KeyAccessKeyID, KeyCredsProvider, KeySTSRoleARN, err)
	case http.StatusMovedPermanently, http.StatusBadRequest:
		if region := re.Response.Header.Get("X-Amz-Bucket-Region"); region != "" && region != cfg[KeyRegion] {
			return fmt.Errorf("s3 bucket %q is in region %s, not %s=%s: set %s=%s: %w", t.s.bucket, region, KeyRegion, cfg[KeyRegion], KeyRegion, region, err)
		}
		if status == http.StatusMovedPermanently {
			return fmt.Errorf("s3 bucket %q is not in region %s=%s: set %s to the bucket's region: %w", t.s.bucket, KeyRegion, cfg[KeyRegion], KeyRegion, err)
		}
	}
	return fmt.Errorf("check s3 bucket %q%s: %w", t.s.bucket, endpointNote(cfg), err)
}

func endpointNote(cfg map[string]string) string {
	if u := strings.TrimSpace(cfg[KeyStoreURL]); u != "" {
		return " at " + KeyStoreURL + "=" + u
	}
	return " in region " + cfg[KeyRegion]
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
	if pu := strings.TrimSpace(cfg[KeyProxyURL]); pu != "" {
		u, err := url.Parse(pu)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyProxyURL, err)
		}
		if user := strings.TrimSpace(cfg[KeyProxyUser]); user != "" {
			u.User = url.UserPassword(user, cfg[KeyProxyPassword])
		}
		opts = append(opts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = http.ProxyURL(u)
		})))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	arn := strings.TrimSpace(cfg[KeySTSRoleARN])
	if role := connect.ServiceExecutionRoleFrom(ctx); arn == "" && role != "" && strings.TrimSpace(cfg[KeyAccessKeyID]) == "" {
		// No credentials of its own: the connector acts as its service
		// execution role, as on MSK Connect, with the worker's credentials
		// as the source.
		arn = role
	}
	if arn != "" {
		stsCfg := awsCfg.Copy()
		if r := strings.TrimSpace(cfg[KeySTSRegion]); r != "" {
			stsCfg.Region = r
		}
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(stsCfg), arn,
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
	accelerate := strings.EqualFold(cfg[KeyWANMode], "true")
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.UseAccelerate = accelerate
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
			t.dropHeld(st)
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
	for _, st := range t.parts {
		if len(st.held) > 0 {
			if err := t.release(ctx, st, now); err != nil {
				return err
			}
		}
	}
	// Records come in runs of one partition: its state is looked up once
	// a run (per record it was 2% of the JSON path's CPU). Nothing else
	// adds or removes a partition's state while Put holds t.mu.
	var tp connect.TopicPartition
	var st *partState
	for i := range records {
		r := &records[i]
		if rtp := r.OriginalTopicPartition(); st == nil || rtp != tp {
			tp, st = rtp, t.parts[rtp]
			if st == nil {
				st = newPartState()
				t.parts[tp] = st
			}
		}
		if err := t.put(ctx, st, r, now); err != nil {
			return err
		}
	}
	if t.s.rotateSchedule > 0 {
		for _, st := range t.parts {
			if st.count > 0 && !now.Before(st.rotateAt) {
				if err := t.commit(ctx, st); err != nil {
					return err
				}
			}
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
	a := objectAttrs{meta: map[string]string{metaEndOffset: strconv.FormatInt(f.last, 10)}}
	if conditional {
		a.ifNoneMt = aws.String("*")
	}
	if t.s.tagging {
		tags := url.Values{
			"startOffset": {strconv.FormatInt(f.first, 10)},
			"endOffset":   {strconv.FormatInt(f.last, 10)},
			"recordCount": {strconv.Itoa(f.n)},
		}
		for _, kv := range t.s.extraTags {
			tags.Set(kv[0], kv[1])
		}
		a.tagging = aws.String(tags.Encode())
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

// objectEnd reads the last offset of an object an earlier attempt wrote;
// found is false when there is no such object.
func (t *sinkTask) objectEnd(ctx context.Context, key string) (end int64, found bool, err error) {
	h, ok := t.client.(headObjecter)
	if !ok {
		return 0, false, fmt.Errorf("s3://%s/%s exists and the client cannot read its metadata", t.s.bucket, key)
	}
	out, err := h.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(t.s.bucket), Key: aws.String(key)})
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("read metadata of existing s3://%s/%s: %w", t.s.bucket, key, err)
	}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, metaEndOffset) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				break
			}
			return n, true, nil
		}
	}
	return 0, false, fmt.Errorf("s3://%s/%s exists without a %s metadata entry; it was not written by this sink, refusing to overwrite it", t.s.bucket, key, metaEndOffset)
}

// appendValue appends a record value, rendered in the object format, to
// dst: JSON as Confluent's JsonFormat writes it (appendSchemaJSON with the
// record's Connect schema), or the bytes of ByteArray.
func (s *settings) appendValue(dst []byte, value any, schema *connect.Schema) ([]byte, error) {
	if s.format == ByteArrayFormat {
		switch v := value.(type) {
		case []byte:
			dst = append(dst, v...)
		case string:
			dst = append(dst, v...)
		default:
			return nil, fmt.Errorf("%s needs byte values (value.converter=%s), got %T", ByteArrayFormat, connect.ByteArrayConverterClass, value)
		}
		return append(dst, s.baSep...), nil
	}
	var err error
	if schema != nil {
		dst, err = appendSchemaJSON(dst, schema, value, s.decimalNumeric)
	} else {
		dst, err = appendJSON(dst, value)
	}
	if err != nil {
		return nil, fmt.Errorf("encode as JSON: %w", err)
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
			return nil, fmt.Errorf("%s=%s needs byte keys (key.converter=%s), got %T", KeyKeysFormat, ByteArrayFormat, connect.ByteArrayConverterClass, r.Key)
		}
		return append(dst, s.baSep...), nil
	}
	var err error
	if r.KeySchema != nil {
		dst, err = appendSchemaJSON(dst, r.KeySchema, r.Key, s.decimalNumeric)
	} else {
		dst, err = appendJSON(dst, r.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("encode as JSON: %w", err)
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
			t.dropHeld(st)
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
		t.dropHeld(st)
	}
	t.parts = map[connect.TopicPartition]*partState{}
	return nil
}
