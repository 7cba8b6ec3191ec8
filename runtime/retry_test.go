package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// The backoff is Kafka Connect's: 300 ms doubled per retry, and once that
// passes errors.retry.delay.max.ms a random wait below it.
func TestRetryDelay(t *testing.T) {
	p := retryPolicy{timeout: -1, maxDelay: 60 * time.Second}
	for attempt, want := range map[int]time.Duration{1: 300 * time.Millisecond, 2: 600 * time.Millisecond, 3: 1200 * time.Millisecond, 8: 38400 * time.Millisecond} {
		if got := p.delay(attempt); got != want {
			t.Errorf("delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	p.maxDelay = time.Second
	for _, attempt := range []int{3, 4, 40, 1000} {
		if got := p.delay(attempt); got < 0 || got >= time.Second {
			t.Errorf("delay(%d) = %v, want in [0, 1s) once past errors.retry.delay.max.ms", attempt, got)
		}
	}
}

func TestRetryPolicyRun(t *testing.T) {
	flaky := func(failures int, calls *int) func() error {
		return func() error {
			*calls++
			if *calls <= failures {
				return connect.Retriable(fmt.Errorf("try %d", *calls))
			}
			return nil
		}
	}
	t.Run("timeout 0 never retries", func(t *testing.T) {
		calls := 0
		n, err := retryPolicy{timeout: 0, maxDelay: time.Millisecond}.run(context.Background(), flaky(1, &calls))
		if n != 1 || calls != 1 || !connect.IsRetriable(err) {
			t.Errorf("attempts %d calls %d err %v, want one attempt and the retriable error", n, calls, err)
		}
	})
	t.Run("-1 retries until it succeeds", func(t *testing.T) {
		calls := 0
		n, err := retryPolicy{timeout: -1, maxDelay: time.Millisecond}.run(context.Background(), flaky(6, &calls))
		if n != 7 || err != nil {
			t.Errorf("attempts %d err %v, want 7 attempts and success", n, err)
		}
	})
	t.Run("not retriable fails at once", func(t *testing.T) {
		calls := 0
		boom := errors.New("boom")
		n, err := retryPolicy{timeout: -1, maxDelay: time.Millisecond}.run(context.Background(), func() error { calls++; return boom })
		if n != 1 || !errors.Is(err, boom) {
			t.Errorf("attempts %d err %v, want 1 and boom", n, err)
		}
	})
	t.Run("gives up after the timeout", func(t *testing.T) {
		calls := 0
		start := time.Now()
		n, err := retryPolicy{timeout: 500 * time.Millisecond, maxDelay: time.Minute}.run(context.Background(), flaky(1000, &calls))
		took := time.Since(start)
		// Attempts at 0, 300 ms and 500 ms (the second wait is cut to the deadline).
		if n != 3 || took < 500*time.Millisecond || took > 2*time.Second {
			t.Errorf("attempts %d in %v, want 3 in about 500ms", n, took)
		}
		if !connect.IsRetriable(err) || !strings.Contains(err.Error(), "errors.retry.timeout=500") {
			t.Errorf("error %v, want the retriable cause and the timeout", err)
		}
	})
	t.Run("stops with ctx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		calls := 0
		_, err := retryPolicy{timeout: -1, maxDelay: time.Minute}.run(ctx, flaky(1000, &calls))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want ctx's", err)
		}
	})
}

// flakyTransform fails with a retriable error on the record at offset
// failAt until it has been tried failures times, and notes when each try
// happened.
type flakyTransform struct {
	mu       sync.Mutex
	failAt   int64
	failures int // < 0: always
	tries    []time.Time
}

func (f *flakyTransform) Apply(rec *connect.Record) (*connect.Record, error) {
	if rec.Offset != f.failAt {
		return rec, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries = append(f.tries, time.Now())
	if f.failures < 0 || len(f.tries) <= f.failures {
		return nil, connect.Retriable(fmt.Errorf("store unavailable (try %d)", len(f.tries)))
	}
	return rec, nil
}

func (f *flakyTransform) attempts() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.tries...)
}

