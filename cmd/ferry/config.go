package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/cmd/ferry/internal/devstack"
	"github.com/ferryhq/ferry/nomad"
	"github.com/ferryhq/ferry/scheduler/autoscale"
	"github.com/rs/zerolog"
)

// logConfig is the logging part of the dev and server configurations.
type logConfig struct {
	Level  string // trace, debug, info, warn, error
	Format string // console or json
}

func (c *logConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&c.Format, "log-format", "console", "log format on stderr: console (for people) or json")
}

func (c logConfig) problems() []error {
	var errs []error
	if _, err := zerolog.ParseLevel(c.Level); err != nil || c.Level == "" {
		errs = append(errs, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.Level))
	}
	if c.Format != "console" && c.Format != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want console or json", c.Format))
	}
	return errs
}

// newLogger returns the logger the configuration describes, writing to w
// and, when extra is not nil, JSON lines to extra too.
func (c logConfig) newLogger(w io.Writer, extra io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	out := w
	if c.Format == "console" {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)}
	}
	if extra != nil {
		out = zerolog.MultiLevelWriter(out, extra)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger()
}

// devConfig configures `ferry dev`: the whole of Ferry in one process, with
// embedded NATS, Kafka and S3 unless the user points at real ones.
type devConfig struct {
	// DataDir holds all state: control plane (NATS JetStream), embedded
	// Kafka and S3 data, worker scratch directories and the log file.
	DataDir string
	// Listen is the MSK Connect API's listen address.
	Listen string
	// Region and Account go into ARNs.
	Region  string
	Account string

	// NATS is the URL of a real NATS server with JetStream; empty starts
	// the embedded one on NATSListen.
	NATS       string
	NATSListen string
	// Kafka is the bootstrap servers of a real Kafka; empty starts the
	// embedded broker on KafkaListen.
	Kafka           string
	KafkaListen     string
	KafkaPartitions int
	// S3Endpoint is the URL of a real S3-compatible endpoint; empty starts
	// the embedded S3 on S3Listen with bucket S3Bucket.
	S3Endpoint string
	S3Listen   string
	S3Bucket   string
	// Nomad is the address of a Nomad agent; empty runs workers as local
	// child processes.
	Nomad string
	// NomadMHzPerVCPU is the Nomad CPU share of one vCPU of an MCU.
	NomadMHzPerVCPU int

	// LogFile receives every log line as JSON, workers' included; "" means
	// <DataDir>/ferry-dev.log, "off" disables it.
	LogFile string
	Log     logConfig
	// MetricsInterval is how often workers report metrics and status.
	MetricsInterval time.Duration
	// Autoscaler tunes the autoscaler of autoscaled connectors.
	Autoscaler autoscale.Settings
}

func (c *devConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./.ferry", "directory for all state; delete it to start from scratch")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8083", "listen address of the MSK Connect API")
	fs.StringVar(&c.Region, "region", "us-east-1", "region in ARNs")
	fs.StringVar(&c.Account, "account", "000000000000", "account id in ARNs")
	fs.StringVar(&c.NATS, devstack.FlagNATS, "", "URL of a real NATS server with JetStream (default: embedded)")
	fs.StringVar(&c.NATSListen, devstack.FlagNATSListen, devstack.DefaultNATSAddr, "listen address of the embedded NATS")
	fs.StringVar(&c.Kafka, devstack.FlagKafka, "", "bootstrap servers of a real Kafka, comma separated (default: embedded)")
	fs.StringVar(&c.KafkaListen, devstack.FlagKafkaListen, devstack.DefaultKafkaAddr, "listen address of the embedded Kafka")
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", devstack.DefaultKafkaPartitions, "partitions of topics the embedded Kafka creates automatically")
	fs.StringVar(&c.S3Endpoint, devstack.FlagS3Endpoint, "", "URL of a real S3-compatible endpoint (default: embedded)")
	fs.StringVar(&c.S3Listen, devstack.FlagS3Listen, devstack.DefaultS3Addr, "listen address of the embedded S3")
	fs.StringVar(&c.S3Bucket, "s3-bucket", devstack.DefaultBucket, "bucket the embedded S3 creates on start")
	fs.StringVar(&c.Nomad, "nomad", "", "address of a Nomad agent, e.g. http://127.0.0.1:4646 (default: workers run as local child processes)")
	fs.IntVar(&c.NomadMHzPerVCPU, "nomad-mhz-per-vcpu", 2000, "with --nomad: Nomad CPU MHz reserved per vCPU of an MCU (lower it to fit more workers on a small machine)")
	fs.StringVar(&c.LogFile, "log-file", "", `JSON log file, workers' lines included (default <data-dir>/ferry-dev.log; "off" disables)`)
	fs.DurationVar(&c.MetricsInterval, "metrics-interval", 5*time.Second, "how often workers report metrics and status")
	registerAutoscaler(fs, &c.Autoscaler)
	c.Log.register(fs)
}

