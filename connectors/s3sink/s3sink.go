// Package s3sink is Ferry's S3 sink, configuration-compatible with
// Confluent's io.confluent.connect.s3.S3SinkConnector: it writes each
// partition's records as objects of exactly flush.size records under
// <topics.dir>/<topic>/partition=<p>/<topic>+<p>+<start offset>.json.
//
// Object keys depend only on the records, so a task that resumes from the
// last committed offset after a crash rewrites the same keys with the same
// content: every record is in S3 exactly once. A partition's offset is
// reported durable only up to the end of its last uploaded object.
//
// Objects may also be closed by time: rotate.interval.ms (deterministic, so
// still exactly once, with timestamp.extractor=Record) and
// rotate.schedule.interval.ms (wall clock: a crash may duplicate records, as
// with Confluent's connector).
package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Class is the connector class, as Confluent names it.
const Class = "io.confluent.connect.s3.S3SinkConnector"

// Configuration keys.
const (
	KeyBucket          = "s3.bucket.name"
	KeyRegion          = "s3.region"
	KeyStoreURL        = "store.url"
	KeyPathStyle       = "s3.path.style.access.enabled"
	KeyAccessKeyID     = "aws.access.key.id"
	KeySecretAccessKey = "aws.secret.access.key"
	KeyTopicsDir       = "topics.dir"
	KeyFlushSize       = "flush.size"
	KeyFormatClass     = "format.class"
	KeySchemaCompat    = "schema.compatibility"
	KeyDirectoryDelim  = "directory.delim"
	KeyFileDelim       = "file.delim"
	KeyZeroPadWidth    = "filename.offset.zero.pad.width"
	KeyStorageClass    = "storage.class"
	KeyPartitioner     = "partitioner.class"
	KeyNullValues      = "behavior.on.null.values"
	KeyCompression     = "s3.compression.type"

	KeyRotateInterval     = "rotate.interval.ms"
	KeyRotateSchedule     = "rotate.schedule.interval.ms"
	KeyTimestampExtractor = "timestamp.extractor"
)

// uploadTimeout bounds one object upload, SDK retries included.
const uploadTimeout = 5 * time.Minute

// Supported classes.
const (
	JSONFormat         = "io.confluent.connect.s3.format.json.JsonFormat"
	S3Storage          = "io.confluent.connect.s3.storage.S3Storage"
	DefaultPartitioner = "io.confluent.connect.storage.partitioner.DefaultPartitioner"
)

// ConfigSpec is the sink's configuration.
var ConfigSpec = []connect.ConfigField{
	{Name: KeyBucket, Type: connect.TypeString, Required: true, Doc: "bucket the objects are written to"},
	{Name: KeyRegion, Type: connect.TypeString, Default: "us-east-1", Doc: "AWS region of the bucket"},
	{Name: KeyStoreURL, Type: connect.TypeString, Doc: "custom S3 endpoint (e.g. http://127.0.0.1:7070); empty: AWS"},
	{Name: KeyPathStyle, Type: connect.TypeBoolean, Doc: "path-style bucket addressing (default: true when store.url is set)"},
	{Name: KeyAccessKeyID, Type: connect.TypePassword, Secret: true, Doc: "access key id; empty: the AWS SDK's default credential chain"},
	{Name: KeySecretAccessKey, Type: connect.TypePassword, Secret: true, Doc: "secret access key"},
	{Name: KeyTopicsDir, Type: connect.TypeString, Default: "topics", Doc: "top-level directory of the objects"},
	{Name: KeyFlushSize, Type: connect.TypeInt, Required: true, Validate: connect.AtLeast(1), Doc: "records per object"},
	{Name: KeyFormatClass, Type: connect.TypeClass, Required: true, Validate: func(v string) error {
		if v != JSONFormat {
			return fmt.Errorf("format %q is not supported yet; the only supported format is %s", v, JSONFormat)
		}
		return nil
	}, Doc: "object format; only " + JSONFormat + " for now"},
	{Name: KeySchemaCompat, Type: connect.TypeString, Default: "NONE", Validate: connect.OneOf("NONE", "BACKWARD", "FORWARD", "FULL"), Doc: "schema evolution handling (no effect on JSON)"},
	{Name: KeyDirectoryDelim, Type: connect.TypeString, Default: "/", Doc: "directory delimiter in object keys"},
	{Name: KeyFileDelim, Type: connect.TypeString, Default: "+", Doc: "delimiter between topic, partition and offset in file names"},
	{Name: KeyZeroPadWidth, Type: connect.TypeInt, Default: "10", Validate: connect.AtLeast(0), Doc: "width the start offset is zero-padded to"},
	{Name: KeyStorageClass, Type: connect.TypeClass, Default: S3Storage, Validate: connect.OneOf(S3Storage), Doc: "storage implementation; only " + S3Storage},
	{Name: KeyPartitioner, Type: connect.TypeClass, Default: DefaultPartitioner, Validate: connect.OneOf(DefaultPartitioner), Doc: "partitioner; only " + DefaultPartitioner + " for now"},
	{Name: KeyNullValues, Type: connect.TypeString, Default: "fail", Validate: connect.OneOf("fail", "ignore"), Doc: "what to do with a null value (tombstone): fail the task or skip it"},
	{Name: KeyCompression, Type: connect.TypeString, Default: "none", Validate: connect.OneOf("none", "gzip"), Doc: "object compression"},
	{Name: KeyRotateInterval, Type: connect.TypeLong, Default: "-1", Doc: "also close an object when a record's timestamp (per timestamp.extractor) is this many ms after its first record's; -1: off. " +
		"Exactly-once across restarts holds with timestamp.extractor=Record"},
	{Name: KeyRotateSchedule, Type: connect.TypeLong, Default: "-1", Doc: "also close an object this many ms (wall clock) after it got its first record, even if no more records come; -1: off. " +
		"Wall-clock rotation gives up exactly-once: after a crash, records may be written twice"},
	{Name: KeyTimestampExtractor, Type: connect.TypeString, Default: "Wallclock", Validate: connect.OneOf("Wallclock", "Record"), Doc: "time rotate.interval.ms compares: Wallclock (processing time) or Record (the Kafka record timestamp)"},
}

