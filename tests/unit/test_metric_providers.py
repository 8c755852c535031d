"""The metric provider seam: `provider` holds exactly one kind (in the model and in the CRD), and
each kind resolves and names its Secrets through its own module in the registry."""

from datetime import UTC, datetime

import pytest

from rollout.analysis.expressions import check, evaluate
from rollout.analysis.providers import PROVIDERS
from rollout.analysis.resolve import ResolvedMetric
from rollout.analysis.runs import VALUE_CHARS, QueryResult, assess, format_value, record
from rollout.api.crds import all_crds
from rollout.api.status import AnalysisRun
from rollout.api.templates import parse_template

T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
    [({"acmeMetrics": {"query": "x"}}, "unknown provider kind acmeMetrics"), ({}, "no provider kind given")],
)
def test_an_unknown_or_missing_kind_is_named(provider, said):
    assert said in parse_template(template(provider))


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ({"prometheus": {}}, "spec.metrics[0].provider.prometheus.query: Field required"),
        ({"web": {"url": "http://h", "timeout": True}}, "spec.metrics[0].provider.web.timeout: "),
    ],
)
def test_a_mistake_inside_a_provider_names_its_field_once(provider, said):
    assert parse_template(template(provider)).startswith(said)


# --- results of any JSON type (providers that answer JSON) ----------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("result == true", True, True),
        ("result", False, False),
        ('result == "ok"', "ok", True),
        ('result["status"] == "ok" and result["errors"] < 3', {"status": "ok", "errors": 1}, True),
        ('all(c["ok"] for c in result)', [{"ok": True}, {"ok": False}], False),
        ("result == null", None, True),
        ("result >= 10", 12, True),
    ],
)
def test_conditions_work_over_any_json_value(condition, value, expected):
    assert evaluate(condition, value) is expected


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("foo == 1", "'foo' is not defined"),
        ('result["a"] ==', "not an expression"),
        ("result.__class__", "__class__"),
        ("open('x')", "not defined"),
    ],
)
def test_conditions_over_json_are_checked_for_syntax_and_names(condition, problem):
    assert problem in check(condition, any_json=True)


@pytest.mark.parametrize("condition", ['result["ok"] == true', 'result.get("ok")', 'result.startswith("up")'])
def test_a_condition_that_fits_one_json_shape_is_not_refused_before_measuring(condition):
    assert check(condition, any_json=True) is None
    assert check(condition) is not None  # over numbers these can never work: refused, as before


def test_a_json_value_is_judged_and_kept_in_status_as_compact_json():
    metric = ResolvedMetric(
        name="health",
        template="AnalysisTemplate t",
        provider="web",
        request=None,  # type: ignore[arg-type] - judged without measuring
        interval=None,
        count=1,
        initial_delay=0.0,
        success_condition='result["ok"] == true',
        failure_condition=None,
        failure_limit=0,
        inconclusive_limit=0,
        consecutive_error_limit=4,
    )
    run = AnalysisRun(name="step-1", revision="r", started_at=T0)
    measurement = record(run, metric, QueryResult("step-1", "r", "health", T0, {"ok": False, "n": 2}))
    assert measurement.phase == "Failed"
    assert measurement.value == '{"ok":false,"n":2}'
    assert '{"ok":false,"n":2} does not meet successCondition' in measurement.message
    assert format_value({"items": ["x" * 50] * 10}).endswith("…")
    assert len(format_value({"items": ["x" * 50] * 10})) == VALUE_CHARS


def test_no_data_from_the_provider_is_inconclusive_never_a_pass():
    metric = ResolvedMetric(
        name="health",
        template="AnalysisTemplate t",
        provider="web",
        request=type("R", (), {"text": "GET http://h/x"})(),  # type: ignore[arg-type]
        interval=None,
        count=1,
        initial_delay=0.0,
        success_condition="result == true",
        failure_condition=None,
        failure_limit=0,
        inconclusive_limit=0,
        consecutive_error_limit=4,
    )
    run = AnalysisRun(name="step-1", revision="r", started_at=T0)
    said = "jsonPath $.data.ok matched nothing in the answer"
    measurement = record(run, metric, QueryResult("step-1", "r", "health", T0, no_data=said))
    assert measurement.phase == "Inconclusive"
    assert measurement.message == f"no data: {said}: GET http://h/x"
    assert assess(run, [metric], T0) == "Inconclusive"
