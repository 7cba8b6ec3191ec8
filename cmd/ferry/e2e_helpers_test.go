package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
)

// ferryBin is the ferry binary TestMain builds for the end-to-end tests;
// empty when the build failed (buildErr says why).
var (
	ferryBin string
	buildErr error
)

// TestMain builds the ferry binary once for the end-to-end tests, which run
// `ferry dev` (and through it `ferry worker`) as real processes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	ferryBin, buildErr = buildFerry(dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func buildFerry(dir string) (string, error) {
	bin := filepath.Join(dir, "ferry")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		// Under -race, dev and its workers run with the detector too.
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ferry: %w\n%s", err, out.String())
	}
	return bin, nil
}

// raceEnabled says whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tailBuf keeps everything a process writes, for failure messages.
type tailBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *tailBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Contains reports whether sub was written.
func (l *tailBuf) Contains(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(sub))
}

// Tail returns the last n lines written.
func (l *tailBuf) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// devProc is a running `ferry dev`.
type devProc struct {
	cmd      *exec.Cmd
	stderr   *tailBuf
	stdout   *tailBuf
	exited   chan struct{}
	dataDir  string
	api      string // http://host:port
	kafka    string
	plugin   string // the built-in plugin's ARN
	waitErr  error
	exitedAt time.Time
}

// startDev runs `ferry dev` with args (plus --data-dir) and env added to the
// environment, and waits until it has written its example connector, which
// it does once the API is ready. The process is killed when the test ends;
// on failure its stderr's tail is printed.
// startDevWithS3 runs ferry dev on loopback ports with srv as its S3.
func startDevWithS3(t *testing.T, api string, srv *s3test.Server) *devProc {
	t.Helper()
	return startDev(t, api, []string{
		"--nats-listen", freeAddr(t),
		"--kafka-listen", freeAddr(t),
		"--s3-endpoint", srv.Endpoint,
		"--metrics-interval", "500ms",
	}, []string{
		// `ferry dev --s3-endpoint` hands workers store.url only; the
		// credentials are the user's, from the environment workers inherit.
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"AWS_REGION=" + srv.Region,
	})
}

// client is an SDK client of the dev's MSK Connect API, with dev's
// example credentials and no retries.
func (d *devProc) client() *kafkaconnect.Client {
	return kafkaconnect.New(kafkaconnect.Options{
		BaseEndpoint: aws.String(d.api),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("ferry", "ferry", ""),
		Retryer:      aws.NopRetryer{},
	})
}

func startDev(t testing.TB, api string, args []string, env []string) *devProc {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("build ferry: %v", buildErr)
	}
	d := &devProc{stderr: &tailBuf{}, stdout: &tailBuf{}, exited: make(chan struct{}), dataDir: t.TempDir(), api: "http://" + api}
	args = append([]string{"dev", "--data-dir", d.dataDir, "--listen", api}, args...)
	d.cmd = exec.Command(ferryBin, args...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	// Its own process group, so cleanup can kill workers too; and killed
	// with the test process.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start ferry dev: %v", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		d.exitedAt = time.Now()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferry dev stderr (tail):\n%s", d.stderr.Tail(80))
		}
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		// Workers may have left the group (own process group is the
		// executor's choice): kill whatever of this binary remains.
		for _, pid := range ferryProcs(t, "") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	example := filepath.Join(d.dataDir, "example-connector.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("ferry dev exited early (%v):\n%s", d.waitErr, d.stderr.Tail(80))
		default:
		}
		if b, err := os.ReadFile(example); err == nil && json.Valid(b) {
			var ex struct {
				KafkaCluster struct {
					ApacheKafkaCluster struct {
						BootstrapServers string `json:"bootstrapServers"`
					} `json:"apacheKafkaCluster"`
				} `json:"kafkaCluster"`
				Plugins []struct {
					CustomPlugin struct {
						CustomPluginArn string `json:"customPluginArn"`
					} `json:"customPlugin"`
				} `json:"plugins"`
			}
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatalf("example connector: %v", err)
			}
			d.kafka = ex.KafkaCluster.ApacheKafkaCluster.BootstrapServers
			if len(ex.Plugins) == 0 || ex.Plugins[0].CustomPlugin.CustomPluginArn == "" || d.kafka == "" {
				t.Fatalf("example connector lacks the plugin ARN or Kafka: %s", b)
			}
			d.plugin = ex.Plugins[0].CustomPlugin.CustomPluginArn
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry dev not ready within 30s:\n%s", d.stderr.Tail(80))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// stop sends SIGTERM and waits up to limit for the process to exit.
func (d *devProc) stop(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("sigterm: %w", err)
	}
	select {
	case <-d.exited:
		return d.exitedAt.Sub(start), d.waitErr
	case <-time.After(limit):
		return limit, errors.New("still running")
	}
}

