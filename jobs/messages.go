package jobs

import "time"

// NATS subjects and KV buckets.
const (
	// MetricsSubjectPrefix + "<connector>.<worker>" carries Metrics.
	MetricsSubjectPrefix = "ferry.metrics."
	// StatusSubjectPrefix + "<connector>.<worker>" carries WorkerStatus.
	StatusSubjectPrefix = "ferry.status."

	KVConnectors           = "ferry_connectors"
	KVConnectorStatus      = "ferry_connector_status"
	KVTags                 = "ferry_tags"
	KVPlugins              = "ferry_plugins"
	KVWorkerConfigurations = "ferry_worker_configurations"
	KVOperations           = "ferry_operations"
	KVLocks                = "ferry_locks"
)

// MetricsSubject is where a worker publishes its Metrics.
func MetricsSubject(connector, worker string) string {
	return MetricsSubjectPrefix + connector + "." + worker
}

// StatusSubject is where a worker publishes its WorkerStatus.
func StatusSubject(connector, worker string) string {
	return StatusSubjectPrefix + connector + "." + worker
}

// Metrics is what every worker publishes every few seconds.
type Metrics struct {
	Connector string    `json:"connector"`
	Worker    string    `json:"worker"`
	Time      time.Time `json:"time"`
	// CPUPercent is CPU seconds used over the interval divided by
	// interval × the worker's vCPUs (= MCUs), × 100.
	CPUPercent float64 `json:"cpu_percent"`
	Mcu        int     `json:"mcu"`
	Tasks      int     `json:"tasks"` // tasks assigned to the worker
	// TasksRunning is how many of them are RUNNING (not starting, not
	// failed and restarting).
	TasksRunning int   `json:"tasks_running"`
	RecordsIn    int64 `json:"records_in"`
	RecordsOut   int64 `json:"records_out"`
	BytesIn      int64 `json:"bytes_in"`
	BytesOut     int64 `json:"bytes_out"`
	Lag          int64 `json:"lag"`
	Errors       int64 `json:"errors"`
}

// Worker states a worker reports in WorkerStatus.
const (
	WorkerStarting = "STARTING" // process up, tasks not all running yet
	WorkerRunning  = "RUNNING"  // every task of its share runs (sinks: joined the group)
	WorkerFailed   = "FAILED"   // a task failed and is not recovering by itself
	WorkerStopping = "STOPPING" // shutting down
)

// WorkerStatus is what a worker reports of itself: on every change and at
// every metrics interval, so a control plane that starts late learns it.
type WorkerStatus struct {
	Connector string       `json:"connector"`
	Worker    string       `json:"worker"` // worker id (unique per incarnation)
	Index     int          `json:"index"`
	Revision  int64        `json:"revision"` // spec revision it runs
	State     string       `json:"state"`
	Message   string       `json:"message,omitempty"` // why FAILED, in words a person can act on
	Tasks     []TaskStatus `json:"tasks"`
	Time      time.Time    `json:"time"`
}

// TaskStatus is one task's state inside a worker.
type TaskStatus struct {
	ID    int    `json:"id"`
	State string `json:"state"` // RUNNING, FAILED, STARTING
	Trace string `json:"trace,omitempty"`
}
