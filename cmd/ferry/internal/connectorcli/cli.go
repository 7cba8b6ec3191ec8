// Package connectorcli is `ferry connector`: a command line client of the
// MSK Connect API (Ferry's, or AWS's) built on
// aws-sdk-go-v2/service/kafkaconnect.
package connectorcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/aws/smithy-go"
)

// Defaults of the global flags.
const (
	DefaultEndpoint = "http://127.0.0.1:8083"
	DefaultRegion   = "us-east-1"
	// EnvEndpoint overrides DefaultEndpoint.
	EnvEndpoint = "FERRY_ENDPOINT"
)

// exit codes
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

var commands = []command{
	{"create", "--file FILE [flags]", "create a connector from a CreateConnector JSON request or a Kafka Connect properties file", runCreate},
	{"list", "[flags]", "list connectors", runList},
	{"describe", "NAME|ARN [flags]", "show a connector: state, capacity, workers, configuration, recent operations", runDescribe},
	{"update", "NAME|ARN [--config-file FILE] [capacity flags]", "change a connector's configuration or capacity", runUpdate},
	{"delete", "NAME|ARN [flags]", "delete a connector", runDelete},
	{"restart", "NAME|ARN [flags]", "restart every worker of a connector (Ferry only)", runRestart},
	{"operations", "NAME|ARN [flags]", "list a connector's operations, or describe one with --operation ARN", runOperations},
}

// usageError is a mistake on the command line; it exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errFailed means the command did its job and the answer is a failure
// (e.g. --wait saw FAILED); the details are printed already.
var errFailed = errors.New("failed")

// Usage writes the help of `ferry connector`.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: ferry connector <command> [flags]\n\nManage connectors through the MSK Connect API.\n\nCommands:\n")
	tw := newTable(w)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery command takes --endpoint (default $%s or %s), --region (default %s) and --output text|json.\n"+
		"Run 'ferry connector <command> -h' for a command's flags.\n", EnvEndpoint, DefaultEndpoint, DefaultRegion)
}

// Run runs `ferry connector` with args (after "connector") and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		Usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "ferry connector: unknown command %q\n\n", args[0])
		Usage(stderr)
		return exitUsage
	}
	c := &cli{stdout: stdout, stderr: stderr, cmd: cmd}
	err := cmd.run(ctx, c, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ferry connector %s: %s\nRun 'ferry connector %s -h' for help.\n", cmd.name, ue.msg, cmd.name)
		return exitUsage
	case errors.Is(err, errFailed):
		return exitError
	default:
		fmt.Fprintf(stderr, "ferry connector %s: %s\n", cmd.name, describeError(err, c.endpoint))
		return exitError
	}
}

// cli is the state of one command: its global flags and its API client.
type cli struct {
	stdout, stderr io.Writer
	cmd            *command

	endpoint string
	region   string
	output   string

	rec    *recorder
	client *kafkaconnect.Client
}

// flags returns a FlagSet with the global flags registered.
func (c *cli) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("ferry connector "+c.cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = DefaultRegion
	}
	fs.StringVar(&c.endpoint, "endpoint", endpoint, "MSK Connect API endpoint (env "+EnvEndpoint+")")
	fs.StringVar(&c.region, "region", region, "region to sign requests for (env AWS_REGION)")
	fs.StringVar(&c.output, "output", "text", "output format: text or json (the API's response)")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: ferry connector %s %s\n\n%s.\n\nFlags:\n", c.cmd.name, c.cmd.args, upperFirst(c.cmd.summary))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs (flags may come before or after positional
// arguments), checks the global flags and connects the client. It returns
// the positional arguments.
func (c *cli) parse(ctx context.Context, fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		if positional == 0 {
			return nil, usagef("unexpected arguments %q", pos)
		}
		return nil, usagef("want a connector name or ARN, got %d arguments", len(pos))
	}
	if c.output != "text" && c.output != "json" {
		return nil, usagef("--output %q: want text or json", c.output)
	}
	if !strings.HasPrefix(c.endpoint, "http://") && !strings.HasPrefix(c.endpoint, "https://") {
		return nil, usagef("--endpoint %q: want a URL like %s", c.endpoint, DefaultEndpoint)
	}
	c.rec = &recorder{inner: &http.Client{Timeout: 30 * time.Second}}
	creds, err := credentialsFor(ctx, c.region)
	if err != nil {
		return nil, err
	}
	c.client = kafkaconnect.New(kafkaconnect.Options{
		Region:           c.region,
		BaseEndpoint:     aws.String(strings.TrimRight(c.endpoint, "/")),
		Credentials:      creds,
		HTTPClient:       c.rec,
		RetryMaxAttempts: 2,
	})
	return pos, nil
}

