"""Analysis: metric templates resolved for a Rollout, safe conditions, measurement bookkeeping
(all pure) and the Prometheus provider (the only part that does I/O)."""
