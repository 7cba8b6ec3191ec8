package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// The runtime commits exactly what PreCommit reports durable, never more,
// even though every record was delivered.
func TestCommitsOnlyWhatPreCommitReturns(t *testing.T) {
	addr := newCluster(t, 3, "orders")
	cl := newClient(t, addr, manualPartitioner())
	for p := int32(0); p < 3; p++ {
		produce(t, cl, "orders", p, values(fmt.Sprint(p), 20)...)
	}
	rec := newRecorder()
	// Durable: partition p up to 5+p, never beyond what was delivered.
	rec.durable = func(tp connect.TopicPartition, cur int64) (int64, bool) {
		return min(cur, int64(5+tp.Partition)), true
	}
	spec := testSpec("commit", addr, 1, 1, map[string]string{"topics": "orders", "offset.flush.interval.ms": "100"})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "60 records delivered", func() bool { return len(rec.deliveries()) >= 60 })
	eventually(t, 10*time.Second, "periodic commit", func() bool {
		return len(committed(t, cl, jobs.ConsumerGroup("commit"))) == 3
	})
	got := committed(t, cl, jobs.ConsumerGroup("commit"))
	for p := int32(0); p < 3; p++ {
		if want := int64(5 + p); got[connect.TopicPartition{Topic: "orders", Partition: p}] != want {
			t.Errorf("partition %d committed %d while running, want %d", p, got[connect.TopicPartition{Topic: "orders", Partition: p}], want)
		}
	}
	if st := w.w.Status(); st.State != jobs.WorkerRunning {
		t.Errorf("state %s, want RUNNING", st.State)
	}
	w.stop(t)
	got = committed(t, cl, jobs.ConsumerGroup("commit"))
	for p := int32(0); p < 3; p++ {
		if want := int64(5 + p); got[connect.TopicPartition{Topic: "orders", Partition: p}] != want {
			t.Errorf("partition %d committed %d after stop, want %d", p, got[connect.TopicPartition{Topic: "orders", Partition: p}], want)
		}
	}
	if n := len(rec.deliveries()); n != 60 {
		t.Errorf("delivered %d records, want 60 (each once)", n)
	}
	rec.mu.Lock()
	if len(rec.closed[0]) != 3 {
		t.Errorf("task closed %v on stop, want all 3 partitions", rec.closed[0])
	}
	rec.mu.Unlock()
}

