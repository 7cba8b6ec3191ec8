package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Errors in a sink task's records: a converter or transform failing on a
// record, or the task handing one over through its ErrantRecordReporter
// (KIP-610). Each goes the way errors.tolerance says, as in Kafka Connect's
// RetryWithToleranceOperator: none fails the task, naming the record; all
// skips it, dead-lettering it (errors.deadletterqueue.topic.name) before
// its offset may be committed. errors.log.enable logs each failure, under
// both tolerances; errors.log.include.messages adds the record's key,
// value and headers (redacted).

// Stages, as Kafka Connect's Stage enum names them in
// __connect.errors.stage.
const (
	stageKeyConverter    = "KEY_CONVERTER"
	stageValueConverter  = "VALUE_CONVERTER"
	stageHeaderConverter = "HEADER_CONVERTER"
	stageTransformation  = "TRANSFORMATION"
	stageTaskPut         = "TASK_PUT"
)

// dataExceptionClass is what Kafka's converters and transforms throw on a
// record they cannot handle; Ferry names it in
// __connect.errors.exception.class.name for those stages, so tools that
// read Kafka Connect's dead letter queues read Ferry's.
const dataExceptionClass = "org.apache.kafka.connect.errors.DataException"

// failedRecord is a record that failed, with where it failed.
type failedRecord struct {
	kr    *kgo.Record // as consumed
	stage string
	class string // the converter, transform or connector class that failed
	cause error
}

// stageVerb names what failed, for the failure message.
func stageVerb(stage string) string {
	switch stage {
	case stageTransformation:
		return "transform"
	case stageTaskPut:
		return "put"
	}
	return "convert"
}

// exceptionClass renders the failure's kind for
// __connect.errors.exception.class.name: Kafka's DataException for
// converters and transforms, the Go type of the task's error for a record
// the task reported.
func (f *failedRecord) exceptionClass() string {
	if f.stage != stageTaskPut {
		if connect.IsRetriable(f.cause) {
			return "org.apache.kafka.connect.errors.RetriableException"
		}
		return dataExceptionClass
	}
	return errorType(f.cause)
}

// errorType is the Go type of the innermost error of err's chain that is
// more than a wrapper (fmt.Errorf's %w adds text, not meaning).
func errorType(err error) string {
	name := reflect.TypeOf(err).String()
	for err != nil {
		t := reflect.TypeOf(err).String()
		switch t {
		case "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError", "*runtime.stageError":
		default:
			name = t
			if t != "*errors.errorString" {
				return name
			}
		}
		err = errors.Unwrap(err)
	}
	return name
}

// errorChain renders err and what it wraps, one line per error (a Go
// rendering of Kafka's exception.stacktrace): each line its type and
// message, the causes indented under "caused by".
func errorChain(err error) string {
	var b strings.Builder
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if depth > 0 {
			b.WriteString("\n" + strings.Repeat("\t", depth) + "caused by: ")
		}
		fmt.Fprintf(&b, "%T: %s", e, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c, depth+1)
			}
		case interface{ Unwrap() error }:
			if c := u.Unwrap(); c != nil {
				walk(c, depth+1)
			}
		}
	}
	walk(err, 0)
	return b.String()
}

// failRecord handles a record that failed under errors.tolerance: it
// returns the error that fails the task (none), or nil once the record is
// logged and dead-lettered (all). Called from the poll loop's goroutine.
func (r *sinkRun) failRecord(ctx context.Context, f *failedRecord) error {
	r.w.errorsTotal.Add(1)
	if r.s.errorsLog {
		r.logFailure(f)
	}
	if !r.s.errsAll {
		return fmt.Errorf("%s: record at topic %q partition %d offset %d (errors.tolerance=none): %w",
			stageVerb(f.stage), f.kr.Topic, f.kr.Partition, f.kr.Offset, f.cause)
	}
	if r.s.dlqTopic != "" {
		return r.deadLetter(ctx, f)
	}
	return nil
}

// maxLoggedBytes bounds a key or value in a failure's log line.
const maxLoggedBytes = 4096

// logFailure logs a failed record's coordinates, stage and error, and with
// errors.log.include.messages its key, value and headers; every text goes
// through the redactor of resolved secrets.
func (r *sinkRun) logFailure(f *failedRecord) {
	red := r.w.redact.Redact
	ev := r.s.failureEvent(&r.log).Str("error", red(f.cause.Error())).Str("stage", f.stage).Str("class", f.class).
		Str("topic", f.kr.Topic).Int32("partition", f.kr.Partition).Int64("offset", f.kr.Offset).
		Str("tolerance", r.s.tolerance())
	if r.s.logMessages {
		ev = withMessage(ev, f.kr, red)
	}
	ev.Msg("record failed")
}

// withMessage adds a consumed record's key, value, headers and timestamp
// to a log event.
func withMessage(ev *zerolog.Event, kr *kgo.Record, red func(string) string) *zerolog.Event {
	text := func(b []byte) string {
		if b == nil {
			return "null"
		}
		if len(b) > maxLoggedBytes {
			return red(string(b[:maxLoggedBytes])) + "…"
		}
		return red(string(b))
	}
	hs := zerolog.Dict()
	for _, h := range kr.Headers {
		hs = hs.Str(h.Key, text(h.Value))
	}
	return ev.Str("key", text(kr.Key)).Str("value", text(kr.Value)).Dict("headers", hs).Time("timestamp", kr.Timestamp)
}

