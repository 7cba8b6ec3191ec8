// Package runtime is the worker engine: it runs one worker's share of a
// connector's tasks as goroutines. A sink task is a franz-go consumer in the
// connector's group (connect-<name>) that converts records, hands them to the
// connector's SinkTask, and commits exactly the offsets the task reports
// durable. Failed tasks restart with backoff; the worker publishes its status
// and metrics to NATS when it has a connection, and never lets NATS stop the
// data path.
package runtime
