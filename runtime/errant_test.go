package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// A record the converter cannot read is dead-lettered as it was consumed
// (its own headers kept) with every __connect.errors.* header Kafka
// Connect's DeadLetterQueueReporter writes.
func TestDeadLetterHeaders(t *testing.T) {
	addr := newCluster(t, 1, "json")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "json", 0, `{"a":1}`)
	produceRecs(t, cl, &kgo.Record{Topic: "json", Partition: 0, Key: []byte("k1"), Value: []byte(`{"a":`),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("abc")}}})
	rec := newRecorder()
	spec := testSpec("dlqh", addr, 1, 1, map[string]string{
		"topics": "json", "value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
		"errors.deadletterqueue.context.headers.enable": "true", "offset.flush.interval.ms": "100",
	})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "commit past the dead-lettered record", func() bool {
		return committedAt(t, cl, jobs.ConsumerGroup("dlqh"), connect.TopicPartition{Topic: "json", Partition: 0}) == 2
	})
	w.stop(t)
	r := deadLetters(t, addr, "dlq", 1)[0]
	if string(r.Key) != "k1" || string(r.Value) != `{"a":` {
		t.Errorf("dead-lettered %q=%q, want the record as consumed", r.Key, r.Value)
	}
	h := headerMap(r)
	want := map[string]string{
		"trace-id":                              "abc",
		"__connect.errors.topic":                "json",
		"__connect.errors.partition":            "0",
		"__connect.errors.offset":               "1",
		"__connect.errors.connector.name":       "dlqh",
		"__connect.errors.task.id":              "0",
		"__connect.errors.stage":                "VALUE_CONVERTER",
		"__connect.errors.class.name":           connect.JSONConverterClass,
		"__connect.errors.exception.class.name": "org.apache.kafka.connect.errors.DataException",
		"__connect.errors.exception.message":    "value: invalid JSON: unexpected end of JSON input",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	trace := h["__connect.errors.exception.stacktrace"]
	if !strings.HasPrefix(trace, "*runtime.stageError: value: invalid JSON") || !strings.Contains(trace, "\n\tcaused by: ") ||
		!strings.Contains(trace, "unexpected end of JSON input") {
		t.Errorf("stacktrace %q, want the error chain, one cause per line", trace)
	}
	if len(h) != len(want)+1 {
		t.Errorf("headers %v: want exactly %d", h, len(want)+1)
	}
}

// reportingTask writes records whose value does not start with "bad" and
// reports the others through its ErrantRecordReporter. It reports durable
// the offset after the last record it wrote, as a sink that knows nothing
// of the records it handed over.
type reportingTask struct {
	mu       *sync.Mutex
	written  *[]int64
	reporter connect.ErrantRecordReporter
	swallow  bool // ignore Report's error, as a careless task would
	last     map[connect.TopicPartition]int64
}

var _ connect.SinkTask = (*reportingTask)(nil)

func (t *reportingTask) Start(ctx context.Context, _ map[string]string) error {
	t.reporter = connect.ErrantRecordReporterFrom(ctx)
	if t.reporter == nil {
		return errors.New("no errant record reporter in Start's context")
	}
	t.last = map[connect.TopicPartition]int64{}
	return nil
}
func (t *reportingTask) Open(context.Context, []connect.TopicPartition) error { return nil }
func (t *reportingTask) Put(ctx context.Context, recs []connect.Record) error {
	for i := range recs {
		r := &recs[i]
		if s, _ := r.Value.(string); strings.HasPrefix(s, "bad") {
			if err := t.reporter.Report(ctx, r, fmt.Errorf("cannot write %s", s)); err != nil && !t.swallow {
				return err
			}
			continue
		}
		t.mu.Lock()
		*t.written = append(*t.written, r.Offset)
		t.mu.Unlock()
		t.last[r.OriginalTopicPartition()] = r.Offset + 1
	}
	return nil
}
func (t *reportingTask) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	return durableOf(cur, t.last), nil
}
func (t *reportingTask) Close(context.Context, []connect.TopicPartition) error { return nil }
func (t *reportingTask) Stop() error                                           { return nil }

func reportingRegistry(t *testing.T, mu *sync.Mutex, written *[]int64, swallow bool) *connect.Registry {
	t.Helper()
	return sinkRegistry(t, func() connect.SinkTask { return &reportingTask{mu: mu, written: written, swallow: swallow} })
}

