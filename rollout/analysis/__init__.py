"""Analysis: metric templates resolved for a Rollout, safe conditions, measurement bookkeeping
(all pure), the metric provider interface (provider.py) and registry (providers.py), and the
Prometheus provider (the only part that does I/O)."""
