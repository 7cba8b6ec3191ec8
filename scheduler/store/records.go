package store

import (
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// Plugin is a custom plugin. Ferry stores one revision per plugin, as MSK
// Connect does; the built-in plugin is pre-registered and has no location.
type Plugin struct {
	Name         string    `json:"name"`
	Arn          string    `json:"arn"`
	Description  string    `json:"description,omitempty"`
	State        string    `json:"state"`
	ContentType  string    `json:"contentType"`
	Location     Location  `json:"location"`
	Revision     int64     `json:"revision"`
	CreationTime time.Time `json:"creationTime"`
	FileMd5      string    `json:"fileMd5,omitempty"`
	FileSize     int64     `json:"fileSize,omitempty"`
	// Builtin marks Ferry's own plugin: it cannot be deleted and provides
	// the connector classes registered in the worker binary.
	Builtin bool `json:"builtin,omitempty"`
	// StateDescription explains CREATE_FAILED.
	StateDescription *jobs.StateDescription `json:"stateDescription,omitempty"`
	// Binary is the path, inside the plugin's ZIP, of the worker executable
	// its manifest names (scheduler/plugins); set once the file was checked.
	// A custom plugin without one (recorded before Ferry read plugin files)
	// runs on the ferry binary, like the built-in plugin.
	Binary string `json:"binary,omitempty"`
	// Connectors are the connector classes the manifest declares.
	Connectors []PluginConnector `json:"connectors,omitempty"`
}

// PluginConnector is one connector class a custom plugin provides.
type PluginConnector struct {
	Class string `json:"class"`
	Type  string `json:"type"` // "sink" or "source"
}

// Manifested reports whether the plugin's file was read: it is a custom
// plugin with its own worker binary and connector classes.
func (p *Plugin) Manifested() bool { return !p.Builtin && p.Binary != "" }

// Location is where a custom plugin's file lives in S3.
type Location struct {
	BucketArn     string `json:"bucketArn"`
	FileKey       string `json:"fileKey"`
	ObjectVersion string `json:"objectVersion,omitempty"`
}

// WorkerConfiguration is a named worker properties file with its revisions.
type WorkerConfiguration struct {
	Name         string                        `json:"name"`
	Arn          string                        `json:"arn"`
	Description  string                        `json:"description,omitempty"`
	State        string                        `json:"state"`
	CreationTime time.Time                     `json:"creationTime"`
	Revisions    []WorkerConfigurationRevision `json:"revisions"`
}

// WorkerConfigurationRevision is one revision of a worker configuration.
type WorkerConfigurationRevision struct {
	Revision     int64     `json:"revision"`
	Description  string    `json:"description,omitempty"`
	CreationTime time.Time `json:"creationTime"`
	// PropertiesFileContent is base64 of the properties file, as the API carries it.
	PropertiesFileContent string `json:"propertiesFileContent"`
}

// Latest returns the newest revision.
func (w *WorkerConfiguration) Latest() WorkerConfigurationRevision {
	if len(w.Revisions) == 0 {
		return WorkerConfigurationRevision{}
	}
	return w.Revisions[len(w.Revisions)-1]
}

// Revision returns revision n, if kept.
func (w *WorkerConfiguration) Revision(n int64) (WorkerConfigurationRevision, bool) {
	for _, r := range w.Revisions {
		if r.Revision == n {
			return r, true
		}
	}
	return WorkerConfigurationRevision{}, false
}

// Operation types, states and step names, as MSK Connect names them.
const (
	OpUpdateWorkerSetting          = "UPDATE_WORKER_SETTING"
	OpUpdateConnectorConfiguration = "UPDATE_CONNECTOR_CONFIGURATION"

	OpPending    = "PENDING"
	OpInProgress = "UPDATE_IN_PROGRESS"
	OpComplete   = "UPDATE_COMPLETE"
	OpFailed     = "UPDATE_FAILED"

	StepInitializeUpdate             = "INITIALIZE_UPDATE"
	StepValidateUpdate               = "VALIDATE_UPDATE"
	StepUpdateWorkerSetting          = "UPDATE_WORKER_SETTING"
	StepUpdateConnectorConfiguration = "UPDATE_CONNECTOR_CONFIGURATION"
	StepFinalizeUpdate               = "FINALIZE_UPDATE"

	StepPending    = "PENDING"
	StepInProgress = "IN_PROGRESS"
	StepCompleted  = "COMPLETED"
	StepFailed     = "FAILED"
	StepCancelled  = "CANCELLED"
)

// Operation is one change to a connector: an update by a user or a scale
// decision by the autoscaler. Key: "<connector name>.<operation id>".
type Operation struct {
	Arn           string `json:"arn"`
	ID            string `json:"id"`
	ConnectorArn  string `json:"connectorArn"`
	ConnectorName string `json:"connectorName"`
	Type          string `json:"type"`
	State         string `json:"state"`
	Steps         []Step `json:"steps"`
	// TargetRevision is the connector spec revision this operation brings in.
	TargetRevision int64 `json:"targetRevision"`

	OriginCapacity *jobs.Capacity         `json:"originCapacity,omitempty"`
	TargetCapacity *jobs.Capacity         `json:"targetCapacity,omitempty"`
	OriginConfig   map[string]string      `json:"originConfig,omitempty"`
	TargetConfig   map[string]string      `json:"targetConfig,omitempty"`
	OriginWorkers  int                    `json:"originWorkers,omitempty"`
	TargetWorkers  int                    `json:"targetWorkers,omitempty"`
	Reason         string                 `json:"reason,omitempty"`
	ErrorInfo      *jobs.StateDescription `json:"errorInfo,omitempty"`
	CreationTime   time.Time              `json:"creationTime"`
	EndTime        *time.Time             `json:"endTime,omitempty"`
}

// Step is one step of an operation.
type Step struct {
	Type  string `json:"stepType"`
	State string `json:"stepState"`
}

// OperationKey is the KV key of an operation.
func OperationKey(connector, id string) string { return connector + "." + id }

// SetStep sets the state of the named step, adding it if absent.
func (o *Operation) SetStep(typ, state string) {
	for i := range o.Steps {
		if o.Steps[i].Type == typ {
			o.Steps[i].State = state
			return
		}
	}
	o.Steps = append(o.Steps, Step{Type: typ, State: state})
}

// Finish ends the operation in state (OpComplete or OpFailed) at t.
func (o *Operation) Finish(state string, t time.Time, info *jobs.StateDescription) {
	o.State = state
	o.EndTime = &t
	o.ErrorInfo = info
	for i := range o.Steps {
		if o.Steps[i].State == StepPending || o.Steps[i].State == StepInProgress {
			if state == OpComplete {
				o.Steps[i].State = StepCompleted
			} else if o.Steps[i].State == StepInProgress {
				o.Steps[i].State = StepFailed
			} else {
				o.Steps[i].State = StepCancelled
			}
		}
	}
}