// A second worker joining takes partitions over; the first commits what is
// durable on revoke, so the newcomer re-reads only beyond that.
func TestRebalanceCommitsDurableOnRevoke(t *testing.T) {

	const topic, parts = "events", 4
	addr := newCluster(t, parts, topic)
	cl := newClient(t, addr, manualPartitioner())
	for p := int32(0); p < parts; p++ {
		produce(t, cl, topic, p, values(fmt.Sprintf("a%d", p), 10)...)
	}
	rec := newRecorder()
	// Durable in blocks of 4, like a sink that uploads every 4 records.
	rec.durable = func(_ connect.TopicPartition, cur int64) (int64, bool) { return cur / 4 * 4, cur >= 4 }
	// Long flush interval: only revoke and shutdown commit.
	cfg := map[string]string{"topics": topic, "offset.flush.interval.ms": "600000"}
	reg := testRegistry(t, rec)
	a := startWorker(t, testSpec("rebal", addr, 2, 2, cfg), 0, reg)
	eventually(t, 20*time.Second, "worker a reads everything", func() bool { return len(rec.deliveries()) >= 40 })
	if c := committed(t, cl, jobs.ConsumerGroup("rebal")); len(c) != 0 {
		t.Fatalf("committed %v before any revoke", c)
	}

	b := startWorker(t, testSpec("rebal", addr, 2, 2, cfg), 1, reg)
	eventually(t, 30*time.Second, "worker b joins and owns partitions", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.opened[1]) > 0
	})
	// Revoked partitions were committed at 8 (two full blocks of 4).
	c := committed(t, cl, jobs.ConsumerGroup("rebal"))
	rec.mu.Lock()
	moved := append([]connect.TopicPartition(nil), rec.opened[1]...)
	closedA := append([]connect.TopicPartition(nil), rec.closed[0]...)
	rec.mu.Unlock()
	if len(moved) != 2 {
		t.Errorf("worker b got %v, want 2 of 4 partitions", moved)
	}
	for _, tp := range moved {
		if c[tp] != 8 {
			t.Errorf("revoked %v committed at %d, want 8", tp, c[tp])
		}
	}
	if len(closedA) != len(moved) {
		t.Errorf("worker a closed %v, want the moved %v", closedA, moved)
	}

	for p := int32(0); p < parts; p++ {
		produce(t, cl, topic, p, values(fmt.Sprintf("b%d", p), 10)...)
	}
	eventually(t, 20*time.Second, "all 80 records delivered", func() bool {
		n := 0
		for _, offs := range rec.count() {
			n += len(offs)
		}
		return n == 80
	})
	for tp, offs := range rec.count() {
		for off, n := range offs {
			if n > 1 && !(containsTP(moved, tp) && off >= 8 && off < 10) {
				t.Errorf("%v offset %d delivered %d times; duplicates are allowed only beyond the last commit of a moved partition", tp, off, n)
			}
		}
	}
	a.stop(t)
	b.stop(t)
	c = committed(t, cl, jobs.ConsumerGroup("rebal"))
	for p := int32(0); p < parts; p++ {
		if got := c[connect.TopicPartition{Topic: topic, Partition: p}]; got != 20 {
			t.Errorf("partition %d committed %d after stop, want 20", p, got)
		}
	}
}

func containsTP(tps []connect.TopicPartition, tp connect.TopicPartition) bool {
	for _, x := range tps {
		if x == tp {
			return true
		}
	}
	return false
}

// More tasks than partitions: the idle tasks still join, and the worker is
// RUNNING.
func TestIdleTasksCountAsRunning(t *testing.T) {
	addr := newCluster(t, 1, "small")
	rec := newRecorder()
	w := startWorker(t, testSpec("idle", addr, 3, 1, map[string]string{"topics": "small"}), 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "worker RUNNING", func() bool { return w.status.last().State == jobs.WorkerRunning })
	st := w.status.last()
	if len(st.Tasks) != 3 {
		t.Fatalf("tasks %+v, want 3", st.Tasks)
	}
	for _, ts := range st.Tasks {
		if ts.State != TaskRunning {
			t.Errorf("task %d is %s, want RUNNING", ts.ID, ts.State)
		}
	}
	w.stop(t)
	if st := w.status.last(); st.State != jobs.WorkerStopping {
		t.Errorf("final state %s, want STOPPING", st.State)
	}
}

// A scale changes the group's size: Reshare stops the tasks that are no
// longer this worker's and starts its new ones without a restart, and the
// worker is RUNNING with exactly its new share.
func TestReshareChangesTasksInPlace(t *testing.T) {
	addr := newCluster(t, 4, "grow")
	rec := newRecorder()
	w := startWorker(t, testSpec("resh", addr, 2, 1, map[string]string{"topics": "grow"}), 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "worker RUNNING", func() bool { return w.status.last().State == jobs.WorkerRunning })
	if ids := w.w.TaskIDs(); len(ids) != 2 || ids[0] != 0 || ids[1] != 1 {
		t.Fatalf("tasks %v, want [0 1]", ids)
	}
	w.w.Reshare(3, 6) // worker 0 of 3 with 6 tasks runs 0 and 3
	eventually(t, 20*time.Second, "new share RUNNING", func() bool {
		st := w.status.last()
		if st.State != jobs.WorkerRunning || len(st.Tasks) != 2 {
			return false
		}
		return st.Tasks[0].ID == 0 && st.Tasks[1].ID == 3
	})
	if ids := w.w.TaskIDs(); len(ids) != 2 || ids[1] != 3 {
		t.Fatalf("tasks after reshare %v, want [0 3]", ids)
	}
	w.stop(t)
}

