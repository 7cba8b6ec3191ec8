# A three-node NATS cluster with JetStream for Ferry's state (KV buckets)
# and its workers' status and metrics.
#
#   nomad job run -var 'datacenters=["dc1"]' nomad/deploy/nats.nomad.hcl
#
# Each server runs on its own node (distinct_hosts) with static ports, and
# finds the others through Nomad's service discovery: the template lists the
# "nats-cluster" services and NATS reloads its routes on SIGHUP when that
# list changes. JetStream data lives in the allocation's sticky ephemeral
# disk, which survives restarts and in-place updates on the same node; for
# production use a host volume or CSI volume per node instead.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "image" {
  type    = string
  default = "nats:2.10-alpine"
}

job "nats" {
  type        = "service"
  datacenters = var.datacenters

  group "nats" {
    count = 3

    # Leave service discovery before stopping, so clients move on first.
    shutdown_delay = "5s"

    constraint {
      operator = "distinct_hosts"
      value    = "true"
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
        destination   = "local/nats.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          server_name: "nats-{{ env "NOMAD_ALLOC_INDEX" }}"
          port: 4222
          http_port: 8222
          jetstream {
            store_dir: "/data/jetstream"
            max_file_store: 1G
          }
          cluster {
            name: "ferry"
            port: 6222
            routes: [
          {{- range nomadService "nats-cluster" }}
              "nats-route://{{ .Address }}:{{ .Port }}"
          {{- end }}
            ]
          }
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