// deadLetter produces the record, as consumed, to the dead letter queue
// with Kafka Connect's __connect.errors.* headers when asked for, and waits
// for it to be acknowledged, so its offset may be committed.
func (r *sinkRun) deadLetter(ctx context.Context, f *failedRecord) error {
	kr := f.kr
	out := &kgo.Record{Topic: r.s.dlqTopic, Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp,
		Headers: append([]kgo.RecordHeader(nil), kr.Headers...)}
	if r.s.dlqHeaders {
		red := r.w.redact.Redact
		out.Headers = append(out.Headers,
			kgo.RecordHeader{Key: "__connect.errors.topic", Value: []byte(kr.Topic)},
			kgo.RecordHeader{Key: "__connect.errors.partition", Value: []byte(strconv.Itoa(int(kr.Partition)))},
			kgo.RecordHeader{Key: "__connect.errors.offset", Value: []byte(strconv.FormatInt(kr.Offset, 10))},
			kgo.RecordHeader{Key: "__connect.errors.connector.name", Value: []byte(r.w.spec.Connector)},
			kgo.RecordHeader{Key: "__connect.errors.task.id", Value: []byte(strconv.Itoa(r.id))},
			kgo.RecordHeader{Key: "__connect.errors.stage", Value: []byte(f.stage)},
			kgo.RecordHeader{Key: "__connect.errors.class.name", Value: []byte(f.class)},
			kgo.RecordHeader{Key: "__connect.errors.exception.class.name", Value: []byte(f.exceptionClass())},
			kgo.RecordHeader{Key: "__connect.errors.exception.message", Value: []byte(red(f.cause.Error()))},
			kgo.RecordHeader{Key: "__connect.errors.exception.stacktrace", Value: []byte(red(errorChain(f.cause)))},
		)
	}
	pctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := r.cl.ProduceSync(pctx, out).FirstErr(); err != nil {
		return fmt.Errorf("dead-letter record at topic %q partition %d offset %d to %q: %w", kr.Topic, kr.Partition, kr.Offset, r.s.dlqTopic, err)
	}
	return nil
}

// errantReporter is the connect.ErrantRecordReporter a sink task gets in
// the context of Start: the records it reports fail as a converter's
// would, at stage TASK_PUT.
type errantReporter struct{ r *sinkRun }

var _ connect.ErrantRecordReporter = errantReporter{}

// Report handles rec under errors.tolerance. It is called from Put, so the
// poll loop's lock is held: it touches the run's state without taking it.
func (e errantReporter) Report(ctx context.Context, rec *connect.Record, cause error) error {
	r := e.r
	if rec == nil {
		return errors.New("report errant record: nil record")
	}
	if cause == nil {
		cause = errors.New("reported by the task without an error")
	}
	tp := rec.OriginalTopicPartition()
	kr := r.consumed(tp, rec.Offset)
	if kr == nil {
		// Not in the batch being put (the task kept it from an earlier
		// one): dead-letter what the task was handed.
		kr = &kgo.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: rec.Offset, Key: rec.RawKey, Value: rec.RawValue, Timestamp: rec.Timestamp}
		for _, h := range rec.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	if err := r.failRecord(ctx, &failedRecord{kr: kr, stage: stageTaskPut, class: r.w.plugin.Class, cause: cause}); err != nil {
		if r.reportFailed == nil {
			r.reportFailed = failedAt(err, failPoint{tp: rec.Offset})
		}
		return err
	}
	if ps := r.owned[tp]; ps != nil {
		ps.errant = append(ps.errant, rec.Offset)
	}
	return nil
}

// consumed finds the consumed record of tp at offset among those of the
// batch being put.
func (r *sinkRun) consumed(tp connect.TopicPartition, offset int64) *kgo.Record {
	for _, kr := range r.putting {
		if kr.Offset == offset && kr.Partition == tp.Partition && kr.Topic == tp.Topic {
			return kr
		}
	}
	return nil
}

// putTask hands a batch to the task, with the consumed records it stands
// for reachable by the errant record reporter. A record the task reported
// under errors.tolerance=none fails the run, whatever Put returned.
func (r *sinkRun) putTask(ctx context.Context, batch []connect.Record, delivered []*kgo.Record) error {
	r.putting = delivered
	err := r.task.Put(ctx, batch)
	r.putting = nil
	if r.reportFailed != nil {
		return r.reportFailed
	}
	return err
}

// skipErrant moves a durable offset past records the task reported as
// errant and the runtime handled (dead-lettered or skipped under
// errors.tolerance=all): a task that reports durable the offset of such a
// record, and not past it, would otherwise hold its partition's commit
// there until a later record is durable.
func (ps *partState) skipErrant(durable, delivered int64) int64 {
	offs := ps.errant
	if len(offs) == 0 {
		return durable
	}
	slices.Sort(offs)
	for _, o := range offs {
		if o == durable && durable < delivered {
			durable++
		}
	}
	// Forget what is behind the commit.
	ps.errant = slices.DeleteFunc(offs, func(o int64) bool { return o < durable })
	return durable
}