func flakyRegistry(t *testing.T, rec *recorder, f *flakyTransform) *connect.Registry {
	t.Helper()
	reg := testRegistry(t, rec)
	if err := reg.RegisterTransform(connect.TransformPlugin{Class: "test.Flaky", New: func(map[string]string) (connect.Transform, error) {
		return f, nil
	}}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// A transform that fails with a retriable error twice is retried with
// Kafka Connect's backoff (300 ms, then 600 ms) and the record is
// delivered once, in order, with nothing counted as an error.
func TestRetriableTransformSucceedsOnThirdTry(t *testing.T) {
	addr := newCluster(t, 1, "t")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "t", 0, values("v", 5)...)
	rec := newRecorder()
	f := &flakyTransform{failAt: 2, failures: 2}
	spec := testSpec("retry-ok", addr, 1, 1, map[string]string{
		"topics": "t", "offset.flush.interval.ms": "100",
		"transforms": "flaky", "transforms.flaky.type": "test.Flaky",
		"errors.retry.timeout": "10000",
	})
	w := startWorker(t, spec, 0, flakyRegistry(t, rec, f))
	eventually(t, 20*time.Second, "5 records", func() bool { return len(rec.deliveries()) == 5 })
	eventually(t, 10*time.Second, "commit of all 5", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("retry-ok"))[connect.TopicPartition{Topic: "t", Partition: 0}] == 5
	})
	w.stop(t)
	tries := f.attempts()
	if len(tries) != 3 {
		t.Fatalf("offset 2 tried %d times, want 3", len(tries))
	}
	if d := tries[1].Sub(tries[0]); d < 300*time.Millisecond {
		t.Errorf("first retry after %v, want ≥ 300ms", d)
	}
	if d := tries[2].Sub(tries[1]); d < 600*time.Millisecond {
		t.Errorf("second retry after %v, want ≥ 600ms", d)
	}
	for i, d := range rec.deliveries() {
		if d.offset != int64(i) {
			t.Errorf("delivery %d is offset %d, want every record once, in order", i, d.offset)
		}
	}
	if m := w.w.Metrics(0); m.Errors != 0 {
		t.Errorf("errors %d, want 0 (the record succeeded)", m.Errors)
	}
}

