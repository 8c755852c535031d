"""A progressive delivery controller for Kubernetes: rolling, canary and blue/green Rollouts."""

GROUP = "rollout.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
