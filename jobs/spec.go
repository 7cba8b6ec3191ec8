package jobs

import "time"

// ConnectorSpec is the desired state of one connector, shaped like MSK
// Connect's CreateConnector request so it can be decoded from and encoded to
// the wire with the same JSON member names.
type ConnectorSpec struct {
	ConnectorName                    string                  `json:"connectorName"`
	ConnectorDescription             string                  `json:"connectorDescription,omitempty"`
	Capacity                         Capacity                `json:"capacity"`
	ConnectorConfiguration           map[string]string       `json:"connectorConfiguration"`
	KafkaCluster                     KafkaCluster            `json:"kafkaCluster"`
	KafkaClusterClientAuthentication ClientAuthentication    `json:"kafkaClusterClientAuthentication"`
	KafkaClusterEncryptionInTransit  EncryptionInTransit     `json:"kafkaClusterEncryptionInTransit"`
	KafkaConnectVersion              string                  `json:"kafkaConnectVersion"`
	LogDelivery                      *LogDelivery            `json:"logDelivery,omitempty"`
	NetworkType                      string                  `json:"networkType,omitempty"`
	Plugins                          []Plugin                `json:"plugins"`
	ServiceExecutionRoleArn          string                  `json:"serviceExecutionRoleArn"`
	WorkerConfiguration              *WorkerConfigurationRef `json:"workerConfiguration,omitempty"`
	Tags                             map[string]string       `json:"tags,omitempty"`
}

// Capacity holds exactly one of AutoScaling or ProvisionedCapacity.
type Capacity struct {
	AutoScaling         *AutoScaling         `json:"autoScaling,omitempty"`
	ProvisionedCapacity *ProvisionedCapacity `json:"provisionedCapacity,omitempty"`
}

// AutoScaling is MSK Connect's autoscaled capacity.
type AutoScaling struct {
	MaxWorkerCount          int          `json:"maxWorkerCount"`
	McuCount                int          `json:"mcuCount"`
	MinWorkerCount          int          `json:"minWorkerCount"`
	ScaleInPolicy           *ScalePolicy `json:"scaleInPolicy,omitempty"`
	ScaleOutPolicy          *ScalePolicy `json:"scaleOutPolicy,omitempty"`
	MaxAutoscalingTaskCount int          `json:"maxAutoscalingTaskCount,omitempty"`
}

// ScalePolicy is a scale-in or scale-out CPU threshold.
type ScalePolicy struct {
	CpuUtilizationPercentage int `json:"cpuUtilizationPercentage"`
}

// ProvisionedCapacity is a fixed number of workers of a fixed size.
type ProvisionedCapacity struct {
	McuCount    int `json:"mcuCount"`
	WorkerCount int `json:"workerCount"`
}

// KafkaCluster names the Apache Kafka cluster a connector talks to.
type KafkaCluster struct {
	ApacheKafkaCluster ApacheKafkaCluster `json:"apacheKafkaCluster"`
}

// ApacheKafkaCluster is the bootstrap list and (ignored by Ferry) VPC.
type ApacheKafkaCluster struct {
	BootstrapServers string `json:"bootstrapServers"`
	Vpc              Vpc    `json:"vpc"`
}

// Vpc is accepted for compatibility; Ferry's workers use the network Nomad gives them.
type Vpc struct {
	SecurityGroups []string `json:"securityGroups,omitempty"`
	Subnets        []string `json:"subnets"`
}

// ClientAuthentication is NONE or IAM.
type ClientAuthentication struct {
	AuthenticationType string `json:"authenticationType"`
}

// EncryptionInTransit is PLAINTEXT or TLS.
type EncryptionInTransit struct {
	EncryptionType string `json:"encryptionType"`
}

// LogDelivery is accepted and stored for compatibility.
type LogDelivery struct {
	WorkerLogDelivery map[string]any `json:"workerLogDelivery"`
}

// Plugin references a custom plugin revision.
type Plugin struct {
	CustomPlugin CustomPluginRef `json:"customPlugin"`
}

// CustomPluginRef is a custom plugin ARN and revision.
type CustomPluginRef struct {
	CustomPluginArn string `json:"customPluginArn"`
	Revision        int64  `json:"revision"`
}

// WorkerConfigurationRef is a worker configuration ARN and revision.
type WorkerConfigurationRef struct {
	Revision               int64  `json:"revision"`
	WorkerConfigurationArn string `json:"workerConfigurationArn"`
}