// Validate reports every problem of c at once.
func (c devConfig) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	errs = append(errs, checkListen("listen", c.Listen))
	errs = append(errs, checkARNPart("region", c.Region), checkARNPart("account", c.Account))
	if c.NATS != "" {
		errs = append(errs, checkURL("nats", c.NATS, "nats", "tls"))
	} else {
		errs = append(errs, checkListen(devstack.FlagNATSListen, c.NATSListen))
	}
	if c.Kafka != "" {
		errs = append(errs, checkBrokers("kafka", c.Kafka))
	} else {
		errs = append(errs, checkListen(devstack.FlagKafkaListen, c.KafkaListen))
		if c.KafkaPartitions < 1 {
			errs = append(errs, fmt.Errorf("--kafka-partitions %d: must be at least 1", c.KafkaPartitions))
		}
	}
	if c.S3Endpoint != "" {
		errs = append(errs, checkURL("s3-endpoint", c.S3Endpoint, "http", "https"))
	} else {
		errs = append(errs, checkListen(devstack.FlagS3Listen, c.S3Listen))
		if c.S3Bucket == "" {
			errs = append(errs, errors.New("--s3-bucket is required"))
		}
	}
	if c.Nomad != "" {
		errs = append(errs, checkURL("nomad", c.Nomad, "http", "https"))
		if c.NomadMHzPerVCPU < 100 {
			errs = append(errs, fmt.Errorf("--nomad-mhz-per-vcpu %d: must be at least 100", c.NomadMHzPerVCPU))
		}
	}
	if c.MetricsInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--metrics-interval %s: must be at least 100ms", c.MetricsInterval))
	}
	errs = append(errs, c.Autoscaler.Validate())
	errs = append(errs, c.Log.problems()...)
	return errors.Join(errs...)
}

// logFilePath is where the JSON log goes, or "" for nowhere.
func (c devConfig) logFilePath() string {
	switch c.LogFile {
	case "off":
		return ""
	case "":
		return filepath.Join(c.DataDir, "ferry-dev.log")
	}
	return c.LogFile
}

// stackConfig is the embedded stack's configuration: every part the user
// did not point elsewhere.
func (c devConfig) stackConfig(log zerolog.Logger) devstack.Config {
	return devstack.Config{
		DataDir: c.DataDir,
		NATS:    devstack.NATSConfig{Disabled: c.NATS != "", Addr: c.NATSListen},
		Kafka:   devstack.KafkaConfig{Disabled: c.Kafka != "", Addr: c.KafkaListen, Partitions: c.KafkaPartitions},
		S3:      devstack.S3Config{Disabled: c.S3Endpoint != "", Addr: c.S3Listen, Bucket: c.S3Bucket},
		Logger:  log,
	}
}

