package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommandLine(t *testing.T) {
	code, _, errOut := runArgs(t)
	if code != 2 || !strings.Contains(errOut, "Usage: ferry <command>") {
		t.Errorf("no args: exit %d %q", code, errOut)
	}
	code, out, _ := runArgs(t, "help")
	if code != 0 || !strings.Contains(out, "connector") || !strings.Contains(out, "dev") {
		t.Errorf("help: exit %d %q", code, out)
	}
	code, out, _ = runArgs(t, "version")
	if code != 0 || !strings.HasPrefix(out, "ferry dev (go1.") {
		t.Errorf("version: exit %d %q", code, out)
	}
	code, _, errOut = runArgs(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown: exit %d %q", code, errOut)
	}
	for _, cmd := range []string{"dev", "server", "worker", "version"} {
		code, _, errOut = runArgs(t, cmd, "-h")
		if code != 0 || !strings.Contains(errOut, "Usage: ferry "+cmd) {
			t.Errorf("%s -h: exit %d %q", cmd, code, errOut)
		}
	}
	code, _, errOut = runArgs(t, "help", "dev")
	if code != 0 || !strings.Contains(errOut, "--data-dir") && !strings.Contains(errOut, "-data-dir") {
		t.Errorf("help dev: exit %d %q", code, errOut)
	}
	code, out, _ = runArgs(t, "connector", "-h")
	if code != 0 || !strings.Contains(out, "describe") {
		t.Errorf("connector -h: exit %d %q", code, out)
	}
	code, _, errOut = runArgs(t, "dev", "--kafka-partitions", "0", "--listen", "nohost", "--log-level", "loud", "--nomad", "not a url")
	if code != 2 {
		t.Errorf("bad dev flags: exit %d", code)
	}
	for _, want := range []string{"--kafka-partitions", "--listen", "--log-level", "--nomad"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad dev flags: %q does not mention %s", errOut, want)
		}
	}
}

func parseDev(t *testing.T, args ...string) devConfig {
	t.Helper()
	var cfg devConfig
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDevConfig(t *testing.T) {
	cfg := parseDev(t)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	sc := cfg.stackConfig(zerolog.Nop())
	if sc.NATS.Disabled || sc.Kafka.Disabled || sc.S3.Disabled || sc.Kafka.Addr != "127.0.0.1:9092" || sc.S3.Bucket != "ferry-dev" {
		t.Errorf("default stack config %+v", sc)
	}
	if got := cfg.logFilePath(); got != filepath.Join(".ferry", "ferry-dev.log") && got != "./.ferry/ferry-dev.log" {
		t.Errorf("log file %q", got)
	}

	cfg = parseDev(t, "--nats", "nats://n1:4222", "--kafka", "k1:9092,k2:9092", "--s3-endpoint", "https://s3.example.com", "--log-file", "off")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("real services invalid: %v", err)
	}
	sc = cfg.stackConfig(zerolog.Nop())
	if !sc.NATS.Disabled || !sc.Kafka.Disabled || !sc.S3.Disabled || cfg.logFilePath() != "" {
		t.Errorf("real services still embedded: %+v", sc)
	}

	cfg = parseDev(t, "--data-dir", "", "--nats", "http://wrong", "--kafka", "nocolon", "--s3-endpoint", "s3.example.com", "--metrics-interval", "1ms", "--region", "us/east")
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"--data-dir", "--nats", "--kafka", "--s3-endpoint", "--metrics-interval", "--region"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

func TestServerConfig(t *testing.T) {
	var cfg serverConfig
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse([]string{"--nats", "nats://a:4222", "--datacenter", "dc1", "--datacenter", "dc2"}); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if cfg.WorkerNATS != "nats://a:4222" || strings.Join(cfg.Datacenters, ",") != "dc1,dc2" {
		t.Errorf("defaults: %+v", cfg)
	}
	bad := serverConfig{Listen: "x", NATS: "", Nomad: "http://127.0.0.1:4646", MHzPerVCPU: 1, Log: logConfig{Level: "info", Format: "xml"}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"--listen", "--nats is required", "--worker-image", "--mhz-per-vcpu", "--metrics-interval", "--log-format", "--region"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

// TestDevStartsAndStops runs `ferry dev` on free ports until its services
// are ready, then cancels it as SIGINT would.
func TestDevStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
			"--kafka-listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0", "--log-format", "json"}, io.Discard, &errOut)
	}()
	logFile := filepath.Join(dir, "ferry-dev.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if bytes.Contains(b, []byte("dev services ready")) {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("ferry dev exited with %d before it was ready: %s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("ferry dev not ready within 30s")
		}
	}
	for _, sub := range []string{"nats", "kafka", "s3"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("data dir lacks %s: %v", sub, err)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ferry dev did not stop within 30s of cancel")
	}
}
