package s3sink

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
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
	KeySTSRoleARN      = "s3.credentials.provider.sts.role.arn"
	KeySTSSessionName  = "s3.credentials.provider.sts.role.session.name"
	KeySTSExternalID   = "s3.credentials.provider.sts.role.external.id"
	KeySTSRegion       = "s3.credentials.provider.sts.region"
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

	KeyTombstonePartition     = "tombstone.encoded.partition"
	KeyReportNullToDLQ        = "report.null.values.to.dlq"
	KeyCompressionLevel       = "s3.compression.level"
	KeyDecimalFormat          = "json.decimal.format"
	KeyRotateOnPartition      = "rotate.file.on.partition.change"
	KeyConditionalWrites      = "enable.conditional.writes"
	KeyMaxFilesScan           = "max.files.scan.limit"
	KeyProxyURL               = "s3.proxy.url"
	KeyProxyUser              = "s3.proxy.user"
	KeyProxyPassword          = "s3.proxy.password"
	KeyWANMode                = "s3.wan.mode"
	KeyTaggingExtra           = "s3.object.tagging.key.value.pairs"
	KeyMaxOpenFiles           = "partitioner.max.open.files"
	KeyConnectMetaData        = "connect.meta.data"
	KeyDLQTopic               = "errors.deadletterqueue.topic.name"
	legacyKeySTSRoleARN       = "sts.role.arn"
	legacyKeySTSSessionName   = "sts.role.session.name"
	legacyKeySTSExternalID    = "sts.role.external.id"
	defaultTombstonePartition = "tombstone"
)

// legacyKeys are the names earlier Ferry versions read, still accepted: the
// STS keys without the s3.credentials.provider. prefix Confluent's
// AwsAssumeRoleCredentialsProvider is configured with.
var legacyKeys = map[string]string{
	legacyKeySTSRoleARN:     KeySTSRoleARN,
	legacyKeySTSSessionName: KeySTSSessionName,
	legacyKeySTSExternalID:  KeySTSExternalID,
}

