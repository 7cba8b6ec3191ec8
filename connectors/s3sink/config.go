package s3sink

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Configuration keys, as Confluent's S3 sink names them.
const (
	KeyBucket          = "s3.bucket.name"
	KeyRegion          = "s3.region"
	KeyStoreURL        = "store.url"
	KeyPathStyle       = "s3.path.style.access.enabled"
	KeyAccessKeyID     = "aws.access.key.id"
	KeySecretAccessKey = "aws.secret.access.key"
	KeyCredsProvider   = "s3.credentials.provider.class"
	KeySTSRoleARN      = "sts.role.arn"
	KeySTSSessionName  = "sts.role.session.name"
	KeySTSExternalID   = "sts.role.external.id"
	KeyTopicsDir       = "topics.dir"
	KeyFlushSize       = "flush.size"
	KeyFormatClass     = "format.class"
	KeySchemaCompat    = "schema.compatibility"
	KeyDirectoryDelim  = "directory.delim"
	KeyFileDelim       = "file.delim"
	KeyZeroPadWidth    = "filename.offset.zero.pad.width"
	KeyStorageClass    = "storage.class"
	KeyPartitioner     = "partitioner.class"
	KeyPartitionField  = "partition.field.name"
	KeyPartitionDur    = "partition.duration.ms"
	KeyPathFormat      = "path.format"
	KeyTimezone        = "timezone"
	KeyLocale          = "locale"
	KeyTimestampField  = "timestamp.field"
	KeyNullValues      = "behavior.on.null.values"
	KeyCompression     = "s3.compression.type"
	KeyStoreKeys       = "store.kafka.keys"
	KeyStoreHeaders    = "store.kafka.headers"
	KeyKeysFormat      = "keys.format.class"
	KeyHeadersFormat   = "headers.format.class"
	KeyTagging         = "s3.object.tagging"
	KeySSEAlgorithm    = "s3.ssea.name"
	KeySSEKMSKeyID     = "s3.sse.kms.key.id"
	KeySSECustomerKey  = "s3.sse.customer.key"
	KeyACLCanned       = "s3.acl.canned"
	KeyPartSize        = "s3.part.size"
	KeyPartRetries     = "s3.part.retries"
	KeyRetryBackoff    = "s3.retry.backoff.ms"
	KeyBASeparator     = "format.bytearray.separator"
	KeyBAExtension     = "format.bytearray.extension"

	KeyRotateInterval     = "rotate.interval.ms"
	KeyRotateSchedule     = "rotate.schedule.interval.ms"
	KeyTimestampExtractor = "timestamp.extractor"
)

// Supported classes.
const (
	JSONFormat      = "io.confluent.connect.s3.format.json.JsonFormat"
	ByteArrayFormat = "io.confluent.connect.s3.format.bytearray.ByteArrayFormat"
	S3Storage       = "io.confluent.connect.s3.storage.S3Storage"

	DefaultPartitioner   = "io.confluent.connect.storage.partitioner.DefaultPartitioner"
	FieldPartitioner     = "io.confluent.connect.storage.partitioner.FieldPartitioner"
	TimeBasedPartitioner = "io.confluent.connect.storage.partitioner.TimeBasedPartitioner"
	DailyPartitioner     = "io.confluent.connect.storage.partitioner.DailyPartitioner"
	HourlyPartitioner    = "io.confluent.connect.storage.partitioner.HourlyPartitioner"

	// AssumeRoleProvider is Confluent's STS AssumeRole credentials provider.
	AssumeRoleProvider = "io.confluent.connect.s3.auth.AwsAssumeRoleCredentialsProvider"
	// DefaultChainProvider is the AWS SDK's default credentials chain.
	DefaultChainProvider = "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"
)

var formats = []string{JSONFormat, ByteArrayFormat, AvroFormat, ParquetFormat}

// headerFormats are the formats of headers objects: as Confluent's, not
// ByteArray (headers are not bytes).
var headerFormats = []string{JSONFormat, AvroFormat, ParquetFormat}

func oneOfFormats(fs ...string) func(string) error {
	return func(v string) error {
		if err := connect.OneOf(fs...)(v); err != nil {
			return fmt.Errorf("format %q is not supported; supported: %s", v, strings.Join(fs, ", "))
		}
		return nil
	}
}

