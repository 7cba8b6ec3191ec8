package runtime

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// scrape fetches /metrics and returns the ferry_worker_* samples by name.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ferry_worker_") && !strings.HasPrefix(line, "go_goroutines") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			name, val, _ = strings.Cut(line, " ")
		} else if !strings.Contains(labels, `connector="prom"`) || !strings.Contains(labels, `worker="w0"`) {
			t.Errorf("labels of %s: %s", name, labels)
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[name] = f
	}
	return out
}

func TestPrometheusEndpoint(t *testing.T) {
	t.Setenv(EnvMetricsAddr, "127.0.0.1:0")
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	w := startWorker(t, datagenSpec("prom", addr, 1, nil), 0, reg)
	eventually(t, 10*time.Second, "the endpoint", func() bool { return w.w.MetricsAddr() != "" })
	maddr := w.w.MetricsAddr()

	var got map[string]float64
	eventually(t, 15*time.Second, "records and a running task in the scrape", func() bool {
		got = scrape(t, maddr)
		return got["ferry_worker_records_out_total"] >= 100 && got["ferry_worker_tasks_running"] == 1
	})
	m := w.w.Metrics(0)
	if got["ferry_worker_records_out_total"] > float64(m.RecordsOut) || got["ferry_worker_bytes_out_total"] <= 0 {
		t.Errorf("scrape %v vs metrics %+v", got, m)
	}
	for _, name := range []string{"ferry_worker_records_in_total", "ferry_worker_bytes_in_total", "ferry_worker_errors_total",
		"ferry_worker_lag", "ferry_worker_cpu_percent", "go_goroutines"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing from the scrape", name)
		}
	}
	if got["ferry_worker_tasks"] != 1 || got["ferry_worker_mcu"] != 1 {
		t.Errorf("tasks %v mcu %v", got["ferry_worker_tasks"], got["ferry_worker_mcu"])
	}
	// cpu_percent is the figure the last NATS metrics message carried.
	eventually(t, 5*time.Second, "a cpu figure", func() bool { return scrape(t, maddr)["ferry_worker_cpu_percent"] > 0 })

	w.stop(t)
	if _, err := http.Get("http://" + maddr + "/metrics"); err == nil {
		t.Error("endpoint still answers after the worker stopped")
	}
}

func TestNoPrometheusEndpointByDefault(t *testing.T) {
	t.Setenv(EnvMetricsAddr, "")
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	w := startWorker(t, datagenSpec("noprom", addr, 1, nil), 0, reg)
	eventually(t, 10*time.Second, "running", func() bool { return w.w.Status().State == jobs.WorkerRunning })
	if a := w.w.MetricsAddr(); a != "" {
		t.Errorf("endpoint at %s without an address", a)
	}
}
