package connectorcli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// capacityText is a capacity in a few words, e.g. "2 workers x 1 MCU" or
// "autoscaled 1-4 workers x 2 MCU (cpu 20-80%)".
func capacityText(c *types.CapacityDescription) string {
	switch {
	case c == nil:
		return "-"
	case c.ProvisionedCapacity != nil:
		p := c.ProvisionedCapacity
		return fmt.Sprintf("%d worker%s x %d MCU", p.WorkerCount, plural(int(p.WorkerCount)), p.McuCount)
	case c.AutoScaling != nil:
		a := c.AutoScaling
		s := fmt.Sprintf("autoscaled %d-%d workers x %d MCU", a.MinWorkerCount, a.MaxWorkerCount, a.McuCount)
		if a.ScaleInPolicy != nil && a.ScaleOutPolicy != nil {
			s += fmt.Sprintf(" (cpu %d-%d%%)", a.ScaleInPolicy.CpuUtilizationPercentage, a.ScaleOutPolicy.CpuUtilizationPercentage)
		}
		return s
	}
	return "-"
}

func timeText(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func workersText(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// printList prints connectors as a table; current maps ARNs to current
// worker counts where the server reports them.
func printList(w io.Writer, cs []types.ConnectorSummary, current map[string]int) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no connectors")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATE\tWORKERS\tCAPACITY\tCREATED\tARN")
	for _, c := range cs {
		arn := aws.ToString(c.ConnectorArn)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", aws.ToString(c.ConnectorName), c.ConnectorState,
			workersText(current[arn]), capacityText(c.Capacity), timeText(c.CreationTime), arn)
	}
	return tw.Flush()
}

// printDescribe prints one connector for a person: identity and state,
// capacity, Kafka, plugin, configuration (secrets as the API returned
// them) and recent operations.
func printDescribe(w io.Writer, d *kafkaconnect.DescribeConnectorOutput, workers int, ops []types.ConnectorOperationSummary) error {
	tw := newTable(w)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	row("Name", aws.ToString(d.ConnectorName))
	row("ARN", aws.ToString(d.ConnectorArn))
	if desc := aws.ToString(d.ConnectorDescription); desc != "" {
		row("Description", desc)
	}
	row("State", string(d.ConnectorState))
	if sd := describeState(d.StateDescription); sd != "" {
		row("State description", sd)
	}
	row("Capacity", capacityText(d.Capacity))
	if d.Capacity != nil && d.Capacity.AutoScaling != nil && d.Capacity.AutoScaling.MaxAutoscalingTaskCount > 0 {
		row("Max autoscaling tasks", strconv.Itoa(int(d.Capacity.AutoScaling.MaxAutoscalingTaskCount)))
	}
	row("Workers", workersText(workers))
	if d.KafkaCluster != nil && d.KafkaCluster.ApacheKafkaCluster != nil {
		row("Bootstrap servers", aws.ToString(d.KafkaCluster.ApacheKafkaCluster.BootstrapServers))
	}
	for _, p := range d.Plugins {
		if p.CustomPlugin != nil {
			row("Plugin", fmt.Sprintf("%s (revision %d)", aws.ToString(p.CustomPlugin.CustomPluginArn), p.CustomPlugin.Revision))
		}
	}
	if wc := d.WorkerConfiguration; wc != nil {
		row("Worker configuration", fmt.Sprintf("%s (revision %d)", aws.ToString(wc.WorkerConfigurationArn), wc.Revision))
	}
	row("Kafka Connect version", aws.ToString(d.KafkaConnectVersion))
	row("Created", timeText(d.CreationTime))
	row("Current version", aws.ToString(d.CurrentVersion))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nConfiguration:")
	tw = newTable(w)
	for _, k := range sortedKeys(d.ConnectorConfiguration) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, d.ConnectorConfiguration[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(ops) > 0 {
		fmt.Fprintln(w, "\nRecent operations:")
		return writeOperations(w, ops, "  ")
	}
	return nil
}

// printOperations prints a connector's operations as a table.
func printOperations(w io.Writer, ops []types.ConnectorOperationSummary) error {
	if len(ops) == 0 {
		_, err := fmt.Fprintln(w, "no operations")
		return err
	}
	return writeOperations(w, ops, "")
}

func writeOperations(w io.Writer, ops []types.ConnectorOperationSummary, indent string) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "%sTYPE\tSTATE\tSTARTED\tENDED\tARN\n", indent)
	for _, o := range ops {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", indent, o.ConnectorOperationType, o.ConnectorOperationState,
			timeText(o.CreationTime), timeText(o.EndTime), aws.ToString(o.ConnectorOperationArn))
	}
	return tw.Flush()
}

// printOperation prints one operation: its steps and what it changes.
func printOperation(w io.Writer, o *kafkaconnect.DescribeConnectorOperationOutput) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Operation:\t%s\n", aws.ToString(o.ConnectorOperationArn))
	fmt.Fprintf(tw, "Connector:\t%s\n", aws.ToString(o.ConnectorArn))
	fmt.Fprintf(tw, "Type:\t%s\n", o.ConnectorOperationType)
	fmt.Fprintf(tw, "State:\t%s\n", o.ConnectorOperationState)
	if e := describeState(o.ErrorInfo); e != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", e)
	}
	fmt.Fprintf(tw, "Started:\t%s\n", timeText(o.CreationTime))
	fmt.Fprintf(tw, "Ended:\t%s\n", timeText(o.EndTime))
	if o.OriginWorkerSetting != nil || o.TargetWorkerSetting != nil {
		fmt.Fprintf(tw, "Capacity:\t%s → %s\n", workerSettingText(o.OriginWorkerSetting), workerSettingText(o.TargetWorkerSetting))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(o.OperationSteps) > 0 {
		fmt.Fprintln(w, "\nSteps:")
		tw = newTable(w)
		for _, s := range o.OperationSteps {
			fmt.Fprintf(tw, "  %s\t%s\n", s.StepType, s.StepState)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if changed := configDiff(o.OriginConnectorConfiguration, o.TargetConnectorConfiguration); len(changed) > 0 {
		fmt.Fprintln(w, "\nConfiguration changes:")
		for _, line := range changed {
			fmt.Fprintln(w, "  "+line)
		}
	}
	return nil
}

func workerSettingText(s *types.WorkerSetting) string {
	if s == nil {
		return "-"
	}
	return capacityText(s.Capacity)
}

// configDiff lists keys added (+), removed (-) and changed (~).
func configDiff(from, to map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(from) {
		if v, ok := to[k]; !ok {
			out = append(out, "- "+k)
		} else if v != from[k] {
			out = append(out, fmt.Sprintf("~ %s: %s → %s", k, from[k], v))
		}
	}
	for _, k := range sortedKeys(to) {
		if _, ok := from[k]; !ok {
			out = append(out, fmt.Sprintf("+ %s=%s", k, to[k]))
		}
	}
	return out
}
