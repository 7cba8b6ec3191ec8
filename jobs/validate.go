package jobs

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one validation problem: the member path as the API names it
// (e.g. "capacity.autoScaling.mcuCount") and the rule it broke.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Rule }

// Problems is every validation problem found at once.
type Problems []FieldError

// Add records a problem.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
}

// Err returns nil when there are no problems, else p itself.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// Error lists every problem, one after the other, in a stable order.
func (p Problems) Error() string {
	parts := make([]string, len(p))
	for i, e := range p {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// McuCounts are the MCU sizes MSK Connect offers per worker.
var McuCounts = []int{1, 2, 4, 8}

// Connector name rule: MSK Connect allows 1..128 characters; Ferry also
// derives a Nomad job ID, a consumer group and NATS subjects from it, so it
// keeps to letters, digits and '-' (no '.', '*', '>' or spaces).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,127}$`)

// ValidName reports whether s may name a connector, plugin or worker configuration.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidateSpec checks a CreateConnector request's own rules (not those that
// need the store, such as whether a plugin exists). It returns every problem.
func ValidateSpec(s *ConnectorSpec) Problems {
	var p Problems
	switch {
	case s.ConnectorName == "":
		p.Add("connectorName", "is required")
	case !ValidName(s.ConnectorName):
		p.Add("connectorName", "must be 1 to 128 letters, digits or '-', starting with a letter or digit")
	}
	if len(s.ConnectorDescription) > 1024 {
		p.Add("connectorDescription", "must be at most 1024 characters")
	}
	p = append(p, ValidateCapacity("capacity", s.Capacity)...)
	if s.ConnectorConfiguration == nil {
		p.Add("connectorConfiguration", "is required")
	} else if strings.TrimSpace(s.ConnectorConfiguration["connector.class"]) == "" {
		p.Add("connectorConfiguration.connector.class", "is required")
	}
	if v, ok := s.ConnectorConfiguration["tasks.max"]; ok {
		if _, err := parsePositiveInt(v); err != nil {
			p.Add("connectorConfiguration.tasks.max", "must be a whole number ≥ 1, got %q", v)
		}
	}
	if strings.TrimSpace(s.KafkaCluster.ApacheKafkaCluster.BootstrapServers) == "" {
		p.Add("kafkaCluster.apacheKafkaCluster.bootstrapServers", "is required")
	}
	switch s.KafkaClusterClientAuthentication.AuthenticationType {
	case "NONE", "IAM":
	case "":
		p.Add("kafkaClusterClientAuthentication.authenticationType", "is required (NONE or IAM)")
	default:
		p.Add("kafkaClusterClientAuthentication.authenticationType", "must be NONE or IAM, got %q", s.KafkaClusterClientAuthentication.AuthenticationType)
	}
	switch s.KafkaClusterEncryptionInTransit.EncryptionType {
	case "PLAINTEXT", "TLS":
	case "":
		p.Add("kafkaClusterEncryptionInTransit.encryptionType", "is required (PLAINTEXT or TLS)")
	default:
		p.Add("kafkaClusterEncryptionInTransit.encryptionType", "must be PLAINTEXT or TLS, got %q", s.KafkaClusterEncryptionInTransit.EncryptionType)
	}
	if s.KafkaConnectVersion == "" {
		p.Add("kafkaConnectVersion", "is required")
	}
	switch s.NetworkType {
	case "", "IPV4", "DUAL":
	default:
		p.Add("networkType", "must be IPV4 or DUAL, got %q", s.NetworkType)
	}
	switch len(s.Plugins) {
	case 0:
		p.Add("plugins", "exactly one plugin is required")
	case 1:
		c := s.Plugins[0].CustomPlugin
		if c.CustomPluginArn == "" {
			p.Add("plugins[0].customPlugin.customPluginArn", "is required")
		}
		if c.Revision < 1 {
			p.Add("plugins[0].customPlugin.revision", "must be ≥ 1")
		}
	default:
		p.Add("plugins", "exactly one plugin is allowed, got %d", len(s.Plugins))
	}
	if s.ServiceExecutionRoleArn == "" {
		p.Add("serviceExecutionRoleArn", "is required")
	}
	if w := s.WorkerConfiguration; w != nil {
		if w.WorkerConfigurationArn == "" {
			p.Add("workerConfiguration.workerConfigurationArn", "is required")
		}
		if w.Revision < 1 {
			p.Add("workerConfiguration.revision", "must be ≥ 1")
		}
	}
	p = append(p, ValidateTags("tags", s.Tags)...)
	return p
}

// ValidateCapacity checks a capacity (create or update) under the member path field.
func ValidateCapacity(field string, c Capacity) Problems {
	var p Problems
	switch {
	case c.AutoScaling == nil && c.ProvisionedCapacity == nil:
		p.Add(field, "exactly one of autoScaling or provisionedCapacity is required")
		return p
	case c.AutoScaling != nil && c.ProvisionedCapacity != nil:
		p.Add(field, "exactly one of autoScaling or provisionedCapacity is allowed, got both")
		return p
	}
	if pc := c.ProvisionedCapacity; pc != nil {
		f := field + ".provisionedCapacity"
		checkMcu(&p, f+".mcuCount", pc.McuCount)
		if pc.WorkerCount < 1 {
			p.Add(f+".workerCount", "must be ≥ 1, got %d", pc.WorkerCount)
		}
	}
	if a := c.AutoScaling; a != nil {
		f := field + ".autoScaling"
		checkMcu(&p, f+".mcuCount", a.McuCount)
		if a.MinWorkerCount < 1 {
			p.Add(f+".minWorkerCount", "must be ≥ 1, got %d", a.MinWorkerCount)
		}
		if a.MaxWorkerCount < 1 {
			p.Add(f+".maxWorkerCount", "must be ≥ 1, got %d", a.MaxWorkerCount)
		}
		if a.MinWorkerCount >= 1 && a.MaxWorkerCount >= 1 && a.MinWorkerCount > a.MaxWorkerCount {
			p.Add(f+".minWorkerCount", "must be ≤ maxWorkerCount (%d), got %d", a.MaxWorkerCount, a.MinWorkerCount)
		}
		in, out := 0, 0
		if a.ScaleInPolicy == nil {
			p.Add(f+".scaleInPolicy", "is required")
		} else {
			in = a.ScaleInPolicy.CpuUtilizationPercentage
			if in < 1 || in > 100 {
				p.Add(f+".scaleInPolicy.cpuUtilizationPercentage", "must be 1..100, got %d", in)
			}
		}
		if a.ScaleOutPolicy == nil {
			p.Add(f+".scaleOutPolicy", "is required")
		} else {
			out = a.ScaleOutPolicy.CpuUtilizationPercentage
			if out < 1 || out > 100 {
				p.Add(f+".scaleOutPolicy.cpuUtilizationPercentage", "must be 1..100, got %d", out)
			}
		}
		if in >= 1 && in <= 100 && out >= 1 && out <= 100 && in >= out {
			p.Add(f+".scaleInPolicy.cpuUtilizationPercentage", "must be below scaleOutPolicy.cpuUtilizationPercentage (%d), got %d", out, in)
		}
		if a.MaxAutoscalingTaskCount != 0 && a.MaxAutoscalingTaskCount < a.MaxWorkerCount {
			p.Add(f+".maxAutoscalingTaskCount", "must be ≥ maxWorkerCount (%d), got %d", a.MaxWorkerCount, a.MaxAutoscalingTaskCount)
		}
	}
	return p
}

func checkMcu(p *Problems, field string, n int) {
	for _, m := range McuCounts {
		if n == m {
			return
		}
	}
	p.Add(field, "must be one of 1, 2, 4, 8, got %d", n)
}

// ValidateTags checks tag keys (1..128 characters) and values (≤ 256).
func ValidateTags(field string, tags map[string]string) Problems {
	var p Problems
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) < 1 || len(k) > 128 {
			p.Add(field, "tag key %q must be 1 to 128 characters", k)
		}
		if len(tags[k]) > 256 {
			p.Add(field+"."+k, "tag value must be at most 256 characters")
		}
	}
	if len(tags) > 200 {
		p.Add(field, "at most 200 tags, got %d", len(tags))
	}
	return p
}

func parsePositiveInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("%d < 1", n)
	}
	return n, nil
}
