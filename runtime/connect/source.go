package connect

import (
	"context"
	"slices"
	"time"
)

// SourceRecord is a record a source task produces.
type SourceRecord struct {
	Topic     string
	Partition *int32 // nil: let the producer's partitioner choose
	Key       any
	Value     any
	// KeySchema and ValueSchema, if set, describe Key and Value (Kafka
	// Connect's keySchema, valueSchema); converters that write schemas put
	// them in the record. Transforms update them with the values they
	// change, as Kafka's do.
	KeySchema   *Schema
	ValueSchema *Schema
	Headers     []Header
	// Timestamp is the record's Kafka timestamp; zero means the time it is
	// produced.
	Timestamp time.Time
	// SourcePartition and SourceOffset identify the record's position in the
	// external system; the runtime stores the latest SourceOffset per
	// SourcePartition once the record is acknowledged by Kafka, and hands it
	// back through OffsetStorageReader after a restart. Values must encode
	// as JSON (strings, numbers, booleans, nested maps and slices).
	SourcePartition map[string]any
	SourceOffset    map[string]any
}

// RecordMetadata is where Kafka stored a produced record.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// OffsetStorageReader reads the source offsets the runtime stored for this
// connector (Kafka Connect's OffsetStorageReader).
type OffsetStorageReader interface {
	// Offset returns the last stored offset of a source partition, or nil.
	Offset(partition map[string]any) map[string]any
	// Offsets returns the stored offsets of several source partitions,
	// keyed by the partition's canonical JSON; partitions without an
	// offset are absent.
	Offsets(partitions []map[string]any) map[string]map[string]any
}

// SourceTaskContext is what the runtime gives a source task before Start
// (Kafka Connect's SourceTaskContext).
type SourceTaskContext interface {
	// OffsetStorageReader reads stored source offsets.
	OffsetStorageReader() OffsetStorageReader
	// TaskID is the task's id within its connector (0-based).
	TaskID() int
}

// SourceTask reads from an external system and produces records to Kafka.
// The runtime calls Initialize, Start, Poll and Commit from one goroutine
// in this order:
//
//	Initialize → Start → (Poll* → Commit)* → Stop
//
// CommitRecord is called from the producer's goroutine as each record is
// acknowledged, so it must be safe to call concurrently with Poll. Embed
// SourceTaskBase for no-op Initialize, Commit and CommitRecord.
type SourceTask interface {
	// Initialize hands the task its context, before Start.
	Initialize(tc SourceTaskContext)
	// Start configures the task with the connector's configuration (plus
	// "task.id"); restored offsets come from the context's
	// OffsetStorageReader.
	Start(ctx context.Context, cfg map[string]string) error
	// Poll returns the next records, blocking at most until ctx is done. It
	// should wait (not spin) when there is nothing to return.
	Poll(ctx context.Context) ([]SourceRecord, error)
	// Commit tells the task the offsets of every record acknowledged so far
	// are stored.
	Commit(ctx context.Context) error
	// CommitRecord tells the task Kafka acknowledged one record (md nil if
	// a transform dropped it).
	CommitRecord(ctx context.Context, rec *SourceRecord, md *RecordMetadata) error
	// Stop releases everything the task holds. It is called once, last,
	// after Poll returned.
	Stop() error
}

// SourceTaskBase gives a source task no-op Commit and CommitRecord and an
// Initialize that keeps the context; embed it.
type SourceTaskBase struct {
	tc SourceTaskContext
}

// Initialize keeps tc for Context.
func (b *SourceTaskBase) Initialize(tc SourceTaskContext) { b.tc = tc }

// Context returns the context Initialize received (nil before).
func (b *SourceTaskBase) Context() SourceTaskContext { return b.tc }

// Commit does nothing.
func (b *SourceTaskBase) Commit(context.Context) error { return nil }

// CommitRecord does nothing.
func (b *SourceTaskBase) CommitRecord(context.Context, *SourceRecord, *RecordMetadata) error {
	return nil
}

// Framework configuration keys of source connectors.
const (
	// KeyOffsetStorageTopic names the compacted topic source offsets are
	// stored in: the worker property MSK Connect's worker configurations
	// set (offset.storage.topic), also read from a connector's
	// configuration as Ferry did first; default connect-offsets-<connector>.
	KeyOffsetStorageTopic = "offset.storage.topic"
	// KeyOffsetsStorageTopic is the connector-level key Kafka Connect reads
	// (KIP-618, offsets.storage.topic): it wins over both.
	KeyOffsetsStorageTopic = "offsets.storage.topic"
)

// SourceFrameworkConfig is the spec of the framework keys of a source
// connector. The registry checks them for every source, in addition to the
// plugin's own.
var SourceFrameworkConfig = slices.Concat([]ConfigField{
	{Name: KeyTasksMax, Type: TypeInt, Default: "1", Validate: AtLeast(1), Doc: "maximum number of tasks"},
	{Name: KeyKeyConverter, Type: TypeClass, Validate: isConverter, Doc: "converter of record keys (overrides the worker configuration)"},
	{Name: KeyValueConverter, Type: TypeClass, Validate: isConverter, Doc: "converter of record values (overrides the worker configuration)"},
	{Name: KeyHeaderConverter, Type: TypeClass, Validate: isHeaderConverter, Doc: "converter of record headers (overrides the worker configuration; default SimpleHeaderConverter)"},
}, JSONConverterFields, []ConfigField{
	{Name: KeyErrorsTolerance, Type: TypeString, Default: "none", Validate: OneOf("none", "all"), Doc: "none: a record that cannot be converted or transformed fails the task; all: it is skipped"},
	{Name: KeyErrorsLog, Type: TypeBoolean, Default: "false", Doc: "log every record that fails to convert or transform, under either tolerance"},
	{Name: KeyErrorsLogMessages, Type: TypeBoolean, Default: "false", Doc: "with errors.log.enable, log the failed record's key, value and headers too (resolved secrets redacted)"},
	RetryTimeoutField, RetryMaxDelayField,
	{Name: KeyOffsetFlushMs, Type: TypeLong, Validate: AtLeast(1), Doc: "how often source offsets are stored (default 60000)"},
	{Name: KeyOffsetsStorageTopic, Type: TypeString, Doc: "compacted topic of the connector's source offsets (Kafka Connect's connector-level key, KIP-618); wins over offset.storage.topic"},
	{Name: KeyOffsetStorageTopic, Type: TypeString, Doc: "compacted topic of the source offsets, as the worker property (default connect-offsets-<connector>)"},
})
