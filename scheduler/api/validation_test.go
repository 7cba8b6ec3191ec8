package api_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

func autoscaling(mcu, min, max, in, out, tasks int32) *types.Capacity {
	return &types.Capacity{AutoScaling: &types.AutoScaling{McuCount: mcu, MinWorkerCount: min, MaxWorkerCount: max, MaxAutoscalingTaskCount: tasks,
		ScaleInPolicy: &types.ScaleInPolicy{CpuUtilizationPercentage: in}, ScaleOutPolicy: &types.ScaleOutPolicy{CpuUtilizationPercentage: out}}}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	wc := e.createWorkerConfig(t, "wc-valid", "key.converter=a\nvalue.converter=b\n")
	plugin := e.createPlugin(t, "java-plugin", "com.acme.JdbcSink", "com.acme.JdbcSource")
	missingPlugin := strings.Replace(plugin, "java-plugin", "no-such-plugin", 1)

	for _, tc := range []struct {
		name   string
		mutate func(in *kafkaconnect.CreateConnectorInput)
		want   []string
	}{
		{"mcu not offered", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity.ProvisionedCapacity.McuCount = 3
		}, []string{"capacity.provisionedCapacity.mcuCount: must be one of 1, 2, 4, 8, got 3"}},
		{"zero workers", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity.ProvisionedCapacity.WorkerCount = 0
		}, []string{"capacity.provisionedCapacity.workerCount: must be ≥ 1"}},
		{"autoscaled min above max", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(1, 3, 2, 20, 80, 0)
		}, []string{"capacity.autoScaling.minWorkerCount: must be ≤ maxWorkerCount"}},
		{"autoscaled zero workers", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(1, 0, 0, 20, 80, 0)
		}, []string{"capacity.autoScaling.minWorkerCount: must be ≥ 1", "capacity.autoScaling.maxWorkerCount: must be ≥ 1"}},
		{"scale percentages out of range", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(1, 1, 2, 0, 101, 0)
		}, []string{"capacity.autoScaling.scaleInPolicy.cpuUtilizationPercentage: must be 1..100", "capacity.autoScaling.scaleOutPolicy.cpuUtilizationPercentage: must be 1..100"}},
		{"scale in not below out", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(1, 1, 2, 80, 80, 0)
		}, []string{"capacity.autoScaling.scaleInPolicy.cpuUtilizationPercentage: must be below scaleOutPolicy"}},
		{"task cap below max workers", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(1, 1, 4, 20, 80, 3)
		}, []string{"capacity.autoScaling.maxAutoscalingTaskCount: must be ≥ maxWorkerCount (4), got 3"}},
		{"autoscaled mcu", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(5, 1, 2, 20, 80, 0)
		}, []string{"capacity.autoScaling.mcuCount: must be one of 1, 2, 4, 8, got 5"}},
		{"both capacity modes", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity.AutoScaling = autoscaling(1, 1, 2, 20, 80, 0).AutoScaling
		}, []string{"capacity: exactly one of autoScaling or provisionedCapacity is allowed"}},
		{"no capacity mode", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = &types.Capacity{}
		}, []string{"capacity: exactly one of autoScaling or provisionedCapacity is required"}},
		{"two plugins", func(in *kafkaconnect.CreateConnectorInput) {
			in.Plugins = append(in.Plugins, in.Plugins[0])
		}, []string{"plugins: exactly one plugin is allowed, got 2"}},
		{"no plugin", func(in *kafkaconnect.CreateConnectorInput) {
			in.Plugins = []types.Plugin{}
		}, []string{"plugins: exactly one plugin is required"}},
		{"missing plugin", func(in *kafkaconnect.CreateConnectorInput) {
			in.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(missingPlugin)
		}, []string{"plugins[0].customPlugin.customPluginArn: custom plugin " + missingPlugin + " does not exist"}},
		{"plugin ARN of another kind", func(in *kafkaconnect.CreateConnectorInput) {
			in.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(wc)
		}, []string{"plugins[0].customPlugin.customPluginArn: ", "expected a custom-plugin ARN"}},
		{"plugin revision absent", func(in *kafkaconnect.CreateConnectorInput) {
			in.Plugins[0].CustomPlugin.Revision = 2
		}, []string{"plugins[0].customPlugin.revision: custom plugin \"ferry-builtin\" has no revision 2"}},
		{"class not built in", func(in *kafkaconnect.CreateConnectorInput) {
			in.ConnectorConfiguration["connector.class"] = "io.confluent.connect.jdbc.JdbcSinkConnector"
		}, []string{`connectorConfiguration.connector.class: "io.confluent.connect.jdbc.JdbcSinkConnector" is not a connector the built-in plugin ferry-builtin provides`}},
		{"catalog config problem", func(in *kafkaconnect.CreateConnectorInput) {
			delete(in.ConnectorConfiguration, "s3.bucket.name")
		}, []string{"connectorConfiguration.s3.bucket.name: is required"}},
		{"class missing", func(in *kafkaconnect.CreateConnectorInput) {
			delete(in.ConnectorConfiguration, "connector.class")
		}, []string{"connectorConfiguration.connector.class: is required"}},
		{"worker configuration missing", func(in *kafkaconnect.CreateConnectorInput) {
			in.WorkerConfiguration = &types.WorkerConfiguration{WorkerConfigurationArn: aws.String(strings.Replace(wc, "wc-valid", "wc-gone", 1)), Revision: 1}
		}, []string{"workerConfiguration.workerConfigurationArn: worker configuration", "does not exist"}},
		{"worker configuration revision absent", func(in *kafkaconnect.CreateConnectorInput) {
			in.WorkerConfiguration = &types.WorkerConfiguration{WorkerConfigurationArn: aws.String(wc), Revision: 2}
		}, []string{`workerConfiguration.revision: worker configuration "wc-valid" has no revision 2 (latest is 1)`}},
		{"bad name", func(in *kafkaconnect.CreateConnectorInput) {
			in.ConnectorName = aws.String("has space")
		}, []string{"connectorName: must be 1 to 128 letters"}},
		{"bad enums", func(in *kafkaconnect.CreateConnectorInput) {
			in.KafkaClusterClientAuthentication.AuthenticationType = "SASL"
			in.KafkaClusterEncryptionInTransit.EncryptionType = "SSL"
		}, []string{"kafkaClusterClientAuthentication.authenticationType: must be NONE or IAM", "kafkaClusterEncryptionInTransit.encryptionType: must be PLAINTEXT or TLS"}},
		{"several problems in one 400", func(in *kafkaconnect.CreateConnectorInput) {
			in.Capacity = autoscaling(3, 5, 2, 90, 10, 0)
			in.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(missingPlugin)
			in.ConnectorConfiguration["tasks.max"] = "-1"
			in.KafkaCluster.ApacheKafkaCluster.BootstrapServers = aws.String(" ")
		}, []string{
			"capacity.autoScaling.mcuCount", "capacity.autoScaling.minWorkerCount", "capacity.autoScaling.scaleInPolicy.cpuUtilizationPercentage",
			"connectorConfiguration.tasks.max", "kafkaCluster.apacheKafkaCluster.bootstrapServers",
			"plugins[0].customPlugin.customPluginArn", "(6 problems)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.connectorInput("validated")
			tc.mutate(in)
			_, err := e.client.CreateConnector(c, in)
			wantBadRequest(t, err, tc.want...)
		})
	}
	if n := e.connectorCount(t); n != 0 {
		t.Fatalf("%d connectors written by invalid requests", n)
	}

	// A custom plugin: connector.class must be one its manifest lists
	// (the built-in plugin's classes are not its); a worker configuration at
	// its revision is accepted.
	in := e.connectorInput("custom")
	in.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(plugin)
	for _, class := range []string{"s3sink", "com.acme.Other"} {
		in.ConnectorConfiguration = map[string]string{"connector.class": class}
		_, err := e.client.CreateConnector(c, in)
		wantBadRequest(t, err, `connectorConfiguration.connector.class: "`+class+`" is not a connector custom plugin java-plugin provides (its ferry-plugin.json lists com.acme.JdbcSink, com.acme.JdbcSource)`)
	}
	in.ConnectorConfiguration = map[string]string{"connector.class": "com.acme.JdbcSource"}
	in.WorkerConfiguration = &types.WorkerConfiguration{WorkerConfigurationArn: aws.String(wc), Revision: 1}
	out, err := e.client.CreateConnector(c, in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: out.ConnectorArn})
	if err != nil || aws.ToString(d.WorkerConfiguration.WorkerConfigurationArn) != wc || d.WorkerConfiguration.Revision != 1 {
		t.Fatalf("describe %+v %v", d.WorkerConfiguration, err)
	}
	// UpdateConnector holds the new configuration to the same manifest.
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{
		ConnectorArn: out.ConnectorArn, CurrentVersion: d.CurrentVersion,
		ConnectorConfiguration: map[string]string{"connector.class": "s3sink", "s3.bucket.name": "b"},
	})
	wantBadRequest(t, err, `connectorConfiguration.connector.class: "s3sink" is not a connector custom plugin java-plugin provides`)
}