// credentialsFor returns the configured AWS credentials or, when none are
// configured, static dummy ones: Ferry does not check signatures.
func credentialsFor(ctx context.Context, region string) (aws.CredentialsProvider, error) {
	static := credentials.NewStaticCredentialsProvider("ferry", "ferry", "")
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	if err != nil || cfg.Credentials == nil {
		return static, nil //nolint:nilerr // a broken AWS config must not stop a dev client
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(rctx); err != nil {
		return static, nil //nolint:nilerr // no credentials configured
	}
	return cfg.Credentials, nil
}

// progress is where messages besides the result go: stdout for text
// output, stderr when stdout carries JSON.
func (c *cli) progress() io.Writer {
	if c.output == "json" {
		return c.stderr
	}
	return c.stdout
}

// printJSON prints the last raw response body, indented.
func (c *cli) printJSON() error { return writeIndented(c.stdout, c.rec.lastBody()) }

// writeIndented writes a JSON body indented (or as it is, if it is not JSON).
func writeIndented(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		_, err = w.Write(body)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// resolve returns the ARN of a connector given by name or ARN.
func (c *cli) resolve(ctx context.Context, nameOrArn string) (string, error) {
	if strings.HasPrefix(nameOrArn, "arn:") {
		return nameOrArn, nil
	}
	var next *string
	for {
		out, err := c.client.ListConnectors(ctx, &kafkaconnect.ListConnectorsInput{ConnectorNamePrefix: aws.String(nameOrArn), NextToken: next})
		if err != nil {
			return "", fmt.Errorf("find connector %q: %w", nameOrArn, err)
		}
		for _, s := range out.Connectors {
			if aws.ToString(s.ConnectorName) == nameOrArn {
				return aws.ToString(s.ConnectorArn), nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return "", fmt.Errorf("connector %q not found", nameOrArn)
		}
		next = out.NextToken
	}
}

// describeError turns an error into one line for a person: the server's
// own message for API errors, a hint for an unreachable endpoint.
func describeError(err error, endpoint string) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		if msg == "" {
			msg = "(no message)"
		}
		return fmt.Sprintf("%s (%s)", msg, ae.ErrorCode())
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("cannot reach the API at %s: connection refused (is `ferry dev` running? set --endpoint or $%s)", endpoint, EnvEndpoint)
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s: %v", oe.OperationName, errors.Unwrap(oe))
	}
	return err.Error()
}

// recorder is the SDK's HTTP client: it keeps the last response body so
// --output json can print what the server sent.
type recorder struct {
	inner *http.Client
	mu    sync.Mutex
	last  []byte
}

// Do sends req and records the response body.
func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	r.mu.Lock()
	r.last = body
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *recorder) lastBody() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// connectorState reads a connector's state and, from Ferry's extension of
// the response, its current worker count (0 when the server does not say).
func (c *cli) describe(ctx context.Context, arn string) (*kafkaconnect.DescribeConnectorOutput, int, error) {
	out, err := c.client.DescribeConnector(ctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: aws.String(arn)})
	if err != nil {
		return nil, 0, err
	}
	var raw struct {
		Capacity rawCapacity `json:"capacity"`
	}
	_ = json.Unmarshal(c.rec.lastBody(), &raw) // best effort: only extras come from it
	return out, raw.Capacity.current(), nil
}

// rawCapacity is the part of a capacity description the SDK drops:
// Ferry's currentWorkerCount.
type rawCapacity struct {
	AutoScaling *struct {
		CurrentWorkerCount int `json:"currentWorkerCount"`
	} `json:"autoScaling"`
	ProvisionedCapacity *struct {
		CurrentWorkerCount int `json:"currentWorkerCount"`
	} `json:"provisionedCapacity"`
}

func (r rawCapacity) current() int {
	switch {
	case r.AutoScaling != nil:
		return r.AutoScaling.CurrentWorkerCount
	case r.ProvisionedCapacity != nil:
		return r.ProvisionedCapacity.CurrentWorkerCount
	}
	return 0
}

// stateName is a connector state with its description, for messages.
func stateName(s types.ConnectorState, d *types.StateDescription) string {
	if d == nil || (aws.ToString(d.Code) == "" && aws.ToString(d.Message) == "") {
		return string(s)
	}
	return fmt.Sprintf("%s (%s)", s, describeState(d))
}

func describeState(d *types.StateDescription) string {
	if d == nil {
		return ""
	}
	code, msg := aws.ToString(d.Code), aws.ToString(d.Message)
	switch {
	case code == "":
		return msg
	case msg == "":
		return code
	}
	return code + ": " + msg
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
