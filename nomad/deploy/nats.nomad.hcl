# A NATS cluster with JetStream for Ferry's state (KV buckets) and its
# workers' status and metrics: one server on each of the nodes listed in
# `servers` (three for a cluster that survives losing one).
#
#   nomad job run -var 'servers=["10.0.0.11","10.0.0.12","10.0.0.13"]' nomad/deploy/nats.nomad.hcl
#
# The routes between the servers are the `servers` addresses, so they exist
# before any server starts: a JetStream cluster refuses to start without
# routes, and routes discovered from Nomad services would be empty on the
# first deploy, with each server waiting for the others to register. The
# constraint keeps each server on one of those nodes (by the address Nomad
# fingerprints, attr.unique.network.ip-address), one per node, on static
# ports.
#
# Without authentication NATS lets anyone who reaches port 4222 read
# connector configurations (secrets included) from the KV buckets and
# publish worker statuses. With the Nomad variable nomad/jobs/nats holding
# an item client_token, clients must present that token (Ferry's job reads
# it from nomad/jobs/ferry, item nats_token); add TLS too on anything but a
# private network: see docs/nomad.md, "Securing NATS".
#
# JetStream data lives on the allocation's sticky ephemeral disk, which
# survives restarts and in-place updates on the same node; for data you
# cannot lose use a host volume or CSI volume per node instead.

variable "servers" {
  type        = list(string)
  description = "IP addresses of the client nodes NATS runs on, one server each (as Nomad reports them in attr.unique.network.ip-address); they are the cluster's routes"
  validation {
    condition     = length(var.servers) > 0
    error_message = "List the IP addresses of the nodes NATS runs on, e.g. -var 'servers=[\"10.0.0.11\",\"10.0.0.12\",\"10.0.0.13\"]'."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "nats_version" {
  type        = string
  description = "nats-server release to run (the one Ferry is tested with)"
  default     = "2.15.2"
}

variable "arch" {
  type        = string
  description = "CPU architecture of the client nodes, as nats-server releases name it (amd64, arm64, ...)"
  default     = "amd64"
}

variable "artifact" {
  type        = string
  description = "URL of a nats-server release archive (default: the nats_version release on GitHub); a mirror for clients without internet access"
  default     = ""
}

variable "artifact_checksum" {
  type        = string
  description = "checksum of the archive, type:value, e.g. sha256:<its line in the release's SHA256SUMS>; empty: not checked"
  default     = ""
}

locals {
  release  = "nats-server-v${var.nats_version}-linux-${var.arch}"
  artifact = var.artifact != "" ? var.artifact : "https://github.com/nats-io/nats-server/releases/download/v${var.nats_version}/${local.release}.tar.gz"

  # Every server, this one included (NATS skips a route to itself). A
  # single server runs JetStream without a cluster: alone, a route to
  # itself would make it wait for a peer that never comes.
  cluster = length(var.servers) < 2 ? "" : "cluster { name: \"ferry\", port: 6222, routes: [${join(", ", formatlist("\"nats-route://%s:6222\"", var.servers))}] }"
}

job "nats" {
  type        = "service"
  datacenters = var.datacenters

  group "nats" {
    count = length(var.servers)

    # Leave service discovery before stopping, so clients move on first.
    shutdown_delay = "5s"

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    constraint {
      attribute = "$${attr.unique.network.ip-address}"
      operator  = "set_contains_any"
      value     = join(",", var.servers)
    }

    network {
      port "client" { static = 4222 }
      port "cluster" { static = 6222 }
      port "monitor" { static = 8222 }
    }

    ephemeral_disk {
      size    = 2048
      sticky  = true
      migrate = true
    }

    update {
      max_parallel     = 1
      min_healthy_time = "20s"
      healthy_deadline = "3m"
    }

    service {
      name     = "nats-client"
      provider = "nomad"
      port     = "client"
      check {
        type     = "http"
        port     = "monitor"
        path     = "/healthz?js-enabled-only=true"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "nats-cluster"
      provider = "nomad"
      port     = "cluster"
    }

    task "nats" {
      # exec: no container runtime needed; the release archive (which
      # holds <release>/nats-server) is fetched by Nomad.
      driver = "exec"

      artifact {
        source      = local.artifact
        destination = "local/"
        dynamic "options" {
          for_each = var.artifact_checksum == "" ? [] : [var.artifact_checksum]
          content {
            checksum = options.value
          }
        }
      }

      config {
        command = "local/${local.release}/nats-server"
        args    = ["--config", "local/nats.conf"]
      }

      template {
        destination = "local/nats.conf"
        # NATS reloads its configuration (a token set or changed) on SIGHUP.
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          server_name: "nats-{{ env "attr.unique.network.ip-address" }}"
          port: 4222
          http_port: 8222
          {{- if nomadVarExists "nomad/jobs/nats" }}{{ with nomadVar "nomad/jobs/nats" }}
          authorization { token: {{ .client_token.Value | toJSON }} }
          {{- end }}{{ end }}
          jetstream {
            # The sticky disk.
            store_dir: "{{ env "NOMAD_ALLOC_DIR" }}/data/jetstream"
            max_file_store: 1G
          }
          ${local.cluster}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
