package connectorcli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/ferryhq/ferry/jobs"
)

// Defaults of a request built from a properties file.
const (
	DefaultBootstrapServers = "127.0.0.1:9092"
	DefaultKafkaConnect     = "2.7.1"
	DefaultRoleArn          = "arn:aws:iam::000000000000:role/ferry"
	DefaultScaleInCPU       = 20
	DefaultScaleOutCPU      = 80
)

// capacityFlags are the capacity flags of create and update; 0 means unset.
type capacityFlags struct {
	workers, mcu            int
	minWorkers, maxWorkers  int
	scaleInCPU, scaleOutCPU int
	maxAutoscalingTaskCount int
}

func (f *capacityFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.workers, "workers", 0, "provisioned capacity: number of workers")
	fs.IntVar(&f.mcu, "mcu", 0, "MCUs per worker: 1, 2, 4 or 8 (1 MCU = 1 vCPU + 4 GiB)")
	fs.IntVar(&f.minWorkers, "min-workers", 0, "autoscaled capacity: fewest workers")
	fs.IntVar(&f.maxWorkers, "max-workers", 0, "autoscaled capacity: most workers")
	fs.IntVar(&f.scaleInCPU, "scale-in-cpu", 0, fmt.Sprintf("autoscaled capacity: scale in below this CPU %% (default %d)", DefaultScaleInCPU))
	fs.IntVar(&f.scaleOutCPU, "scale-out-cpu", 0, fmt.Sprintf("autoscaled capacity: scale out above this CPU %% (default %d)", DefaultScaleOutCPU))
	fs.IntVar(&f.maxAutoscalingTaskCount, "max-autoscaling-tasks", 0, "autoscaled capacity: cap on tasks.max")
}

func (f capacityFlags) set() bool { return f != capacityFlags{} }

func (f capacityFlags) autoscaled() bool {
	return f.minWorkers != 0 || f.maxWorkers != 0 || f.scaleInCPU != 0 || f.scaleOutCPU != 0 || f.maxAutoscalingTaskCount != 0
}

// check reports flag combinations that cannot work.
func (f capacityFlags) check() error {
	var errs []error
	if f.workers != 0 && f.autoscaled() {
		errs = append(errs, errors.New("--workers (provisioned) cannot be combined with --min-workers/--max-workers/--scale-*-cpu (autoscaled)"))
	}
	for name, v := range map[string]int{"workers": f.workers, "mcu": f.mcu, "min-workers": f.minWorkers, "max-workers": f.maxWorkers,
		"scale-in-cpu": f.scaleInCPU, "scale-out-cpu": f.scaleOutCPU, "max-autoscaling-tasks": f.maxAutoscalingTaskCount} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("--%s %d: must not be negative", name, v))
		}
	}
	return errors.Join(errs...)
}

// createSpec builds a CreateConnector request.
func (f capacityFlags) createCapacity() *types.Capacity {
	mcu := orDefault(f.mcu, 1)
	if !f.autoscaled() {
		return &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: int32(mcu), WorkerCount: int32(orDefault(f.workers, 1))}}
	}
	minW := orDefault(f.minWorkers, 1)
	return &types.Capacity{AutoScaling: &types.AutoScaling{
		McuCount:                int32(mcu),
		MinWorkerCount:          int32(minW),
		MaxWorkerCount:          int32(orDefault(f.maxWorkers, minW)),
		MaxAutoscalingTaskCount: int32(f.maxAutoscalingTaskCount),
		ScaleInPolicy:           &types.ScaleInPolicy{CpuUtilizationPercentage: int32(orDefault(f.scaleInCPU, DefaultScaleInCPU))},
		ScaleOutPolicy:          &types.ScaleOutPolicy{CpuUtilizationPercentage: int32(orDefault(f.scaleOutCPU, DefaultScaleOutCPU))},
	}}
}