// Plugin returns the sink's registration.
func Plugin() connect.Plugin {
	return connect.Plugin{
		Class:       Class,
		Aliases:     []string{"S3SinkConnector", "ferry.s3sink"},
		Kind:        connect.Sink,
		Doc:         "writes Kafka records to S3 as newline-delimited JSON objects of flush.size records (Confluent-compatible layout)",
		Config:      ConfigSpec,
		NewSinkTask: func() connect.SinkTask { return &sinkTask{} },
	}
}

// Uploader is the part of the S3 client the sink uses.
type Uploader interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// partState is one partition's unfinished object and what is durable.
type partState struct {
	buf     bytes.Buffer
	count   int   // records in buf
	start   int64 // offset of the first record in buf
	last    int64 // offset of the last record in buf
	next    int64 // offset after the last record seen; -1 before any
	durable int64 // offset after the last record of the last uploaded object; -1 none

	firstTs  time.Time // timestamp (per timestamp.extractor) of the first record in buf
	openedAt time.Time // wall clock when buf got its first record
}

type sinkTask struct {
	mu        sync.Mutex
	client    Uploader
	bucket    string
	topicsDir string
	dirDelim  string
	fileDelim string
	padWidth  int
	flushSize int
	ignoreNul bool
	gzip      bool
	parts     map[connect.TopicPartition]*partState

	rotateInterval time.Duration // rotate.interval.ms
	rotateSchedule time.Duration // rotate.schedule.interval.ms
	recordTime     bool          // timestamp.extractor=Record
	now            func() time.Time
}

var _ connect.SinkTask = (*sinkTask)(nil)

// Start reads the configuration and builds the S3 client.
func (t *sinkTask) Start(ctx context.Context, raw map[string]string) error {
	cfg := connect.WithDefaults(ConfigSpec, raw)
	var err error
	if t.flushSize, err = strconv.Atoi(strings.TrimSpace(cfg[KeyFlushSize])); err != nil || t.flushSize < 1 {
		return fmt.Errorf("%s must be an integer ≥ 1, got %q", KeyFlushSize, cfg[KeyFlushSize])
	}
	if t.padWidth, err = strconv.Atoi(strings.TrimSpace(cfg[KeyZeroPadWidth])); err != nil || t.padWidth < 0 {
		return fmt.Errorf("%s must be an integer ≥ 0, got %q", KeyZeroPadWidth, cfg[KeyZeroPadWidth])
	}
	if f := cfg[KeyFormatClass]; f != JSONFormat {
		return fmt.Errorf("%s %q is not supported; use %s", KeyFormatClass, f, JSONFormat)
	}
	t.bucket = strings.TrimSpace(cfg[KeyBucket])
	if t.bucket == "" {
		return fmt.Errorf("%s is required", KeyBucket)
	}
	t.topicsDir = strings.Trim(cfg[KeyTopicsDir], "/")
	t.dirDelim, t.fileDelim = cfg[KeyDirectoryDelim], cfg[KeyFileDelim]
	t.ignoreNul = cfg[KeyNullValues] == "ignore"
	t.gzip = cfg[KeyCompression] == "gzip"
	t.parts = map[connect.TopicPartition]*partState{}
	t.recordTime = cfg[KeyTimestampExtractor] == "Record"
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{KeyRotateInterval, &t.rotateInterval}, {KeyRotateSchedule, &t.rotateSchedule}} {
		if v := strings.TrimSpace(cfg[d.key]); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s must be an integer, got %q", d.key, v)
			}
			*d.dst = time.Duration(max(n, 0)) * time.Millisecond
		}
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.client == nil {
		if t.client, err = newClient(ctx, cfg); err != nil {
			return err
		}
	}
	return nil
}

