package runtime

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// MCUMemory is the memory of one MCU (MSK Connect: 1 vCPU and 4 GiB), what
// the deployer reserves per MCU for a worker.
const MCUMemory = 4 << 30

// MemoryPlan is how a worker divides the memory of its MCUs; docs/memory.md
// explains the numbers. Every figure is for the whole worker, whatever its
// partition count: the worker's sink tasks split Fetch and SinkBuffers
// evenly among them.
type MemoryPlan struct {
	// Allotment is MCUs × MCUMemory: what the deployer reserves.
	Allotment int64
	// SoftLimit is the Go soft memory limit (debug.SetMemoryLimit), a
	// safety net under the allotment; GOMEMLIMIT, when set, wins.
	SoftLimit int64
	// Fetch bounds the records the Kafka clients of the sink tasks hold,
	// as they sit in memory (decompressed, with the client's per-record
	// structures): it sizes fetch.max.bytes, max.partition.fetch.bytes,
	// the concurrent fetches and the largest response read.
	Fetch int64
	// SinkBuffers bounds the records the connector's tasks buffer: handed
	// to them as a connect.MemoryBudget, and the share above which the
	// runtime pauses fetching for a task.
	SinkBuffers int64
	// Produce bounds the records the source tasks' producers hold until
	// Kafka acknowledges them (kgo.MaxBufferedBytes, Kafka's
	// buffer.memory): Poll blocks on a full buffer. Zero means the MCUs'
	// figure (a plan made before this field existed).
	Produce int64
}

// Per MCU: fetched records, sink buffers, and the soft limit as a part of
// the allotment.
const (
	fetchPerMCU       = 64 << 20
	sinkBuffersPerMCU = 256 << 20
	producePerMCU     = 64 << 20 // two source tasks per MCU (autoscaled) get Kafka's default 32 MiB each
	softLimitNum      = 3        // the soft limit is 3/4 of the allotment
	softLimitDen      = 4
)

// PlanMemory returns the plan of a worker of mcu MCUs (at least one).
func PlanMemory(mcu int) MemoryPlan {
	m := int64(max(mcu, 1))
	return MemoryPlan{
		Allotment:   m * MCUMemory,
		SoftLimit:   m * MCUMemory * softLimitNum / softLimitDen,
		Fetch:       m * fetchPerMCU,
		SinkBuffers: m * sinkBuffersPerMCU,
		Produce:     m * producePerMCU,
	}
}

// Kafka client sizing within a task's fetch share.
const (
	// fetchConcurrency is kgo.MaxConcurrentFetches: one fetch buffered
	// while the task works through it, one in flight from another broker.
	fetchConcurrency = 2
	// initialExpansion is how many times its size on the wire a fetch is
	// assumed to take in memory until the client has read some batches:
	// the first fetch is small (compressed JSON can expand 40 times, with
	// the client's per-record structures), and fetch.max.bytes grows to
	// what the records read show.
	initialExpansion = 64
	minFetchBytes    = 64 << 10
	// defaultPartitionFetchBytes is Kafka's max.partition.fetch.bytes.
	defaultPartitionFetchBytes = 1 << 20
	// minBrokerReadBytes keeps a response of one large record batch
	// readable, whatever the share.
	minBrokerReadBytes = 32 << 20
	// recordOverhead is what the client keeps per record besides its
	// key, value and headers.
	recordOverhead = int64(unsafe.Sizeof(kgo.Record{})) + 8
)

// workerMemory is a worker's plan and the budget its sink tasks share.
type workerMemory struct {
	once sync.Once
	plan MemoryPlan
	root *connect.MemoryBudget

	peakHeld atomic.Int64 // most any task held (back-pressure's measure)
	pauses   atomic.Int64 // times a task's partitions were paused
}

// memory returns the worker's plan, made once from Options.Memory or its MCUs.
func (w *Worker) memory() *workerMemory {
	m := &w.mem
	m.once.Do(func() {
		m.plan = w.opts.Memory
		if m.plan == (MemoryPlan{}) {
			m.plan = PlanMemory(w.spec.Mcu)
		}
		m.root = connect.NewMemoryBudget(m.plan.SinkBuffers)
	})
	return m
}

