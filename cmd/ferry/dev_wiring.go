package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferryhq/ferry/cmd/ferry/internal/devstack"
	"github.com/ferryhq/ferry/nomad"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/plugins"
)

// wireDev runs the control plane of `ferry dev` on the embedded stack (or
// the user's services) until ctx ends: workers are local child processes,
// or Nomad allocations with --nomad.
func wireDev(ctx context.Context, cfg devConfig, env devEnv) error {
	log := env.Logger
	var deployer scheduler.Deployer
	var changes <-chan string
	var watch func(context.Context) error
	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.Nomad != "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the ferry binary for Nomad's raw_exec driver: %w", err)
		}
		d, err := nomad.NewDeployer(nomad.Config{
			Nomad:  nomad.ClientConfig{Address: cfg.Nomad},
			Render: nomad.RenderConfig{Driver: "raw_exec", WorkerCommand: exe, MHzPerVCPU: cfg.NomadMHzPerVCPU},
			Logger: log.With().Str("component", "nomad").Logger(),
		})
		if err != nil {
			return err
		}
		deployer, changes, watch = nomadDeployer{d}, d.Changes(), d.Watch
	} else {
		x, err := newLocalExecutor(cfg.DataDir, log)
		if err != nil {
			return err
		}
		// The reconciler stops before the executor closes (deferred wg.Wait
		// runs after runControlPlane returns and this cancel fires).
		xctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = x.Run(xctx)
		}()
		deployer = x
	}
	return runControlPlane(ctx, controlPlaneConfig{
		Listen: cfg.Listen, ListenFlag: "listen",
		Region: cfg.Region, Account: cfg.Account,
		NATSURL: env.NATSURL, WorkerNATSURL: env.NATSURL,
		Deployer:        deployer,
		DeployerChanges: changes,
		DeployerWatch:   watch,
		WorkerDefaults:  env.WorkerDefaults,
		MetricsInterval: cfg.MetricsInterval,
		Autoscaler:      cfg.Autoscaler,
		PluginS3:        devPluginS3(cfg, env),
		Logger:          log,
		Ready: func(addr, pluginArn string) {
			example := filepath.Join(cfg.DataDir, "example-connector.json")
			if err := writeExample(example, env, pluginArn, bucketFor(cfg, env)); err != nil {
				log.Warn().Err(err).Msg("could not write the example connector")
			}
			fmt.Fprint(os.Stdout, devBanner(addr, cfg, env, example))
		},
	})
}

// devPluginS3 is where ferry dev reads custom plugin files: the embedded S3
// (any credentials), or --s3-endpoint with the user's credentials.
func devPluginS3(cfg devConfig, env devEnv) plugins.S3Config {
	c := plugins.S3Config{Endpoint: env.S3Endpoint, Region: cfg.Region, PathStyle: true}
	if cfg.S3Endpoint == "" {
		c.AccessKeyID, c.SecretAccessKey = devstack.AccessKeyID, devstack.SecretAccessKey
	}
	return c
}

func bucketFor(cfg devConfig, env devEnv) string {
	if env.Stack != nil && env.Stack.S3Bucket() != "" {
		return env.Stack.S3Bucket()
	}
	return "my-bucket"
}

// exampleRequest is a CreateConnector request for the S3 sink on the
// embedded services, as `aws kafkaconnect create-connector --cli-input-json` takes it.
func exampleRequest(env devEnv, pluginArn, bucket string) map[string]any {
	return map[string]any{
		"connectorName": "my-s3-sink",
		"capacity":      map[string]any{"provisionedCapacity": map[string]any{"mcuCount": 1, "workerCount": 1}},
		"connectorConfiguration": map[string]string{
			"connector.class":      "io.confluent.connect.s3.S3SinkConnector",
			"tasks.max":            "2",
			"topics":               "my-example-topic",
			"s3.region":            "us-east-1",
			"s3.bucket.name":       bucket,
			"flush.size":           "1",
			"format.class":         "io.confluent.connect.s3.format.json.JsonFormat",
			"schema.compatibility": "NONE",
			// JSON values become JSON objects in S3 (MSK Connect's default
			// StringConverter would write each value as a JSON string).
			"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
			"value.converter.schemas.enable": "false",
		},
		"kafkaCluster": map[string]any{"apacheKafkaCluster": map[string]any{
			"bootstrapServers": env.KafkaBootstrap,
			"vpc":              map[string]any{"subnets": []string{"local"}},
		}},
		"kafkaClusterClientAuthentication": map[string]string{"authenticationType": "NONE"},
		"kafkaClusterEncryptionInTransit":  map[string]string{"encryptionType": "PLAINTEXT"},
		"kafkaConnectVersion":              "3.7.x",
		"plugins":                          []any{map[string]any{"customPlugin": map[string]any{"customPluginArn": pluginArn, "revision": 1}}},
		"serviceExecutionRoleArn":          "arn:aws:iam::000000000000:role/ferry-dev",
	}
}

func writeExample(path string, env devEnv, pluginArn, bucket string) error {
	b, err := json.MarshalIndent(exampleRequest(env, pluginArn, bucket), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// devBanner is what `ferry dev` prints once it is ready: the endpoints and
// commands to paste.
func devBanner(apiAddr string, cfg devConfig, env devEnv, example string) string {
	api := "http://" + apiAddr
	var b strings.Builder
	fmt.Fprintf(&b, "\nFerry dev is ready.\n\n")
	fmt.Fprintf(&b, "  MSK Connect API  %s\n", api)
	fmt.Fprintf(&b, "  Kafka            %s\n", env.KafkaBootstrap)
	fmt.Fprintf(&b, "  NATS             %s\n", env.NATSURL)
	if env.S3Endpoint != "" {
		fmt.Fprintf(&b, "  S3               %s", env.S3Endpoint)
		if cfg.S3Endpoint == "" {
			fmt.Fprintf(&b, "  (bucket %s, any credentials)", bucketFor(cfg, env))
		}
		b.WriteString("\n")
	}
	if cfg.Nomad != "" {
		fmt.Fprintf(&b, "  Nomad            %s\n", cfg.Nomad)
	}
	fmt.Fprintf(&b, "  Data             %s\n", cfg.DataDir)
	fmt.Fprintf(&b, "\nCreate an S3 sink (the request is in %s):\n\n", example)
	fmt.Fprintf(&b, "  export AWS_ACCESS_KEY_ID=ferry AWS_SECRET_ACCESS_KEY=ferry AWS_DEFAULT_REGION=%s\n", cfg.Region)
	fmt.Fprintf(&b, "  aws kafkaconnect create-connector --endpoint-url %s --cli-input-json file://%s\n", api, example)
	fmt.Fprintf(&b, "  # or: curl -s -X POST %s/v1/connectors -H 'Content-Type: application/json' -d @%s\n", api, example)
	fmt.Fprintf(&b, "  # or: go run ./cmd/ferry connector create --endpoint %s --file %s --wait\n", api, example)
	fmt.Fprintf(&b, "\nProduce, then look in S3:\n\n")
	fmt.Fprintf(&b, "  echo '{\"id\":1,\"msg\":\"hello\"}' | kcat -P -b %s -t my-example-topic\n", env.KafkaBootstrap)
	if env.S3Endpoint != "" {
		fmt.Fprintf(&b, "  aws s3 ls --endpoint-url %s s3://%s --recursive\n", env.S3Endpoint, bucketFor(cfg, env))
	}
	fmt.Fprintf(&b, "\nStatus: aws kafkaconnect list-connectors --endpoint-url %s\n\n", api)
	return b.String()
}
