package datagen

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

type offsets map[string]any

func (o offsets) Offset(map[string]any) map[string]any { return o }
func (o offsets) Offsets([]map[string]any) map[string]map[string]any {
	return nil
}

type taskCtx struct{ r connect.OffsetStorageReader }

func (c taskCtx) OffsetStorageReader() connect.OffsetStorageReader { return c.r }
func (c taskCtx) TaskID() int                                      { return 0 }

func start(t *testing.T, cfg map[string]string, stored offsets) *Task {
	t.Helper()
	task := Plugin().NewSourceTask().(*Task)
	task.Initialize(taskCtx{stored})
	if err := task.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return task
}

func poll(t *testing.T, task *Task) []connect.SourceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	recs, err := task.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestQuickstartsAreDeterministicAndResume(t *testing.T) {
	for _, q := range Quickstarts() {
		t.Run(q, func(t *testing.T) {
			cfg := map[string]string{KeyTopic: "t", KeyQuickstart: q, KeyMaxInterval: "0", KeySeed: "42", KeyBatch: "10", "task.id": "0"}
			a := poll(t, start(t, cfg, nil))
			if len(a) != 10 {
				t.Fatalf("got %d records, want a batch of 10", len(a))
			}
			b := poll(t, start(t, cfg, nil))
			if !reflect.DeepEqual(a, b) {
				t.Errorf("same seed, different records:\n%v\n%v", a[0], b[0])
			}
			// Resuming after iteration 4 yields records 5.. exactly.
			c := poll(t, start(t, cfg, offsets{OffsetField: int64(4)}))
			if !reflect.DeepEqual(c[:5], a[5:]) {
				t.Errorf("resume after 4: %v, want %v", c[0], a[5])
			}
			if a[0].Key == nil || len(a[0].Value.(map[string]any)) < 3 || a[0].Topic != "t" {
				t.Errorf("record %+v", a[0])
			}
			other := poll(t, start(t, map[string]string{KeyTopic: "t", KeyQuickstart: q, KeyMaxInterval: "0", KeySeed: "43", KeyBatch: "10"}, nil))
			if reflect.DeepEqual(a, other) {
				t.Error("different seeds, same records")
			}
		})
	}
}

func TestIterationsAndRate(t *testing.T) {
	task := start(t, map[string]string{KeyTopic: "t", KeyRate: "200", KeyIterations: "30"}, nil)
	began := time.Now()
	n := 0
	for n < 30 {
		n += len(poll(t, task))
	}
	// 30 records at 200/s take about 145 ms (the first is due at once).
	if d := time.Since(began); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("30 records at 200/s took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if recs, err := task.Poll(ctx); len(recs) != 0 || err == nil {
		t.Errorf("after the last iteration: %d records, %v", len(recs), err)
	}
}

func TestConfigValidation(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(Plugin()); err != nil {
		t.Fatal(err)
	}
	err := reg.ValidateConfig("ferry.datagen", map[string]string{KeyQuickstart: "stocks", KeyRate: "-1"})
	ces, ok := err.(connect.ConfigErrors)
	if !ok || len(ces) != 3 {
		t.Fatalf("want 3 problems (topic, quickstart, rate), got %v", err)
	}
	if err := reg.ValidateConfig("DatagenConnector", map[string]string{KeyTopic: "x"}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}
