package connectorcli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

// columnsAligned checks that each header column starts at the same offset
// in every line.
func columnsAligned(t *testing.T, lines []string, header []string) {
	t.Helper()
	var starts []int
	for _, h := range header {
		i := len([]rune(lines[0][:max(strings.Index(lines[0], h), 0)]))
		if !strings.Contains(lines[0], h) {
			t.Fatalf("header %q lacks %q", lines[0], h)
		}
		starts = append(starts, i)
	}
	for _, line := range lines[1:] {
		l := []rune(line) // tabwriter aligns runes, not bytes
		for _, s := range starts[1:] {
			if s >= len(l) || l[s-1] != ' ' || l[s] == ' ' {
				t.Errorf("line %q: no column starting at %d", l, s)
			}
		}
	}
}

func TestPrintList(t *testing.T) {
	created := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	cs := []types.ConnectorSummary{
		{ConnectorName: aws.String("s3-sink-with-a-long-name"), ConnectorArn: aws.String("arn:a"), ConnectorState: types.ConnectorStateRunning, CreationTime: &created,
			Capacity: &types.CapacityDescription{ProvisionedCapacity: &types.ProvisionedCapacityDescription{McuCount: 1, WorkerCount: 2}}},
		{ConnectorName: aws.String("gen"), ConnectorArn: aws.String("arn:b"), ConnectorState: types.ConnectorStateFailed, CreationTime: &created,
			Capacity: &types.CapacityDescription{AutoScaling: &types.AutoScalingDescription{McuCount: 2, MinWorkerCount: 1, MaxWorkerCount: 4,
				ScaleInPolicy: &types.ScaleInPolicyDescription{CpuUtilizationPercentage: 20}, ScaleOutPolicy: &types.ScaleOutPolicyDescription{CpuUtilizationPercentage: 80}}}},
	}
	var b bytes.Buffer
	if err := printList(&b, cs, map[string]int{"arn:b": 3}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	columnsAligned(t, lines, []string{"NAME", "STATE", "WORKERS", "CAPACITY", "CREATED", "ARN"})
	for _, want := range []string{"s3-sink-with-a-long-name", "RUNNING", "2 workers x 1 MCU", "2026-11-23 20:00:00Z", "arn:a"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"gen", "FAILED", " 3 ", "autoscaled 1-4 workers x 2 MCU (cpu 20-80%)", "arn:b"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("line %q lacks %q", lines[2], want)
		}
	}
	b.Reset()
	if err := printList(&b, nil, nil); err != nil || b.String() != "no connectors\n" {
		t.Errorf("empty list: %q %v", b.String(), err)
	}
}

func TestPrintDescribe(t *testing.T) {
	created := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	d := &kafkaconnect.DescribeConnectorOutput{
		ConnectorName:          aws.String("s3"),
		ConnectorArn:           aws.String("arn:aws:kafkaconnect:us-east-1:000000000000:connector/s3/1"),
		ConnectorState:         types.ConnectorStateFailed,
		StateDescription:       &types.StateDescription{Code: aws.String("WorkerFailed"), Message: aws.String("worker 0 exited: no such bucket")},
		Capacity:               &types.CapacityDescription{ProvisionedCapacity: &types.ProvisionedCapacityDescription{McuCount: 1, WorkerCount: 2}},
		ConnectorConfiguration: map[string]string{"connector.class": "io.confluent.connect.s3.S3SinkConnector", "aws.secret.access.key": "********", "topics": "t"},
		KafkaCluster:           &types.KafkaClusterDescription{ApacheKafkaCluster: &types.ApacheKafkaClusterDescription{BootstrapServers: aws.String("127.0.0.1:9092")}},
		Plugins:                []types.PluginDescription{{CustomPlugin: &types.CustomPluginDescription{CustomPluginArn: aws.String(pluginArn), Revision: 1}}},
		CreationTime:           &created, CurrentVersion: aws.String("7"), KafkaConnectVersion: aws.String("2.7.1"),
	}
	ops := []types.ConnectorOperationSummary{{ConnectorOperationArn: aws.String("arn:op1"), ConnectorOperationType: types.ConnectorOperationTypeUpdateWorkerSetting,
		ConnectorOperationState: types.ConnectorOperationStateUpdateComplete, CreationTime: &created, EndTime: &created}}
	var b bytes.Buffer
	if err := printDescribe(&b, d, 2, ops); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"State:                  FAILED",
		"State description:      WorkerFailed: worker 0 exited: no such bucket",
		"Capacity:               2 workers x 1 MCU",
		"Workers:                2",
		"Bootstrap servers:      127.0.0.1:9092",
		"Plugin:                 " + pluginArn + " (revision 1)",
		"Current version:        7",
		"  aws.secret.access.key  ********",
		"  connector.class        io.confluent.connect.s3.S3SinkConnector",
		"Recent operations:",
		"UPDATE_WORKER_SETTING",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	// Configuration keys sorted.
	if strings.Index(out, "aws.secret.access.key") > strings.Index(out, "topics") {
		t.Error("configuration is not sorted")
	}
}

func TestConfigDiff(t *testing.T) {
	got := configDiff(map[string]string{"a": "1", "b": "2", "c": "3"}, map[string]string{"a": "1", "b": "20", "d": "4"})
	want := []string{"~ b: 2 → 20", "- c", "+ d=4"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("diff %q, want %q", got, want)
	}
}
