package api

import (
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// Wire shapes of MSK Connect responses (member names as in the model).
// Request shapes reuse jobs.ConnectorSpec, whose members match the wire.

type stateDescription struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func describeState(d *jobs.StateDescription) *stateDescription {
	if d == nil || (d.Code == "" && d.Message == "") {
		return nil
	}
	return &stateDescription{Code: d.Code, Message: d.Message}
}

type policyDescription struct {
	CpuUtilizationPercentage int `json:"cpuUtilizationPercentage"`
}

type autoScalingDescription struct {
	MaxWorkerCount          int                `json:"maxWorkerCount"`
	McuCount                int                `json:"mcuCount"`
	MinWorkerCount          int                `json:"minWorkerCount"`
	ScaleInPolicy           *policyDescription `json:"scaleInPolicy,omitempty"`
	ScaleOutPolicy          *policyDescription `json:"scaleOutPolicy,omitempty"`
	MaxAutoscalingTaskCount int                `json:"maxAutoscalingTaskCount,omitempty"`
	// CurrentWorkerCount is Ferry's addition: the autoscaler's current
	// choice within min..max. The SDKs ignore members they do not know.
	CurrentWorkerCount int `json:"currentWorkerCount,omitempty"`
}

type provisionedCapacityDescription struct {
	McuCount    int `json:"mcuCount"`
	WorkerCount int `json:"workerCount"`
	// CurrentWorkerCount is Ferry's addition: the workers the reconciler
	// last reported (differs from workerCount during an update).
	CurrentWorkerCount int `json:"currentWorkerCount,omitempty"`
}

type capacityDescription struct {
	AutoScaling         *autoScalingDescription         `json:"autoScaling,omitempty"`
	ProvisionedCapacity *provisionedCapacityDescription `json:"provisionedCapacity,omitempty"`
}

// describeCapacity shows a capacity; workers > 0 adds the current count.
func describeCapacity(c *jobs.Capacity, workers int) *capacityDescription {
	if c == nil {
		return nil
	}
	out := &capacityDescription{}
	if a := c.AutoScaling; a != nil {
		d := &autoScalingDescription{
			MaxWorkerCount: a.MaxWorkerCount, McuCount: a.McuCount, MinWorkerCount: a.MinWorkerCount,
			MaxAutoscalingTaskCount: a.MaxAutoscalingTaskCount, CurrentWorkerCount: workers,
		}
		if a.ScaleInPolicy != nil {
			d.ScaleInPolicy = &policyDescription{a.ScaleInPolicy.CpuUtilizationPercentage}
		}
		if a.ScaleOutPolicy != nil {
			d.ScaleOutPolicy = &policyDescription{a.ScaleOutPolicy.CpuUtilizationPercentage}
		}
		out.AutoScaling = d
	}
	if p := c.ProvisionedCapacity; p != nil {
		out.ProvisionedCapacity = &provisionedCapacityDescription{McuCount: p.McuCount, WorkerCount: p.WorkerCount, CurrentWorkerCount: workers}
	}
	return out
}

type connectorSummary struct {
	Capacity                         *capacityDescription         `json:"capacity,omitempty"`
	ConnectorArn                     string                       `json:"connectorArn"`
	ConnectorConfiguration           map[string]string            `json:"connectorConfiguration,omitempty"`
	ConnectorDescription             string                       `json:"connectorDescription,omitempty"`
	ConnectorName                    string                       `json:"connectorName"`
	ConnectorState                   string                       `json:"connectorState"`
	CreationTime                     string                       `json:"creationTime"`
	CurrentVersion                   string                       `json:"currentVersion"`
	KafkaCluster                     jobs.KafkaCluster            `json:"kafkaCluster"`
	KafkaClusterClientAuthentication jobs.ClientAuthentication    `json:"kafkaClusterClientAuthentication"`
	KafkaClusterEncryptionInTransit  jobs.EncryptionInTransit     `json:"kafkaClusterEncryptionInTransit"`
	KafkaConnectVersion              string                       `json:"kafkaConnectVersion"`
	LogDelivery                      *jobs.LogDelivery            `json:"logDelivery,omitempty"`
	NetworkType                      string                       `json:"networkType,omitempty"`
	Plugins                          []jobs.Plugin                `json:"plugins"`
	ServiceExecutionRoleArn          string                       `json:"serviceExecutionRoleArn"`
	WorkerConfiguration              *jobs.WorkerConfigurationRef `json:"workerConfiguration,omitempty"`
	StateDescription                 *stateDescription            `json:"stateDescription,omitempty"`
}

type s3Location struct {
	BucketArn     string `json:"bucketArn"`
	FileKey       string `json:"fileKey"`
	ObjectVersion string `json:"objectVersion,omitempty"`
}

type pluginLocation struct {
	S3Location s3Location `json:"s3Location"`
}

type fileDescription struct {
	FileMd5  string `json:"fileMd5,omitempty"`
	FileSize int64  `json:"fileSize,omitempty"`
}

type pluginRevisionSummary struct {
	ContentType     string           `json:"contentType"`
	CreationTime    string           `json:"creationTime"`
	Description     string           `json:"description,omitempty"`
	FileDescription *fileDescription `json:"fileDescription,omitempty"`
	Location        pluginLocation   `json:"location"`
	Revision        int64            `json:"revision"`
}

type pluginSummary struct {
	CreationTime      string                `json:"creationTime"`
	CustomPluginArn   string                `json:"customPluginArn"`
	CustomPluginState string                `json:"customPluginState"`
	Description       string                `json:"description,omitempty"`
	LatestRevision    pluginRevisionSummary `json:"latestRevision"`
	Name              string                `json:"name"`
	StateDescription  *stateDescription     `json:"stateDescription,omitempty"`
}

type workerConfigRevision struct {
	CreationTime          string `json:"creationTime"`
	Description           string `json:"description,omitempty"`
	PropertiesFileContent string `json:"propertiesFileContent,omitempty"`
	Revision              int64  `json:"revision"`
}

type workerConfigSummary struct {
	CreationTime             string               `json:"creationTime"`
	Description              string               `json:"description,omitempty"`
	LatestRevision           workerConfigRevision `json:"latestRevision"`
	Name                     string               `json:"name"`
	WorkerConfigurationArn   string               `json:"workerConfigurationArn"`
	WorkerConfigurationState string               `json:"workerConfigurationState"`
}

type operationStep struct {
	StepType  string `json:"stepType"`
	StepState string `json:"stepState"`
}

type workerSetting struct {
	Capacity *capacityDescription `json:"capacity,omitempty"`
}

type operationSummary struct {
	ConnectorOperationArn   string `json:"connectorOperationArn"`
	ConnectorOperationType  string `json:"connectorOperationType"`
	ConnectorOperationState string `json:"connectorOperationState"`
	CreationTime            string `json:"creationTime"`
	EndTime                 string `json:"endTime,omitempty"`
}

type operationDescription struct {
	ConnectorArn                 string            `json:"connectorArn"`
	ConnectorOperationArn        string            `json:"connectorOperationArn"`
	ConnectorOperationState      string            `json:"connectorOperationState"`
	ConnectorOperationType       string            `json:"connectorOperationType"`
	OperationSteps               []operationStep   `json:"operationSteps"`
	OriginWorkerSetting          *workerSetting    `json:"originWorkerSetting,omitempty"`
	OriginConnectorConfiguration map[string]string `json:"originConnectorConfiguration,omitempty"`
	TargetWorkerSetting          *workerSetting    `json:"targetWorkerSetting,omitempty"`
	TargetConnectorConfiguration map[string]string `json:"targetConnectorConfiguration,omitempty"`
	ErrorInfo                    *stateDescription `json:"errorInfo,omitempty"`
	CreationTime                 string            `json:"creationTime"`
	EndTime                      string            `json:"endTime,omitempty"`
	// Reason is Ferry's own member (the SDKs ignore it): why the operation
	// happened, e.g. the autoscaler's "scale out from 2 to 4 workers: cpu
	// 91% over the last 30s".
	Reason string `json:"reason,omitempty"`
}

// timestamp formats t as the SDKs parse ISO-8601 members: RFC 3339 in UTC
// with fractional seconds.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}
