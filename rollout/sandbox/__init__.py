"""The embedded default: a Kubernetes API emulated in-process (kmock), a stand-in for the kubelet
and ReplicaSet controller that reports readiness, and `rollout sandbox`, which runs the real
controller against them. Also the test bed of the integration tests."""
