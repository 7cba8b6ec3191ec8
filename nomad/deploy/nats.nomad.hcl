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

variable "image" {
  type    = string
  default = "nats:2.10-alpine"
}

locals {
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
      driver = "docker"

      config {
        image = var.image
        ports = ["client", "cluster", "monitor"]
        args  = ["--config", "/local/nats.conf"]
        # The sticky disk, seen by the container.
        volumes = ["../alloc/data:/data"]
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
            store_dir: "/data/jetstream"
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
