// Package connect is the public plugin API Ferry connectors are written
// against: records, the SinkTask and SourceTask contracts in Kafka Connect's
// shape, converters, configuration specs as data, and the registry that maps
// connector classes to plugins.
//
// It imports nothing from Ferry and nothing from the Kafka client: connectors
// never see franz-go. The worker engine (package runtime) owns Kafka, calls
// tasks, and commits only the offsets a sink task reports durable.
//
// A connector package exposes its registration and connectors/all adds it to
// the default registry:
//
//	func Plugin() connect.Plugin {
//		return connect.Plugin{
//			Class:       "com.example.MySink",
//			Aliases:     []string{"MySink"},
//			Kind:        connect.Sink,
//			Config:      []connect.ConfigField{{Name: "url", Type: connect.TypeString, Required: true}},
//			NewSinkTask: func() connect.SinkTask { return &mySink{} },
//		}
//	}
//
// A sink task makes data durable in Put (or later) and says so in
// PreCommit; whatever it does not report durable is read again after a
// restart or a rebalance, so writes should be idempotent (the S3 sink's
// object keys depend only on the records, for example).
package connect
