package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

// escape percent-encodes an ARN as the SDKs put it in a path.
func escape(arn string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(arn)
}

type rawResponse struct {
	status  int
	errType string
	body    map[string]any
}

func (e *env) raw(t *testing.T, method, path, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := rawResponse{status: resp.StatusCode, errType: resp.Header.Get("X-Amzn-ErrorType")}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out.body); err != nil {
		t.Fatalf("%s %s: response %q is not a JSON object: %v", method, path, b, err)
	}
	return out
}

func (e *env) rawJSON(t *testing.T, method, path, body string) map[string]any {
	t.Helper()
	r := e.raw(t, method, path, body)
	if r.status != 200 {
		t.Fatalf("%s %s: %d %s %v", method, path, r.status, r.errType, r.body)
	}
	return r.body
}

// restart calls Ferry's RestartConnector, which the SDK does not know.
func (e *env) restart(t *testing.T, arn string) (map[string]string, error) {
	t.Helper()
	r := e.raw(t, "POST", "/v1/connectors/"+escape(arn)+"/restart", "")
	if r.status != 200 {
		return nil, errors.New(r.errType + ": " + r.body["message"].(string))
	}
	out := map[string]string{}
	for k, v := range r.body {
		out[k], _ = v.(string)
	}
	return out, nil
}

func validBody(e *env, name string) map[string]any {
	return map[string]any{
		"connectorName":                    name,
		"capacity":                         map[string]any{"provisionedCapacity": map[string]any{"mcuCount": 1, "workerCount": 1}},
		"connectorConfiguration":           map[string]string{"connector.class": "datagen"},
		"kafkaCluster":                     map[string]any{"apacheKafkaCluster": map[string]any{"bootstrapServers": "127.0.0.1:9092", "vpc": map[string]any{"subnets": []string{}}}},
		"kafkaClusterClientAuthentication": map[string]string{"authenticationType": "NONE"},
		"kafkaClusterEncryptionInTransit":  map[string]string{"encryptionType": "PLAINTEXT"},
		"kafkaConnectVersion":              "3.7.x",
		"plugins":                          []any{map[string]any{"customPlugin": map[string]any{"customPluginArn": e.srv.BuiltinPluginArn(), "revision": 1}}},
		"serviceExecutionRoleArn":          "arn:aws:iam::123456789012:role/ferry",
	}
}

func marshal(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateRejectsMalformedBodies(t *testing.T) {
	e := newEnv(t)
	good := marshal(t, validBody(e, "raw"))
	wrongType := validBody(e, "raw")
	wrongType["capacity"] = map[string]any{"provisionedCapacity": map[string]any{"mcuCount": 1, "workerCount": "two"}}
	wrongConfig := validBody(e, "raw")
	wrongConfig["connectorConfiguration"] = map[string]any{"tasks.max": 3}
	fraction := validBody(e, "raw")
	fraction["capacity"] = map[string]any{"provisionedCapacity": map[string]any{"mcuCount": 1, "workerCount": 1.5}}
	unknown := validBody(e, "raw")
	unknown["connectorNmae"] = "x"
	huge := validBody(e, "raw")
	huge["connectorDescription"] = strings.Repeat("x", 1<<20)

	for _, tc := range []struct {
		name, body, want string
	}{
		{"malformed", `{"connectorName": "raw",`, "malformed JSON"},
		{"syntax", `{"connectorName" "raw"}`, "malformed JSON at byte"},
		{"wrong type", marshal(t, wrongType), "capacity.provisionedCapacity.workerCount: expected a number"},
		{"fraction", marshal(t, fraction), "capacity.provisionedCapacity.workerCount: expected a whole number in range, got 1.5"},
		{"config value type", marshal(t, wrongConfig), "connectorConfiguration.tasks.max: expected a string"},
		{"trailing garbage", good + ` {"more": 1}`, "unexpected data after the JSON object"},
		{"trailing junk", good + `xyz`, "unexpected data after the JSON object"},
		{"unknown member", marshal(t, unknown), `unknown member "connectorNmae"`},
		{"array", `[1,2]`, "expected a JSON object"},
		{"empty", ``, "request body is required"},
		{"over 1 MiB", marshal(t, huge), "exceeds 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw(t, "POST", "/v1/connectors", tc.body)
			if r.status != 400 || r.errType != "BadRequestException" {
				t.Fatalf("status %d type %q, want 400 BadRequestException", r.status, r.errType)
			}
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
		})
	}
	if n := e.connectorCount(t); n != 0 {
		t.Fatalf("%d connectors written by rejected requests", n)
	}
	// The well-formed body is accepted, through the raw path too.
	if r := e.raw(t, "POST", "/v1/connectors", good); r.status != 200 || r.body["connectorState"] != "CREATING" {
		t.Fatalf("good body: %d %v", r.status, r.body)
	}
}

func TestRoutingAndRawARNs(t *testing.T) {
	e := newEnv(t)
	arn := e.create(t, "routed")
	// curl users may send the ARN without escaping its '/'.
	d := e.rawJSON(t, "GET", "/v1/connectors/"+arn, "")
	if d["connectorArn"] != arn {
		t.Fatalf("describe by raw ARN: %v", d)
	}
	if r := e.rawJSON(t, "POST", "/v1/connectors/"+arn+"/restart", ""); r["connectorArn"] != arn {
		t.Fatalf("restart by raw ARN: %v", r)
	}
	r := e.raw(t, "GET", "/v1/nothing", "")
	if r.status != 404 || r.errType == "" {
		t.Fatalf("unknown route: %d %q", r.status, r.errType)
	}
	r = e.raw(t, "PATCH", "/v1/connectors", "")
	if r.status != 405 {
		t.Fatalf("wrong method: %d", r.status)
	}
	r = e.raw(t, "PUT", "/v1/connectors/"+escape(arn)+"?currentVersion=abc", `{"capacity":{"provisionedCapacity":{"mcuCount":1,"workerCount":2}}}`)
	if r.status != 400 || !strings.Contains(r.body["message"].(string), "currentVersion") {
		t.Fatalf("bad version: %d %v", r.status, r.body)
	}
	r = e.raw(t, "PUT", "/v1/connectors/"+escape(arn), `{"capacity":{"provisionedCapacity":{"mcuCount":1,"workerCount":2}}}`)
	if r.status != 400 || !strings.Contains(r.body["message"].(string), "currentVersion: is required") {
		t.Fatalf("missing version: %d %v", r.status, r.body)
	}
}

func TestStoreUnavailableIs503(t *testing.T) {
	e := newEnv(t)
	arn := e.create(t, "gone")
	e.nc.Close()
	_, err := e.client.DescribeConnector(ctx(t), &kafkaconnect.DescribeConnectorInput{ConnectorArn: aws.String(arn)})
	wantAPIError(t, err, "ServiceUnavailableException", 503)
	var typed *types.ServiceUnavailableException
	if !errors.As(err, &typed) {
		t.Fatalf("SDK did not map %v to *types.ServiceUnavailableException", err)
	}
	_, err = e.client.CreateConnector(ctx(t), e.connectorInput("other"))
	wantAPIError(t, err, "ServiceUnavailableException", 503)
}
