package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/aws/smithy-go"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/api"
	"github.com/ferryhq/ferry/scheduler/autoscale"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

const (
	region  = "eu-west-1"
	account = "123456789012"
)

// fakeCatalog provides two connector classes; s3sink needs s3.bucket.name.
type fakeCatalog struct{}

func (fakeCatalog) Provides(class string) bool { return class == "s3sink" || class == "datagen" }

func (fakeCatalog) ValidateConfig(class string, cfg map[string]string) []jobs.FieldError {
	if class == "s3sink" && cfg["s3.bucket.name"] == "" {
		return []jobs.FieldError{{Field: "s3.bucket.name", Rule: "is required"}}
	}
	return nil
}

var _ api.Catalog = fakeCatalog{}

type env struct {
	st     *store.Store
	nc     *nats.Conn
	srv    *api.Server
	url    string
	client *kafkaconnect.Client

	mu  sync.Mutex
	now time.Time
	ids int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, nc := storetest.Open(t)
	e := &env{st: st, nc: nc, now: time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)}
	srv, err := api.New(api.Config{
		Store: st, Region: region, Account: account, Catalog: fakeCatalog{}, ConfigChecks: autoscale.ConfigProblems,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.now = e.now.Add(time.Second)
			return e.now
		},
		NewID: func() string {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.ids++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", e.ids)
		},
		StoreTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.srv, e.url = srv, hs.URL
	e.client = kafkaconnect.New(kafkaconnect.Options{
		BaseEndpoint: aws.String(hs.URL),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFERRYTEST", "secret", ""),
		Retryer:      aws.NopRetryer{},
	})
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// connectorInput is a valid CreateConnector request for the built-in plugin.
func (e *env) connectorInput(name string) *kafkaconnect.CreateConnectorInput {
	return &kafkaconnect.CreateConnectorInput{
		ConnectorName: aws.String(name),
		Capacity:      &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: 1, WorkerCount: 2}},
		ConnectorConfiguration: map[string]string{
			"connector.class":       "s3sink",
			"topics":                "orders",
			"s3.bucket.name":        "bucket-a",
			"aws.secret.access.key": "hunter2",
		},
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String("127.0.0.1:9092"),
			Vpc:              &types.Vpc{Subnets: []string{"subnet-1"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins: []types.Plugin{{CustomPlugin: &types.CustomPlugin{
			CustomPluginArn: aws.String(e.srv.BuiltinPluginArn()), Revision: 1,
		}}},
		ServiceExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/ferry"),
	}
}

func (e *env) create(t *testing.T, name string) string {
	t.Helper()
	out, err := e.client.CreateConnector(ctx(t), e.connectorInput(name))
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return aws.ToString(out.ConnectorArn)
}

// setState plays the reconciler: it sets the connector's observed state.
func (e *env) setState(t *testing.T, name, state string, workers int) {
	t.Helper()
	if _, err := e.st.Status.Modify(ctx(t), name, true, func(s *jobs.ConnectorStatus) error {
		s.State, s.Workers = state, workers
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// wantAPIError checks the error's HTTP status, X-Amzn-ErrorType as the SDK
// read it, and that its message mentions every fragment.
func wantAPIError(t *testing.T, err error, code string, status int, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error %v: want HTTP %d", err, status)
	}
	for _, f := range fragments {
		if !strings.Contains(ae.ErrorMessage(), f) {
			t.Errorf("message %q does not mention %q", ae.ErrorMessage(), f)
		}
	}
}

func wantBadRequest(t *testing.T, err error, fragments ...string) {
	t.Helper()
	wantAPIError(t, err, "BadRequestException", 400, fragments...)
	var typed *types.BadRequestException
	if !errors.As(err, &typed) {
		t.Fatalf("SDK did not map %v to *types.BadRequestException", err)
	}
}

func wantNotFound(t *testing.T, err error, fragments ...string) {
	t.Helper()
	wantAPIError(t, err, "NotFoundException", 404, fragments...)
	var typed *types.NotFoundException
	if !errors.As(err, &typed) {
		t.Fatalf("SDK did not map %v to *types.NotFoundException", err)
	}
}

func (e *env) connectorCount(t *testing.T) int {
	t.Helper()
	out, err := e.client.ListConnectors(ctx(t), &kafkaconnect.ListConnectorsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Connectors)
}
