package jobs

import (
	"encoding/json"
	"fmt"
	"os"
)

// WorkerSpec is everything a worker is handed to run its share of one
// connector. The control plane renders it (as a file in a Nomad template, or
// a file the local executor writes); the worker reads it with LoadWorkerSpec.
// It carries secrets unredacted, so it is never logged or returned by the API.
type WorkerSpec struct {
	Connector    string `json:"connector"`    // connector name
	ConnectorArn string `json:"connectorArn"` // full ARN
	Revision     int64  `json:"revision"`     // spec revision the worker runs
	// Class is the resolved connector class (aliases already mapped).
	Class string `json:"class"`
	// Config is the connector configuration as the user wrote it, with the
	// server's worker defaults (e.g. dev's store.url) filled in under it.
	Config map[string]string `json:"config"`
	// WorkerProperties is the worker configuration's properties, if any.
	WorkerProperties map[string]string `json:"workerProperties,omitempty"`
	BootstrapServers string            `json:"bootstrapServers"`
	Mcu              int               `json:"mcu"`
	Workers          int               `json:"workers"`  // workers in the group
	TasksMax         int               `json:"tasksMax"` // tasks across all workers
	NatsURL          string            `json:"natsUrl,omitempty"`
	// MetricsInterval is how often the worker publishes metrics and status (Go duration).
	MetricsInterval string `json:"metricsInterval,omitempty"`
	// ServiceExecutionRoleArn is the connector's service execution role when
	// the server has workers assume it (ferry server --assume-execution-role):
	// connectors that call AWS without credentials of their own assume it
	// through STS, as MSK Connect's do. Empty: they use the worker's own.
	ServiceExecutionRoleArn string `json:"serviceExecutionRoleArn,omitempty"`
}

// Environment variables a worker reads. The local executor sets them; the
// Nomad job sets them from the allocation (FERRY_WORKER_INDEX from
// NOMAD_ALLOC_INDEX, FERRY_WORKER_ID from NOMAD_ALLOC_ID).
const (
	EnvSpecFile    = "FERRY_WORKER_SPEC"  // path to the WorkerSpec JSON
	EnvWorkerIndex = "FERRY_WORKER_INDEX" // 0-based index of this worker in its group
	EnvWorkerID    = "FERRY_WORKER_ID"    // unique id of this worker incarnation
	EnvDataDir     = "FERRY_DATA_DIR"     // scratch directory the worker may use
	EnvNatsURL     = "FERRY_NATS_URL"     // overrides WorkerSpec.NatsURL
	// EnvMetricsAddr is the address the worker serves Prometheus /metrics
	// on (a loopback port from the local executor, the allocation's
	// dynamic port on Nomad); empty: none.
	EnvMetricsAddr = "FERRY_METRICS_ADDR"
)

// LoadWorkerSpec reads and checks a WorkerSpec file.
func LoadWorkerSpec(path string) (*WorkerSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read worker spec: %w", err)
	}
	var w WorkerSpec
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("parse worker spec %s: %w", path, err)
	}
	var p Problems
	if w.Connector == "" {
		p.Add("connector", "is required")
	}
	if w.Class == "" {
		p.Add("class", "is required")
	}
	if w.BootstrapServers == "" {
		p.Add("bootstrapServers", "is required")
	}
	if w.Workers < 1 {
		p.Add("workers", "must be ≥ 1")
	}
	if w.TasksMax < 1 {
		p.Add("tasksMax", "must be ≥ 1")
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("worker spec %s: %w", path, err)
	}
	return &w, nil
}

// ConsumerGroup is the consumer group of a sink connector's tasks, as in Kafka Connect.
func ConsumerGroup(connector string) string { return "connect-" + connector }

// TaskShare returns the task IDs (0-based, of tasksMax) that worker index
// runs out of workers, spread round-robin so every worker gets within one of
// the others.
func TaskShare(tasksMax, workers, index int) []int {
	var ids []int
	if workers < 1 || index < 0 || index >= workers {
		return ids
	}
	for t := index; t < tasksMax; t += workers {
		ids = append(ids, t)
	}
	return ids
}
