"""Analysis: metric templates resolved for a Rollout, safe conditions, measurement bookkeeping
(all pure), the metric provider interface (provider.py) and registry (providers.py), the
providers that query a metric store (prometheus.py, web.py, cloudwatch.py, influxdb.py), and
measure.py, which reads the templates and Secrets a Rollout names and takes the measurements that
are due: the I/O is in the providers and measure.py."""
