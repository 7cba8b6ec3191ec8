package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/rs/zerolog"

	"github.com/ferryhq/ferry/connectors/s3sink"
	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/scheduler/api"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
)

// CreateConnector through the SDK refuses an S3 sink configuration whose
// keys contradict each other with a 400 naming every key, as the plugin's
// own rules (connect.Plugin.Validate) say, and accepts the corrected one.
func TestCreateConnectorChecksPluginRulesAcrossKeys(t *testing.T) {
	st, _ := storetest.Open(t)
	reg := connect.NewRegistry()
	if err := reg.Register(s3sink.Plugin()); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: st, Region: "eu-west-1", Account: "123456789012", Catalog: registryCatalog{reg},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), StoreTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := kafkaconnect.New(kafkaconnect.Options{BaseEndpoint: aws.String(hs.URL), Region: "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFERRYTEST", "secret", ""), Retryer: aws.NopRetryer{}})
	cfg := map[string]string{
		"connector.class": s3sink.Class, "topics": "orders", "s3.bucket.name": "b", "flush.size": "100",
		"format.class": s3sink.ParquetFormat, "s3.compression.type": "gzip",
		"partitioner.class": s3sink.FieldPartitioner, "rotate.schedule.interval.ms": "3600000",
	}
	in := &kafkaconnect.CreateConnectorInput{
		ConnectorName:          aws.String("orders-to-s3"),
		Capacity:               &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: 1, WorkerCount: 1}},
		ConnectorConfiguration: cfg,
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String("127.0.0.1:9092"), Vpc: &types.Vpc{Subnets: []string{"subnet-1"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins:                          []types.Plugin{{CustomPlugin: &types.CustomPlugin{CustomPluginArn: aws.String(srv.BuiltinPluginArn()), Revision: 1}}},
		ServiceExecutionRoleArn:          aws.String("arn:aws:iam::123456789012:role/ferry"),
	}
	_, err = client.CreateConnector(ctx, in)
	var bad *types.BadRequestException
	if !errors.As(err, &bad) {
		t.Fatalf("got %v, want a BadRequestException", err)
	}
	for _, frag := range []string{
		"connectorConfiguration.s3.compression.type", "parquet.codec",
		"connectorConfiguration.partition.field.name", "partitioner.class=" + s3sink.FieldPartitioner,
		"connectorConfiguration.timezone", "rotate.schedule.interval.ms",
	} {
		if !strings.Contains(bad.ErrorMessage(), frag) {
			t.Errorf("400 %q does not mention %q", bad.ErrorMessage(), frag)
		}
	}
	cfg["s3.compression.type"], cfg["partition.field.name"], cfg["timezone"] = "none", "region", "UTC"
	if _, err := client.CreateConnector(ctx, in); err != nil {
		t.Fatalf("corrected configuration refused: %v", err)
	}
}
