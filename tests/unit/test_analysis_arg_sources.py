"""Analysis arguments from the Rollout itself (`valueFrom.fieldRef`) and from a Secret
(`valueFrom.secretKeyRef`): resolved, escaped like any argument, errors at their field path, and
a secret value masked in every message a person reads (status, InvalidSpec, logs)."""

import base64
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
import yaml

from rollout.analysis.influxdb import substitute_flux, substitute_influxql
from rollout.analysis.masking import LOG_MASK, MASK, mask
from rollout.analysis.measure import Denied, secret_arg_values
from rollout.analysis.newrelic import substitute_nrql
from rollout.analysis.resolve import TemplateKey, Unreadable, resolve_all
from rollout.analysis.runs import QueryResult, judge
from rollout.api.rollout import parse_rollout
from rollout.api.templates import parse_template
from rollout.cli.lint import problems
from rollout.observability.logging import configure_logging
from tests.manifests import canary_strategy, rollout_manifest

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-analysis-dry-run.yaml"
SECRET = 'tenant-"7"'  # a quote in it: the escaped form must be masked too
STEP_PATH = "spec.strategy.canary.steps[1].analysis"
TEMPLATE = parse_template(
    {
        "spec": {
            "metrics": [
                {
                    "name": "errors",
                    "successCondition": "result[0] < 0.05",
                    "provider": {
                        "prometheus": {
                            "query": 'sum(rate(errors{tenant="{{args.tenant}}", team="{{args.team}}",'
                            ' app="{{args.app}}"}[1m]))'
                        }
                    },
                }
            ]
        }
    }
)


def rollout(args, labels=None, annotations=None):
    step = {"analysis": {"templates": [{"name": "t"}], "args": args}}
    manifest = rollout_manifest(strategy=canary_strategy(steps=[{"setWeight": 20}, step]))
    manifest["metadata"]["labels"] = labels or {}
    manifest["metadata"]["annotations"] = annotations or {}
    parsed = parse_rollout(manifest)
    assert not parsed.errors, parsed.errors
    return parsed.rollout


