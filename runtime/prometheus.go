package runtime

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// EnvMetricsAddr is the environment variable naming the address a worker
// serves Prometheus /metrics on (e.g. 127.0.0.1:9404) when Options.MetricsAddr
// is empty; unset or empty, there is no endpoint.
const EnvMetricsAddr = "FERRY_METRICS_ADDR"

// workerCollector exposes the figures of the NATS metrics message
// (jobs.Metrics) as Prometheus metrics, read at scrape time.
type workerCollector struct {
	w                                        *Worker
	recordsIn, recordsOut, bytesIn, bytesOut *prometheus.Desc
	errors, lag, tasks, running, cpu, mcu    *prometheus.Desc
}

var _ prometheus.Collector = (*workerCollector)(nil)

func newWorkerCollector(w *Worker) *workerCollector {
	labels := prometheus.Labels{"connector": w.spec.Connector, "worker": w.opts.WorkerID}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("ferry_worker_"+name, help, nil, labels)
	}
	return &workerCollector{
		w:          w,
		recordsIn:  d("records_in_total", "records read: from Kafka by sink tasks, from the source system by source tasks"),
		recordsOut: d("records_out_total", "records written: handed to sink tasks, or acknowledged by Kafka for source tasks"),
		bytesIn:    d("bytes_in_total", "key and value bytes read"),
		bytesOut:   d("bytes_out_total", "key and value bytes written"),
		errors:     d("errors_total", "task failures and records that failed"),
		lag:        d("lag", "records behind the high watermark, summed over the worker's partitions"),
		tasks:      d("tasks", "tasks assigned to this worker"),
		running:    d("tasks_running", "tasks of this worker in state RUNNING"),
		cpu:        d("cpu_percent", "CPU used over the last metrics interval as a percentage of the worker's MCU allotment"),
		mcu:        d("mcu", "MCUs (vCPUs) allotted to the worker"),
	}
}

// Describe sends every descriptor.
func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.recordsIn, c.recordsOut, c.bytesIn, c.bytesOut, c.errors, c.lag, c.tasks, c.running, c.cpu, c.mcu} {
		ch <- d
	}
}

// Collect reads the worker's counters now.
func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.w.Metrics(math.Float64frombits(c.w.lastCPU.Load()))
	running := 0
	for _, t := range c.w.Status().Tasks {
		if t.State == TaskRunning {
			running++
		}
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.recordsIn, m.RecordsIn)
	counter(c.recordsOut, m.RecordsOut)
	counter(c.bytesIn, m.BytesIn)
	counter(c.bytesOut, m.BytesOut)
	counter(c.errors, m.Errors)
	gauge(c.lag, float64(m.Lag))
	gauge(c.tasks, float64(m.Tasks))
	gauge(c.running, float64(running))
	gauge(c.cpu, m.CPUPercent)
	gauge(c.mcu, float64(m.Mcu))
}

// MetricsHandler returns the worker's Prometheus handler, on a private
// registry holding the worker's figures and the Go and process collectors.
func (w *Worker) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newWorkerCollector(w),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// MetricsAddr returns the address the /metrics endpoint listens on, once
// Run has opened it ("" before, or when there is none).
func (w *Worker) MetricsAddr() string {
	if a, ok := w.metricsAddr.Load().(string); ok {
		return a
	}
	return ""
}

// serveMetrics serves /metrics on addr until ctx is done. A failure to
// listen is logged, never fatal: metrics never stop the data path.
func (w *Worker) serveMetrics(ctx context.Context, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		w.log.Error().Err(err).Str("addr", addr).Msg("prometheus metrics endpoint not started")
		return
	}
	w.metricsAddr.Store(ln.Addr().String())
	mux := http.NewServeMux()
	mux.Handle("/metrics", w.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	w.log.Info().Str("addr", ln.Addr().String()).Msg("prometheus metrics endpoint listening")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		w.log.Error().Err(err).Msg("prometheus metrics endpoint")
	}
	<-done
}