// serverConfig configures `ferry server`: the control plane against real
// NATS and Nomad.
type serverConfig struct {
	// Listen is the MSK Connect API's listen address.
	Listen string
	// Region and Account go into ARNs.
	Region  string
	Account string
	// NATS is the URL of the NATS cluster (JetStream enabled) holding
	// Ferry's state and carrying worker metrics.
	NATS string
	// WorkerNATS is the NATS URL handed to workers (default NATS), for when
	// workers reach NATS by another address than the server does.
	WorkerNATS string
	// NATSReplicas is the JetStream replica count of Ferry's KV buckets
	// (state and the leader lock): 3 on a three-node NATS cluster.
	NATSReplicas int
	// DataDir holds the local executor's worker specs and scratch
	// directories when Nomad is empty.
	DataDir string
	// Nomad is the Nomad API address (empty: workers run as local child
	// processes, as in ferry dev); NomadNamespace and NomadRegion
	// select where connector jobs go.
	Nomad          string
	NomadNamespace string
	NomadRegion    string
	// NomadToken is the ACL token (never logged).
	NomadToken string
	// NomadCACert, NomadClientCert and NomadClientKey are PEM files for
	// Nomad's TLS; NomadTLSServerName overrides the name checked.
	NomadCACert, NomadClientCert, NomadClientKey string
	NomadTLSServerName                           string
	// Datacenters are the Nomad datacenters connector jobs may run in;
	// NodePool the node pool (empty: Nomad's default).
	Datacenters []string
	NodePool    string
	// Driver is the Nomad task driver of workers: raw_exec, exec or docker
	// (default docker with WorkerImage, exec otherwise).
	Driver string
	// WorkerImage is the container image of `ferry worker` for Nomad's
	// docker driver.
	WorkerImage string
	// WorkerCommand is the path of the ferry binary on Nomad clients, for
	// the raw_exec and exec drivers.
	WorkerCommand string
	// WorkerArtifact, instead of WorkerCommand, is a URL of an archive
	// holding the ferry binary (WorkerArtifactBinary inside it) that Nomad
	// downloads for every worker, checked against WorkerArtifactChecksum
	// ("sha256:…") when set.
	WorkerArtifact, WorkerArtifactChecksum, WorkerArtifactBinary string
	// MHzPerVCPU is the Nomad CPU share of one vCPU of an MCU; ReserveCores
	// reserves whole cores (one per MCU) instead.
	MHzPerVCPU   int
	ReserveCores bool
	// MetricsInterval is how often workers report metrics and status.
	MetricsInterval time.Duration
	// Autoscaler tunes the autoscaler of autoscaled connectors.
	Autoscaler autoscale.Settings
	// AssumeExecutionRole has workers assume each connector's
	// serviceExecutionRoleArn for the AWS calls its connector makes.
	AssumeExecutionRole bool
	// PluginURL is the base URL at which Nomad clients reach this server's
	// custom plugin files (default http://<host name>:<port> of --listen).
	PluginURL string
	// PluginS3 is how custom plugin files are read from S3: an endpoint
	// for S3-compatible stores, the region, path-style addressing;
	// credentials come from the AWS SDK's default chain.
	PluginS3Endpoint  string
	PluginS3Region    string
	PluginS3PathStyle bool
	Log               logConfig
}