// updateCapacity builds a capacity update from the flags, taking what the
// flags leave out from the connector's current capacity.
func (f capacityFlags) updateCapacity(cur *types.CapacityDescription) *types.CapacityUpdate {
	var curMcu int32 = 1
	var curAuto *types.AutoScalingDescription
	if cur != nil {
		switch {
		case cur.AutoScaling != nil:
			curAuto = cur.AutoScaling
			curMcu = cur.AutoScaling.McuCount
		case cur.ProvisionedCapacity != nil:
			curMcu = cur.ProvisionedCapacity.McuCount
		}
	}
	mcu := curMcu
	if f.mcu != 0 {
		mcu = int32(f.mcu)
	}
	toAuto := f.autoscaled() || (f.workers == 0 && curAuto != nil)
	if !toAuto {
		workers := int32(f.workers)
		if workers == 0 && cur != nil && cur.ProvisionedCapacity != nil {
			workers = cur.ProvisionedCapacity.WorkerCount
		}
		if workers == 0 {
			workers = 1
		}
		return &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: mcu, WorkerCount: workers}}
	}
	u := &types.AutoScalingUpdate{McuCount: mcu, MinWorkerCount: 1, ScaleInPolicy: &types.ScaleInPolicyUpdate{CpuUtilizationPercentage: DefaultScaleInCPU},
		ScaleOutPolicy: &types.ScaleOutPolicyUpdate{CpuUtilizationPercentage: DefaultScaleOutCPU}}
	if curAuto != nil {
		u.MinWorkerCount, u.MaxWorkerCount, u.MaxAutoscalingTaskCount = curAuto.MinWorkerCount, curAuto.MaxWorkerCount, curAuto.MaxAutoscalingTaskCount
		if curAuto.ScaleInPolicy != nil {
			u.ScaleInPolicy.CpuUtilizationPercentage = curAuto.ScaleInPolicy.CpuUtilizationPercentage
		}
		if curAuto.ScaleOutPolicy != nil {
			u.ScaleOutPolicy.CpuUtilizationPercentage = curAuto.ScaleOutPolicy.CpuUtilizationPercentage
		}
	}
	setIf := func(dst *int32, v int) {
		if v != 0 {
			*dst = int32(v)
		}
	}
	setIf(&u.MinWorkerCount, f.minWorkers)
	setIf(&u.MaxWorkerCount, f.maxWorkers)
	setIf(&u.MaxAutoscalingTaskCount, f.maxAutoscalingTaskCount)
	setIf(&u.ScaleInPolicy.CpuUtilizationPercentage, f.scaleInCPU)
	setIf(&u.ScaleOutPolicy.CpuUtilizationPercentage, f.scaleOutCPU)
	if u.MaxWorkerCount < u.MinWorkerCount {
		u.MaxWorkerCount = u.MinWorkerCount
	}
	return &types.CapacityUpdate{AutoScaling: u}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// createOptions are the create flags that shape a request built from a
// properties file.
type createOptions struct {
	name             string
	description      string
	bootstrapServers string
	pluginArn        string
	pluginRevision   int
	roleArn          string
	connectVersion   string
	capacity         capacityFlags
}

// isJSON reports whether a file's content is a JSON document.
func isJSON(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{'
}

// parseCreateJSON reads a CreateConnector request as `aws kafkaconnect
// create-connector --cli-input-json` takes it (the API's camelCase names).
func parseCreateJSON(b []byte) (*kafkaconnect.CreateConnectorInput, error) {
	var in kafkaconnect.CreateConnectorInput
	// The SDK's input has no JSON tags; encoding/json matches the API's
	// camelCase names to its fields case-insensitively.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("parse CreateConnector JSON: %w", err)
	}
	return &in, nil
}

// buildCreateFromProperties builds a CreateConnector request from a Kafka
// Connect properties file and the create flags. The connector name comes
// from opts.name or else from the file's "name" property, which is not
// passed on as configuration.
func buildCreateFromProperties(text string, opts createOptions) (*kafkaconnect.CreateConnectorInput, error) {
	props, err := jobs.ParseProperties(text)
	if err != nil {
		return nil, fmt.Errorf("parse properties: %w", err)
	}
	name := opts.name
	if fileName, ok := props["name"]; ok {
		if name == "" {
			name = fileName
		}
		delete(props, "name")
	}
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("a connector name is required: --name or a name= property"))
	}
	if props["connector.class"] == "" {
		errs = append(errs, errors.New("the properties have no connector.class"))
	}
	if opts.pluginArn == "" {
		errs = append(errs, errors.New("a plugin ARN is required"))
	}
	if err := opts.capacity.check(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	in := &kafkaconnect.CreateConnectorInput{
		ConnectorName:          aws.String(name),
		ConnectorConfiguration: props,
		Capacity:               opts.capacity.createCapacity(),
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String(orString(opts.bootstrapServers, DefaultBootstrapServers)),
			Vpc:              &types.Vpc{Subnets: []string{}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String(orString(opts.connectVersion, DefaultKafkaConnect)),
		Plugins: []types.Plugin{{CustomPlugin: &types.CustomPlugin{
			CustomPluginArn: aws.String(opts.pluginArn),
			Revision:        int64(orDefault(opts.pluginRevision, 1)),
		}}},
		ServiceExecutionRoleArn: aws.String(orString(opts.roleArn, DefaultRoleArn)),
	}
	if opts.description != "" {
		in.ConnectorDescription = aws.String(opts.description)
	}
	return in, nil
}

// parseConfigFile reads a connector configuration for update: a
// properties file, a JSON object of strings, or a JSON object with a
// "connectorConfiguration" member.
func parseConfigFile(b []byte) (map[string]string, error) {
	if !isJSON(b) {
		m, err := jobs.ParseProperties(string(b))
		if err != nil {
			return nil, fmt.Errorf("parse properties: %w", err)
		}
		return m, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if inner, ok := raw["connectorConfiguration"]; ok {
		var m map[string]string
		if err := json.Unmarshal(inner, &m); err != nil {
			return nil, fmt.Errorf("parse connectorConfiguration: %w", err)
		}
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse JSON configuration (want an object of strings): %w", err)
	}
	return m, nil
}

func orString(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}
