// Package connect is the public plugin API Ferry connectors are written
// against: records, the SinkTask and SourceTask contracts in Kafka Connect's
// shape, converters, configuration specs as data, and the registry that maps
// connector classes to plugins.
//
// It imports nothing from Ferry and nothing from the Kafka client: connectors
// never see franz-go. The worker engine (package runtime) owns Kafka, calls
// tasks, and commits only the offsets a sink task reports durable.
package connect