// applyMemoryLimit sets the plan's soft memory limit unless GOMEMLIMIT is
// set, and returns what puts the previous one back. It leaves the
// collector's pace (GOGC) at Go's default: a higher percent was measured to
// cost the worker CPU, not save it, and to raise peak RSS (docs/memory.md).
func (w *Worker) applyMemoryLimit() func() {
	p := w.memory().plan
	if v := os.Getenv("GOMEMLIMIT"); v != "" || p.SoftLimit <= 0 {
		if v != "" {
			w.log.Info().Str("gomemlimit", v).Msg("soft memory limit from GOMEMLIMIT")
		}
		return func() {}
	}
	prev := debug.SetMemoryLimit(p.SoftLimit)
	w.log.Info().Int("mcu", w.spec.Mcu).Int64("allotment_bytes", p.Allotment).Int64("soft_limit_bytes", p.SoftLimit).
		Int64("fetch_bytes", p.Fetch).Int64("sink_buffer_bytes", p.SinkBuffers).Int64("produce_bytes", p.Produce).Msg("memory plan")
	return func() { debug.SetMemoryLimit(prev) }
}

// taskShare returns a task's part of total: the worker's tasks split it evenly.
func (w *Worker) taskShare(total int64) int64 {
	return total / int64(max(len(w.TaskIDs()), 1))
}

// fetchOverrides are the user's consumer fetch sizes, if set; the plan
// clamps them.
type fetchOverrides struct {
	maxBytes, partitionMaxBytes, minBytes int32 // 0: not set
}

// parseFetchOverrides reads consumer.override.fetch.max.bytes,
// max.partition.fetch.bytes and fetch.min.bytes (or the worker's
// consumer.*). Each problem is reported through bad.
func parseFetchOverrides(spec *jobs.WorkerSpec, bad func(key, format string, args ...any)) fetchOverrides {
	var o fetchOverrides
	for _, f := range []struct {
		name string
		dst  *int32
		min  int64
	}{
		{"fetch.max.bytes", &o.maxBytes, 1},
		{"max.partition.fetch.bytes", &o.partitionMaxBytes, 1},
		{"fetch.min.bytes", &o.minBytes, 0},
	} {
		v, ok := consumerProp(spec, f.name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < f.min {
			bad("consumer."+f.name, "must be an integer from %d to %d bytes, got %q", f.min, int32(^uint32(0)>>1), v)
			continue
		}
		*f.dst = int32(n)
	}
	return o
}

// fetchSizing is one task's Kafka client sizing: fixed at its start
// (ceilings, concurrency, read limit), then fetch.max.bytes adapted to how
// much the records fetched take in memory.
type fetchSizing struct {
	share     int64 // the task's part of MemoryPlan.Fetch
	ceiling   int32 // largest fetch.max.bytes (the user's, clamped)
	partition int32 // max.partition.fetch.bytes (the user's, clamped)
	minBytes  int32 // fetch.min.bytes (the user's, clamped); 0 unset

	wire, mem atomic.Int64 // bytes read and what they took in memory, recently
	current   int32        // fetch.max.bytes now
}

// newFetchSizing sizes a task's client within share bytes, clamping the
// user's overrides and logging each clamp.
func newFetchSizing(share int64, o fetchOverrides, log zerolog.Logger) *fetchSizing {
	perFetch := max(share/fetchConcurrency, minFetchBytes)
	s := &fetchSizing{share: share, ceiling: int32(min(perFetch, 1<<30))}
	clamp := func(key string, v, limit int32) int32 {
		if v > limit {
			log.Warn().Str("key", "consumer."+key).Int32("value", v).Int32("clamped_to", limit).Int64("task_fetch_budget_bytes", share).
				Msg("consumer fetch size over the worker's memory plan; clamped")
			return limit
		}
		return v
	}
	if o.maxBytes > 0 {
		s.ceiling = clamp("fetch.max.bytes", o.maxBytes, s.ceiling)
	}
	s.partition = min(defaultPartitionFetchBytes, s.ceiling)
	if o.partitionMaxBytes > 0 {
		s.partition = clamp("max.partition.fetch.bytes", o.partitionMaxBytes, s.ceiling)
	}
	if o.minBytes > 0 {
		s.minBytes = clamp("fetch.min.bytes", o.minBytes, s.ceiling)
	}
	s.current = s.target(initialExpansion)
	return s
}

// target is the fetch.max.bytes that keeps one fetch's records within its
// part of the share when a byte read takes expansion bytes in memory.
func (s *fetchSizing) target(expansion float64) int32 {
	t := int64(float64(s.share/fetchConcurrency) / max(expansion, 1))
	return int32(min(max(t, minFetchBytes, int64(s.minBytes)), int64(s.ceiling)))
}

// opts are the client options of the sizing.
func (s *fetchSizing) opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.FetchMaxBytes(s.current),
		kgo.FetchMaxPartitionBytes(min(s.partition, s.current)),
		kgo.MaxConcurrentFetches(fetchConcurrency),
		kgo.BrokerMaxReadBytes(int32(min(max(2*int64(s.ceiling), minBrokerReadBytes), 1<<30))),
		kgo.WithHooks(s),
	}
	if s.minBytes > 0 {
		opts = append(opts, kgo.FetchMinBytes(s.minBytes))
	}
	return opts
}

