package nomad

import (
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// ClientConfig is how to reach Nomad, in plain values, so that cmd/ferry
// can configure the Deployer without importing Nomad's API package. Empty
// fields fall back to the environment the nomad CLI reads (NOMAD_ADDR,
// NOMAD_TOKEN, NOMAD_REGION, NOMAD_NAMESPACE, NOMAD_CACERT, NOMAD_CLIENT_CERT,
// NOMAD_CLIENT_KEY, NOMAD_TLS_SERVER_NAME, NOMAD_SKIP_VERIFY), then to
// http://127.0.0.1:4646.
type ClientConfig struct {
	Address   string
	Token     string // ACL token: never log it
	Region    string
	Namespace string
	// TLS files (PEM) and options.
	CACert, ClientCert, ClientKey string
	TLSServerName                 string
	TLSSkipVerify                 bool
}

// NewClient returns a Nomad API client for c.
func NewClient(c ClientConfig) (*api.Client, error) {
	cfg := api.DefaultConfig()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Address, c.Address)
	set(&cfg.SecretID, c.Token)
	set(&cfg.Region, c.Region)
	set(&cfg.Namespace, c.Namespace)
	set(&cfg.TLSConfig.CACert, c.CACert)
	set(&cfg.TLSConfig.ClientCert, c.ClientCert)
	set(&cfg.TLSConfig.ClientKey, c.ClientKey)
	set(&cfg.TLSConfig.TLSServerName, c.TLSServerName)
	if c.TLSSkipVerify {
		cfg.TLSConfig.Insecure = true
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", cfg.Address, err)
	}
	return client, nil
}