var cannedACLs = []string{"private", "public-read", "public-read-write", "authenticated-read",
	"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}

// ConfigSpec is the sink's configuration.
var ConfigSpec = []connect.ConfigField{
	{Name: KeyBucket, Type: connect.TypeString, Required: true, Doc: "bucket the objects are written to"},
	{Name: KeyRegion, Type: connect.TypeString, Default: "us-east-1", Doc: "AWS region of the bucket"},
	{Name: KeyStoreURL, Type: connect.TypeString, Doc: "custom S3 endpoint (e.g. http://127.0.0.1:7070); empty: AWS"},
	{Name: KeyPathStyle, Type: connect.TypeBoolean, Doc: "path-style bucket addressing (default: true when store.url is set)"},
	{Name: KeyAccessKeyID, Type: connect.TypePassword, Secret: true, Doc: "access key id; empty: the AWS SDK's default credential chain (or sts.role.arn)"},
	{Name: KeySecretAccessKey, Type: connect.TypePassword, Secret: true, Doc: "secret access key"},
	{Name: KeyCredsProvider, Type: connect.TypeClass, Default: DefaultChainProvider, Validate: connect.OneOf(DefaultChainProvider, AssumeRoleProvider),
		Doc: "credentials: the default chain (or static aws.access.key.id), or STS AssumeRole of sts.role.arn"},
	{Name: KeySTSRoleARN, Type: connect.TypeString, Doc: "role assumed with STS (with " + AssumeRoleProvider + ", or alone); the connector's service execution role"},
	{Name: KeySTSSessionName, Type: connect.TypeString, Default: "ferry-s3-sink", Doc: "STS session name"},
	{Name: KeySTSExternalID, Type: connect.TypePassword, Secret: true, Doc: "STS external id"},
	{Name: KeyTopicsDir, Type: connect.TypeString, Default: "topics", Doc: "top-level directory of the objects"},
	{Name: KeyFlushSize, Type: connect.TypeInt, Required: true, Validate: connect.AtLeast(1), Doc: "records per topic partition after which its open objects are committed"},
	{Name: KeyFormatClass, Type: connect.TypeClass, Required: true, Validate: oneOfFormats(formats...), Doc: "object format: " + strings.Join(formats, ", ")},
	{Name: KeySchemaCompat, Type: connect.TypeString, Default: "NONE", Validate: connect.OneOf("NONE", "BACKWARD", "FORWARD", "FULL"), Doc: "schema evolution handling; Avro and Parquet objects always rotate on a schema change (NONE)"},
	{Name: KeyDirectoryDelim, Type: connect.TypeString, Default: "/", Validate: nonEmpty, Doc: "directory delimiter in object keys"},
	{Name: KeyFileDelim, Type: connect.TypeString, Default: "+", Validate: nonEmpty, Doc: "delimiter between topic, partition and offset in file names"},
	{Name: KeyZeroPadWidth, Type: connect.TypeInt, Default: "10", Validate: connect.AtLeast(0), Doc: "width the start offset is zero-padded to"},
	{Name: KeyStorageClass, Type: connect.TypeClass, Default: S3Storage, Validate: connect.OneOf(S3Storage), Doc: "storage implementation; only " + S3Storage},
	{Name: KeyPartitioner, Type: connect.TypeClass, Default: DefaultPartitioner,
		Validate: connect.OneOf(DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, DailyPartitioner, HourlyPartitioner), Doc: "partitioner (Confluent class names)"},
	{Name: KeyPartitionField, Type: connect.TypeList, Doc: "FieldPartitioner: value fields (dotted paths into nested values) the objects are partitioned by"},
	{Name: KeyPartitionDur, Type: connect.TypeLong, Default: "-1", Doc: "TimeBasedPartitioner: duration of a partition in ms"},
	{Name: KeyPathFormat, Type: connect.TypeString, Validate: func(v string) error { _, err := parseJoda(v); return err },
		Doc: "TimeBasedPartitioner: Joda-Time pattern of the directory, e.g. 'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"},
	{Name: KeyTimezone, Type: connect.TypeString, Validate: func(v string) error {
		if _, err := time.LoadLocation(v); err != nil {
			return fmt.Errorf("unknown time zone %q", v)
		}
		return nil
	}, Doc: "time zone of time-based partitions and of rotate.schedule.interval.ms (e.g. UTC, America/New_York); required by the time-based partitioners and the schedule"},
	{Name: KeyLocale, Type: connect.TypeString, Doc: "locale of time-based partitions (e.g. en-US); required by the time-based partitioners (numeric patterns only, so it does not change the output)"},
	{Name: KeyTimestampExtractor, Type: connect.TypeString, Default: "Wallclock", Validate: connect.OneOf("Wallclock", "Record", "RecordField"),
		Doc: "time of a record for partitioning and rotate.interval.ms: Wallclock (processing time), Record (Kafka timestamp) or RecordField (timestamp.field)"},
	{Name: KeyTimestampField, Type: connect.TypeString, Default: "timestamp", Doc: "RecordField: value field holding the time (epoch ms, or an RFC 3339 string)"},
	{Name: KeyNullValues, Type: connect.TypeString, Default: "fail", Validate: connect.OneOf("fail", "ignore"), Doc: "what to do with a null value (tombstone): fail the task or skip it"},
	{Name: KeyCompression, Type: connect.TypeString, Default: "none", Validate: connect.OneOf("none", "gzip"),
		Doc: "object compression: JsonFormat and ByteArrayFormat only (with stored keys and headers, their formats too); Avro and Parquet compress with avro.codec and parquet.codec"},
	{Name: KeyStoreKeys, Type: connect.TypeBoolean, Default: "false", Doc: "also write each object's record keys to <name>.keys.<ext>, in keys.format.class"},
	{Name: KeyStoreHeaders, Type: connect.TypeBoolean, Default: "false", Doc: "also write each object's record headers to <name>.headers.<ext>, in headers.format.class"},
	{Name: KeyKeysFormat, Type: connect.TypeClass, Default: AvroFormat, Validate: oneOfFormats(formats...),
		Doc: "store.kafka.keys: format of the keys objects: " + strings.Join(formats, ", ")},
	{Name: KeyHeadersFormat, Type: connect.TypeClass, Default: AvroFormat, Validate: oneOfFormats(headerFormats...),
		Doc: "store.kafka.headers: format of the headers objects (an array of {key, value} per record, values as text): " + strings.Join(headerFormats, ", ")},
	{Name: KeyTagging, Type: connect.TypeBoolean, Default: "false", Doc: "tag objects with startOffset, endOffset and recordCount"},
	{Name: KeySSEAlgorithm, Type: connect.TypeString, Default: "", Validate: connect.OneOf("", "AES256", "aws:kms"), Doc: "server-side encryption: AES256 or aws:kms"},
	{Name: KeySSEKMSKeyID, Type: connect.TypeString, Doc: "KMS key of aws:kms encryption"},
	{Name: KeySSECustomerKey, Type: connect.TypePassword, Secret: true, Validate: func(v string) error {
		if v == "" {
			return nil
		}
		if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != 32 {
			return fmt.Errorf("must be a base64-encoded 256-bit key")
		}
		return nil
	}, Doc: "SSE-C key (base64, 256 bits)"},
	{Name: KeyACLCanned, Type: connect.TypeString, Validate: func(v string) error {
		if v == "" {
			return nil
		}
		return connect.OneOf(cannedACLs...)(v)
	}, Doc: "canned ACL of the objects"},
	{Name: KeyPartSize, Type: connect.TypeInt, Default: "26214400", Validate: connect.AtLeast(5 << 20), Doc: "multipart upload part size in bytes (≥ 5 MiB)"},
	{Name: KeyPartRetries, Type: connect.TypeInt, Default: "3", Validate: connect.AtLeast(0), Doc: "retries of a failed S3 request"},
	{Name: KeyRetryBackoff, Type: connect.TypeLong, Default: "200", Validate: connect.AtLeast(0), Doc: "first retry backoff in ms, doubled on each retry"},
	{Name: KeyAvroCodec, Type: connect.TypeString, Default: "null", Validate: func(v string) error {
		if _, ok := avroCodecs[v]; !ok {
			return fmt.Errorf("must be one of null, deflate, snappy, zstandard, got %q", v)
		}
		return nil
	}, Doc: "AvroFormat: codec of the container file"},
	{Name: KeyParquetCodec, Type: connect.TypeString, Default: "snappy", Validate: func(v string) error {
		if _, ok := parquetCodecs[v]; !ok {
			return fmt.Errorf("must be one of none, snappy, gzip, brotli, lz4, zstd, got %q", v)
		}
		return nil
	}, Doc: "ParquetFormat: compression codec (names the extension, e.g. .snappy.parquet)"},
	{Name: KeyBASeparator, Type: connect.TypeString, Doc: "ByteArray: bytes written after each record (Java escapes \\n \\r \\t understood); default a newline"},
	{Name: KeyBAExtension, Type: connect.TypeString, Default: ".bin", Doc: "ByteArray: file extension"},
	{Name: KeyRotateInterval, Type: connect.TypeLong, Default: "-1", Doc: "also commit a partition's objects when a record's time (timestamp.extractor) is this many ms after the first's; -1: off. " +
		"Exactly once across restarts with timestamp.extractor=Record or RecordField"},
	{Name: KeyRotateSchedule, Type: connect.TypeLong, Default: "-1", Doc: "also commit a partition's open objects at the next wall-clock multiple of this many ms (counted from midnight in timezone, which it requires), even if no more records come; -1: off. " +
		"Objects are then written with If-None-Match: * so an object is never overwritten"},
}

func nonEmpty(v string) error {
	if v == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

// knownPrefixes are framework keys the runtime reads.
var knownPrefixes = []string{"name", "connector.class", "tasks.max", "topics", "key.converter", "value.converter",
	"header.converter", "transforms", "predicates", "errors.", "consumer.", "consumer.override.", "offset.", "config.action.reload"}

// unknownKeys lists keys neither the sink nor the framework knows.
func unknownKeys(cfg map[string]string) []string {
	known := map[string]bool{}
	for _, f := range ConfigSpec {
		known[f.Name] = true
	}
	var out []string
next:
	for k := range cfg {
		if known[k] {
			continue
		}
		for _, p := range knownPrefixes {
			if strings.HasPrefix(k, p) {
				continue next
			}
		}
		out = append(out, k)
	}
	return out
}

// settings is the parsed configuration.
type settings struct {
	bucket, topicsDir, dirDelim, fileDelim string
	padWidth, flushSize                    int
	ignoreNull, gzip                       bool
	format, keysFormat, headersFormat      string
	baSep                                  []byte
	baExt                                  string
	rotateInterval, rotateSchedule         time.Duration
	extractor, tsField                     string
	storeKeys, storeHeaders, tagging       bool
	sse, kmsKey, sseCustomerKey, acl       string
	avroCodec, parquetCodec                string
	partRetries                            int
	partSize                               int64
	loc                                    *time.Location // timezone; UTC when unset (no rule needs it then)
	retryBackoff                           time.Duration
	part                                   partitioner
}

// problems collects configuration problems, at most one per key.
type problems struct {
	es   connect.ConfigErrors
	seen map[string]bool
}

func (p *problems) add(key, format string, args ...any) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[key] {
		return
	}
	p.seen[key] = true
	p.es = append(p.es, &connect.ConfigError{Key: key, Message: fmt.Sprintf(format, args...)})
}

// num reads an integer in [min, max]; a problem (and min) when it is not
// one.
func (p *problems) num(cfg map[string]string, key string, min, max int64) int64 {
	v := strings.TrimSpace(cfg[key])
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		p.add(key, "must be an integer from %d to %d, got %q", min, max, v)
		return min
	}
	return n
}