func newClient(ctx context.Context, cfg map[string]string) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg[KeyRegion])}
	if ak := strings.TrimSpace(cfg[KeyAccessKeyID]); ak != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(ak, strings.TrimSpace(cfg[KeySecretAccessKey]), "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
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

// Open starts the partitions afresh: they are read again from the last
// committed offset, which is always the start of an object.
func (t *sinkTask) Open(_ context.Context, tps []connect.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		t.parts[tp] = &partState{next: -1, durable: -1}
	}
	return nil
}

// Put buffers records and uploads every object that is complete: flush.size
// records, or older than a rotation interval. It is also called with no
// records, so scheduled rotation happens on quiet partitions.
func (t *sinkTask) Put(ctx context.Context, records []connect.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range records {
		if err := t.put(ctx, &records[i]); err != nil {
			return err
		}
	}
	if t.rotateSchedule > 0 {
		now := t.now()
		for tp, st := range t.parts {
			if st.count > 0 && now.Sub(st.openedAt) >= t.rotateSchedule {
				if err := t.flush(ctx, tp, st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *sinkTask) put(ctx context.Context, r *connect.Record) error {
	tp := r.TopicPartition()
	st := t.parts[tp]
	if st == nil {
		st = &partState{next: -1, durable: -1}
		t.parts[tp] = st
	}
	if st.next >= 0 && r.Offset < st.next {
		// Redelivered from an earlier offset: start the object over there.
		st.buf.Reset()
		st.count = 0
	}
	st.next = r.Offset + 1
	if r.Value == nil {
		if !t.ignoreNul {
			return fmt.Errorf("null value at %s; set %s=ignore to skip tombstones", r.Coordinates(), KeyNullValues)
		}
		if st.count == 0 {
			st.durable = r.Offset + 1 // nothing buffered: everything up to here is settled
		}
		return nil
	}
	line, err := encodeJSON(r.Value)
	if err != nil {
		return fmt.Errorf("encode value at %s as JSON: %w", r.Coordinates(), err)
	}
	ts := t.now()
	if t.recordTime {
		ts = r.Timestamp
	}
	if st.count > 0 && t.rotateInterval > 0 && ts.Sub(st.firstTs) >= t.rotateInterval {
		// This record opens the next object.
		if err := t.flush(ctx, tp, st); err != nil {
			return err
		}
	}
	if st.count == 0 {
		st.buf.Reset()
		st.start = r.Offset
		st.firstTs = ts
		st.openedAt = t.now()
	}
	st.buf.Write(line)
	st.buf.WriteByte('\n')
	st.count++
	st.last = r.Offset
	if st.count < t.flushSize {
		return nil
	}
	return t.flush(ctx, tp, st)
}

// flush uploads the partition's buffered object and marks it durable.
func (t *sinkTask) flush(ctx context.Context, tp connect.TopicPartition, st *partState) error {
	if err := t.upload(ctx, tp, st.start, st.buf.Bytes()); err != nil {
		return err
	}
	st.durable = st.last + 1
	st.count = 0
	st.buf.Reset()
	return nil
}

// Key returns the object key of the object of tp starting at offset.
func (t *sinkTask) Key(tp connect.TopicPartition, start int64) string {
	ext := ".json"
	if t.gzip {
		ext += ".gz"
	}
	dir := tp.Topic + t.dirDelim + "partition=" + strconv.Itoa(int(tp.Partition))
	if t.topicsDir != "" {
		dir = t.topicsDir + t.dirDelim + dir
	}
	return dir + t.dirDelim + tp.Topic + t.fileDelim + strconv.Itoa(int(tp.Partition)) + t.fileDelim +
		fmt.Sprintf("%0*d", t.padWidth, start) + ext
}

func (t *sinkTask) upload(ctx context.Context, tp connect.TopicPartition, start int64, data []byte) error {
	key := t.Key(tp, start)
	if t.gzip {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(data); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip %s: %w", key, err)
		}
		data = z.Bytes()
	}
	// A hung request must not hold the partition (and the group's
	// rebalances) forever; the task fails and restarts from the commit.
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	_, err := t.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(t.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", t.bucket, key, err)
	}
	return nil
}

// encodeJSON writes v as Confluent's JsonFormat does (the value as JSON
// without a schema), without HTML escaping. Map keys come out sorted, so the
// same record always yields the same bytes.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// PreCommit reports, per partition, the offset after the last record of the
// last uploaded object; buffered records are not durable.
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
		delete(t.parts, tp)
	}
	return nil
}

// Stop drops everything.
func (t *sinkTask) Stop() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parts = map[connect.TopicPartition]*partState{}
	return nil
}
