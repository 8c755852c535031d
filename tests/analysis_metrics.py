"""One metric of an AnalysisTemplate (a Prometheus query of job "web", success at 99%),
resolved the way the engine resolves a Rollout's analysis: what the analysis tests measure."""

from rollout.analysis.resolve import TemplateKey, resolve
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import parse_template


def metric_spec(**fields):
    """The metric's spec; `fields` add to it or override it."""
    base = {
        "name": "rate",
        "successCondition": "result[0] >= 0.99",
        "provider": {"prometheus": {"query": 'x{job="{{args.job}}"}'}},
    }
    return {**base, **fields}


def resolved(ref_args=None, bounded=True, **fields):
    """The template holding that metric, resolved for a canary's step: (metrics, errors)."""
    template = parse_template(
        {"spec": {"args": [{"name": "job", "value": "web"}], "metrics": [metric_spec(**fields)]}}
    )
    lookup = {TemplateKey("t"): template}
    ref = RolloutAnalysis(templates=[{"name": "t"}], args=ref_args or [])
    return resolve(
        ref, "spec.strategy.canary.steps[1].analysis", lookup, {"namespace": "shop"}, bounded=bounded
    )


def one_metric(**fields):
    """The resolved metric (the template must resolve without errors)."""
    metrics, errors = resolved(**fields)
    assert not errors, errors
    return metrics[0]
