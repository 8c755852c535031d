"""The metric provider registry: each provider is a module in rollout/analysis exporting
`PROVIDER` (see provider.py). Adding one is its module, one entry in MODULES and its kind in the
API model (rollout/api/templates.py)."""

from __future__ import annotations

from importlib import import_module

from rollout.analysis.provider import MetricProvider

MODULES = ("prometheus", "web", "datadog", "newrelic", "graphite", "cloudwatch", "influxdb", "job", "compare")

PROVIDERS: dict[str, MetricProvider] = {
    provider.kind: provider
    for provider in (import_module(f"rollout.analysis.{module}").PROVIDER for module in MODULES)
}
