// Command bench measures the sink data path of the worker runtime: records
// pre-produced to an in-process Kafka (kfake) are consumed by a worker,
// converted (JsonConverter), transformed (a typical SMT chain) and handed to
// a no-op sink task that reports everything durable. It prints records/s,
// bytes/s and the process' peak RSS (VmHWM), one line per run; run it once
// per task count so each peak is its own.
//
//	go run ./runtime/internal/bench -tasks 2 -records 200000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime"
	"github.com/ferryhq/ferry/runtime/connect"
)

const (
	class       = "bench.NoopSink"
	sourceClass = "bench.GeneratorSource"
)

// genSource produces order-like records, 1000 per poll, numbered as its
// source offset.
type genSource struct {
	connect.SourceTaskBase
	topic string
	next  int64
}

var _ connect.SourceTask = (*genSource)(nil)

func (g *genSource) Start(_ context.Context, cfg map[string]string) error {
	g.topic = cfg["topic"]
	return nil
}

func (g *genSource) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]connect.SourceRecord, 1000)
	for j := range out {
		i := g.next
		out[j] = connect.SourceRecord{
			Topic: g.topic, Key: strconv.FormatInt(i, 10),
			Value: map[string]any{"ordertime": 1735689600000 + i, "orderid": i, "itemid": "Item_" + strconv.FormatInt(i%999, 10),
				"orderunits": float64(i%10) + 0.5, "userid": "User_" + strconv.FormatInt(i%9, 10),
				"address": map[string]any{"city": "City_1", "state": "State_2", "zipcode": 10000 + i%90000}},
			SourcePartition: map[string]any{"gen": 0},
			SourceOffset:    map[string]any{"i": i},
		}
		g.next++
	}
	return out, nil
}

func (g *genSource) Stop() error { return nil }

// noopSink drops every record and reports it durable.
type noopSink struct{}

var _ connect.SinkTask = noopSink{}

func (noopSink) Start(context.Context, map[string]string) error        { return nil }
func (noopSink) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (noopSink) Put(context.Context, []connect.Record) error           { return nil }
func (noopSink) Close(context.Context, []connect.TopicPartition) error { return nil }
func (noopSink) Stop() error                                           { return nil }
func (noopSink) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	return cur, nil
}

func main() {
	tasks := flag.Int("tasks", 1, "sink tasks (one worker)")
	records := flag.Int("records", 200000, "records to push through")
	partitions := flag.Int("partitions", 4, "partitions of the topic")
	transforms := flag.Bool("transforms", true, "apply an SMT chain (InsertField, ReplaceField, MaskField, Filter-free)")
	timeout := flag.Duration("timeout", 50*time.Second, "give up after this long")
	source := flag.Bool("source", false, "measure the source path instead: generator task → JsonConverter → SMTs → idempotent producer (acked records)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *source {
		if err := runSource(*tasks, *records, int32(*partitions), *transforms, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*tasks, *records, int32(*partitions), *transforms, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(tasks, records int, partitions int32, transforms bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench"))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	if err := preload(ctx, addr, records); err != nil {
		return err
	}

	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: class, Kind: connect.Sink,
		NewSinkTask: func() connect.SinkTask { return noopSink{} }}); err != nil {
		return err
	}
	cfg := map[string]string{
		"connector.class":                    class,
		"tasks.max":                          strconv.Itoa(tasks),
		"topics":                             "bench",
		"key.converter":                      connect.StringConverterClass,
		"value.converter":                    connect.JSONConverterClass,
		"value.converter.schemas.enable":     "false",
		"offset.flush.interval.ms":           "1000",
		"consumer.override.max.poll.records": "2000",
	}
	if transforms {
		for k, v := range map[string]string{
			"transforms":                     "insert,rename,mask",
			"transforms.insert.type":         "org.apache.kafka.connect.transforms.InsertField$Value",
			"transforms.insert.topic.field":  "src_topic",
			"transforms.insert.offset.field": "src_offset",
			"transforms.rename.type":         "org.apache.kafka.connect.transforms.ReplaceField$Value",
			"transforms.rename.renames":      "userid:user_id",
			"transforms.mask.type":           "org.apache.kafka.connect.transforms.MaskField$Value",
			"transforms.mask.fields":         "address",
		} {
			cfg[k] = v
		}
	}
	spec := &jobs.WorkerSpec{Connector: "bench", Class: class, Config: cfg, BootstrapServers: addr,
		Mcu: 1, Workers: 1, TasksMax: tasks, MetricsInterval: "1s"}
	r, err := runUntil(ctx, spec, reg, records, timeout)
	if err != nil {
		return err
	}
	r.print("sink", tasks, transforms)
	return nil
}

