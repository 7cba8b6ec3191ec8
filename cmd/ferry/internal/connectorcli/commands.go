package connectorcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/aws/smithy-go"
	"github.com/ferryhq/ferry/jobs"
)

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&w.wait, "wait", false, "wait until the connector is RUNNING (exit 0) or FAILED (exit 1), printing state changes")
	fs.DurationVar(&w.timeout, "timeout", 5*time.Minute, "how long --wait waits")
}

func runCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var file string
	var opts createOptions
	var wf waitFlags
	fs.StringVar(&file, "file", "", "CreateConnector JSON request (as aws kafkaconnect create-connector --cli-input-json takes) or a Kafka Connect properties file (required)")
	fs.StringVar(&opts.name, "name", "", "connector name (properties file; default its name= property)")
	fs.StringVar(&opts.description, "description", "", "connector description (properties file)")
	fs.StringVar(&opts.bootstrapServers, "bootstrap-servers", DefaultBootstrapServers, "Kafka bootstrap servers (properties file)")
	fs.StringVar(&opts.pluginArn, "plugin-arn", "", "custom plugin ARN (properties file; default the built-in plugin "+jobs.BuiltinPluginName+")")
	fs.IntVar(&opts.pluginRevision, "plugin-revision", 0, "custom plugin revision (properties file; default the plugin's latest)")
	fs.StringVar(&opts.roleArn, "service-execution-role-arn", DefaultRoleArn, "service execution role ARN (properties file; Ferry does not use it)")
	fs.StringVar(&opts.connectVersion, "kafka-connect-version", DefaultKafkaConnect, "Kafka Connect version (properties file)")
	opts.capacity.register(fs)
	wf.register(fs)
	if _, err := c.parse(ctx, fs, args, 0); err != nil {
		return err
	}
	if file == "" {
		return usagef("--file is required")
	}
	b, err := readFile(file)
	if err != nil {
		return err
	}
	var in *kafkaconnect.CreateConnectorInput
	if isJSON(b) {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "file", "endpoint", "region", "output", "wait", "timeout":
			default:
				set = append(set, "--"+f.Name)
			}
		})
		if len(set) > 0 {
			return usagef("%s only apply to a properties file; %s is a JSON request, edit it instead", strings.Join(set, ", "), file)
		}
		if in, err = parseCreateJSON(b); err != nil {
			return err
		}
	} else {
		if opts.pluginArn == "" {
			arn, rev, err := c.builtinPlugin(ctx)
			if err != nil {
				return err
			}
			opts.pluginArn = arn
			if opts.pluginRevision == 0 {
				opts.pluginRevision = int(rev)
			}
		}
		if in, err = buildCreateFromProperties(string(b), opts); err != nil {
			return usagef("%v", err)
		}
	}
	out, err := c.client.CreateConnector(ctx, in)
	if err != nil {
		return err
	}
	if c.output == "json" && !wf.wait {
		return c.printJSON()
	}
	fmt.Fprintf(c.progress(), "created connector %s (%s)\n%s\n", aws.ToString(out.ConnectorName), out.ConnectorState, aws.ToString(out.ConnectorArn))
	if wf.wait {
		return c.wait(ctx, aws.ToString(out.ConnectorArn), "", wf.timeout)
	}
	return nil
}

