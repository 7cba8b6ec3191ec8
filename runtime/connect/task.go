package connect

import "context"

// SinkTask consumes records from Kafka and writes them somewhere else. The
// runtime calls it from one goroutine at a time, in this order:
//
//	Start → (Open → Put* → PreCommit* → Close)* → Stop
//
// Open and Close bracket the partitions the task owns; after Close the
// partitions may be handed to another task, which re-reads them from the last
// committed offset, so a task must drop any state it buffered for them.
type SinkTask interface {
	// Start configures the task with the connector's configuration.
	Start(ctx context.Context, cfg map[string]string) error
	// Open tells the task it now owns these partitions.
	Open(ctx context.Context, partitions []TopicPartition) error
	// Put hands the task a batch of records. It is called at least about
	// once a second, with an empty batch when nothing arrived, so time-based
	// work can run. An error wrapped with Retriable makes the runtime hand
	// the same batch again after a backoff; any other error fails the task,
	// which the runtime restarts from the last committed offsets. The
	// runtime reuses the slice for later batches, as Kafka Connect does its
	// collection: a task may keep the records (copies), not the slice.
	Put(ctx context.Context, records []Record) error
	// PreCommit is called before offsets are committed with the offset after
	// the last record delivered per partition (Kafka convention: the next
	// offset to read; only partitions with records delivered since Open are
	// present). It returns the offsets, in the same convention, whose records
	// are durable; the runtime commits exactly those and never more.
	// Partitions absent from the result are not committed.
	PreCommit(ctx context.Context, current map[TopicPartition]int64) (map[TopicPartition]int64, error)
	// Close tells the task it no longer owns these partitions.
	Close(ctx context.Context, partitions []TopicPartition) error
	// Stop releases everything the task holds. It is called once, last.
	Stop() error
}

// SourceRecord and SourceTask live in source.go.

// Converter turns raw Kafka bytes into Go values and back, like a Kafka
// Connect converter. Implementations live in the runtime.
type Converter interface {
	// Configure sets the converter up from its properties (the prefix
	// "key.converter." or "value.converter." already stripped).
	Configure(props map[string]string, isKey bool) error
	// ToValue converts raw bytes (nil for a Kafka null) into a Go value.
	ToValue(topic string, data []byte) (any, error)
	// FromValue converts a Go value into raw bytes (nil for a Kafka null).
	FromValue(topic string, value any) ([]byte, error)
}

// Well-known converter classes the runtime implements.
const (
	JSONConverterClass      = "org.apache.kafka.connect.json.JsonConverter"
	StringConverterClass    = "org.apache.kafka.connect.storage.StringConverter"
	ByteArrayConverterClass = "org.apache.kafka.connect.converters.ByteArrayConverter"
)

// SimpleHeaderConverterClass is Kafka Connect's default header converter.
const SimpleHeaderConverterClass = "org.apache.kafka.connect.storage.SimpleHeaderConverter"

// HeaderConverterClasses lists the header converter classes the runtime
// implements.
func HeaderConverterClasses() []string {
	return []string{SimpleHeaderConverterClass, StringConverterClass, JSONConverterClass, ByteArrayConverterClass}
}

// ConverterClasses lists the converter classes the runtime implements.
func ConverterClasses() []string {
	return []string{JSONConverterClass, StringConverterClass, ByteArrayConverterClass}
}
