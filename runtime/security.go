package runtime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ferryhq/ferry/jobs"
)

// clientProp reads a Kafka client property for a sink's consumer: the
// connector's consumer.override.<name>, else the worker's consumer.<name>,
// else the worker's <name> (worker-wide client settings, as Kafka Connect
// reads security settings).
func clientProp(spec *jobs.WorkerSpec, name string) (string, bool) {
	if v, ok := consumerProp(spec, name); ok {
		return v, true
	}
	if v := strings.TrimSpace(spec.WorkerProperties[name]); v != "" {
		return v, true
	}
	return "", false
}

var jaasField = regexp.MustCompile(`(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// jaasCredentials extracts username and password from a sasl.jaas.config.
func jaasCredentials(jaas string) (user, pass string) {
	for _, m := range jaasField.FindAllStringSubmatch(jaas, -1) {
		switch m[1] {
		case "username":
			user = m[2]
		case "password":
			pass = m[2]
		}
	}
	return user, pass
}

// securityOpts turns security.protocol, ssl.* and sasl.* properties into
// client options. Secrets never appear in its errors.
func securityOpts(spec *jobs.WorkerSpec) ([]kgo.Opt, error) {
	protocol := "PLAINTEXT"
	if v, ok := clientProp(spec, "security.protocol"); ok {
		protocol = strings.ToUpper(v)
	}
	var useTLS, useSASL bool
	switch protocol {
	case "PLAINTEXT":
	case "SSL":
		useTLS = true
	case "SASL_PLAINTEXT":
		useSASL = true
	case "SASL_SSL":
		useTLS, useSASL = true, true
	default:
		return nil, fmt.Errorf("security.protocol %q is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", protocol)
	}
	var opts []kgo.Opt
	if useTLS {
		cfg, err := tlsConfig(spec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if useSASL {
		mech, err := saslMechanism(spec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func tlsConfig(spec *jobs.WorkerSpec) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var pemData []byte
	if loc, ok := clientProp(spec, "ssl.truststore.location"); ok {
		if t, _ := clientProp(spec, "ssl.truststore.type"); !strings.EqualFold(t, "PEM") {
			return nil, fmt.Errorf("ssl.truststore.location: only ssl.truststore.type=PEM trust stores are supported (got type %q); without a trust store the system roots are used", t)
		}
		b, err := os.ReadFile(loc)
		if err != nil {
			return nil, fmt.Errorf("ssl.truststore.location: %w", err)
		}
		pemData = b
	} else if certs, ok := clientProp(spec, "ssl.truststore.certificates"); ok {
		pemData = []byte(certs)
	}
	if pemData != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("ssl.truststore: no PEM certificates found")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func saslMechanism(spec *jobs.WorkerSpec) (sasl.Mechanism, error) {
	mech, ok := clientProp(spec, "sasl.mechanism")
	if !ok {
		return nil, fmt.Errorf("sasl.mechanism is required with a SASL security.protocol (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM)")
	}
	jaas, _ := clientProp(spec, "sasl.jaas.config")
	user, pass := jaasCredentials(jaas)
	needCreds := func() error {
		if user == "" || pass == "" {
			return fmt.Errorf("sasl.jaas.config must carry username=\"...\" and password=\"...\" for sasl.mechanism %s", mech)
		}
		return nil
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		if err := needCreds(); err != nil {
			return nil, err
		}
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		if err := needCreds(); err != nil {
			return nil, err
		}
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		if err := needCreds(); err != nil {
			return nil, err
		}
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	case "AWS_MSK_IAM":
		return saslaws.ManagedStreamingIAM(mskIAMAuth()), nil
	}
	return nil, fmt.Errorf("sasl.mechanism %q is not supported; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", mech)
}

// mskIAMAuth signs MSK IAM authentication with the AWS SDK's default
// credential chain (environment, profile, instance or task role).
func mskIAMAuth() func(context.Context) (saslaws.Auth, error) {
	var (
		mu    sync.Mutex
		creds aws.CredentialsProvider
	)
	return func(ctx context.Context) (saslaws.Auth, error) {
		mu.Lock()
		if creds == nil {
			cfg, err := awsconfig.LoadDefaultConfig(ctx)
			if err != nil {
				mu.Unlock()
				return saslaws.Auth{}, fmt.Errorf("load AWS configuration for MSK IAM: %w", err)
			}
			creds = cfg.Credentials
		}
		p := creds
		mu.Unlock()
		c, err := p.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, fmt.Errorf("AWS credentials for MSK IAM: %w", err)
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	}
}
