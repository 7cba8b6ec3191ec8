// Command benchcreate measures how long a connector takes from
// CreateConnector to RUNNING on a running `ferry dev`; scripts/bench-create.sh
// runs it.
//
//	benchcreate ports N                  print N free loopback ports
//	benchcreate run -endpoint URL -example FILE [-n 10] [-poll 20ms]
//
// run creates n S3 sinks one after another from dev's example request
// (FILE, written by `ferry dev` to <data-dir>/example-connector.json),
// polls DescribeConnector every poll until each is RUNNING, prints every
// latency and min/median/p90/max against the 3 s target, then deletes them
// and waits until they are gone.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

// target is what create→RUNNING should stay under.
const target = 3 * time.Second

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchcreate ports N | benchcreate run -endpoint URL -example FILE [-n 10] [-poll 20ms]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcreate:", err)
		os.Exit(1)
	}
}

// ports prints N distinct free loopback ports, one a line. All listeners
// stay open until every port is chosen, so the N are distinct.
func ports(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: benchcreate ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("ports %q: want a positive number", args[0])
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// example is the part of dev's example request the benchmark reuses.
type example struct {
	ConnectorConfiguration map[string]string `json:"connectorConfiguration"`
	KafkaCluster           struct {
		ApacheKafkaCluster struct {
			BootstrapServers string `json:"bootstrapServers"`
		} `json:"apacheKafkaCluster"`
	} `json:"kafkaCluster"`
	Plugins []struct {
		CustomPlugin struct {
			CustomPluginArn string `json:"customPluginArn"`
			Revision        int64  `json:"revision"`
		} `json:"customPlugin"`
	} `json:"plugins"`
	ServiceExecutionRoleArn string `json:"serviceExecutionRoleArn"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:8083", "MSK Connect API of ferry dev")
	examplePath := fs.String("example", "", "dev's example-connector.json")
	n := fs.Int("n", 10, "connectors to create, one after another")
	poll := fs.Duration("poll", 20*time.Millisecond, "DescribeConnector poll interval")
	topic := fs.String("topic", "bench-create", "topic the sinks read")
	timeout := fs.Duration("timeout", 60*time.Second, "give up on one connector after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *examplePath == "" || *n < 1 {
		return errors.New("-example is required and -n must be at least 1")
	}
	b, err := os.ReadFile(*examplePath)
	if err != nil {
		return fmt.Errorf("read the example request: %w", err)
	}
	var ex example
	if err := json.Unmarshal(b, &ex); err != nil {
		return fmt.Errorf("parse %s: %w", *examplePath, err)
	}
	if len(ex.Plugins) == 0 || ex.KafkaCluster.ApacheKafkaCluster.BootstrapServers == "" {
		return fmt.Errorf("%s lacks plugins or kafkaCluster", *examplePath)
	}
	client := kafkaconnect.New(kafkaconnect.Options{
		BaseEndpoint: aws.String(*endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("ferry", "ferry", ""),
		Retryer:      aws.NopRetryer{},
	})
	ctx := context.Background()

	var arns []string
	defer func() {
		if err := deleteAll(ctx, client, arns, *poll); err != nil {
			fmt.Fprintln(os.Stderr, "benchcreate:", err)
		}
	}()
	var lat []time.Duration
	fmt.Printf("create → RUNNING, %d connectors one after another, DescribeConnector every %v:\n", *n, *poll)
	for i := 1; i <= *n; i++ {
		cfg := map[string]string{}
		for k, v := range ex.ConnectorConfiguration {
			cfg[k] = v
		}
		cfg["topics"] = *topic
		name := fmt.Sprintf("bench-create-%d-%d", time.Now().Unix(), i)
		in := &kafkaconnect.CreateConnectorInput{
			ConnectorName:          aws.String(name),
			Capacity:               &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: 1, WorkerCount: 1}},
			ConnectorConfiguration: cfg,
			KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
				BootstrapServers: aws.String(ex.KafkaCluster.ApacheKafkaCluster.BootstrapServers),
				Vpc:              &types.Vpc{Subnets: []string{"local"}},
			}},
			KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
			KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
			KafkaConnectVersion:              aws.String("3.7.x"),
			Plugins: []types.Plugin{{CustomPlugin: &types.CustomPlugin{
				CustomPluginArn: aws.String(ex.Plugins[0].CustomPlugin.CustomPluginArn), Revision: max(ex.Plugins[0].CustomPlugin.Revision, 1),
			}}},
			ServiceExecutionRoleArn: aws.String(ex.ServiceExecutionRoleArn),
		}
		d, err := createAndWait(ctx, client, in, *poll, *timeout, &arns)
		if err != nil {
			return fmt.Errorf("connector %d: %w", i, err)
		}
		lat = append(lat, d)
		fmt.Printf("  %2d  %-32s %7.0f ms\n", i, name, ms(d))
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	verdict := "OK"
	if s[len(s)-1] >= target {
		verdict = "OVER TARGET"
	}
	fmt.Printf("min %.0f ms  median %.0f ms  p90 %.0f ms  max %.0f ms  (target: under %v) %s\n",
		ms(s[0]), ms(quantile(s, 0.5)), ms(quantile(s, 0.9)), ms(s[len(s)-1]), target, verdict)
	return nil
}

// createAndWait creates the connector and returns how long it took from
// sending CreateConnector to the first DescribeConnector saying RUNNING.
func createAndWait(ctx context.Context, client *kafkaconnect.Client, in *kafkaconnect.CreateConnectorInput, poll, timeout time.Duration, arns *[]string) (time.Duration, error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	out, err := client.CreateConnector(cctx, in)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	*arns = append(*arns, aws.ToString(out.ConnectorArn))
	deadline := start.Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := client.DescribeConnector(dctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: out.ConnectorArn})
		cancel()
		if err == nil {
			switch d.ConnectorState {
			case types.ConnectorStateRunning:
				return time.Since(start), nil
			case types.ConnectorStateFailed:
				msg := ""
				if d.StateDescription != nil {
					msg = aws.ToString(d.StateDescription.Message)
				}
				return 0, fmt.Errorf("FAILED: %s", msg)
			}
			last = string(d.ConnectorState)
		} else {
			last = err.Error()
		}
		time.Sleep(poll)
	}
	return 0, fmt.Errorf("not RUNNING within %v (last: %s)", timeout, last)
}

// deleteAll deletes the connectors and waits until DescribeConnector no
// longer finds them.
func deleteAll(ctx context.Context, client *kafkaconnect.Client, arns []string, poll time.Duration) error {
	var errs []error
	for _, arn := range arns {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := client.DeleteConnector(dctx, &kafkaconnect.DeleteConnectorInput{ConnectorArn: aws.String(arn)})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", arn, err))
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, arn := range arns {
		for {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := client.DescribeConnector(dctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: aws.String(arn)})
			cancel()
			var nf *types.NotFoundException
			if errors.As(err, &nf) {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("%s still there 60s after delete", arn))
				break
			}
			time.Sleep(poll)
		}
	}
	if len(errs) == 0 {
		fmt.Printf("deleted %d connectors\n", len(arns))
	}
	return errors.Join(errs...)
}

// quantile returns the q-quantile of sorted s (nearest rank).
func quantile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
