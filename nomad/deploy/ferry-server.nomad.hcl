# Ferry's control plane: `ferry server` serves the MSK Connect API on every
# replica; the replica holding the "reconciler" lock in NATS (bucket
# ferry_locks) reconciles connectors into Nomad jobs named ferry-<connector>.
# Run nats.nomad.hcl first.
#
#   nomad acl policy apply -namespace default -job ferry ferry-server nomad/deploy/ferry-server.policy.hcl
#   nomad job run -var 'datacenters=["dc1"]' -var image=ghcr.io/ferryhq/ferry:latest nomad/deploy/ferry-server.nomad.hcl
#
# The server talks to Nomad through the task API socket with its workload
# identity: no token to create or rotate; the ACL policy above, bound to
# this job, is what it may do (see docs/nomad.md).

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "image" {
  type        = string
  description = "ferry container image; workers run the same image with the docker driver"
  default     = "ghcr.io/ferryhq/ferry:latest"
}

variable "namespace" {
  type        = string
  description = "Nomad namespace of connector jobs (the policy must grant it)"
  default     = "default"
}

variable "replicas" {
  type    = number
  default = 2
}

job "ferry" {
  type        = "service"
  datacenters = var.datacenters

  group "server" {
    count = var.replicas

    # Leave service discovery before stopping, so clients move on first.
    shutdown_delay = "5s"

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "api" { to = 8083 }
    }

    update {
      max_parallel     = 1
      min_healthy_time = "10s"
      healthy_deadline = "2m"
    }

    service {
      name     = "ferry-api"
      provider = "nomad"
      port     = "api"
      check {
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver = "docker"

      config {
        image = var.image
        ports = ["api"]
        args = [
          "server",
          "--listen", "0.0.0.0:8083",
          "--driver", "docker",
          "--worker-image", var.image,
          "--nomad-namespace", var.namespace,
          # The KV buckets on all three NATS servers (nats.nomad.hcl).
          "--nats-replicas", "3",
          "--log-format", "json",
        ]
      }

      # NOMAD_TOKEN: this task's workload identity, for the task API.
      identity {
        env = true
      }

      template {
        destination = "local/ferry.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          NOMAD_ADDR=unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock
          # Where Nomad clients download custom plugin files (docs/plugins.md):
          # this replica's host address; any replica serves any plugin.
          FERRY_PLUGIN_URL=http://{{ env "NOMAD_ADDR_api" }}
          FERRY_NATS_URL={{ range $i, $s := nomadService "nats-client" }}{{ if $i }},{{ end }}nats://{{ $s.Address }}:{{ $s.Port }}{{ end }}
        EOT
      }

      # A leader that loses its lock stops within a third of the lock's
      # TTL; the rest is the API draining.
      kill_timeout = "20s"

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
