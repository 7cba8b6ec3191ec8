package connectorcli

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

const s3Props = `# the README's example
name=from-file
connector.class=io.confluent.connect.s3.S3SinkConnector
tasks.max=2
topics=my-example-topic
s3.bucket.name=ferry-dev
format.class=io.confluent.connect.s3.format.json.JsonFormat
`

const pluginArn = "arn:aws:kafkaconnect:us-east-1:000000000000:custom-plugin/ferry-builtin/00000000-0000-0000-0000-000000000001"

func TestBuildCreateFromPropertiesProvisioned(t *testing.T) {
	in, err := buildCreateFromProperties(s3Props, createOptions{pluginArn: pluginArn, capacity: capacityFlags{workers: 2, mcu: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(in.ConnectorName); got != "from-file" {
		t.Errorf("name %q, want the file's name=", got)
	}
	if _, ok := in.ConnectorConfiguration["name"]; ok {
		t.Error("name= was passed on as configuration")
	}
	if in.ConnectorConfiguration["topics"] != "my-example-topic" || in.ConnectorConfiguration["tasks.max"] != "2" || len(in.ConnectorConfiguration) != 5 {
		t.Errorf("configuration %v", in.ConnectorConfiguration)
	}
	p := in.Capacity.ProvisionedCapacity
	if p == nil || p.WorkerCount != 2 || p.McuCount != 2 || in.Capacity.AutoScaling != nil {
		t.Errorf("capacity %+v", in.Capacity)
	}
	if got := aws.ToString(in.KafkaCluster.ApacheKafkaCluster.BootstrapServers); got != DefaultBootstrapServers {
		t.Errorf("bootstrap %q", got)
	}
	if in.KafkaCluster.ApacheKafkaCluster.Vpc == nil || in.KafkaCluster.ApacheKafkaCluster.Vpc.Subnets == nil {
		t.Error("vpc with subnets is required by the SDK")
	}
	if len(in.Plugins) != 1 || aws.ToString(in.Plugins[0].CustomPlugin.CustomPluginArn) != pluginArn || in.Plugins[0].CustomPlugin.Revision != 1 {
		t.Errorf("plugins %+v", in.Plugins)
	}
	if in.KafkaClusterClientAuthentication.AuthenticationType != types.KafkaClusterClientAuthenticationTypeNone ||
		in.KafkaClusterEncryptionInTransit.EncryptionType != types.KafkaClusterEncryptionInTransitTypePlaintext ||
		aws.ToString(in.KafkaConnectVersion) == "" || aws.ToString(in.ServiceExecutionRoleArn) == "" {
		t.Errorf("required members missing: %+v", in)
	}
}

func TestBuildCreateFromPropertiesAutoscaledAndOverrides(t *testing.T) {
	in, err := buildCreateFromProperties(s3Props, createOptions{name: "flag-name", bootstrapServers: "k1:9092,k2:9092", pluginArn: pluginArn, pluginRevision: 3,
		capacity: capacityFlags{minWorkers: 1, maxWorkers: 4, mcu: 4, scaleOutCPU: 70}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.ConnectorName) != "flag-name" {
		t.Errorf("--name did not win over name=: %q", aws.ToString(in.ConnectorName))
	}
	a := in.Capacity.AutoScaling
	if a == nil || a.MinWorkerCount != 1 || a.MaxWorkerCount != 4 || a.McuCount != 4 ||
		a.ScaleInPolicy.CpuUtilizationPercentage != DefaultScaleInCPU || a.ScaleOutPolicy.CpuUtilizationPercentage != 70 || in.Capacity.ProvisionedCapacity != nil {
		t.Errorf("capacity %+v", in.Capacity)
	}
	if aws.ToString(in.KafkaCluster.ApacheKafkaCluster.BootstrapServers) != "k1:9092,k2:9092" || in.Plugins[0].CustomPlugin.Revision != 3 {
		t.Errorf("overrides not applied: %+v", in)
	}
}

func TestBuildCreateFromPropertiesReportsEveryProblem(t *testing.T) {
	_, err := buildCreateFromProperties("tasks.max=1\n", createOptions{capacity: capacityFlags{workers: 2, minWorkers: 1}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"name is required", "connector.class", "plugin ARN", "--workers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestParseCreateJSON(t *testing.T) {
	in, err := parseCreateJSON([]byte(`{
	  "connectorName": "json-one",
	  "capacity": {"autoScaling": {"maxWorkerCount": 3, "mcuCount": 1, "minWorkerCount": 1,
	    "scaleInPolicy": {"cpuUtilizationPercentage": 20}, "scaleOutPolicy": {"cpuUtilizationPercentage": 80}}},
	  "connectorConfiguration": {"connector.class": "datagen", "tasks.max": "1"},
	  "kafkaCluster": {"apacheKafkaCluster": {"bootstrapServers": "127.0.0.1:9092", "vpc": {"subnets": ["s-1"], "securityGroups": []}}},
	  "kafkaClusterClientAuthentication": {"authenticationType": "NONE"},
	  "kafkaClusterEncryptionInTransit": {"encryptionType": "PLAINTEXT"},
	  "kafkaConnectVersion": "2.7.1",
	  "plugins": [{"customPlugin": {"customPluginArn": "` + pluginArn + `", "revision": 1}}],
	  "serviceExecutionRoleArn": "arn:aws:iam::000000000000:role/x",
	  "tags": {"team": "data"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.ConnectorName) != "json-one" || in.Capacity.AutoScaling.MaxWorkerCount != 3 ||
		in.ConnectorConfiguration["connector.class"] != "datagen" || in.KafkaCluster.ApacheKafkaCluster.Vpc.Subnets[0] != "s-1" ||
		in.Plugins[0].CustomPlugin.Revision != 1 || in.Tags["team"] != "data" || in.KafkaClusterClientAuthentication.AuthenticationType != "NONE" {
		t.Errorf("parsed %+v", in)
	}
	if _, err := parseCreateJSON([]byte(`{"connectorName": "x", "capactiy": {}}`)); err == nil || !strings.Contains(err.Error(), "capactiy") {
		t.Errorf("a misspelt member was not reported: %v", err)
	}
}

func TestParseConfigFile(t *testing.T) {
	for name, text := range map[string]string{
		"properties": "connector.class=datagen\ntasks.max = 3\n",
		"json map":   `{"connector.class": "datagen", "tasks.max": "3"}`,
		"json input": `{"connectorConfiguration": {"connector.class": "datagen", "tasks.max": "3"}}`,
	} {
		m, err := parseConfigFile([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m["connector.class"] != "datagen" || m["tasks.max"] != "3" || len(m) != 2 {
			t.Errorf("%s: %v", name, m)
		}
	}
	if _, err := parseConfigFile([]byte(`{"tasks.max": 3}`)); err == nil {
		t.Error("a number value was accepted")
	}
}

func TestUpdateCapacityKeepsWhatFlagsLeaveOut(t *testing.T) {
	prov := &types.CapacityDescription{ProvisionedCapacity: &types.ProvisionedCapacityDescription{McuCount: 2, WorkerCount: 1}}
	auto := &types.CapacityDescription{AutoScaling: &types.AutoScalingDescription{McuCount: 4, MinWorkerCount: 2, MaxWorkerCount: 6,
		ScaleInPolicy: &types.ScaleInPolicyDescription{CpuUtilizationPercentage: 10}, ScaleOutPolicy: &types.ScaleOutPolicyDescription{CpuUtilizationPercentage: 90}}}

	u := capacityFlags{workers: 3}.updateCapacity(prov)
	if u.ProvisionedCapacity == nil || u.ProvisionedCapacity.WorkerCount != 3 || u.ProvisionedCapacity.McuCount != 2 {
		t.Errorf("provisioned workers: %+v", u)
	}
	u = capacityFlags{maxWorkers: 8}.updateCapacity(auto)
	a := u.AutoScaling
	if a == nil || a.MaxWorkerCount != 8 || a.MinWorkerCount != 2 || a.McuCount != 4 || a.ScaleInPolicy.CpuUtilizationPercentage != 10 || a.ScaleOutPolicy.CpuUtilizationPercentage != 90 {
		t.Errorf("autoscaled max: %+v", a)
	}
	u = capacityFlags{mcu: 1}.updateCapacity(auto) // only the MCUs: stays autoscaled
	if u.AutoScaling == nil || u.AutoScaling.McuCount != 1 || u.AutoScaling.MaxWorkerCount != 6 {
		t.Errorf("autoscaled mcu: %+v", u)
	}
	u = capacityFlags{minWorkers: 1, maxWorkers: 3}.updateCapacity(prov) // provisioned → autoscaled
	if a := u.AutoScaling; a == nil || a.McuCount != 2 || a.MinWorkerCount != 1 || a.MaxWorkerCount != 3 ||
		a.ScaleInPolicy.CpuUtilizationPercentage != DefaultScaleInCPU || a.ScaleOutPolicy.CpuUtilizationPercentage != DefaultScaleOutCPU {
		t.Errorf("to autoscaled: %+v", u.AutoScaling)
	}
	u = capacityFlags{workers: 2}.updateCapacity(auto) // autoscaled → provisioned
	if u.ProvisionedCapacity == nil || u.ProvisionedCapacity.WorkerCount != 2 || u.ProvisionedCapacity.McuCount != 4 {
		t.Errorf("to provisioned: %+v", u)
	}
}
