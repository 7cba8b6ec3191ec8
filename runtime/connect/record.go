package connect

import (
	"fmt"
	"time"
)

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String renders tp as "topic-partition", as Kafka does.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Header is one Kafka record header: its raw bytes and the value the
// header converter made of them. A transform that sets a header sets Data
// and leaves Value nil; the runtime encodes Data with the header converter.
type Header struct {
	Key   string
	Value []byte
	Data  any
}

// Record is one Kafka record as a task sees it: its coordinates, the raw key
// and value bytes, and the key and value as the configured converters turned
// them into Go values.
//
// Converted values are one of: nil, bool, string, []byte, json.Number (JSON
// numbers keep their exact text so 64-bit integers survive; call Float64 or
// Int64 on it), float64 (numbers that did not come from JSON text),
// map[string]any or []any of those. Transforms may also produce int8, int16,
// int32, int64, float32 (Cast) and time.Time (TimestampConverter).
//
// When a converter read a Connect schema with the key or value (JsonConverter
// with schemas.enable=true), KeySchema or ValueSchema holds it and the value
// has the schema's Go shape (Schema's doc); a record without one leaves them
// nil.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time

	Key   any
	Value any

	KeySchema   *Schema // nil: the key came without a schema
	ValueSchema *Schema // nil: the value came without a schema

	RawKey   []byte
	RawValue []byte
	Headers  []Header

	// OriginalTopic and OriginalPartition are where the record was read,
	// before a transform (RegexRouter, TimestampRouter) renamed its topic,
	// as Kafka's SinkRecord.originalTopic(). Offsets are tracked and
	// committed there: a task that sees routed records keys its PreCommit
	// answer by OriginalTopicPartition.
	OriginalTopic     string
	OriginalPartition int32
}

// OriginalTopicPartition returns the partition the record was read from
// (its TopicPartition when no original is recorded).
func (r *Record) OriginalTopicPartition() TopicPartition {
	if r.OriginalTopic == "" {
		return r.TopicPartition()
	}
	return TopicPartition{Topic: r.OriginalTopic, Partition: r.OriginalPartition}
}

// TopicPartition returns the record's partition.
func (r *Record) TopicPartition() TopicPartition {
	return TopicPartition{Topic: r.Topic, Partition: r.Partition}
}

// Coordinates renders the record's place in Kafka for error messages.
func (r *Record) Coordinates() string {
	return fmt.Sprintf("topic %q partition %d offset %d", r.Topic, r.Partition, r.Offset)
}
