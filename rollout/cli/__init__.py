"""The `rollout` command (also installed as the kubectl plugin `kubectl-rollouts`)."""