SECRET_ARG = {"name": "tenant", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "tenant"}}}
FIELD_ARGS = [
    {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
    {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
]


def resolved(args, secret_values, labels=None):
    return resolve_all(rollout(args, labels), {TemplateKey("t"): TEMPLATE}, "s1", "c1", secret_values)


def test_field_and_secret_arguments_are_substituted_escaped_for_promql():
    analyses = resolved([SECRET_ARG, *FIELD_ARGS], {("prom", "tenant"): SECRET}, {"team": "pay"})
    assert not analyses.errors
    (metric,) = analyses.metrics["step-2"]
    assert metric.request.query == ('sum(rate(errors{tenant="tenant-\\"7\\"", team="pay", app="web"}[1m]))')
    # As quoted to people: the secret (in its escaped form) masked, the rest as is.
    assert metric.query == f'sum(rate(errors{{tenant="{MASK}", team="pay", app="web"}}[1m]))'
    assert SECRET not in repr(metric) and "tenant-" not in repr(metric)


def test_every_field_path_the_downward_api_spells():
    args = [
        {"name": "tenant", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": 'metadata.annotations["owner"]'}}},
        {"name": "app", "value": "literal"},
    ]
    analyses = resolve_all(
        rollout(args, annotations={"owner": "team-a"}), {TemplateKey("t"): TEMPLATE}, "s1", "c1"
    )
    assert not analyses.errors
    assert 'tenant="shop", team="team-a", app="literal"' in analyses.metrics["step-2"][0].request.query


def test_a_missing_label_is_an_error_naming_the_argument_field_and_path():
    analyses = resolved([SECRET_ARG, *FIELD_ARGS], {("prom", "tenant"): SECRET}, labels={})
    messages = [str(e) for e in analyses.errors]
    assert any(
        m.startswith(f"{STEP_PATH}.args[1].valueFrom.fieldRef.fieldPath: \"metadata.labels['team']\"")
        and "no such label" in m
        for m in messages
    ), messages


def test_an_unknown_field_path_is_refused_by_the_spec_model_with_its_path():
    manifest = rollout_manifest(
        strategy=canary_strategy(
            steps=[
                {
                    "analysis": {
                        "templates": [{"name": "t"}],
                        "args": [{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.replicas"}}}],
                    }
                }
            ]
        )
    )
    errors = [str(e) for e in parse_rollout(manifest).errors]
    assert any(
        "steps[0].analysis.args[0].valueFrom.fieldRef" in e and "'spec.replicas' is not supported" in e
        for e in errors
    ), errors


def test_an_argument_needs_exactly_one_source():
    for arg in (
        {"name": "x"},
        {"name": "x", "value": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ):
        manifest = rollout_manifest(
            strategy=canary_strategy(steps=[{"analysis": {"templates": [{"name": "t"}], "args": [arg]}}])
        )
        errors = [str(e) for e in parse_rollout(manifest).errors]
        assert any("args[0]" in e and "exactly one of value or valueFrom" in e for e in errors), errors


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (None, "the Secret was not found"),
        ({"other": "eA=="}, "the Secret has no such key"),
        (Denied("the controller lacks get on secrets"), "cannot be read: the controller lacks get"),
        ({"tenant": base64.b64encode(b"\xff\xfe").decode()}, "not base64-encoded UTF-8 text"),
    ],
)
def test_an_unusable_secret_is_an_error_at_the_secret_key_ref(data, why):
    values = secret_arg_values(rollout([SECRET_ARG, *FIELD_ARGS]), {"prom": data})
    assert isinstance(values[("prom", "tenant")], Unreadable)
    analyses = resolved([SECRET_ARG, *FIELD_ARGS], values, {"team": "pay"})
    messages = [str(e) for e in analyses.errors]
    assert any(
        m.startswith(f"{STEP_PATH}.args[0].valueFrom.secretKeyRef: Secret shop/prom key 'tenant'")
        and why in m
        for m in messages
    ), messages


def test_secret_values_are_decoded_from_the_secret_data():
    data = {"tenant": base64.b64encode(SECRET.encode()).decode()}
    assert secret_arg_values(rollout([SECRET_ARG]), {"prom": data}) == {("prom", "tenant"): SECRET}


def test_a_secret_that_cannot_stand_where_it_is_put_is_an_error_without_its_value():
    template = parse_template(
        {
            "spec": {
                "metrics": [
                    {
                        "name": "m",
                        "successCondition": "result[0] < 1",
                        "provider": {"prometheus": {"query": "rate(x[{{args.tenant}}])"}},
                    }
                ]
            }
        }
    )
    analyses = resolve_all(
        rollout([SECRET_ARG]), {TemplateKey("t"): template}, "s", "c", {("prom", "tenant"): SECRET}
    )
    text = "; ".join(str(e) for e in analyses.errors)
    assert "outside a quoted label value" in text and MASK in text
    assert "tenant-" not in text


def test_measurement_messages_and_provider_errors_mask_the_secret():
    analyses = resolved([SECRET_ARG, *FIELD_ARGS], {("prom", "tenant"): SECRET}, {"team": "pay"})
    metric = analyses.metrics["step-2"][0]
    for result in (
        QueryResult("step-2", "c1", "errors", T0, value=[]),
        QueryResult("step-2", "c1", "errors", T0, error=f"bad_data: parse error in {metric.request.query}"),
        QueryResult("step-2", "c1", "errors", T0, no_data=f"nothing for tenant {SECRET}"),
    ):
        measurement = judge(metric, result)
        assert "tenant-" not in measurement.message and MASK in measurement.message, measurement.message


def test_mask_covers_the_forms_providers_give_a_value():
    value = "a b/c&d\"e'"
    for form in (
        value,
        "a b/c&d\\\"e'",  # PromQL, double-quoted
        "a b/c&d\"e\\'",  # PromQL, single-quoted
        "a b/c&d\\\"e'",  # JSON string
        "a%20b%2Fc%26d%22e%27",  # URL path or query part
        "a+b%2Fc%26d%22e%27",  # form-encoded
    ):
        assert mask(f"before {form} after", [value]) == f"before {MASK} after", form


def test_mask_covers_what_the_nrql_influxql_and_flux_escapes_make_of_a_value():
    value = "p\"q\\r's${t}"
    queries = {
        "nrql": substitute_nrql("SELECT count(*) FROM T WHERE app = '{{args.v}}'", {"v": value}),
        "influxql": substitute_influxql("SELECT x FROM m WHERE app = '{{args.v}}'", {"v": value}),
        "flux": substitute_flux(
            'from(bucket: "b") |> filter(fn: (r) => r.app == "{{args.v}}")', {"v": value}
        ),
    }
    for language, query in queries.items():
        masked = mask(query, [value])
        # the whole literal's inside is masked, nothing of the value left beside it
        assert f"'{MASK}'" in masked or f'"{MASK}"' in masked, (language, masked)


def test_log_lines_never_carry_a_remembered_secret():
    """The controller's own log set-up, with a provider-style record naming the query."""
    stream = io.StringIO()
    configure_logging("INFO")
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    LOG_MASK.remember("shop/web", [SECRET])
    try:
        structlog.get_logger("rollout.analysis").info(
            "prometheus query", query=f'errors{{tenant="{SECRET}"}}', value=[0.1], headers={"x": SECRET}
        )
        logging.getLogger("kopf.objects").warning("handler failed for tenant %s", SECRET)
    finally:
        LOG_MASK.remember("shop/web", [])
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert "tenant-" not in stream.getvalue()
    assert lines[0]["query"] == f'errors{{tenant="{MASK}"}}' and lines[0]["value"] == [0.1]
    assert lines[1]["event"] == f"handler failed for tenant {MASK}"


def test_lint_assumes_a_secret_not_in_the_files_and_checks_one_that_is():
    """`rollout lint`: Secrets are seldom in Git; one that is given must hold the key."""
    documents = [
        (f"examples/canary-analysis-dry-run.yaml#{i}", doc)
        for i, doc in enumerate(yaml.safe_load_all(EXAMPLE.read_text()))
        if doc
    ]
    assert problems(documents) == []
    without_secret = [(w, d) for w, d in documents if d["kind"] != "Secret"]
    assert problems(without_secret) == []
    wrong_key = [
        (w, {**d, "stringData": {"other": "x"}} if d["kind"] == "Secret" else d) for w, d in documents
    ]
    found = problems(wrong_key)
    assert any(
        "steps[1].analysis.args[0].valueFrom.secretKeyRef: Secret default/checkout-tenancy key 'tenant': "
        "the Secret has no such key" in line
        for line in found
    ), found
