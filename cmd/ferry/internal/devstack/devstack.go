// Package devstack starts the embedded infrastructure of `ferry dev`: NATS
// with JetStream, a Kafka-protocol broker (franz-go's kfake) and an S3 API
// (gofakes3). Each is a real protocol server listening on its own address,
// keeps its state under one data directory, and can be disabled when the
// user points Ferry at a real one.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rs/zerolog"
)

// Flag names of `ferry dev` that set the embedded servers' addresses; they
// appear in errors so a user knows what to change.
const (
	FlagNATSListen  = "nats-listen"
	FlagKafkaListen = "kafka-listen"
	FlagS3Listen    = "s3-listen"
	// Flags that point `ferry dev` at a real server instead.
	FlagNATS       = "nats"
	FlagKafka      = "kafka"
	FlagS3Endpoint = "s3-endpoint"
)

// Defaults of Config.
const (
	DefaultNATSAddr        = "127.0.0.1:4222"
	DefaultKafkaAddr       = "127.0.0.1:9092"
	DefaultS3Addr          = "127.0.0.1:9000"
	DefaultKafkaPartitions = 3
	DefaultBucket          = "ferry-dev"
	// AccessKeyID and SecretAccessKey are the credentials Ferry hands to
	// workers for the embedded S3. The embedded S3 accepts any credentials;
	// these only have to be non-empty for S3 clients to sign requests.
	AccessKeyID     = "ferry"
	SecretAccessKey = "ferry"
)

// Config says which embedded servers to start, where, and where their state lives.
type Config struct {
	// DataDir holds nats/, kafka/ and s3/ (required).
	DataDir string
	NATS    NATSConfig
	Kafka   KafkaConfig
	S3      S3Config
	// Logger receives the embedded servers' warnings and errors.
	Logger zerolog.Logger
}

// NATSConfig configures the embedded NATS server.
type NATSConfig struct {
	// Disabled skips the embedded server (the user runs a real one).
	Disabled bool
	// Addr is the client listen address, host:port (port 0: any free port).
	Addr string
}

// KafkaConfig configures the embedded Kafka broker.
type KafkaConfig struct {
	// Disabled skips the embedded broker (the user runs a real Kafka).
	Disabled bool
	// Addr is the listen address, host:port (port 0: any free port). It is
	// also the address the broker advertises, so the host must be one
	// clients can reach (not 0.0.0.0).
	Addr string
	// Partitions is the partition count of auto-created topics and of
	// topics created with -1 partitions.
	Partitions int
}

// S3Config configures the embedded S3 server.
type S3Config struct {
	// Disabled skips the embedded server (the user runs a real S3).
	Disabled bool
	// Addr is the HTTP listen address, host:port (port 0: any free port).
	Addr string
	// Bucket is created on start; other buckets are created on first use.
	Bucket string
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.NATS.Addr == "" {
		c.NATS.Addr = DefaultNATSAddr
	}
	if c.Kafka.Addr == "" {
		c.Kafka.Addr = DefaultKafkaAddr
	}
	if c.Kafka.Partitions == 0 {
		c.Kafka.Partitions = DefaultKafkaPartitions
	}
	if c.S3.Addr == "" {
		c.S3.Addr = DefaultS3Addr
	}
	if c.S3.Bucket == "" {
		c.S3.Bucket = DefaultBucket
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if !c.NATS.Disabled {
		errs = append(errs, checkAddr(FlagNATSListen, c.NATS.Addr))
	}
	if !c.Kafka.Disabled {
		errs = append(errs, checkAddr(FlagKafkaListen, c.Kafka.Addr))
		if c.Kafka.Partitions < 1 {
			errs = append(errs, fmt.Errorf("kafka partitions must be at least 1, got %d", c.Kafka.Partitions))
		}
	}
	if !c.S3.Disabled {
		errs = append(errs, checkAddr(FlagS3Listen, c.S3.Addr))
		if c.S3.Bucket == "" {
			errs = append(errs, errors.New("s3 bucket is required"))
		}
	}
	return errors.Join(errs...)
}

func checkAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--%s %q: %w", flag, addr, err)
	}
	if host == "" {
		return fmt.Errorf("--%s %q: a host is required (e.g. 127.0.0.1)", flag, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--%s %q: port must be a number 0-65535", flag, addr)
	}
	return nil
}