// More workers than tasks: a worker with no task of its own stays up and
// RUNNING (it exited at once before, and its executor saw a crash loop).
func TestWorkerWithoutTasksStaysUp(t *testing.T) {
	addr := newCluster(t, 1, "small")
	rec := newRecorder()
	w := startWorker(t, testSpec("spare", addr, 1, 2, map[string]string{"topics": "small"}), 1, testRegistry(t, rec))
	if ids := w.w.TaskIDs(); len(ids) != 0 {
		t.Fatalf("worker 1 of 2 with tasks.max=1 runs tasks %v, want none", ids)
	}
	eventually(t, 10*time.Second, "worker RUNNING", func() bool { return w.status.last().State == jobs.WorkerRunning })
	select {
	case <-w.done:
		t.Fatalf("worker without tasks returned (%v) before it was stopped", w.err)
	case <-time.After(time.Second):
	}
	w.stop(t)
}

// A record the converter cannot convert fails the task under
// errors.tolerance=none, naming the record's coordinates.
func TestPoisonRecordFailsTask(t *testing.T) {
	addr := newCluster(t, 1, "json")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "json", 0, `{"a":1}`, `{"a":2}`, `{"a":3}`, `not json`, `{"a":5}`)
	rec := newRecorder()
	spec := testSpec("poison", addr, 1, 1, map[string]string{
		"topics": "json", "value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
	})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	st, _ := w.status.seen(jobs.WorkerFailed)
	if !strings.Contains(st.Message, `topic "json" partition 0 offset 3`) {
		t.Errorf("failure message %q does not name the record", st.Message)
	}
	if st.Tasks[0].State != TaskFailed || st.Tasks[0].Trace == "" {
		t.Errorf("task status %+v, want FAILED with a trace", st.Tasks[0])
	}
	// The task restarts and fails on the same record again; nothing at or
	// beyond the poison record is ever delivered, nothing is committed.
	time.Sleep(500 * time.Millisecond)
	for _, d := range rec.deliveries() {
		if d.offset >= 3 {
			t.Errorf("delivered offset %d past the poison record", d.offset)
		}
	}
	if m := w.w.Metrics(0); m.Errors < 2 {
		t.Errorf("errors %d, want ≥ 2 (conversion, task failure)", m.Errors)
	}
	w.stop(t)
	if c := committed(t, cl, jobs.ConsumerGroup("poison")); c[connect.TopicPartition{Topic: "json", Partition: 0}] > 3 {
		t.Errorf("committed %v past the poison record", c)
	}
}

// Under errors.tolerance=all the poison record is skipped, counted, and
// lands in the dead letter queue with context headers.
func TestPoisonRecordToleratedToDLQ(t *testing.T) {
	addr := newCluster(t, 1, "json")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "json", 0, `{"a":1}`, `{"a":2}`, `oops`, `{"a":4}`)
	rec := newRecorder()
	spec := testSpec("tolerant", addr, 1, 1, map[string]string{
		"topics": "json", "value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
		"errors.deadletterqueue.context.headers.enable": "true", "offset.flush.interval.ms": "100",
	})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "3 good records delivered", func() bool { return len(rec.deliveries()) == 3 })
	for _, d := range rec.deliveries() {
		if d.offset == 2 {
			t.Errorf("poison record delivered: %+v", d)
		}
	}
	if d := rec.deliveries()[2]; d.offset != 3 {
		t.Errorf("last delivery %+v, want offset 3", d)
	}
	eventually(t, 10*time.Second, "commit past the skipped record", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("tolerant"))[connect.TopicPartition{Topic: "json", Partition: 0}] == 4
	})
	if m := w.w.Metrics(0); m.Errors != 1 || m.RecordsIn != 4 || m.RecordsOut != 3 {
		t.Errorf("metrics %+v, want errors 1, records in 4, out 3", m)
	}
	if st := w.w.Status(); st.State != jobs.WorkerRunning {
		t.Errorf("state %s, want RUNNING", st.State)
	}
	w.stop(t)

	dl := newClient(t, addr, kgo.ConsumeTopics("dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := dl.PollFetches(ctx)
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("dead letter queue holds %d records (%v), want 1", len(recs), fs.Err())
	}
	if string(recs[0].Value) != "oops" {
		t.Errorf("dead-lettered value %q, want the raw record", recs[0].Value)
	}
	h := map[string]string{}
	for _, hd := range recs[0].Headers {
		h[hd.Key] = string(hd.Value)
	}
	if h["__connect.errors.topic"] != "json" || h["__connect.errors.partition"] != "0" || h["__connect.errors.offset"] != "2" {
		t.Errorf("dead letter headers %v lack the coordinates", h)
	}
}

