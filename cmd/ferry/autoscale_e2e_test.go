package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

// TestDevAutoscales runs `ferry dev` with short autoscaler settings and an
// autoscaled datagen source producing as fast as it can: its workers' CPU
// crosses the scale-out threshold, so the connector grows to its maximum;
// once the source is slowed to a record a second it shrinks back to its
// minimum. Both decisions are connector operations the API lists.
func TestDevAutoscales(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	api := freeAddr(t)
	dev := startDev(t, api, []string{
		"--nats-listen", freeAddr(t),
		"--kafka-listen", freeAddr(t),
		"--s3-listen", freeAddr(t),
		"--metrics-interval", "500ms",
		"--autoscale-interval", "2s",
		"--autoscale-window", "2s",
		"--autoscale-scale-out-cooldown", "3s",
		"--autoscale-scale-in-cooldown", "3s",
	}, nil)
	client := dev.client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const minWorkers, maxWorkers = 1, 3
	cfg := map[string]string{
		"connector.class":                "io.confluent.kafka.connect.datagen.DatagenConnector",
		"kafka.topic":                    "pageviews",
		"quickstart":                     "pageviews",
		"max.interval":                   "0", // as fast as it can: the CPU load
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
	}
	created, err := client.CreateConnector(ctx, &kafkaconnect.CreateConnectorInput{
		ConnectorName: aws.String("busy-gen"),
		Capacity: &types.Capacity{AutoScaling: &types.AutoScaling{
			MinWorkerCount: minWorkers, MaxWorkerCount: maxWorkers, McuCount: 1,
			ScaleInPolicy:  &types.ScaleInPolicy{CpuUtilizationPercentage: 10},
			ScaleOutPolicy: &types.ScaleOutPolicy{CpuUtilizationPercentage: 40},
		}},
		ConnectorConfiguration: cfg,
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String(dev.kafka),
			Vpc:              &types.Vpc{Subnets: []string{"local"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins:                          []types.Plugin{{CustomPlugin: &types.CustomPlugin{CustomPluginArn: aws.String(dev.plugin), Revision: 1}}},
		ServiceExecutionRoleArn:          aws.String("arn:aws:iam::000000000000:role/ferry-test"),
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	arn := created.ConnectorArn

	describe := func() *kafkaconnect.DescribeConnectorOutput {
		t.Helper()
		d, err := client.DescribeConnector(ctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: arn})
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		return d
	}
	workers := func() int { return len(dev.workers()) }
	scaleOps := func() []types.ConnectorOperationSummary {
		out, err := client.ListConnectorOperations(ctx, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: arn})
		if err != nil {
			t.Fatalf("list operations: %v", err)
		}
		var ops []types.ConnectorOperationSummary
		for _, op := range out.ConnectorOperations {
			if op.ConnectorOperationType == types.ConnectorOperationTypeUpdateWorkerSetting {
				ops = append(ops, op)
			}
		}
		return ops
	}

	eventually(t, 90*time.Second, "scale-out to the maximum under load", func() (bool, string) {
		d := describe()
		return d.ConnectorState == types.ConnectorStateRunning && workers() == maxWorkers,
			fmt.Sprintf("state %s, %d worker processes", d.ConnectorState, workers())
	})
	if ops := scaleOps(); len(ops) == 0 {
		t.Fatal("no UPDATE_WORKER_SETTING operation recorded for the scale-out")
	}

	// Slow the source down: the load stops, the connector shrinks to its minimum.
	cfg["max.interval"] = "1000"
	version := aws.ToString(describe().CurrentVersion)
	if _, err := client.UpdateConnector(ctx, &kafkaconnect.UpdateConnectorInput{
		ConnectorArn: arn, CurrentVersion: &version, ConnectorConfiguration: cfg,
	}); err != nil {
		t.Fatalf("update: %v", err)
	}
	outs := len(scaleOps())
	// A scale-in's operation ends once the reconciler has seen the workers
	// beyond the count stop, which is a pass after their processes exit:
	// wait for every scale operation to end, then check how each ended.
	eventually(t, 90*time.Second, "scale-in to the minimum without load", func() (bool, string) {
		d := describe()
		ops := scaleOps()
		inFlight := 0
		for _, op := range ops {
			if op.ConnectorOperationState == types.ConnectorOperationStateUpdateInProgress {
				inFlight++
			}
		}
		return d.ConnectorState == types.ConnectorStateRunning && workers() == minWorkers && len(ops) > outs && inFlight == 0,
			fmt.Sprintf("state %s, %d worker processes, %d scale operations (%d in progress)", d.ConnectorState, workers(), len(ops), inFlight)
	})
	for _, op := range scaleOps() {
		if op.ConnectorOperationState != types.ConnectorOperationStateUpdateComplete {
			d, _ := client.DescribeConnectorOperation(ctx, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: op.ConnectorOperationArn})
			t.Errorf("scale operation %s is %s (%+v)", aws.ToString(op.ConnectorOperationArn), op.ConnectorOperationState, d)
		}
	}
	// The newest scale operation names the worker counts it moved between
	// (Ferry's currentWorkerCount member, which the SDK does not model).
	newest := scaleOps()[0]
	resp, err := http.Get(dev.api + "/v1/connectorOperations/" + url.PathEscape(aws.ToString(newest.ConnectorOperationArn)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var op struct {
		Origin, Target struct {
			Capacity struct {
				AutoScaling struct {
					CurrentWorkerCount int `json:"currentWorkerCount"`
				} `json:"autoScaling"`
			} `json:"capacity"`
		}
	}
	var raw struct {
		Origin json.RawMessage `json:"originWorkerSetting"`
		Target json.RawMessage `json:"targetWorkerSetting"`
		Reason string          `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if json.Unmarshal(raw.Origin, &op.Origin) != nil || json.Unmarshal(raw.Target, &op.Target) != nil {
		t.Fatalf("operation worker settings: %s / %s", raw.Origin, raw.Target)
	}
	from, to := op.Origin.Capacity.AutoScaling.CurrentWorkerCount, op.Target.Capacity.AutoScaling.CurrentWorkerCount
	if to != minWorkers || from <= to {
		t.Fatalf("newest scale operation moved from %d to %d workers, want a scale-in to %d", from, to, minWorkers)
	}
	if !strings.Contains(raw.Reason, "in") || !strings.Contains(raw.Reason, "cpu") {
		t.Errorf("scale-in operation's reason %q does not say why", raw.Reason)
	}
	t.Logf("scale-in operation: %d → %d workers (%s)", from, to, raw.Reason)
}
