package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime"
)

// The nomad package and the local executor hand workers the metrics
// address under jobs.EnvMetricsAddr; the runtime names the variable it
// reads itself: they must agree.
func TestMetricsEnvAgrees(t *testing.T) {
	if jobs.EnvMetricsAddr != runtime.EnvMetricsAddr {
		t.Errorf("nomad and local %q, runtime %q", jobs.EnvMetricsAddr, runtime.EnvMetricsAddr)
	}
}

func TestServerWorkerArtifactFlags(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "http://127.0.0.1:4646")
	cfg := parseServer(t, "--driver", "exec", "--worker-artifact", "https://example.com/ferry_linux_amd64.tar.gz",
		"--worker-artifact-checksum", "sha256:abc")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid artifact rejected: %v", err)
	}
	if cfg.WorkerArtifactBinary != "ferry" {
		t.Errorf("binary default %q", cfg.WorkerArtifactBinary)
	}
	for args, want := range map[string][]string{
		"plain file": {"--driver", "raw_exec", "--worker-artifact", "https://example.com/ferry", "--worker-artifact-checksum", "abc"},
		"docker":     {"--worker-image", "ghcr.io/ferryhq/ferry:1", "--worker-artifact", "https://example.com/ferry.zip"},
	} {
		err := parseServer(t, want...).Validate()
		if err == nil {
			t.Errorf("%s: accepted", args)
			continue
		}
		for _, w := range map[string][]string{
			"plain file": {"--worker-artifact", "must be an archive", "checksum \"abc\""},
			"docker":     {"--worker-artifact is for --driver exec or raw_exec"},
		}[args] {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", args, err, w)
			}
		}
	}
	// Replicas that discover NATS in another order hand workers one URL.
	a := parseServer(t, "--nats", "nats://b:4222,nats://a:4222")
	b := parseServer(t, "--nats", "nats://a:4222, nats://b:4222")
	if a.WorkerNATS != b.WorkerNATS || a.WorkerNATS != "nats://a:4222,nats://b:4222" {
		t.Errorf("worker NATS URLs %q and %q", a.WorkerNATS, b.WorkerNATS)
	}
}

func TestDevNomadMHz(t *testing.T) {
	var cfg devConfig
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse([]string{"--nomad", "http://127.0.0.1:4646", "--nomad-mhz-per-vcpu", "50"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--nomad-mhz-per-vcpu 50") {
		t.Errorf("validate = %v", err)
	}
}