func (c *serverConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8083", "listen address of the MSK Connect API")
	fs.StringVar(&c.Region, "region", "us-east-1", "region in ARNs")
	fs.StringVar(&c.Account, "account", "000000000000", "account id in ARNs")
	fs.StringVar(&c.NATS, "nats", envOr("FERRY_NATS_URL", "nats://127.0.0.1:4222"), "URL of NATS with JetStream (env FERRY_NATS_URL)")
	fs.StringVar(&c.WorkerNATS, "worker-nats", "", "NATS URL handed to workers (default --nats)")
	fs.IntVar(&c.NATSReplicas, "nats-replicas", 1, "JetStream replicas of Ferry's KV buckets (3 on a three-node NATS cluster)")
	fs.StringVar(&c.Nomad, "nomad", os.Getenv("NOMAD_ADDR"), "Nomad API address (env NOMAD_ADDR; empty: workers run as child processes of this server)")
	fs.StringVar(&c.DataDir, "data-dir", "./.ferry-server", "worker specs and scratch space when workers run as child processes (no --nomad)")
	fs.StringVar(&c.NomadNamespace, "nomad-namespace", envOr("NOMAD_NAMESPACE", "default"), "Nomad namespace of connector jobs (env NOMAD_NAMESPACE)")
	fs.StringVar(&c.NomadRegion, "nomad-region", os.Getenv("NOMAD_REGION"), "Nomad region of connector jobs (env NOMAD_REGION; default the agent's)")
	fs.StringVar(&c.NomadToken, "nomad-token", os.Getenv("NOMAD_TOKEN"), "Nomad ACL token (env NOMAD_TOKEN; prefer the environment to the command line)")
	fs.StringVar(&c.NomadCACert, "nomad-ca-cert", os.Getenv("NOMAD_CACERT"), "PEM file of the CA that signed Nomad's certificate (env NOMAD_CACERT)")
	fs.StringVar(&c.NomadClientCert, "nomad-client-cert", os.Getenv("NOMAD_CLIENT_CERT"), "PEM client certificate for Nomad's mTLS (env NOMAD_CLIENT_CERT)")
	fs.StringVar(&c.NomadClientKey, "nomad-client-key", os.Getenv("NOMAD_CLIENT_KEY"), "PEM client key for Nomad's mTLS (env NOMAD_CLIENT_KEY)")
	fs.StringVar(&c.NomadTLSServerName, "nomad-tls-server-name", os.Getenv("NOMAD_TLS_SERVER_NAME"), "server name checked in Nomad's certificate (env NOMAD_TLS_SERVER_NAME)")
	fs.Func("datacenter", `Nomad datacenter connector jobs may run in; repeat for several (default "*")`, func(s string) error {
		c.Datacenters = append(c.Datacenters, s)
		return nil
	})
	fs.StringVar(&c.NodePool, "nomad-node-pool", "", "Nomad node pool of connector jobs (default Nomad's)")
	fs.StringVar(&c.Driver, "driver", "", "Nomad task driver of workers: raw_exec, exec or docker (default docker with --worker-image, exec otherwise)")
	fs.StringVar(&c.WorkerImage, "worker-image", "", "container image of ferry for the docker driver")
	fs.StringVar(&c.WorkerCommand, "worker-command", "/usr/local/bin/ferry", "path of the ferry binary on Nomad clients (raw_exec and exec drivers)")
	fs.StringVar(&c.WorkerArtifact, "worker-artifact", "", "URL of an archive (.tar.gz, .zip, ...) holding the ferry binary, which Nomad downloads for every worker instead of --worker-command (raw_exec and exec drivers)")
	fs.StringVar(&c.WorkerArtifactChecksum, "worker-artifact-checksum", "", "checksum of --worker-artifact, type:value (e.g. sha256:…); Nomad refuses a download that does not match")
	fs.StringVar(&c.WorkerArtifactBinary, "worker-artifact-binary", "ferry", "path of the ferry binary inside --worker-artifact")
	fs.IntVar(&c.MHzPerVCPU, "nomad-mhz-per-vcpu", 2000, "Nomad CPU MHz reserved per vCPU of an MCU")
	fs.IntVar(&c.MHzPerVCPU, "mhz-per-vcpu", 2000, "deprecated name of --nomad-mhz-per-vcpu")
	fs.BoolVar(&c.ReserveCores, "nomad-reserve-cores", false, "reserve whole cores (one per MCU) instead of --nomad-mhz-per-vcpu MHz")
	fs.DurationVar(&c.MetricsInterval, "metrics-interval", 5*time.Second, "how often workers report metrics and status")
	registerAutoscaler(fs, &c.Autoscaler)
	fs.BoolVar(&c.AssumeExecutionRole, "assume-execution-role", false, "workers assume each connector's serviceExecutionRoleArn through STS for the AWS calls its connector makes without credentials of its own (the S3 sink's), as MSK Connect does; the workers' own AWS credentials (instance role, environment) must be allowed to assume it. Off: connectors use the workers' credentials directly")
	fs.StringVar(&c.PluginURL, "plugin-url", os.Getenv("FERRY_PLUGIN_URL"), "base URL at which Nomad clients download custom plugin files from this server, e.g. http://ferry.service.consul:8083 (env FERRY_PLUGIN_URL; default http://<host name>:<listen port>)")
	fs.StringVar(&c.PluginS3Endpoint, "plugin-s3-endpoint", os.Getenv("FERRY_PLUGIN_S3_ENDPOINT"), "S3-compatible endpoint URL to read custom plugin files from (env FERRY_PLUGIN_S3_ENDPOINT; default AWS S3; credentials from the AWS SDK's default chain)")
	fs.StringVar(&c.PluginS3Region, "plugin-s3-region", envOr("AWS_REGION", "us-east-1"), "region of the S3 bucket(s) holding custom plugin files (env AWS_REGION)")
	fs.BoolVar(&c.PluginS3PathStyle, "plugin-s3-path-style", false, "address plugin buckets path-style (endpoint/bucket), as most S3-compatible stores want")
	c.Log.register(fs)
}

