"""The metric provider seam: `provider` holds exactly one kind (in the model and in the CRD), and
each kind resolves and names its Secrets through its own module in the registry."""

import pytest

from rollout.analysis.providers import PROVIDERS
from rollout.api.analysis import parse_template
from rollout.api.crds import all_crds


def template(provider):
    return {"spec": {"metrics": [{"name": "m", "successCondition": "result > 0", "provider": provider}]}}


def test_the_crd_keeps_exactly_one_provider_kind():
    crd = all_crds()["rollout.dev_analysistemplates.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    provider = spec["properties"]["metrics"]["items"]["properties"]["provider"]
    assert provider["minProperties"] == 1 and provider["maxProperties"] == 1
    assert set(provider["properties"]) == set(PROVIDERS)
    assert provider["x-kubernetes-preserve-unknown-fields"] is True


def test_each_kind_resolves_through_its_provider():
    spec = parse_template(template({"prometheus": {"query": 'up{job="{{args.job}}"}'}}))
    metric = spec.metrics[0]
    provider = PROVIDERS[metric.provider.kind]
    assert provider.placeholders(metric.provider.config) == {"job"}
    assert provider.resolve(metric.provider.config, {"job": 'we"b'}).text == 'up{job="we\\"b"}'


@pytest.mark.parametrize(
    ("provider", "said"),
    [({"datadog": {"query": "x"}}, "unknown provider kind datadog"), ({}, "no provider kind given")],
)
def test_an_unknown_or_missing_kind_is_named(provider, said):
    assert said in parse_template(template(provider))