var _ kgo.HookFetchBatchRead = (*fetchSizing)(nil)

// OnFetchBatchRead learns how much a byte read takes in memory.
func (s *fetchSizing) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	s.wire.Add(int64(m.CompressedBytes))
	s.mem.Add(int64(m.UncompressedBytes) + int64(m.NumRecords)*recordOverhead)
}

// retune adapts fetch.max.bytes to the expansion seen since the last call
// (called from the poll loop). It returns the new size when it changed.
func (s *fetchSizing) retune(cl *kgo.Client) (int32, bool) {
	wire := s.wire.Load()
	if wire < int64(s.current) {
		return 0, false // too little read yet to judge
	}
	mem := s.mem.Load()
	// Halve the history so the estimate follows the topic's records.
	s.wire.Add(-wire / 2)
	s.mem.Add(-mem / 2)
	t := s.target(float64(mem) / float64(wire))
	if d := int64(t) - int64(s.current); d*10 > -int64(s.current) && d*10 < int64(s.current) {
		return 0, false // within 10%: not worth a change
	}
	s.current = t
	cl.UpdateFetchMaxBytes(t, min(s.partition, t))
	return t, true
}

// fetchOpts sizes run's Kafka client within its share of the plan.
func (r *sinkRun) fetchOpts() []kgo.Opt {
	r.fetch = newFetchSizing(r.w.taskShare(r.w.memory().plan.Fetch), r.s.fetch, r.log)
	r.log.Debug().Int64("fetch_budget_bytes", r.fetch.share).Int32("fetch_max_bytes", r.fetch.current).
		Int32("partition_max_bytes", r.fetch.partition).Msg("fetch sizing")
	return r.fetch.opts()
}

// defaultMaxRequestBytes is Kafka's max.request.size, the largest record
// batch a producer sends.
const defaultMaxRequestBytes = 1 << 20

// producerBuffer is a source task's kgo.MaxBufferedBytes: its share of the
// plan's Produce, never below two of the largest requests (kgo fails a
// record larger than the buffer at once, so a worker of many tasks keeps
// every record producible), and lowered by producer.override.buffer.memory
// (or the worker's producer.buffer.memory); a larger setting is clamped to
// the share, with a warning.
func (r *sourceRun) producerBuffer() int64 {
	plan := r.w.memory().plan
	total := plan.Produce
	if total <= 0 {
		total = PlanMemory(r.w.spec.Mcu).Produce
	}
	share := r.w.taskShare(total)
	limit := max(share, 2*r.s.maxRequestBytes)
	if b := r.s.bufferMemory; b > 0 {
		if b <= limit {
			return b
		}
		r.log.Warn().Str("key", "producer.buffer.memory").Int64("value", b).Int64("clamped_to", limit).
			Msg("producer buffer over the worker's memory plan; clamped")
	}
	return limit
}

// String renders the plan for logs and errors.
func (p MemoryPlan) String() string {
	mib := func(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
	return fmt.Sprintf("allotment %s, soft limit %s, fetch %s, sink buffers %s, produce %s",
		mib(p.Allotment), mib(p.SoftLimit), mib(p.Fetch), mib(p.SinkBuffers), mib(p.Produce))
}