// A retriable failure that outlasts errors.retry.timeout is then an error
// like any other: dead-lettered under errors.tolerance=all, the task
// FAILED with the record's coordinates under none.
func TestRetriableTransformOutlastsTimeout(t *testing.T) {
	base := map[string]string{
		"topics": "t", "offset.flush.interval.ms": "100",
		"transforms": "flaky", "transforms.flaky.type": "test.Flaky",
		"errors.retry.timeout": "1000", "errors.retry.delay.max.ms": "400",
	}
	t.Run("all", func(t *testing.T) {
		addr := newCluster(t, 1, "t")
		cl := newClient(t, addr, manualPartitioner())
		produce(t, cl, "t", 0, values("v", 4)...)
		rec := newRecorder()
		f := &flakyTransform{failAt: 1, failures: -1}
		cfg := map[string]string{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq", "errors.deadletterqueue.context.headers.enable": "true"}
		for k, v := range base {
			cfg[k] = v
		}
		start := time.Now()
		w := startWorker(t, testSpec("retry-all", addr, 1, 1, cfg), 0, flakyRegistry(t, rec, f))
		eventually(t, 20*time.Second, "3 records", func() bool { return len(rec.deliveries()) == 3 })
		eventually(t, 10*time.Second, "commit past the dead-lettered record", func() bool {
			return committed(t, cl, jobs.ConsumerGroup("retry-all"))[connect.TopicPartition{Topic: "t", Partition: 0}] == 4
		})
		w.stop(t)
		tries := f.attempts()
		// 300 ms, then 600 ms > 400 ms: waits below 400 ms until 1 s has passed.
		if len(tries) < 3 || tries[len(tries)-1].Sub(tries[0]) < time.Second {
			t.Errorf("%d tries over %v, want ≥ 3 over ≥ errors.retry.timeout", len(tries), tries[len(tries)-1].Sub(tries[0]))
		}
		for i := 2; i < len(tries); i++ {
			if d := tries[i].Sub(tries[i-1]); d > 400*time.Millisecond+200*time.Millisecond {
				t.Errorf("wait %d was %v, want below errors.retry.delay.max.ms=400", i, d)
			}
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("took %v", time.Since(start))
		}
		for _, d := range rec.deliveries() {
			if d.offset == 1 {
				t.Errorf("the failing record was delivered")
			}
		}
		h := deadLetterHeaders(t, addr, "dlq")
		if h["__connect.errors.stage"] != "TRANSFORMATION" || h["__connect.errors.offset"] != "1" ||
			!strings.Contains(h["__connect.errors.exception.message"], "store unavailable") {
			t.Errorf("dead letter headers %v, want stage TRANSFORMATION at offset 1 with the cause", h)
		}
	})
	t.Run("none", func(t *testing.T) {
		addr := newCluster(t, 1, "t")
		cl := newClient(t, addr, manualPartitioner())
		produce(t, cl, "t", 0, values("v", 4)...)
		rec := newRecorder()
		f := &flakyTransform{failAt: 1, failures: -1}
		w := startWorker(t, testSpec("retry-none", addr, 1, 1, base), 0, flakyRegistry(t, rec, f))
		eventually(t, 20*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
		st, _ := w.status.seen(jobs.WorkerFailed)
		if !strings.Contains(st.Message, `topic "t" partition 0 offset 1`) || !strings.Contains(st.Message, "errors.retry.timeout=1000") {
			t.Errorf("failure message %q does not name the record and the retry timeout", st.Message)
		}
		if tries := f.attempts(); len(tries) < 3 {
			t.Errorf("%d tries before failing, want ≥ 3", len(tries))
		}
		w.stop(t)
		for _, d := range rec.deliveries() {
			if d.offset >= 1 {
				t.Errorf("delivered offset %d at or past the failing record", d.offset)
			}
		}
		if c := committed(t, cl, jobs.ConsumerGroup("retry-none")); c[connect.TopicPartition{Topic: "t", Partition: 0}] > 1 {
			t.Errorf("committed %v past the failing record", c)
		}
	})
}

// refusingTask refuses, with a retriable error, the first refusals Puts
// whose batch holds offset refuseAt, and notes every batch it was handed.
type refusingTask struct {
	recordingTask
	refuseAt  int64
	refusals  int
	refused   *int
	batches   *[][]int64
	batchesMu *sync.Mutex
}

func (t *refusingTask) Put(ctx context.Context, recs []connect.Record) error {
	if len(recs) > 0 {
		offs := make([]int64, len(recs))
		for i, r := range recs {
			offs[i] = r.Offset
		}
		t.batchesMu.Lock()
		*t.batches = append(*t.batches, offs)
		refuse := false
		for _, o := range offs {
			if o == t.refuseAt && *t.refused < t.refusals {
				refuse = true
			}
		}
		if refuse {
			*t.refused++
		}
		t.batchesMu.Unlock()
		if refuse {
			return connect.Retriable(errors.New("downstream busy"))
		}
	}
	return t.recordingTask.Put(ctx, recs)
}

// A sink task that refuses a batch with a retriable error gets the same
// batch again after a backoff, is not failed, and sees nothing newer
// before it takes it: every record is delivered exactly once, in order.
func TestRetriablePutRedeliversBatch(t *testing.T) {
	addr := newCluster(t, 1, "t")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "t", 0, values("a", 5)...)
	rec := newRecorder()
	var mu sync.Mutex
	var batches [][]int64
	refused := 0
	reg := sinkRegistry(t, func() connect.SinkTask {
		return &refusingTask{recordingTask: recordingTask{rec: rec}, refuseAt: 7, refusals: 3, refused: &refused, batches: &batches, batchesMu: &mu}
	})
	spec := testSpec("retry-put", addr, 1, 1, map[string]string{"topics": "t", "offset.flush.interval.ms": "100"})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "first 5 records", func() bool { return len(rec.deliveries()) == 5 })
	produce(t, cl, "t", 0, values("b", 5)...) // offsets 5..9, offset 7 refused three times
	eventually(t, 20*time.Second, "all 10 records", func() bool { return len(rec.deliveries()) == 10 })
	eventually(t, 10*time.Second, "commit of all 10", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("retry-put"))[connect.TopicPartition{Topic: "t", Partition: 0}] == 10
	})
	if _, failed := w.status.seen(jobs.WorkerFailed); failed {
		t.Errorf("the worker reported FAILED for a retriable Put error")
	}
	w.stop(t)
	for i, d := range rec.deliveries() {
		if d.offset != int64(i) {
			t.Errorf("delivery %d is offset %d, want every record once, in order", i, d.offset)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var with7 [][]int64
	for _, b := range batches {
		for _, o := range b {
			if o == 7 {
				with7 = append(with7, b)
				break
			}
		}
	}
	if len(with7) != 4 {
		t.Fatalf("batches holding offset 7: %v, want 4 (3 refused, 1 taken)", with7)
	}
	for _, b := range with7[1:] {
		if fmt.Sprint(b) != fmt.Sprint(with7[0]) {
			t.Errorf("redelivered batch %v differs from the refused one %v", b, with7[0])
		}
	}
}

// A poll's records go to the task max.poll.records at a time; when one
// batch is refused with a retriable error, the records polled after it
// wait for it and follow once it is taken: every record once, in order, in
// batches no larger than max.poll.records.
func TestRetriablePutHoldsTheRestOfThePoll(t *testing.T) {
	addr := newCluster(t, 1, "t")
	cl := newClient(t, addr, manualPartitioner())
	rec := newRecorder()
	var mu sync.Mutex
	var batches [][]int64
	refused := 0
	reg := sinkRegistry(t, func() connect.SinkTask {
		return &refusingTask{recordingTask: recordingTask{rec: rec}, refuseAt: 7, refusals: 2, refused: &refused, batches: &batches, batchesMu: &mu}
	})
	spec := testSpec("retry-rest", addr, 1, 1, map[string]string{"topics": "t", "offset.flush.interval.ms": "100",
		"consumer.override.max.poll.records": "3"})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "task running", func() bool { _, ok := w.status.seen(jobs.WorkerRunning); return ok })
	produce(t, cl, "t", 0, values("a", 20)...) // one produce: polled together, put three at a time
	eventually(t, 20*time.Second, "all 20 records", func() bool { return len(rec.deliveries()) == 20 })
	eventually(t, 10*time.Second, "commit of all 20", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("retry-rest"))[connect.TopicPartition{Topic: "t", Partition: 0}] == 20
	})
	w.stop(t)
	for i, d := range rec.deliveries() {
		if d.offset != int64(i) {
			t.Fatalf("delivery %d is offset %d, want every record once, in order", i, d.offset)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	with7 := 0
	for _, b := range batches {
		if len(b) > 3 {
			t.Errorf("batch %v holds more than max.poll.records=3", b)
		}
		if slices.Contains(b, 7) {
			with7++
		}
	}
	if with7 != 3 {
		t.Errorf("batches holding offset 7: %d, want 3 (2 refused, 1 taken)", with7)
	}
}