// Connector states, as MSK Connect names them.
const (
	StateCreating = "CREATING"
	StateRunning  = "RUNNING"
	StateUpdating = "UPDATING"
	StateDeleting = "DELETING"
	StateFailed   = "FAILED"
)

// StateDescription explains a state, chiefly FAILED.
type StateDescription struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Connector is the stored desired state of one connector: the spec the
// user asked for plus the identity the control plane gave it. Only user
// actions (create, update, delete) change it, so its KV revision serves as
// MSK Connect's currentVersion. What the control plane observes lives in
// ConnectorStatus.
type Connector struct {
	Spec         ConnectorSpec `json:"spec"`
	Arn          string        `json:"arn"`
	CreationTime time.Time     `json:"creationTime"`
	// Revision counts spec changes (create = 1); workers report the revision
	// they run, so RUNNING can mean "running the current spec".
	Revision int64 `json:"revision"`
	// Deleting is set by DeleteConnector; the reconciler stops the workers
	// and then removes the records.
	Deleting bool `json:"deleting,omitempty"`
	// Restarts counts RestartConnector calls; a change restarts every worker.
	Restarts int64 `json:"restarts,omitempty"`
	// WorkersRevision is the revision of the last change the running
	// workers must be replaced for (create, a configuration change, a new
	// worker size). A change of worker count or autoscaling bounds moves
	// Revision but not WorkersRevision, so workers that stay keep running.
	WorkersRevision int64 `json:"workersRevision,omitempty"`
}

// RunRevision is the revision the connector's workers run: WorkersRevision,
// or Revision for records written before it existed.
func (c Connector) RunRevision() int64 {
	if c.WorkersRevision > 0 {
		return c.WorkersRevision
	}
	return c.Revision
}

// ConnectorStatus is what the control plane observes and decides about a
// connector: its state, the current worker count, the update in progress.
type ConnectorStatus struct {
	State            string            `json:"state"`
	StateDescription *StateDescription `json:"stateDescription,omitempty"`
	// Workers is the current worker count: workerCount when provisioned, the
	// autoscaler's current choice within min..max when autoscaled.
	Workers int `json:"workers"`
	// Revision is the spec revision the running workers were last seen on.
	Revision int64 `json:"revision"`
	// Operation is the ARN of the update in progress, if any.
	Operation string    `json:"operation,omitempty"`
	Updated   time.Time `json:"updated"`
}

// Mcu returns the MCUs per worker of a capacity.
func (c Capacity) Mcu() int {
	switch {
	case c.ProvisionedCapacity != nil:
		return c.ProvisionedCapacity.McuCount
	case c.AutoScaling != nil:
		return c.AutoScaling.McuCount
	}
	return 0
}

// InitialWorkers is the worker count a new connector starts with.
func (c Capacity) InitialWorkers() int {
	switch {
	case c.ProvisionedCapacity != nil:
		return c.ProvisionedCapacity.WorkerCount
	case c.AutoScaling != nil:
		return c.AutoScaling.MinWorkerCount
	}
	return 0
}

// ClampWorkers keeps a worker count inside what the capacity allows.
func (c Capacity) ClampWorkers(n int) int {
	switch {
	case c.ProvisionedCapacity != nil:
		return c.ProvisionedCapacity.WorkerCount
	case c.AutoScaling != nil:
		if n < c.AutoScaling.MinWorkerCount {
			return c.AutoScaling.MinWorkerCount
		}
		if n > c.AutoScaling.MaxWorkerCount {
			return c.AutoScaling.MaxWorkerCount
		}
	}
	return n
}

// TasksMax is the number of tasks a connector runs with the given worker
// count: the user's tasks.max when provisioned; workers × MCUs × 2 capped by
// maxAutoscalingTaskCount when autoscaled (as MSK Connect does).
func TasksMax(c Capacity, config map[string]string, workers int) int {
	if c.AutoScaling != nil {
		n := workers * c.AutoScaling.McuCount * 2
		if m := c.AutoScaling.MaxAutoscalingTaskCount; m > 0 && n > m {
			n = m
		}
		if n < 1 {
			n = 1
		}
		return n
	}
	n := 1
	if v, ok := config["tasks.max"]; ok {
		if p, err := parsePositiveInt(v); err == nil {
			n = p
		}
	}
	return n
}
