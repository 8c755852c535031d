"""Workload objects of a Rollout: one ReplicaSet per revision, the Services pinned to revisions,
and an adopted Deployment (workloadRef). Pure: builders of manifests and patches, and readers that
turn what the API server returned into the engine's observed state; the controller sends and
fetches them."""