// procInfo is what /proc says about one process.
type procInfo struct {
	pid, ppid int
	argv      []string
}

// procs lists every process (Linux /proc).
func procs() []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue // zombies are gone but not yet reaped
		}
		ppid, _ := strconv.Atoi(f[1])
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		out = append(out, procInfo{pid: pid, ppid: ppid, argv: argv})
	}
	return out
}

// ferryProcs returns the pids of live processes running this test's ferry
// binary with the given subcommand ("" for any).
func ferryProcs(t testing.TB, sub string) []int {
	t.Helper()
	var out []int
	for _, p := range procs() {
		if len(p.argv) >= 1 && p.argv[0] == ferryBin && (sub == "" || len(p.argv) >= 2 && p.argv[1] == sub) {
			out = append(out, p.pid)
		}
	}
	return out
}

// workers returns the pids of the `ferry worker` children of dev.
func (d *devProc) workers() []int {
	var out []int
	for _, p := range procs() {
		if p.ppid == d.cmd.Process.Pid && len(p.argv) >= 2 && p.argv[0] == ferryBin && p.argv[1] == "worker" {
			out = append(out, p.pid)
		}
	}
	return out
}

// children returns the pids of every live child of dev.
func (d *devProc) children() []int {
	var out []int
	for _, p := range procs() {
		if p.ppid == d.cmd.Process.Pid {
			out = append(out, p.pid)
		}
	}
	return out
}

// eventually polls cond every 50ms until it holds or d passes; on timeout it
// fails with what and the last detail cond reported.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", d, what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// s3SinkInput is a CreateConnector request for an S3 sink of e2eTopic into
// srv's bucket, JSON objects of e2eFlushSize records, with extra settings
// over those.
func s3SinkInput(name string, dev *devProc, srv *s3test.Server, extra map[string]string) *kafkaconnect.CreateConnectorInput {
	cfg := map[string]string{
		"connector.class":                "io.confluent.connect.s3.S3SinkConnector",
		"tasks.max":                      "2",
		"topics":                         e2eTopic,
		"s3.bucket.name":                 srv.Bucket,
		"s3.region":                      srv.Region,
		"flush.size":                     strconv.Itoa(e2eFlushSize),
		"format.class":                   "io.confluent.connect.s3.format.json.JsonFormat",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
		"offset.flush.interval.ms":       "500",
	}
	maps.Copy(cfg, extra)
	return &kafkaconnect.CreateConnectorInput{
		ConnectorName:          aws.String(name),
		Capacity:               &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: 1, WorkerCount: 1}},
		ConnectorConfiguration: cfg,
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String(dev.kafka),
			Vpc:              &types.Vpc{Subnets: []string{"local"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins:                          []types.Plugin{{CustomPlugin: &types.CustomPlugin{CustomPluginArn: aws.String(dev.plugin), Revision: 1}}},
		ServiceExecutionRoleArn:          aws.String("arn:aws:iam::000000000000:role/ferry-e2e"),
	}
}

// nomadConnectorInput is s3SinkInput with the S3 keys in the connector's
// configuration (a worker on Nomad inherits no environment from ferry dev):
// they are secrets, so they travel in the job's variable.
func nomadConnectorInput(name string, dev *devProc, srv *s3test.Server) *kafkaconnect.CreateConnectorInput {
	return s3SinkInput(name, dev, srv, map[string]string{"aws.access.key.id": srv.AccessKey, "aws.secret.access.key": srv.SecretKey})
}