// withDefaults fills the fields whose defaults depend on others.
func (c serverConfig) withDefaults() serverConfig {
	if c.WorkerNATS == "" {
		c.WorkerNATS = c.NATS
	}
	// In a fixed order, so replicas that discover the same NATS servers in
	// another order hand workers the same URL (NATS clients shuffle the
	// list anyway).
	c.WorkerNATS = sortedList(c.WorkerNATS)
	if len(c.Datacenters) == 0 {
		c.Datacenters = []string{"*"}
	}
	if c.Driver == "" {
		c.Driver = "exec"
		if c.WorkerImage != "" {
			c.Driver = "docker"
		}
	}
	return c
}

// Validate reports every problem of c at once.
func (c serverConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", c.Listen, err))
	}
	errs = append(errs, checkARNPart("region", c.Region), checkARNPart("account", c.Account))
	if c.NATS == "" {
		errs = append(errs, errors.New("--nats is required"))
	} else {
		errs = append(errs, checkURL("nats", c.NATS, "nats", "tls"))
	}
	if c.WorkerNATS != "" {
		errs = append(errs, checkURL("worker-nats", c.WorkerNATS, "nats", "tls"))
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		errs = append(errs, fmt.Errorf("--nats-replicas %d: want 1 to 5", c.NATSReplicas))
	}
	if c.Nomad == "" {
		// Workers run as child processes of this server (the local
		// executor, as in ferry dev): nothing of Nomad applies.
		if c.DataDir == "" {
			errs = append(errs, errors.New("--data-dir is required when workers run as child processes (no --nomad)"))
		}
	} else {
		errs = append(errs, c.nomadProblems()...)
	}
	if c.MetricsInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--metrics-interval %s: must be at least 100ms", c.MetricsInterval))
	}
	if c.PluginURL != "" {
		errs = append(errs, checkURL("plugin-url", c.PluginURL, "http", "https"))
	}
	if c.PluginS3Endpoint != "" {
		errs = append(errs, checkURL("plugin-s3-endpoint", c.PluginS3Endpoint, "http", "https"))
	}
	if c.PluginS3Region == "" {
		errs = append(errs, errors.New("--plugin-s3-region is required"))
	}
	errs = append(errs, c.Autoscaler.Validate())
	errs = append(errs, c.Log.problems()...)
	return errors.Join(errs...)
}

