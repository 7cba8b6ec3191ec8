package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// slowStartTask is a recordingTask whose Start takes delay for task 1.
type slowStartTask struct {
	recordingTask
	delay time.Duration
}

func (t *slowStartTask) Start(ctx context.Context, cfg map[string]string) error {
	if err := t.recordingTask.Start(ctx, cfg); err != nil {
		return err
	}
	if t.id == 1 {
		time.Sleep(t.delay)
	}
	return nil
}

// The tasks a worker starts together start consuming together, even when
// one's Start is slower: the task that joins first does not consume the
// partitions the next one is about to take, so nothing is read twice.
func TestSinkTasksOfAWorkerStartConsumingTogether(t *testing.T) {
	addr := newCluster(t, 4, "gate")
	cl := newClient(t, addr, manualPartitioner())
	for p := int32(0); p < 4; p++ {
		produce(t, cl, "gate", p, "a", "b", "c")
	}
	rec := newRecorder()
	reg := sinkRegistry(t, func() connect.SinkTask {
		return &slowStartTask{recordingTask: recordingTask{rec: rec}, delay: 700 * time.Millisecond}
	})
	w := startWorker(t, testSpec("gate", addr, 2, 1, map[string]string{"topics": "gate"}), 0, reg)
	eventually(t, 20*time.Second, "all 12 records delivered", func() bool { return len(rec.deliveries()) >= 12 })
	time.Sleep(time.Second) // a replay would show by now
	ds := rec.deliveries()
	w.stop(t)
	tasks := map[connect.TopicPartition]int{}
	for _, d := range ds {
		if prev, ok := tasks[d.tp]; ok && prev != d.task {
			t.Errorf("%s delivered to task %d and task %d", d.tp, prev, d.task)
		}
		tasks[d.tp] = d.task
	}
	if len(ds) != 12 {
		t.Errorf("%d deliveries of 12 records: some were read twice", len(ds))
	}
	per := map[int]int{}
	for _, task := range tasks {
		per[task]++
	}
	if per[0] != 2 || per[1] != 2 {
		t.Errorf("partitions per task %v, want 2 each", per)
	}
}