// Stack is the running set of embedded servers.
type Stack struct {
	cfg   Config
	log   zerolog.Logger
	nats  *natsServer
	kafka *kafkaBroker
	s3    *s3Server
}

// Start starts every enabled server and returns when all accept
// connections. On error, whatever was started is closed again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev stack config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Stack{cfg: cfg, log: cfg.Logger.With().Str("component", "devstack").Logger()}
	var err error
	if !cfg.NATS.Disabled {
		if s.nats, err = startNATS(ctx, cfg.NATS, filepath.Join(cfg.DataDir, "nats"), s.log); err != nil {
			s.Close()
			return nil, err
		}
		s.log.Info().Str("url", s.nats.url).Msg("embedded nats with jetstream started")
	}
	if !cfg.Kafka.Disabled {
		if s.kafka, err = startKafka(cfg.Kafka, filepath.Join(cfg.DataDir, "kafka"), s.log); err != nil {
			s.Close()
			return nil, err
		}
		s.log.Info().Str("addr", s.kafka.addr).Msg("embedded kafka started")
	}
	if !cfg.S3.Disabled {
		if s.s3, err = startS3(ctx, cfg.S3, filepath.Join(cfg.DataDir, "s3"), s.log); err != nil {
			s.Close()
			return nil, err
		}
		s.log.Info().Str("endpoint", s.s3.endpoint).Str("bucket", cfg.S3.Bucket).Msg("embedded s3 started")
	}
	return s, nil
}

// Close stops every started server, S3 and Kafka first, then NATS. It is
// safe to call more than once.
func (s *Stack) Close() {
	if s.s3 != nil {
		if err := s.s3.close(); err != nil {
			s.log.Warn().Err(err).Msg("close embedded s3")
		}
		s.s3 = nil
	}
	if s.kafka != nil {
		s.kafka.close()
		s.kafka = nil
	}
	if s.nats != nil {
		s.nats.close()
		s.nats = nil
	}
}

// NATSURL is the embedded NATS server's client URL (nats://host:port), or
// "" when it is disabled.
func (s *Stack) NATSURL() string {
	if s.nats == nil {
		return ""
	}
	return s.nats.url
}

// KafkaAddr is the embedded broker's bootstrap address (host:port), or ""
// when it is disabled.
func (s *Stack) KafkaAddr() string {
	if s.kafka == nil {
		return ""
	}
	return s.kafka.addr
}

// S3Endpoint is the embedded S3's endpoint URL (http://host:port), or ""
// when it is disabled.
func (s *Stack) S3Endpoint() string {
	if s.s3 == nil {
		return ""
	}
	return s.s3.endpoint
}

// S3Bucket is the bucket created on start.
func (s *Stack) S3Bucket() string { return s.cfg.S3.Bucket }

// WorkerDefaults is the connector configuration that points S3 connectors
// at the embedded S3 (endpoint, path-style access, credentials), to be
// filled in under every connector's own configuration. It is empty when the
// embedded S3 is disabled. It holds credentials: do not log it.
func (s *Stack) WorkerDefaults() map[string]string {
	if s.s3 == nil {
		return map[string]string{}
	}
	return map[string]string{
		"store.url":                    s.s3.endpoint,
		"s3.path.style.access.enabled": "true",
		"aws.access.key.id":            AccessKeyID,
		"aws.secret.access.key":        SecretAccessKey,
	}
}

// listen opens a TCP listener on addr and turns "address in use" into an
// error naming the flag to change.
func listen(part, flag, useFlag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &AddrInUseError{Part: part, Addr: addr, Flag: flag, UseFlag: useFlag, Err: err}
		}
		return nil, fmt.Errorf("embedded %s: listen on %s: %w", part, addr, err)
	}
	return ln, nil
}

// AddrInUseError says an embedded server could not listen because its
// address is taken, and which flag changes it.
type AddrInUseError struct {
	Part string // "nats", "kafka" or "s3"
	Addr string
	Flag string
	// UseFlag points ferry dev at a running server instead.
	UseFlag string
	Err     error
}

// Error names the address and the flag to change.
func (e *AddrInUseError) Error() string {
	return fmt.Sprintf("embedded %s: address %s is already in use (another ferry dev, or a real %s, may be running): "+
		"stop it, choose another address with --%s, or use the running %s with --%s",
		e.Part, e.Addr, e.Part, e.Flag, e.Part, e.UseFlag)
}

// Unwrap returns the listen error.
func (e *AddrInUseError) Unwrap() error { return e.Err }