// ignoredKeys are Confluent keys Ferry accepts and does not act on, with
// why; the task logs them.
var ignoredKeys = map[string]string{
	"s3.send.digest":                      "the AWS SDK checksums every request",
	"s3.http.send.expect.continue":        "the AWS SDK decides",
	"s3.elastic.buffer.enable":            "buffers come from the worker's memory budget (docs/memory.md)",
	"s3.elastic.buffer.init.capacity":     "buffers come from the worker's memory budget (docs/memory.md)",
	"max.write.duration.ms":               "Put never blocks on uploads beyond the upload slots",
	"s3.object.behavior.on.tagging.error": "tags are set with the object, so a tagging error fails the upload",
	"schema.generator.class":              "no Hive integration",
	"hive.integration":                    "no Hive integration",
	"enhanced.avro.schema.support":        "Connect schemas are mapped without Avro enum and union support",
	"allow.optional.map.keys":             "maps with optional keys are written as arrays of key/value records",
}

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
	{Name: KeyRegion, Type: connect.TypeString, Default: "us-west-2", Doc: "AWS region of the bucket (Confluent's default, us-west-2)"},
	{Name: KeyStoreURL, Type: connect.TypeString, Doc: "custom S3 endpoint (e.g. http://127.0.0.1:7070); empty: AWS"},
	{Name: KeyPathStyle, Type: connect.TypeBoolean, Doc: "path-style bucket addressing (default: true when store.url is set)"},
	{Name: KeyAccessKeyID, Type: connect.TypePassword, Secret: true, Doc: "access key id; empty: the connector's service execution role when the server hands it to workers (ferry server --assume-execution-role), else the AWS SDK's default credential chain; with s3.credentials.provider.sts.role.arn, the source of the role assumed"},
	{Name: KeySecretAccessKey, Type: connect.TypePassword, Secret: true, Doc: "secret access key"},
	{Name: KeyCredsProvider, Type: connect.TypeClass, Default: DefaultChainProvider, Validate: connect.OneOf(DefaultChainProvider, AssumeRoleProvider),
		Doc: "credentials: the default chain (or static aws.access.key.id), or STS AssumeRole of " + KeySTSRoleARN},
	{Name: KeySTSRoleARN, Type: connect.TypeString, Doc: "role assumed with STS (with " + AssumeRoleProvider + ", or alone); the connector's service execution role. Also read as sts.role.arn"},
	{Name: KeySTSSessionName, Type: connect.TypeString, Default: "ferry-s3-sink", Doc: "STS session name (also read as sts.role.session.name)"},
	{Name: KeySTSExternalID, Type: connect.TypePassword, Secret: true, Doc: "STS external id (also read as sts.role.external.id)"},
	{Name: KeySTSRegion, Type: connect.TypeString, Doc: "region of the STS endpoint; empty: s3.region"},
	{Name: KeyTopicsDir, Type: connect.TypeString, Default: "topics", Doc: "top-level directory of the objects"},
	{Name: KeyFlushSize, Type: connect.TypeInt, Required: true, Validate: connect.AtLeast(1), Doc: "records per topic partition after which its open objects are committed"},
	{Name: KeyFormatClass, Type: connect.TypeClass, Required: true, Validate: oneOfFormats(formats...), Doc: "object format: " + strings.Join(formats, ", ")},
	{Name: KeySchemaCompat, Type: connect.TypeString, Default: "NONE", Validate: connect.OneOf("NONE", "BACKWARD", "FORWARD", "FULL"), Doc: "records with a Connect schema: NONE cuts an object at any schema change; BACKWARD and FULL cut at a newer version and write older ones under the object's schema (projected), FORWARD the reverse; those three need schema versions"},
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
	{Name: KeyNullValues, Type: connect.TypeString, Default: "fail", Validate: connect.OneOf("fail", "ignore", "write"),
		Doc: "a null value (tombstone): fail (handed to errors.tolerance like an unconvertible record), ignore (skip it), or write (its key and headers go to the encoded partition tombstone.encoded.partition; needs store.kafka.keys=true)"},
	{Name: KeyTombstonePartition, Type: connect.TypeString, Default: defaultTombstonePartition, Validate: nonEmpty, Doc: "behavior.on.null.values=write: the directory tombstones' keys objects are written to"},
	{Name: KeyReportNullToDLQ, Type: connect.TypeBoolean, Default: "true", Doc: "behavior.on.null.values=ignore: also hand skipped tombstones to the dead letter queue when errors.deadletterqueue.topic.name is set"},
	{Name: KeyCompressionLevel, Type: connect.TypeInt, Default: "-1", Doc: "gzip level, -1 (the default, 6) or 0 to 9"},
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
		switch {
		case avroCodecs[v]:
			return nil
		case v == "bzip2" || v == "xz":
			return fmt.Errorf("%s is not supported: no library Ferry may use can write it (Go's compress/bzip2 only reads); use deflate, snappy or zstandard", v)
		}
		return fmt.Errorf("must be one of null, deflate, snappy, zstandard, got %q", v)
	}, Doc: "AvroFormat: codec of the container file: null, deflate, snappy or zstandard (bzip2 is refused: nothing Ferry may use writes it)"},
	{Name: KeyParquetCodec, Type: connect.TypeString, Default: "snappy", Validate: func(v string) error {
		switch {
		case parquetCodecs[v].codec != nil:
			return nil
		case v == "lzo":
			return fmt.Errorf("lzo is not supported: no Go library writes it; use snappy, zstd or gzip")
		}
		return fmt.Errorf("must be one of none, snappy, gzip, brotli, lz4_raw, lz4, zstd, got %q", v)
	}, Doc: "ParquetFormat: compression codec (names the extension, e.g. .snappy.parquet); lz4 writes LZ4_RAW (.lz4raw.parquet), as Hadoop's LZ4 framing is deprecated and no Go library writes it"},
	{Name: KeyDecimalFormat, Type: connect.TypeString, Default: "BASE64", Validate: func(v string) error {
		return connect.OneOf("BASE64", "NUMERIC")(strings.ToUpper(v))
	}, Doc: "JsonFormat: decimals as base64 of their unscaled bytes (BASE64) or as numbers (NUMERIC), as Kafka's JsonConverter decimal.format"},
	{Name: KeyConnectMetaData, Type: connect.TypeBoolean, Default: "true", Doc: "Avro and Parquet: write the Connect schema's name, version, doc and parameters as connect.* schema properties"},
	{Name: KeyRotateOnPartition, Type: connect.TypeBoolean, Default: "true", Doc: "with rotate.interval.ms: also commit when a record's encoded partition differs from the previous record's"},
	{Name: KeyMaxOpenFiles, Type: connect.TypeInt, Default: "-1", Doc: "commit a partition's objects before opening one more than this many encoded partitions at once; -1: no limit"},
	{Name: KeyConditionalWrites, Type: connect.TypeBoolean, Default: "true", Doc: "with rotate.schedule.interval.ms: write objects with If-None-Match: * and scan forward past objects already written (false: overwrite them; for stores without conditional writes)"},
	{Name: KeyMaxFilesScan, Type: connect.TypeInt, Default: "100", Validate: connect.AtLeast(1), Doc: "conditional writes: how many objects already in S3 one commit may skip past before the task fails"},
	{Name: KeyProxyURL, Type: connect.TypeString, Doc: "HTTP(S) proxy of the S3 and STS requests, e.g. http://proxy:3128"},
	{Name: KeyProxyUser, Type: connect.TypeString, Doc: "proxy user"},
	{Name: KeyProxyPassword, Type: connect.TypePassword, Secret: true, Doc: "proxy password"},
	{Name: KeyWANMode, Type: connect.TypeBoolean, Default: "false", Doc: "use S3 Transfer Acceleration (excludes s3.path.style.access.enabled=true)"},
	{Name: KeyTaggingExtra, Type: connect.TypeList, Doc: "s3.object.tagging: more tags, as key:value pairs separated by commas"},
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
		if known[k] || legacyKeys[k] != "" {
			continue
		}
		if _, ok := ignoredKeys[k]; ok {
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

// ignoredIn lists the keys of cfg Ferry accepts without acting on them,
// each with why.
func ignoredIn(cfg map[string]string) []string {
	var out []string
	for k, why := range ignoredKeys {
		if _, ok := cfg[k]; ok {
			out = append(out, k+" ("+why+")")
		}
	}
	slices.Sort(out)
	return out
}

// settings is the parsed configuration.
type settings struct {
	bucket, topicsDir, dirDelim, fileDelim string
	padWidth, flushSize                    int
	gzip                                   bool
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

	nullBehavior      string // fail, ignore, write
	tombstonePart     string
	reportNullToDLQ   bool // ignore: hand skipped tombstones to the dead letter queue
	gzipLevel         int
	decimalNumeric    bool
	rotateOnPartition bool
	maxOpenFiles      int
	conditional       bool // scheduled rotation with conditional writes
	maxFilesScan      int
	extraTags         [][2]string
	connectMeta       bool
	compat            string
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

// withLegacyKeys returns cfg with the legacy keys' values under their
// current names, unless those are set to something else than the default.
// cfg itself is left as it is: a copy is made when a value moves.
func withLegacyKeys(cfg map[string]string) map[string]string {
	out := cfg
	copied := false
	for old, cur := range legacyKeys {
		v := strings.TrimSpace(cfg[old])
		if v == "" {
			continue
		}
		if c := cfg[cur]; c != "" && c != specDefault(cur) {
			continue
		}
		if !copied {
			out, copied = maps.Clone(cfg), true
		}
		out[cur] = v
	}
	return out
}

func specDefault(key string) string {
	for _, f := range ConfigSpec {
		if f.Name == key {
			return f.Default
		}
	}
	return ""
}

// parseSettings reads a configuration with defaults filled in: every key's
// own rule, then the rules across keys the per-key spec cannot express. It
// returns every problem, each naming the key to change.
func parseSettings(cfg map[string]string) (*settings, connect.ConfigErrors) {
	cfg = withLegacyKeys(cfg)
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
	s.nullBehavior = cfg[KeyNullValues]
	s.tombstonePart = cfg[KeyTombstonePartition]
	if s.tombstonePart == "" {
		s.tombstonePart = defaultTombstonePartition
	}
	s.reportNullToDLQ = !strings.EqualFold(cfg[KeyReportNullToDLQ], "false") && strings.TrimSpace(cfg[KeyDLQTopic]) != ""
	s.gzipLevel = int(p.num(cfg, KeyCompressionLevel, -1, 9))
	s.decimalNumeric = strings.EqualFold(cfg[KeyDecimalFormat], "NUMERIC")
	s.rotateOnPartition = !strings.EqualFold(cfg[KeyRotateOnPartition], "false")
	s.maxOpenFiles = int(p.num(cfg, KeyMaxOpenFiles, -1, maxInt))
	if s.maxOpenFiles == 0 {
		p.add(KeyMaxOpenFiles, "must be -1 (no limit) or at least 1, got 0")
	}
	s.maxFilesScan = int(p.num(cfg, KeyMaxFilesScan, 1, maxInt))
	s.conditional = s.rotateSchedule > 0 && !strings.EqualFold(cfg[KeyConditionalWrites], "false")
	s.connectMeta = !strings.EqualFold(cfg[KeyConnectMetaData], "false")
	if s.compat = cfg[KeySchemaCompat]; s.compat == "" {
		s.compat = "NONE"
	}
	s.format, s.keysFormat, s.headersFormat = cfg[KeyFormatClass], cfg[KeyKeysFormat], cfg[KeyHeadersFormat]
	s.storeKeys = strings.EqualFold(cfg[KeyStoreKeys], "true")
	s.storeHeaders = strings.EqualFold(cfg[KeyStoreHeaders], "true")
	if s.nullBehavior == "write" && !s.storeKeys {
		// As Confluent's connector: a tombstone is written as its key.
		p.add(KeyNullValues, "write needs %s=true: a tombstone is written as its key (and headers) under %s=%s, with no values object",
			KeyStoreKeys, KeyTombstonePartition, s.tombstonePart)
	}
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
	for _, kv := range connect.SplitList(cfg[KeyTaggingExtra]) {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			p.add(KeyTaggingExtra, "must be key:value pairs separated by commas, got %q", kv)
			break
		}
		s.extraTags = append(s.extraTags, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	s.sse, s.kmsKey, s.sseCustomerKey, s.acl = cfg[KeySSEAlgorithm], cfg[KeySSEKMSKeyID], cfg[KeySSECustomerKey], cfg[KeyACLCanned]
	// As Confluent's connector: SSE-C is s3.ssea.name=AES256 with a
	// customer key (AES256 alone is SSE-S3).
	if s.sseCustomerKey != "" && s.sse != "AES256" {
		p.add(KeySSECustomerKey, "needs %s=AES256 (SSE-C), got %q; Confluent's connector ignores the key otherwise", KeySSEAlgorithm, s.sse)
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
	if u := strings.TrimSpace(cfg[KeyProxyURL]); u != "" {
		if pu, err := url.Parse(u); err != nil || pu.Host == "" {
			p.add(KeyProxyURL, "must be a URL such as http://proxy:3128, got %q", u)
		}
	}
	if strings.EqualFold(cfg[KeyWANMode], "true") && strings.EqualFold(cfg[KeyPathStyle], "true") {
		p.add(KeyWANMode, "excludes %s=true: transfer acceleration needs virtual-hosted bucket addressing", KeyPathStyle)
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
