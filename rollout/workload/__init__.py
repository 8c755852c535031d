"""Workload objects of a Rollout: one ReplicaSet per revision and the Services pinned to revisions.

Builders of manifests and patches only; the controller sends them."""
