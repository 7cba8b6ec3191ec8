package connect

import "context"

// ErrantRecordReporter is how a sink task hands over a record it cannot
// write (a value its format cannot hold, a field its partitioner needs that
// is missing), as Kafka Connect's ErrantRecordReporter (KIP-610). The
// runtime treats the record as it treats one its converters or transforms
// could not handle, following the connector's errors.* settings:
//
//   - errors.tolerance=all: the failure is logged (errors.log.enable), the
//     record goes to errors.deadletterqueue.topic.name when one is set, and
//     Report returns nil once that is acknowledged. The task skips the
//     record and goes on; its offset counts as handled, so the task reports
//     it durable with the records around it.
//   - errors.tolerance=none: Report returns an error naming the record and
//     err. The task returns it from Put, which fails the task.
//
// Report is called from the goroutine that calls Put, with Put's context.
type ErrantRecordReporter interface {
	Report(ctx context.Context, rec *Record, err error) error
}

type errantReporterKey struct{}

// WithErrantRecordReporter returns ctx carrying r; the runtime uses it for
// the context of SinkTask.Start.
func WithErrantRecordReporter(ctx context.Context, r ErrantRecordReporter) context.Context {
	return context.WithValue(ctx, errantReporterKey{}, r)
}

// ErrantRecordReporterFrom returns the reporter ctx carries, or nil (a task
// started outside Ferry's runtime fails on such a record).
func ErrantRecordReporterFrom(ctx context.Context) ErrantRecordReporter {
	r, _ := ctx.Value(errantReporterKey{}).(ErrantRecordReporter)
	return r
}
