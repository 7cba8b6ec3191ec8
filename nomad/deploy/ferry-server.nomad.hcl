# Ferry's control plane: `ferry server` serves the MSK Connect API on every
# replica; the replica holding the "reconciler" lock in NATS (bucket
# ferry_locks) reconciles connectors into Nomad jobs named ferry-<connector>.
# Run nats.nomad.hcl first. docs/nomad.md walks through every step.
#
#   nomad acl policy apply -namespace default -job ferry ferry-server nomad/deploy/ferry-server.policy.hcl
#   nomad job run \
#     -var 'nats_servers=["10.0.0.11","10.0.0.12","10.0.0.13"]' \
#     -var api_url=http://ferry.example.internal:8083 \
#     -var artifact=https://downloads.example.internal/ferry_linux_amd64.tar.gz \
#     -var artifact_checksum=sha256:<sha256sum of the archive> \
#     nomad/deploy/ferry-server.nomad.hcl
#
# The server and its workers run the same ferry binary with the exec
# driver, fetched by Nomad from `artifact` (an archive holding `ferry`):
# nothing to install on the clients and no image to build.
#
# The server talks to Nomad through the task API socket with its workload
# identity: no token to create or rotate; the ACL policy above, bound to
# this job, is what it may do. Every value the workers are handed is the
# same on every replica (api_url, the NATS addresses), so a leader failover
# does not change any connector's job.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "nats_servers" {
  type        = list(string)
  description = "addresses of the NATS servers (the servers of nats.nomad.hcl), port 4222"
  validation {
    condition     = length(var.nats_servers) > 0
    error_message = "List the NATS servers' addresses, e.g. -var 'nats_servers=[\"10.0.0.11\",\"10.0.0.12\",\"10.0.0.13\"]'."
  }
}

variable "api_url" {
  type        = string
  description = "stable base URL of the Ferry API (a load balancer or DNS name in front of the replicas, port 8083): API clients use it, and Nomad clients download custom plugin files from it"
  validation {
    condition     = regex_replace(var.api_url, "^https?://[^/]+.*$", "") == "" && var.api_url != ""
    error_message = "Give the Ferry API's stable address as a URL, e.g. -var api_url=http://ferry.example.internal:8083 (a load balancer or DNS name in front of every replica)."
  }
}

variable "artifact" {
  type        = string
  description = "URL of an archive (.tar.gz, .zip) holding the ferry binary for linux, fetched by Nomad for the server and every worker"
}

variable "artifact_checksum" {
  type        = string
  description = "checksum of the archive, type:value (e.g. sha256:…); empty: not checked"
  default     = ""
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

locals {
  # The same URL on every replica, in a fixed order.
  nats_url = join(",", formatlist("nats://%s:4222", sort(var.nats_servers)))
  # The KV buckets on every NATS server, up to JetStream's useful maximum.
  nats_replicas = min(length(var.nats_servers), 3)
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
      # Static, so a load balancer (or DNS name) can point at every node
      # that runs a replica.
      port "api" { static = 8083 }
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
      driver = "exec"

      artifact {
        source      = var.artifact
        destination = "local/ferry/"
        dynamic "options" {
          for_each = var.artifact_checksum == "" ? [] : [var.artifact_checksum]
          content {
            checksum = options.value
          }
        }
      }

      config {
        command = "local/ferry/ferry"
        args = [
          "server",
          "--listen", "0.0.0.0:8083",
          "--plugin-url", var.api_url,
          "--nomad-namespace", var.namespace,
          # Workers run the same binary, fetched the same way.
          "--driver", "exec",
          "--worker-artifact", var.artifact,
          "--worker-artifact-checksum", var.artifact_checksum,
          "--nats-replicas", "${local.nats_replicas}",
          "--log-format", "json",
        ]
      }

      # NOMAD_TOKEN: this task's workload identity, for the task API.
      identity {
        env = true
      }

      # The NATS URL, with the token clients present when NATS requires one
      # (the variable nomad/jobs/ferry, item nats_token; see docs/nomad.md,
      # "Securing NATS"): the token stays out of the job.
      template {
        destination = "secrets/ferry.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          NOMAD_ADDR=unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock
          {{- $token := "" }}
          {{- if nomadVarExists "nomad/jobs/ferry" }}{{ with nomadVar "nomad/jobs/ferry" }}{{ if .nats_token.Value }}{{ $token = printf "%s@" .nats_token.Value }}{{ end }}{{ end }}{{ end }}
          FERRY_NATS_URL=${replace(local.nats_url, "nats://", "nats://{{ $token }}")}
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