func runSource(tasks, records int, partitions int32, transforms bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench"))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer c.Close()
	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: sourceClass, Kind: connect.Source,
		NewSourceTask: func() connect.SourceTask { return &genSource{} }}); err != nil {
		return err
	}
	cfg := map[string]string{
		"connector.class":                sourceClass,
		"tasks.max":                      strconv.Itoa(tasks),
		"topic":                          "bench",
		"key.converter":                  connect.StringConverterClass,
		"value.converter":                connect.JSONConverterClass,
		"value.converter.schemas.enable": "false",
		"offset.flush.interval.ms":       "1000",
	}
	if transforms {
		for k, v := range map[string]string{
			"transforms":                "rename,mask",
			"transforms.rename.type":    "org.apache.kafka.connect.transforms.ReplaceField$Value",
			"transforms.rename.renames": "userid:user_id",
			"transforms.mask.type":      "org.apache.kafka.connect.transforms.MaskField$Value",
			"transforms.mask.fields":    "address",
		} {
			cfg[k] = v
		}
	}
	spec := &jobs.WorkerSpec{Connector: "bench", Class: sourceClass, Config: cfg, BootstrapServers: c.ListenAddrs()[0],
		Mcu: 1, Workers: 1, TasksMax: tasks, MetricsInterval: "1s"}
	r, err := runUntil(ctx, spec, reg, records, timeout)
	if err != nil {
		return err
	}
	r.print("source", tasks, transforms)
	return nil
}

// runResult is what runUntil measured: the whole run from the worker's
// start, and the steady part from the first record passed on (a task
// count's group joins and rebalances fall before it).
type runResult struct {
	elapsed, steady time.Duration
	first, last     jobs.Metrics // at the first record passed on, and at the end
}

// rates returns records/s and bytes/s of the steady part (bytes in for a
// sink, out for a source).
func (r runResult) rates(source bool) (float64, float64) {
	s := r.steady.Seconds()
	if s <= 0 {
		s = r.elapsed.Seconds()
	}
	bytes := r.last.BytesIn - r.first.BytesIn
	if source {
		bytes = r.last.BytesOut - r.first.BytesOut
	}
	return float64(r.last.RecordsOut-r.first.RecordsOut) / s, float64(bytes) / s
}

// print writes the run's line.
func (r runResult) print(kind string, tasks int, transforms bool) {
	rps, bps := r.rates(kind == "source")
	fmt.Printf("%s tasks=%d transforms=%v records=%d records/s=%.0f bytes/s=%.0f (%.1f MB/s) from the first record on; %.0f records/s in %.2fs including start and group join; peak_rss=%s\n",
		kind, tasks, transforms, r.last.RecordsOut, rps, bps, bps/1e6,
		float64(r.last.RecordsOut)/r.elapsed.Seconds(), r.elapsed.Seconds(), peakRSS())
}

// runUntil runs a worker of spec until it has passed records records on.
func runUntil(ctx context.Context, spec *jobs.WorkerSpec, reg *connect.Registry, records int, timeout time.Duration) (runResult, error) {
	w, err := runtime.NewWorker(spec, runtime.Options{Registry: reg, Logger: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})
	if err != nil {
		return runResult{}, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- w.Run(wctx) }()
	var r runResult
	var firstAt time.Time
	for {
		m := w.Metrics(0)
		if firstAt.IsZero() && m.RecordsOut > 0 {
			firstAt, r.first = time.Now(), m
		}
		if m.RecordsOut >= int64(records) {
			break
		}
		if ctx.Err() != nil {
			stop()
			<-done
			return runResult{}, fmt.Errorf("only %d of %d records after %v", m.RecordsOut, records, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	end := time.Now()
	r.elapsed, r.steady, r.last = end.Sub(start), end.Sub(firstAt), w.Metrics(0)
	stop()
	if err := <-done; err != nil {
		return runResult{}, err
	}
	return r, nil
}

// preload produces n order-like JSON records, keyed, spread over the
// partitions.
func preload(ctx context.Context, addr string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(10*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(50000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := range n {
		v := fmt.Sprintf(`{"ordertime":%d,"orderid":%d,"itemid":"Item_%d","orderunits":%d.5,"userid":"User_%d","address":{"city":"City_%d","state":"State_%d","zipcode":%d}}`,
			1735689600000+int64(i), i, i%999, i%10, i%9, i%99, i%50, 10000+i%90000)
		cl.Produce(ctx, &kgo.Record{Topic: "bench", Key: []byte(strconv.Itoa(i)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("preload: %w", firstErr)
	}
	return nil
}

// peakRSS reads VmHWM from /proc/self/status ("n/a" elsewhere).
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.Join(strings.Fields(strings.TrimPrefix(line, "VmHWM:")), " ")
		}
	}
	return "n/a"
}