// A Put failure fails the task; it restarts with backoff from the last
// commit and delivers everything, re-delivering only beyond the commit.
func TestFailedTaskRestartsFromCommit(t *testing.T) {
	addr := newCluster(t, 1, "r")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "r", 0, values("a", 10)...)
	rec := newRecorder()
	rec.durable = func(_ connect.TopicPartition, cur int64) (int64, bool) { return cur / 5 * 5, cur >= 5 }
	spec := testSpec("restart", addr, 1, 1, map[string]string{"topics": "r", "offset.flush.interval.ms": "50"})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "10 records", func() bool { return len(rec.deliveries()) == 10 })
	eventually(t, 10*time.Second, "commit at 10", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("restart"))[connect.TopicPartition{Topic: "r", Partition: 0}] == 10
	})
	rec.mu.Lock()
	rec.failAt = 13
	rec.mu.Unlock()
	produce(t, cl, "r", 0, values("b", 7)...) // offsets 10..16; Put of the batch with 13 fails
	eventually(t, 20*time.Second, "failure reported", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	eventually(t, 20*time.Second, "all 17 records and RUNNING again", func() bool {
		return len(rec.count()[connect.TopicPartition{Topic: "r", Partition: 0}]) == 17 && w.w.Status().State == jobs.WorkerRunning
	})
	st, _ := w.status.seen(jobs.WorkerFailed)
	if !strings.Contains(st.Message, "injected failure") {
		t.Errorf("failure message %q", st.Message)
	}
	for off, n := range rec.count()[connect.TopicPartition{Topic: "r", Partition: 0}] {
		if n > 1 && off < 10 {
			t.Errorf("offset %d delivered %d times though committed", off, n)
		}
	}
	w.stop(t)
}

// topics.regex subscribes to every topic whose whole name matches, as
// Kafka does, and no other: not xev-a (it ends with a match) nor ev-a-dlq
// (it starts with one).
func TestTopicsRegex(t *testing.T) {
	addr := newCluster(t, 1, "ev-a", "ev-b", "other", "xev-a", "ev-a-dlq")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "ev-a", 0, "1", "2")
	produce(t, cl, "ev-b", 0, "3")
	produce(t, cl, "other", 0, "4")
	produce(t, cl, "xev-a", 0, "5")
	produce(t, cl, "ev-a-dlq", 0, "6")
	rec := newRecorder()
	w := startWorker(t, testSpec("regex", addr, 1, 1, map[string]string{"topics.regex": "ev-a|ev-b"}), 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "3 records", func() bool { return len(rec.deliveries()) == 3 })
	time.Sleep(500 * time.Millisecond)
	for _, d := range rec.deliveries() {
		if d.tp.Topic != "ev-a" && d.tp.Topic != "ev-b" {
			t.Errorf("delivered from a topic the regex does not match as a whole: %+v", d)
		}
		if s, ok := d.value.(string); !ok || s == "" {
			t.Errorf("value %#v, want a string (StringConverter is the default)", d.value)
		}
	}
	if n := len(rec.deliveries()); n != 3 {
		t.Errorf("delivered %d records, want 3", n)
	}
	w.stop(t)
}