// builtinPlugin finds the built-in plugin's ARN and latest revision.
func (c *cli) builtinPlugin(ctx context.Context) (string, int64, error) {
	var next *string
	for {
		out, err := c.client.ListCustomPlugins(ctx, &kafkaconnect.ListCustomPluginsInput{NamePrefix: aws.String(jobs.BuiltinPluginName), NextToken: next})
		if err != nil {
			return "", 0, fmt.Errorf("find the built-in plugin: %w", err)
		}
		for _, p := range out.CustomPlugins {
			if aws.ToString(p.Name) == jobs.BuiltinPluginName {
				rev := int64(1)
				if p.LatestRevision != nil && p.LatestRevision.Revision > 0 {
					rev = p.LatestRevision.Revision
				}
				return aws.ToString(p.CustomPluginArn), rev, nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return "", 0, fmt.Errorf("the server has no custom plugin named %q; pass --plugin-arn", jobs.BuiltinPluginName)
		}
		next = out.NextToken
	}
}

func runList(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var prefix string
	fs.StringVar(&prefix, "prefix", "", "only connectors whose name starts with this")
	if _, err := c.parse(ctx, fs, args, 0); err != nil {
		return err
	}
	var all []types.ConnectorSummary
	current := map[string]int{}
	var next *string
	var pages [][]byte
	for {
		in := &kafkaconnect.ListConnectorsInput{NextToken: next}
		if prefix != "" {
			in.ConnectorNamePrefix = aws.String(prefix)
		}
		out, err := c.client.ListConnectors(ctx, in)
		if err != nil {
			return err
		}
		body := c.rec.lastBody()
		pages = append(pages, body)
		var raw struct {
			Connectors []struct {
				ConnectorArn string      `json:"connectorArn"`
				Capacity     rawCapacity `json:"capacity"`
			} `json:"connectors"`
		}
		if json.Unmarshal(body, &raw) == nil {
			for _, r := range raw.Connectors {
				current[r.ConnectorArn] = r.Capacity.current()
			}
		}
		all = append(all, out.Connectors...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		next = out.NextToken
	}
	if c.output == "json" {
		if len(pages) == 1 {
			return c.printJSON()
		}
		// Several pages: one response with every connector.
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		var merged []json.RawMessage
		for _, p := range pages {
			var page struct {
				Connectors []json.RawMessage `json:"connectors"`
			}
			if err := json.Unmarshal(p, &page); err != nil {
				return fmt.Errorf("parse response: %w", err)
			}
			merged = append(merged, page.Connectors...)
		}
		return enc.Encode(map[string]any{"connectors": merged})
	}
	return printList(c.stdout, all, current)
}

func runDescribe(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var nops int
	fs.IntVar(&nops, "operations", 5, "how many recent operations to show")
	pos, err := c.parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	arn, err := c.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	var ops []types.ConnectorOperationSummary
	if c.output == "text" && nops > 0 {
		out, err := c.client.ListConnectorOperations(ctx, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: aws.String(arn), MaxResults: aws.Int32(int32(min(nops, 100)))})
		if err != nil {
			return err
		}
		ops = out.ConnectorOperations
		if len(ops) > nops {
			ops = ops[:nops]
		}
	}
	d, workers, err := c.describe(ctx, arn)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON()
	}
	return printDescribe(c.stdout, d, workers, ops)
}

func runUpdate(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var configFile string
	var capf capacityFlags
	var wf waitFlags
	fs.StringVar(&configFile, "config-file", "", "new connector configuration: a properties file or a JSON object (replaces the whole configuration)")
	capf.register(fs)
	wf.register(fs)
	pos, err := c.parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	if configFile == "" && !capf.set() {
		return usagef("nothing to update: give --config-file or capacity flags")
	}
	if configFile != "" && capf.set() {
		// MSK Connect updates either the configuration or the capacity.
		return usagef("--config-file and capacity flags cannot be combined; update one, then the other")
	}
	if err := capf.check(); err != nil {
		return usagef("%v", err)
	}
	in := &kafkaconnect.UpdateConnectorInput{}
	if configFile != "" {
		b, err := readFile(configFile)
		if err != nil {
			return err
		}
		if in.ConnectorConfiguration, err = parseConfigFile(b); err != nil {
			return fmt.Errorf("%s: %w", configFile, err)
		}
	}
	arn, err := c.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	d, _, err := c.describe(ctx, arn)
	if err != nil {
		return err
	}
	in.ConnectorArn, in.CurrentVersion = aws.String(arn), d.CurrentVersion
	if capf.set() {
		in.Capacity = capf.updateCapacity(d.Capacity)
	}
	out, err := c.client.UpdateConnector(ctx, in)
	if err != nil {
		return err
	}
	if c.output == "json" && !wf.wait {
		return c.printJSON()
	}
	fmt.Fprintf(c.progress(), "updating connector %s (%s)\n", aws.ToString(d.ConnectorName), out.ConnectorState)
	if op := aws.ToString(out.ConnectorOperationArn); op != "" {
		fmt.Fprintf(c.progress(), "operation %s\n", op)
	}
	if wf.wait {
		return c.wait(ctx, arn, aws.ToString(out.ConnectorOperationArn), wf.timeout)
	}
	return nil
}

func runDelete(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var wait bool
	var timeout time.Duration
	fs.BoolVar(&wait, "wait", false, "wait until the connector is gone")
	fs.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	pos, err := c.parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	arn, err := c.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	out, err := c.client.DeleteConnector(ctx, &kafkaconnect.DeleteConnectorInput{ConnectorArn: aws.String(arn)})
	if err != nil {
		return err
	}
	if c.output == "json" {
		if err := c.printJSON(); err != nil || !wait {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "deleting connector %s (%s)\n", arn, out.ConnectorState)
	}
	if !wait {
		return nil
	}
	return c.waitGone(ctx, arn, timeout)
}

