package runtime

import (
	"bytes"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
)

func TestPlanMemoryScalesWithMCUs(t *testing.T) {
	one, four := PlanMemory(1), PlanMemory(4)
	if one.Allotment != 4<<30 || four.Allotment != 16<<30 {
		t.Errorf("allotments %d, %d", one.Allotment, four.Allotment)
	}
	if four.Fetch != 4*one.Fetch || four.SinkBuffers != 4*one.SinkBuffers || four.SoftLimit != 4*one.SoftLimit {
		t.Errorf("plan does not scale with MCUs: %v vs %v", one, four)
	}
	if one.Fetch+one.SinkBuffers >= one.SoftLimit || one.SoftLimit >= one.Allotment {
		t.Errorf("budgets must sit under the soft limit, under the allotment: %v", one)
	}
	if PlanMemory(0) != one {
		t.Error("no MCUs must plan as one")
	}
}

func TestMemoryLimitFromPlan(t *testing.T) {
	w := &Worker{spec: &jobs.WorkerSpec{Mcu: 2}, log: zerolog.Nop()}
	prev := debug.SetMemoryLimit(-1)
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	restore := w.applyMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != PlanMemory(2).SoftLimit {
		t.Errorf("soft limit %d, want %d", got, PlanMemory(2).SoftLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("limit not restored: %d, want %d", got, prev)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	restore = w.applyMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("GOMEMLIMIT set, yet the limit changed to %d", got)
	}
	restore()
}

func TestFetchSizingClampsOverrides(t *testing.T) {
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	const share = 8 << 20
	s := newFetchSizing(share, fetchOverrides{maxBytes: 50 << 20, partitionMaxBytes: 512 << 10, minBytes: 1}, log)
	if s.ceiling != share/fetchConcurrency {
		t.Errorf("fetch.max.bytes 50 MiB over a %d share: ceiling %d, want %d", share, s.ceiling, share/fetchConcurrency)
	}
	if !strings.Contains(logs.String(), `"key":"consumer.fetch.max.bytes"`) || !strings.Contains(logs.String(), "clamped") {
		t.Errorf("no log line for the clamp: %s", logs.String())
	}
	if s.partition != 512<<10 || s.minBytes != 1 {
		t.Errorf("overrides within the plan not honoured: partition %d, min %d", s.partition, s.minBytes)
	}
	if strings.Contains(logs.String(), "max.partition.fetch.bytes") {
		t.Errorf("an override within the plan was logged as clamped: %s", logs.String())
	}

	logs.Reset()
	s = newFetchSizing(share, fetchOverrides{maxBytes: 1 << 20, partitionMaxBytes: 2 << 20, minBytes: 2 << 20}, log)
	if s.ceiling != 1<<20 || s.partition != 1<<20 || s.minBytes != 1<<20 {
		t.Errorf("a smaller fetch.max.bytes bounds the others: ceiling %d, partition %d, min %d", s.ceiling, s.partition, s.minBytes)
	}
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 2 {
		t.Errorf("want two clamps logged, got %d: %s", n, logs.String())
	}
	if s.current > s.ceiling {
		t.Errorf("fetch.max.bytes %d above the ceiling %d", s.current, s.ceiling)
	}
}

func TestFetchSizingFollowsExpansion(t *testing.T) {
	const share = 32 << 20
	s := newFetchSizing(share, fetchOverrides{}, zerolog.Nop())
	if want := int32(share / fetchConcurrency / initialExpansion); s.current != want {
		t.Fatalf("initial fetch.max.bytes %d, want %d", s.current, want)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Records that take 16 times their wire size: fetches shrink.
	for range 10 {
		s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, kgo.FetchBatchMetrics{CompressedBytes: 1 << 20, UncompressedBytes: 15 << 20, NumRecords: 1})
	}
	if _, ok := s.retune(cl); !ok {
		t.Fatal("no retune after 10 MiB read")
	}
	if want := int32(share / fetchConcurrency / 15); s.current > want*11/10 || s.current < want*9/10 {
		t.Errorf("fetch.max.bytes %d after 15x expansion, want about %d", s.current, want)
	}
	// Incompressible records: fetches grow, up to the ceiling.
	for range 40 {
		s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, kgo.FetchBatchMetrics{CompressedBytes: 1 << 20, UncompressedBytes: 1 << 20, NumRecords: 1})
		s.retune(cl)
	}
	if s.current > s.ceiling || s.current < s.ceiling*9/10 {
		t.Errorf("fetch.max.bytes %d for records as large as on the wire, want about the ceiling %d", s.current, s.ceiling)
	}
}

func TestBadFetchOverrideRefused(t *testing.T) {
	spec := testSpec("c", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t", "consumer.override.fetch.max.bytes": "lots"})
	_, err := NewWorker(spec, Options{Registry: testRegistry(t, newRecorder())})
	if err == nil || !strings.Contains(err.Error(), "fetch.max.bytes") || !strings.Contains(err.Error(), "lots") {
		t.Errorf("want an error naming fetch.max.bytes and its value, got %v", err)
	}
	spec = testSpec("c", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t"})
	spec.WorkerProperties = map[string]string{"consumer.max.partition.fetch.bytes": "-1"}
	_, err = NewWorker(spec, Options{Registry: testRegistry(t, newRecorder())})
	if err == nil || !strings.Contains(err.Error(), "consumer.max.partition.fetch.bytes") {
		t.Errorf("want an error naming consumer.max.partition.fetch.bytes, got %v", err)
	}
}

// A source task's producer buffers at most its share of the plan's
// Produce (Kafka's buffer.memory), never less than two of the largest
// requests; producer.override.buffer.memory lowers it, never raises it.
func TestProducerBufferWithinThePlan(t *testing.T) {
	reg, _ := datagenRegistry(t, -1)
	for _, tc := range []struct {
		name  string
		mcu   int
		tasks int
		extra map[string]string
		want  int64
	}{
		{"1 MCU, 2 tasks: 32 MiB each", 1, 2, nil, 32 << 20},
		{"2 MCUs, 2 tasks: 64 MiB each", 2, 2, nil, 64 << 20},
		{"override lowers", 1, 2, map[string]string{"producer.override.buffer.memory": "8388608"}, 8 << 20},
		{"override cannot raise", 1, 2, map[string]string{"producer.override.buffer.memory": "1073741824"}, 32 << 20},
		{"many tasks: two requests at least", 1, 200, nil, 2 << 20},
		{"larger requests raise the floor", 1, 200, map[string]string{"producer.override.max.request.size": "4194304"}, 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := datagenSpec("buf", "127.0.0.1:1", tc.tasks, tc.extra)
			spec.Mcu = tc.mcu
			w, err := NewWorker(spec, Options{Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			r := &sourceRun{w: w, s: w.source}
			cl, err := kgo.NewClient(r.clientOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if got := cl.OptValue(kgo.MaxBufferedBytes).(int64); got != tc.want {
				t.Errorf("MaxBufferedBytes %d, want %d", got, tc.want)
			}
		})
	}
}