// validate is the sink's connect.Plugin.Validate: the problems
// parseSettings finds, at create time as when a task starts.
func validate(cfg map[string]string) connect.ConfigErrors {
	_, es := parseSettings(cfg)
	return es
}

// parseSettings reads a configuration with defaults filled in: every key's
// own rule, then the rules across keys the per-key spec cannot express. It
// returns every problem, each naming the key to change.
func parseSettings(cfg map[string]string) (*settings, connect.ConfigErrors) {
	var p problems
	s := &settings{}
	for _, f := range ConfigSpec {
		v, ok := cfg[f.Name]
		if !ok {
			continue
		}
		if f.Validate != nil && (v != "" || f.Required) {
			if err := f.Validate(v); err != nil {
				p.add(f.Name, "%v", err)
			}
		}
	}
	const maxInt, maxMs = math.MaxInt32, math.MaxInt64 / int64(time.Millisecond) // INT keys; ms that fit a Duration
	s.flushSize = int(p.num(cfg, KeyFlushSize, 1, maxInt))
	s.padWidth = int(p.num(cfg, KeyZeroPadWidth, 0, maxInt))
	s.partSize = p.num(cfg, KeyPartSize, 5<<20, maxInt)
	s.partRetries = int(p.num(cfg, KeyPartRetries, 0, maxInt))
	s.retryBackoff = time.Duration(p.num(cfg, KeyRetryBackoff, 0, maxMs)) * time.Millisecond
	s.rotateInterval = time.Duration(max(p.num(cfg, KeyRotateInterval, math.MinInt64, maxMs), 0)) * time.Millisecond
	s.rotateSchedule = time.Duration(max(p.num(cfg, KeyRotateSchedule, math.MinInt64, maxMs), 0)) * time.Millisecond
	s.loc = time.UTC
	if tz := strings.TrimSpace(cfg[KeyTimezone]); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			p.add(KeyTimezone, "unknown time zone %q", tz)
		} else {
			s.loc = loc
		}
	} else if s.rotateSchedule > 0 {
		// As Confluent's connector: the schedule counts from midnight there.
		p.add(KeyTimezone, "is required with %s (the schedule counts from midnight in it), e.g. UTC", KeyRotateSchedule)
	}
	if s.bucket = strings.TrimSpace(cfg[KeyBucket]); s.bucket == "" {
		p.add(KeyBucket, "is required")
	}
	s.topicsDir = strings.Trim(cfg[KeyTopicsDir], "/")
	s.dirDelim, s.fileDelim = cfg[KeyDirectoryDelim], cfg[KeyFileDelim]
	s.ignoreNull = cfg[KeyNullValues] == "ignore"
	s.format, s.keysFormat, s.headersFormat = cfg[KeyFormatClass], cfg[KeyKeysFormat], cfg[KeyHeadersFormat]
	s.storeKeys = strings.EqualFold(cfg[KeyStoreKeys], "true")
	s.storeHeaders = strings.EqualFold(cfg[KeyStoreHeaders], "true")
	if s.gzip = cfg[KeyCompression] == "gzip"; s.gzip {
		// As Confluent's connector: gzip wraps JSON and ByteArray files;
		// Avro and Parquet compress inside the file with their own codec.
		if isRowFormat(s.format) {
			p.add(KeyCompression, "gzip applies to %s and %s only, not %s=%s (set %s instead)",
				JSONFormat, ByteArrayFormat, KeyFormatClass, s.format, codecKey(s.format))
		}
		if s.storeKeys && isRowFormat(s.keysFormat) {
			p.add(KeyKeysFormat, "must be %s or %s with %s=gzip and %s=true, got %s (the default is %s)",
				JSONFormat, ByteArrayFormat, KeyCompression, KeyStoreKeys, s.keysFormat, AvroFormat)
		}
		if s.storeHeaders && isRowFormat(s.headersFormat) {
			p.add(KeyHeadersFormat, "must be %s with %s=gzip and %s=true, got %s (the default is %s)",
				JSONFormat, KeyCompression, KeyStoreHeaders, s.headersFormat, AvroFormat)
		}
	}
	s.avroCodec, s.parquetCodec = cfg[KeyAvroCodec], cfg[KeyParquetCodec]
	s.extractor, s.tsField = cfg[KeyTimestampExtractor], cfg[KeyTimestampField]
	if s.extractor == "RecordField" && strings.TrimSpace(s.tsField) == "" {
		p.add(KeyTimestampField, "is required with %s=RecordField", KeyTimestampExtractor)
	}
	s.tagging = strings.EqualFold(cfg[KeyTagging], "true")
	s.sse, s.kmsKey, s.sseCustomerKey, s.acl = cfg[KeySSEAlgorithm], cfg[KeySSEKMSKeyID], cfg[KeySSECustomerKey], cfg[KeyACLCanned]
	if s.sseCustomerKey != "" && s.sse != "" {
		p.add(KeySSECustomerKey, "excludes %s=%s: objects are encrypted with one or the other", KeySSEAlgorithm, s.sse)
	}
	if s.kmsKey != "" && s.sse != "aws:kms" {
		p.add(KeySSEKMSKeyID, "needs %s=aws:kms, got %q", KeySSEAlgorithm, s.sse)
	}
	s.baSep = []byte("\n")
	if v, ok := cfg[KeyBASeparator]; ok && v != "" {
		s.baSep = []byte(unescapeJava(v))
	}
	s.baExt = cfg[KeyBAExtension]
	if cfg[KeyCredsProvider] == AssumeRoleProvider && strings.TrimSpace(cfg[KeySTSRoleARN]) == "" {
		p.add(KeySTSRoleARN, "is required with %s=%s", KeyCredsProvider, AssumeRoleProvider)
	}
	s.part = newPartitioner(cfg, s.dirDelim, &p)
	if len(p.es) > 0 {
		return nil, p.es
	}
	return s, nil
}

// codecKey names the key that compresses a row format.
func codecKey(format string) string {
	if format == ParquetFormat {
		return KeyParquetCodec
	}
	return KeyAvroCodec
}

// unescapeJava turns \n, \r, \t and \\ into their characters.
func unescapeJava(v string) string {
	return strings.NewReplacer(`\n`, "\n", `\r`, "\r", `\t`, "\t", `\\`, `\`).Replace(v)
}
