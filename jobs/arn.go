package jobs

import (
	"fmt"
	"strings"
)

// Resource kinds in ARNs.
const (
	KindConnector           = "connector"
	KindCustomPlugin        = "custom-plugin"
	KindWorkerConfiguration = "worker-configuration"
	KindConnectorOperation  = "connector-operation"
)

// ARN is a parsed kafkaconnect ARN:
// arn:aws:kafkaconnect:<region>:<account>:<kind>/<name>/<id>[/<sub>].
type ARN struct {
	Region, Account, Kind, Name, ID string
	Sub                             string // the operation id for connector-operation ARNs
}

func (a ARN) String() string {
	s := fmt.Sprintf("arn:aws:kafkaconnect:%s:%s:%s/%s/%s", a.Region, a.Account, a.Kind, a.Name, a.ID)
	if a.Sub != "" {
		s += "/" + a.Sub
	}
	return s
}

// ParseARN parses a kafkaconnect ARN.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kafkaconnect" {
		return ARN{}, fmt.Errorf("%q is not a kafkaconnect ARN", s)
	}
	res := strings.Split(parts[5], "/")
	if len(res) < 3 || len(res) > 4 || res[1] == "" || res[2] == "" {
		return ARN{}, fmt.Errorf("%q is not a kafkaconnect ARN: resource must be <kind>/<name>/<id>", s)
	}
	a := ARN{Region: parts[3], Account: parts[4], Kind: res[0], Name: res[1], ID: res[2]}
	if len(res) == 4 {
		a.Sub = res[3]
	}
	switch a.Kind {
	case KindConnector, KindCustomPlugin, KindWorkerConfiguration:
		if a.Sub != "" {
			return ARN{}, fmt.Errorf("%q is not a kafkaconnect ARN: too many path parts", s)
		}
	case KindConnectorOperation:
		if a.Sub == "" {
			return ARN{}, fmt.Errorf("%q is not a connector operation ARN", s)
		}
	default:
		return ARN{}, fmt.Errorf("%q is not a kafkaconnect ARN: unknown resource kind %q", s, a.Kind)
	}
	return a, nil
}
