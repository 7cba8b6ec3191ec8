package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Lag is high watermark less committed offset over every owned partition:
// records delivered but not durable are lag until they are committed.
func TestLagIsHighWatermarkLessCommitted(t *testing.T) {
	addr := newCluster(t, 3, "lag")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "lag", 0, values("a", 10)...)
	produce(t, cl, "lag", 1, values("b", 5)...)
	rec := newRecorder()
	rec.mu.Lock()
	rec.durable = func(connect.TopicPartition, int64) (int64, bool) { return 0, false } // nothing durable yet
	rec.mu.Unlock()
	spec := testSpec("lag", addr, 1, 1, map[string]string{"topics": "lag", "offset.flush.interval.ms": "100"})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "15 records delivered", func() bool { return len(rec.deliveries()) == 15 })
	eventually(t, 10*time.Second, "lag 15: delivered, not committed", func() bool { return w.w.Metrics(0).Lag == 15 })
	rec.mu.Lock()
	rec.durable = nil // everything delivered is durable
	rec.mu.Unlock()
	eventually(t, 10*time.Second, "lag 0 once committed", func() bool { return w.w.Metrics(0).Lag == 0 })
	produce(t, cl, "lag", 2, values("c", 4)...)
	eventually(t, 10*time.Second, "lag 0 again after the new records are committed", func() bool {
		return len(rec.deliveries()) == 19 && w.w.Metrics(0).Lag == 0
	})
	if m := w.w.Metrics(0); m.Tasks != 1 || m.TasksRunning != 1 {
		t.Errorf("tasks %d, running %d; want 1, 1", m.Tasks, m.TasksRunning)
	}
	w.stop(t)
}

// A partition's lag counts from its commit, not from what was delivered:
// a task that made 4 of 10 records durable lags by 6.
func TestLagCountsFromTheCommit(t *testing.T) {
	addr := newCluster(t, 1, "lag2")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "lag2", 0, values("a", 10)...)
	rec := newRecorder()
	rec.durable = func(_ connect.TopicPartition, cur int64) (int64, bool) { return min(cur, 4), true }
	spec := testSpec("lag2", addr, 1, 1, map[string]string{"topics": "lag2", "offset.flush.interval.ms": "100"})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "lag 6 with the commit at 4", func() bool { return w.w.Metrics(0).Lag == 6 })
	w.stop(t)
}

// records_in counts the records of partitions the task owns only: a poll
// can still hold records of a partition just revoked, which its next owner
// reads (and counts) again.
func TestRecordsInCountsOwnedPartitionsOnly(t *testing.T) {
	rec := newRecorder()
	spec := testSpec("owned", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t"})
	w, err := NewWorker(spec, Options{Registry: testRegistry(t, rec), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.newSinkRun(0)
	if err != nil {
		t.Fatal(err)
	}
	r.owned[connect.TopicPartition{Topic: "t", Partition: 0}] = newPartState()
	recs := func(p int32, n int) []*kgo.Record {
		out := make([]*kgo.Record, n)
		for i := range out {
			out[i] = &kgo.Record{Topic: "t", Partition: p, Offset: int64(i), Value: []byte("v")}
		}
		return out
	}
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{
		{Partition: 0, HighWatermark: 3, Records: recs(0, 3)},
		{Partition: 1, HighWatermark: 5, Records: recs(1, 5)}, // revoked meanwhile
	}}}}}
	if err := r.process(context.Background(), fetches); err != nil {
		t.Fatal(err)
	}
	if m := w.Metrics(0); m.RecordsIn != 3 || m.RecordsOut != 3 || m.BytesIn != 3 {
		t.Errorf("metrics %+v, want 3 records (and bytes) in and out", m)
	}
}
