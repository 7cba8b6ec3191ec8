package main

import (
	"flag"
	"strings"
	"testing"
)

func parseServer(t *testing.T, args ...string) serverConfig {
	t.Helper()
	var cfg serverConfig
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg.withDefaults()
}

func TestServerNomadFlags(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "https://nomad.example:4646")
	t.Setenv("NOMAD_TOKEN", "s3cret")
	cfg := parseServer(t)
	if cfg.Nomad != "https://nomad.example:4646" || cfg.NomadToken != "s3cret" || cfg.Driver != "exec" {
		t.Errorf("from the environment: nomad %q token set %v driver %q", cfg.Nomad, cfg.NomadToken != "", cfg.Driver)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
	if err := parseServer(t, "--nomad", "unix:///secrets/api.sock").Validate(); err != nil {
		t.Errorf("the task API socket is a valid --nomad: %v", err)
	}
	cfg = parseServer(t, "--worker-image", "ghcr.io/ferryhq/ferry:1", "--nomad-reserve-cores", "--nomad-mhz-per-vcpu", "0")
	if cfg.Driver != "docker" || !cfg.ReserveCores {
		t.Errorf("image implies docker: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("reserved cores need no MHz: %v", err)
	}
}

func TestServerNomadFlagsReportEveryProblem(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "http://127.0.0.1:4646")
	cfg := parseServer(t, "--driver", "podman", "--nomad-ca-cert", "/nonexistent/ca.pem",
		"--nomad-client-cert", "/nonexistent/c.pem", "--nomad-mhz-per-vcpu", "5", "--nats-replicas", "7")
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`--driver "podman"`, "--nomad-ca-cert", "--nomad-client-cert:", "go together", "--nomad-mhz-per-vcpu", "--nats-replicas"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	for args, want := range map[string]string{
		"docker":   "--driver docker needs --worker-image",
		"raw_exec": "--worker-image is for --driver docker",
	} {
		extra := []string{"--driver", args}
		if args == "raw_exec" {
			extra = append(extra, "--worker-image", "x")
		}
		if err := parseServer(t, extra...).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--driver %s: %v, want %q", args, err, want)
		}
	}
}

// Without --nomad (and NOMAD_ADDR) the server runs workers as its own child
// processes, like ferry dev: no Nomad setting is needed or checked.
func TestServerWithoutNomadRunsWorkersLocally(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "")
	cfg := parseServer(t)
	if cfg.Nomad != "" || cfg.DataDir == "" {
		t.Fatalf("nomad %q data dir %q", cfg.Nomad, cfg.DataDir)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("local mode rejected: %v", err)
	}
	cfg = parseServer(t, "--data-dir", "")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("empty --data-dir: %v", err)
	}
}

func TestServerAssumeExecutionRoleFlag(t *testing.T) {
	if parseServer(t).AssumeExecutionRole {
		t.Error("workers assume connectors' roles by default; want it opt-in")
	}
	if !parseServer(t, "--assume-execution-role").AssumeExecutionRole {
		t.Error("--assume-execution-role not read")
	}
}
