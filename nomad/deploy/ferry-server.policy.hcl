# ACL policy of `ferry server`: bind it to the server job so its workload
# identity carries it,
#
#   nomad acl policy apply -namespace default -job ferry ferry-server nomad/deploy/ferry-server.policy.hcl
#
# or attach it to a token given with --nomad-token / NOMAD_TOKEN. Replace
# "default" with the namespace of --nomad-namespace.
namespace "default" {
  # Register, read, scale and deregister connector jobs, follow their
  # allocations, evaluations and deployments.
  capabilities = [
    "list-jobs", "read-job", "submit-job", "scale-job", "read-job-scaling",
  ]

  # Each connector's secrets live in the variable its job reads.
  variables {
    path "nomad/jobs/ferry-*" {
      capabilities = ["read", "write", "destroy", "list"]
    }
  }
}

# Optional: read nodes, so a connector that cannot be placed says what the
# cluster has free ("cluster has 6 vCPU … free"). Without it the message
# leaves that part out. Allocations in namespaces the policy cannot read
# are not counted, so grant read-job there too for an exact figure.
node {
  policy = "read"
}