// nomadProblems reports every problem of the Nomad settings.
func (c serverConfig) nomadProblems() []error {
	var errs []error
	switch {
	case strings.HasPrefix(c.Nomad, "unix://"):
		// Nomad's task API socket, e.g. unix://${NOMAD_SECRETS_DIR}/api.sock.
		if len(c.Nomad) == len("unix://") {
			errs = append(errs, fmt.Errorf("--nomad %q: want unix:///path/to/api.sock", c.Nomad))
		}
	default:
		errs = append(errs, checkURL("nomad", c.Nomad, "http", "https"))
	}
	switch c.Driver {
	case "":
		if c.WorkerImage == "" && c.WorkerCommand == "" {
			errs = append(errs, errors.New("one of --worker-image and --worker-command is required"))
		}
	case "raw_exec", "exec":
		if c.WorkerCommand == "" && c.WorkerArtifact == "" {
			errs = append(errs, fmt.Errorf("--driver %s needs --worker-command or --worker-artifact", c.Driver))
		}
		if c.WorkerImage != "" {
			errs = append(errs, fmt.Errorf("--worker-image is for --driver docker, not %s", c.Driver))
		}
		if c.WorkerArtifact != "" {
			a := nomad.WorkerArtifact{Source: c.WorkerArtifact, Checksum: c.WorkerArtifactChecksum, Binary: c.WorkerArtifactBinary}
			if err := (nomad.RenderConfig{Driver: c.Driver, WorkerArtifact: &a}).Validate(); err != nil {
				errs = append(errs, fmt.Errorf("--worker-artifact: %w", err))
			}
		}
	case "docker":
		if c.WorkerImage == "" {
			errs = append(errs, errors.New("--driver docker needs --worker-image"))
		}
		if c.WorkerArtifact != "" {
			errs = append(errs, errors.New("--worker-artifact is for --driver exec or raw_exec; docker runs --worker-image"))
		}
	default:
		errs = append(errs, fmt.Errorf("--driver %q: want raw_exec, exec or docker", c.Driver))
	}
	if !c.ReserveCores && c.MHzPerVCPU < 100 {
		errs = append(errs, fmt.Errorf("--nomad-mhz-per-vcpu (--mhz-per-vcpu) %d: must be at least 100", c.MHzPerVCPU))
	}
	for _, f := range []struct{ flag, path string }{
		{"nomad-ca-cert", c.NomadCACert}, {"nomad-client-cert", c.NomadClientCert}, {"nomad-client-key", c.NomadClientKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.flag, err))
		}
	}
	if (c.NomadClientCert == "") != (c.NomadClientKey == "") {
		errs = append(errs, errors.New("--nomad-client-cert and --nomad-client-key go together"))
	}
	return errs
}

// registerAutoscaler adds the autoscaler's server settings as flags, with
// its defaults (docs/autoscaler.md says why each is what it is).
func registerAutoscaler(fs *flag.FlagSet, s *autoscale.Settings) {
	d := autoscale.DefaultSettings()
	fs.DurationVar(&s.EvaluationInterval, "autoscale-interval", d.EvaluationInterval, "how often autoscaled connectors are evaluated")
	fs.DurationVar(&s.Window, "autoscale-window", d.Window, "how far back CPU samples count towards a connector's mean")
	fs.DurationVar(&s.ScaleOutCooldown, "autoscale-scale-out-cooldown", d.ScaleOutCooldown, "no scale-out this long after a scale finished")
	fs.DurationVar(&s.ScaleInCooldown, "autoscale-scale-in-cooldown", d.ScaleInCooldown, "no scale-in this long after a scale finished")
	fs.IntVar(&s.MaxStep, "autoscale-max-step", d.MaxStep, "most workers one decision adds or removes")
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// sortedList sorts a comma-separated list, dropping blanks around items.
func sortedList(s string) string {
	if s == "" {
		return s
	}
	items := strings.Split(s, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	slices.Sort(items)
	return strings.Join(items, ",")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func checkListen(flagName, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--%s %q: %w", flagName, addr, err)
	}
	if host == "" {
		return fmt.Errorf("--%s %q: a host is required, e.g. 127.0.0.1", flagName, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--%s %q: port must be a number 0-65535", flagName, addr)
	}
	return nil
}

func checkURL(flagName, s string, schemes ...string) error {
	for _, one := range strings.Split(s, ",") { // NATS takes a list of URLs
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil {
			return fmt.Errorf("--%s %q: %w", flagName, s, err)
		}
		ok := false
		for _, sc := range schemes {
			ok = ok || u.Scheme == sc
		}
		if !ok || u.Host == "" {
			return fmt.Errorf("--%s %q: want a URL like %s://host:port", flagName, s, schemes[0])
		}
	}
	return nil
}

func checkBrokers(flagName, s string) error {
	for _, b := range strings.Split(s, ",") {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			return fmt.Errorf("--%s %q: want host:port[,host:port...]: %w", flagName, s, err)
		}
	}
	return nil
}

func checkARNPart(flagName, s string) error {
	if s == "" || strings.ContainsAny(s, ":/ ") {
		return fmt.Errorf("--%s %q: must be non-empty without ':', '/' or spaces", flagName, s)
	}
	return nil
}