// Under errors.tolerance=all a record the task reports is dead-lettered
// (stage TASK_PUT), Report returns nil, and the commit moves past it, also
// when it is the partition's last record and the task never reports its
// offset durable.
func TestErrantRecordReporterToleranceAll(t *testing.T) {
	addr := newCluster(t, 1, "e")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "e", 0, "good-0", "good-1", "bad-2", "good-3", "bad-4")
	var mu sync.Mutex
	var written []int64
	spec := testSpec("errant", addr, 1, 1, map[string]string{
		"topics": "e", "offset.flush.interval.ms": "100",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "e-dlq", "errors.deadletterqueue.context.headers.enable": "true",
	})
	w := startWorker(t, spec, 0, reportingRegistry(t, &mu, &written, false))
	eventually(t, 20*time.Second, "commit past the last, reported record", func() bool {
		return committedAt(t, cl, jobs.ConsumerGroup("errant"), connect.TopicPartition{Topic: "e", Partition: 0}) == 5
	})
	if st := w.w.Status(); st.State != jobs.WorkerRunning {
		t.Errorf("state %s, want RUNNING", st.State)
	}
	if m := w.w.Metrics(0); m.Errors != 2 {
		t.Errorf("errors %d, want 2", m.Errors)
	}
	w.stop(t)
	mu.Lock()
	if fmt.Sprint(written) != "[0 1 3]" {
		t.Errorf("task wrote %v, want [0 1 3]", written)
	}
	mu.Unlock()
	for i, r := range deadLetters(t, addr, "e-dlq", 2) {
		h := headerMap(r)
		off := []string{"2", "4"}[i]
		if string(r.Value) != "bad-"+off || h["__connect.errors.offset"] != off || h["__connect.errors.stage"] != "TASK_PUT" ||
			h["__connect.errors.class.name"] != testClass || h["__connect.errors.exception.class.name"] != "*errors.errorString" ||
			h["__connect.errors.exception.message"] != "cannot write bad-"+off {
			t.Errorf("dead letter %d: %q with headers %v", i, r.Value, h)
		}
	}
}

// Under errors.tolerance=none Report returns an error naming the record,
// which fails the task when Put returns it; a task that ignores it fails
// all the same. Nothing is committed past the record.
func TestErrantRecordReporterToleranceNone(t *testing.T) {
	for _, swallow := range []bool{false, true} {
		t.Run(fmt.Sprintf("swallow=%v", swallow), func(t *testing.T) {
			addr := newCluster(t, 1, "e")
			cl := newClient(t, addr, manualPartitioner())
			produce(t, cl, "e", 0, "good-0", "good-1", "bad-2", "good-3")
			var mu sync.Mutex
			var written []int64
			name := fmt.Sprintf("errnone%v", swallow)
			spec := testSpec(name, addr, 1, 1, map[string]string{"topics": "e", "offset.flush.interval.ms": "50"})
			w := startWorker(t, spec, 0, reportingRegistry(t, &mu, &written, swallow))
			eventually(t, 20*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
			st, _ := w.status.seen(jobs.WorkerFailed)
			if !strings.Contains(st.Message, `put: record at topic "e" partition 0 offset 2 (errors.tolerance=none): cannot write bad-2`) {
				t.Errorf("failure %q, want the record's coordinates and the task's error", st.Message)
			}
			w.stop(t)
			if c := committedAt(t, cl, jobs.ConsumerGroup(name), connect.TopicPartition{Topic: "e", Partition: 0}); c > 2 {
				t.Errorf("committed %d, past the reported record", c)
			}
		})
	}
}

// syncBuffer is a log sink safe for the worker's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// errors.log.enable logs a failure under either tolerance;
// errors.log.include.messages adds the record's key, value and headers,
// with resolved secrets redacted.
func TestErrorsLogIncludeMessages(t *testing.T) {
	t.Setenv("FERRY_TEST_LOG_SECRET", "hunter2")
	for _, tc := range []struct {
		tolerance string
		messages  bool
	}{{"all", true}, {"none", true}, {"all", false}} {
		t.Run(fmt.Sprintf("%s/messages=%v", tc.tolerance, tc.messages), func(t *testing.T) {
			addr := newCluster(t, 1, "j")
			cl := newClient(t, addr, manualPartitioner())
			produceRecs(t, cl, &kgo.Record{Topic: "j", Partition: 0, Key: []byte("the-key"), Value: []byte(`not json hunter2`),
				Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}}})
			spec := testSpec("logmsg", addr, 1, 1, map[string]string{
				"topics": "j", "value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
				"errors.tolerance": tc.tolerance, "errors.log.enable": "true", "errors.log.include.messages": fmt.Sprint(tc.messages),
				"api.token": "${env:FERRY_TEST_LOG_SECRET}",
			})
			spec.WorkerProperties = map[string]string{"config.providers": "env", "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider"}
			var logs syncBuffer
			w, err := NewWorker(spec, Options{Logger: zerolog.New(&logs), Registry: testRegistry(t, newRecorder()),
				RestartBackoff: time.Minute, MaxRestartBackoff: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = w.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			eventually(t, 20*time.Second, "the failure logged", func() bool { return strings.Contains(logs.String(), `"message":"record failed"`) })
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, `"message":"record failed"`) {
					line = l
				}
			}
			for _, want := range []string{`"stage":"VALUE_CONVERTER"`, `"topic":"j"`, `"offset":0`, `"tolerance":"` + tc.tolerance + `"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line %s lacks %s", line, want)
				}
			}
			hasMsg := strings.Contains(line, `"key":"the-key"`) && strings.Contains(line, `"value":"not json [hidden]"`) && strings.Contains(line, `"headers":{"h1":"v1"}`)
			if hasMsg != tc.messages {
				t.Errorf("log line %s: key, value and headers present=%v, want %v", line, hasMsg, tc.messages)
			}
			if strings.Contains(logs.String(), "hunter2") {
				t.Error("the resolved secret reached the log")
			}
		})
	}
}