// waitGone polls every 500 ms until describing the connector answers
// NotFoundException.
func (c *cli) waitGone(ctx context.Context, arn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := c.client.DescribeConnector(ctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: aws.String(arn)})
		var nf *types.NotFoundException
		switch {
		case errors.As(err, &nf):
			fmt.Fprintf(c.progress(), "connector %s deleted\n", arn)
			return nil
		case err != nil && ctx.Err() == nil:
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(c.progress(), "timed out after %s; connector %s is not deleted yet\n", timeout, arn)
				return errFailed
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// runRestart calls Ferry's own RestartConnector (POST
// /v1/connectors/{arn}/restart), which the SDK does not know; its errors
// have the same shape as the API's others.
func runRestart(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var wf waitFlags
	wf.register(fs)
	pos, err := c.parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	arn, err := c.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	u := strings.TrimRight(c.endpoint, "/") + "/v1/connectors/" + escapeArn(arn) + "/restart"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.rec.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	body := c.rec.lastBody()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		code := resp.Header.Get("X-Amzn-ErrorType")
		if i := strings.IndexByte(code, ':'); i >= 0 {
			code = code[:i]
		}
		if code == "" {
			code = resp.Status
		}
		return &smithy.GenericAPIError{Code: code, Message: e.Message}
	}
	if c.output == "json" && !wf.wait {
		return c.printJSON()
	}
	var out struct {
		ConnectorState string `json:"connectorState"`
	}
	_ = json.Unmarshal(body, &out)
	fmt.Fprintf(c.progress(), "restarting connector %s (%s)\n", arn, out.ConnectorState)
	if wf.wait {
		return c.wait(ctx, arn, "", wf.timeout)
	}
	return nil
}

// escapeArn escapes an ARN as one path segment, as the SDKs do.
func escapeArn(arn string) string {
	return strings.ReplaceAll(url.PathEscape(arn), ":", "%3A")
}

func runOperations(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	var opArn string
	fs.StringVar(&opArn, "operation", "", "describe this operation instead of listing")
	var pos []string
	var err error
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, err = c.parse(ctx, fs, args, 1)
	} else {
		pos, err = c.parse(ctx, fs, args, 0)
	}
	if err != nil {
		return err
	}
	if opArn != "" {
		out, err := c.client.DescribeConnectorOperation(ctx, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: aws.String(opArn)})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON()
		}
		return printOperation(c.stdout, out)
	}
	if len(pos) == 0 {
		return usagef("want a connector name or ARN (or --operation ARN)")
	}
	arn, err := c.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	var all []types.ConnectorOperationSummary
	var next *string
	for {
		out, err := c.client.ListConnectorOperations(ctx, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: aws.String(arn), NextToken: next})
		if err != nil {
			return err
		}
		all = append(all, out.ConnectorOperations...)
		if c.output == "json" || aws.ToString(out.NextToken) == "" {
			break
		}
		next = out.NextToken
	}
	if c.output == "json" {
		return c.printJSON()
	}
	return printOperations(c.stdout, all)
}

// wait polls the connector (and the operation, when there is one) every
// 500 ms, printing each state change, until it is RUNNING with the
// operation complete, or it FAILED, or timeout passes.
func (c *cli) wait(ctx context.Context, arn, opArn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := ""
	w := c.progress()
	for {
		d, workers, err := c.describe(ctx, arn)
		descBody := c.rec.lastBody()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out after %s waiting for connector %s (last state %s)", timeout, arn, last)
			}
			return err
		}
		opState := types.ConnectorOperationState("")
		var opErr *types.StateDescription
		if opArn != "" {
			op, err := c.client.DescribeConnectorOperation(ctx, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: aws.String(opArn)})
			if err != nil && ctx.Err() == nil {
				return err
			}
			if op != nil {
				opState, opErr = op.ConnectorOperationState, op.ErrorInfo
			}
		}
		now := string(d.ConnectorState)
		if opState != "" {
			now += ", operation " + string(opState)
		}
		if now != last {
			fmt.Fprintf(w, "%s  %s", time.Now().Format("15:04:05"), now)
			if workers > 0 {
				fmt.Fprintf(w, "  (%d worker%s)", workers, plural(workers))
			}
			fmt.Fprintln(w)
			last = now
		}
		switch {
		case d.ConnectorState == types.ConnectorStateFailed:
			fmt.Fprintf(w, "connector %s FAILED: %s\n", aws.ToString(d.ConnectorName), orString(describeState(d.StateDescription), "no description"))
			return errFailed
		case opState == types.ConnectorOperationStateUpdateFailed || opState == types.ConnectorOperationStateRollbackComplete ||
			opState == types.ConnectorOperationStateRollbackFailed:
			fmt.Fprintf(w, "operation %s: %s\n", opState, orString(describeState(opErr), "no description"))
			return errFailed
		case d.ConnectorState == types.ConnectorStateRunning && (opArn == "" || opState == types.ConnectorOperationStateUpdateComplete):
			if c.output == "json" {
				return writeIndented(c.stdout, descBody)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(w, "timed out after %s; connector %s is %s\n", timeout, aws.ToString(d.ConnectorName), last)
				return errFailed
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func readFile(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
