"""provider.datadog and provider.newRelic against local servers that check each request as Datadog
and New Relic document their APIs (tests/vendor_apis.py), and the pure parts of all three vendor
providers (graphite's too): the models, argument escaping in each query language, the Secrets
each reads. Graphite's measuring is tested against a real Graphite in
tests/integration/test_graphite_provider.py."""

import asyncio
import base64
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rollout.analysis.args import ArgError
from rollout.analysis.measure import measure_one
from rollout.analysis.provider import NoData, QueryError
from rollout.analysis.providers import PROVIDERS
from rollout.analysis.resolve import TemplateKey, resolve, secret_refs
from rollout.analysis.runs import record
from rollout.api.rollout import parse_rollout
from rollout.api.status import AnalysisRun
from rollout.api.templates import parse_template
from tests.local_http import serving
from tests.manifests import rollout_manifest
from tests.vendor_apis import API_KEY, APP_KEY, NR_ACCOUNT, NR_USER_KEY, NerdGraph

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DD_KEYS = {
    "apiKeySecretRef": {"name": "dd", "key": "api-key"},
    "appKeySecretRef": {"name": "dd", "key": "app-key"},
}
NR_SECRETS = {
    "accountIdSecretRef": {"name": "nr", "key": "account-id"},
    "userKeySecretRef": {"name": "nr", "key": "user-key"},
}
DD_HEADERS = {"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY}
NR_HEADERS = {"API-Key": NR_USER_KEY, "account ID": str(NR_ACCOUNT)}


def template(kind, **fields):
    metric = {"name": "m", "successCondition": "result < 1", "provider": {kind: fields}}
    return parse_template({"spec": {"metrics": [metric]}})


def config(kind, **fields):
    parsed = template(kind, **fields)
    assert not isinstance(parsed, str), parsed
    return parsed.metrics[0].provider.config


def resolved(kind, args=None, **fields):
    return PROVIDERS[kind].resolve(config(kind, **fields), args or {})


async def measure(kind, headers, args=None, **fields):
    request = resolved(kind, args, **fields)
    return await asyncio.to_thread(PROVIDERS[kind].measure, request, headers, {}, {})


# --- the models: one clear shape each, mistakes named at their field ------------------------------


@pytest.mark.parametrize(
    ("kind", "fields", "said"),
    [
        (
            "datadog",
            {"query": "x", **DD_KEYS, "apiKey": "k"},
            "spec.metrics[0].provider.datadog.apiKey: Extra",
        ),
        ("datadog", {"query": "x"}, "spec.metrics[0].provider.datadog.apiKeySecretRef: Field required"),
        (
            "datadog",
            {"apiVersion": "v1", "queries": {"a": "x"}, "formula": "a", **DD_KEYS},
            "v1 takes one query",
        ),
        ("datadog", {"queries": {"a": "x"}, **DD_KEYS}, "queries need a formula"),
        (
            "datadog",
            {"query": "x", "queries": {"a": "x"}, "formula": "a", **DD_KEYS},
            "either query or queries",
        ),
        ("datadog", {"queries": {"A b": "x"}, "formula": "a", **DD_KEYS}, "query names are lowercase"),
        ("datadog", {"query": "x", "address": "api.datadoghq.com", **DD_KEYS}, "must start with http"),
        (
            "newRelic",
            {"query": "SELECT 1", "userKeySecretRef": {"name": "nr", "key": "k"}},
            "accountIdSecretRef",
        ),
        (
            "newRelic",
            {"query": "SELECT 1", "region": "ap", **NR_SECRETS},
            "spec.metrics[0].provider.newRelic.region",
        ),
        ("graphite", {"address": "http://g", "target": "a.b", "from": "yesterday"}, "is not a Graphite time"),
        ("graphite", {"address": "http://g", "target": "a.b", "until": "now\n"}, "is not a Graphite time"),
        ("graphite", {"target": "a.b"}, "spec.metrics[0].provider.graphite.address: Field required"),
    ],
)
def test_a_mistake_in_a_vendor_provider_is_named_at_its_field(kind, fields, said):
    problem = template(kind, **fields)
    assert isinstance(problem, str) and said in problem, problem


def test_each_vendor_provider_names_the_secrets_it_reads():
    strategy = {"canary": {"steps": [{"analysis": {"templates": [{"name": "t"}]}}]}}
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    header = {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "g", "key": "token"}}}
    metrics = [
        {"name": "dd", "successCondition": "result < 1", "provider": {"datadog": {"query": "x", **DD_KEYS}}},
        {
            "name": "nr",
            "successCondition": "result < 1",
            "provider": {"newRelic": {"query": "SELECT 1", **NR_SECRETS}},
        },
        {
            "name": "gr",
            "successCondition": "result < 1",
            "provider": {"graphite": {"address": "http://g", "target": "a", "headers": [header]}},
        },
    ]
    lookup = {TemplateKey("t"): parse_template({"spec": {"metrics": metrics}})}
    assert [(r.field, r.header, r.secret, r.key) for r in secret_refs(rollout, lookup)] == [
        ("metrics[0].provider.datadog.apiKeySecretRef", "DD-API-KEY", "dd", "api-key"),
        ("metrics[0].provider.datadog.appKeySecretRef", "DD-APPLICATION-KEY", "dd", "app-key"),
        ("metrics[1].provider.newRelic.userKeySecretRef", "API-Key", "nr", "user-key"),
        ("metrics[1].provider.newRelic.accountIdSecretRef", "account ID", "nr", "account-id"),
        ("metrics[2].provider.graphite.headers[0].valueFrom.secretKeyRef", "Authorization", "g", "token"),
    ]


# --- escaping: each argument for where it stands in the provider's own query language ------------


def test_datadog_arguments_are_tag_values():
    request = resolved("datadog", {"service": "web-canary", "env": "prod"}, query=DD_QUERY, **DD_KEYS)
    assert request.text == "sum:trace.http.request.errors{service:web-canary,env:prod}.as_count()"


@pytest.mark.parametrize("value", ["web}+sum:other{*", "a,env:dev", "web canary", "x)", "", "a{b"])
def test_a_datadog_argument_that_could_leave_its_scope_is_refused(value):
    with pytest.raises(ArgError, match="characters of a tag"):
        resolved("datadog", {"service": value, "env": "prod"}, query=DD_QUERY, **DD_KEYS)


def test_nrql_string_arguments_are_escaped_for_their_single_quoted_literal():
    query = "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = '{{args.app}}'"
    request = resolved("newRelic", {"app": "shop' OR true OR name = 'x\\"}, query=query, **NR_SECRETS)
    assert request.text.endswith("WHERE appName = 'shop\\' OR true OR name = \\'x\\\\'")


@pytest.mark.parametrize(
    ("query", "value", "said"),
    [
        (
            "SELECT count(*) FROM T SINCE {{args.ago}} minutes ago",
            "5 OR 1=1",
            "outside an NRQL string literal",
        ),
        ("SELECT average(`{{args.attr}}`) FROM T", "a` FROM X --", "backquote"),
    ],
)
def test_an_nrql_argument_that_could_change_the_query_is_refused(query, value, said):
    with pytest.raises(ArgError, match=said):
        resolved("newRelic", {"ago": value, "attr": value}, query=query, **NR_SECRETS)


def test_graphite_arguments_are_one_path_node_or_inside_a_string():
    target = 'alias(sumSeries(apps.{{args.app}}.*.errors), "errors of {{args.app}}, {{args.note}}")'
    request = resolved(
        "graphite", {"app": "web-canary", "note": "v2 (rc)"}, address="http://g", target=target
    )
    assert request.text == 'alias(sumSeries(apps.web-canary.*.errors), "errors of web-canary, v2 (rc)")'


@pytest.mark.parametrize(
    ("target", "value", "said"),
    [
        ("apps.{{args.v}}.errors", "web.*", "one path node"),
        ("apps.{{args.v}}.errors", "x),removeAboveValue(apps.y", "one path node"),
        ("apps.{{args.v}}.errors", "{a,b}", "one path node"),
        ('alias(apps.x, "{{args.v}}")', 'a"),sumSeries("b', "quotes, backslashes"),
        ("alias(apps.x, '{{args.v}}')", "a\\", "quotes, backslashes"),
    ],
)
def test_a_graphite_argument_that_could_break_out_of_the_target_is_refused(target, value, said):
    with pytest.raises(ArgError, match=said):
        resolved("graphite", {"v": value}, address="http://g", target=target)


# --- Datadog against a server checking the documented API ----------------------------------------

DD_QUERY = "sum:trace.http.request.errors{service:{{args.service}},env:{{args.env}}}.as_count()"
DD_ARGS = {"service": "web-canary", "env": "prod"}


def dd(datadog, **fields):
    return {"address": datadog.base, "query": DD_QUERY, **DD_KEYS, **fields}


async def test_datadog_v1_query_reads_the_window_and_takes_the_last_point(datadog):
    datadog.value = 0.75
    assert await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion="v1", window="10m")) == 0.75
    asked = datadog.seen[-1]
    assert asked["query"]["query"] == "sum:trace.http.request.errors{service:web-canary,env:prod}.as_count()"
    assert int(asked["query"]["to"]) - int(asked["query"]["from"]) == 600
    assert abs(int(asked["query"]["to"]) - time.time()) < 5
    assert await measure(
        "datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion="v1", aggregator="avg")
    ) == (pytest.approx(0.65))


async def test_datadog_v2_formula_over_named_queries(datadog):
    datadog.value = 0.02
    fields = dd(datadog, query=None)
    del fields["query"]
    fields |= {
        "queries": {
            "errors": "sum:errors{service:{{args.service}}}",
            "hits": "sum:hits{service:{{args.service}}}",
        },
        "formula": "errors / hits",
        "window": "2m",
    }
    assert await measure("datadog", DD_HEADERS, DD_ARGS, **fields) == 0.02
    attributes = datadog.seen[-1]["body"]["data"]["attributes"]
    assert {q["name"]: q["query"] for q in attributes["queries"]} == {
        "errors": "sum:errors{service:web-canary}",
        "hits": "sum:hits{service:web-canary}",
    }
    assert attributes["formulas"] == [{"formula": "errors / hits"}]
    assert attributes["to"] - attributes["from"] == 120_000
    # One query alone (the default, v2) is its own formula.
    assert await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog)) == 0.02
    assert datadog.seen[-1]["body"]["data"]["attributes"]["formulas"] == [{"formula": "a"}]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_datadog_several_series_is_an_error_naming_the_count(datadog, version):
    datadog.answer = "several"
    with pytest.raises(QueryError, match="returned 3 series where one is expected"):
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion=version))


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize(("answer", "said"), [("empty", "returned no series"), ("nulls", "without points")])
async def test_datadog_no_series_or_no_points_is_no_data(datadog, version, answer, said):
    datadog.answer = answer
    with pytest.raises(NoData, match=said):
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion=version))


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_datadog_error_bodies_and_a_wrong_key_are_errors_with_datadogs_words(datadog, version):
    datadog.answer = "error"
    with pytest.raises(QueryError, match="HTTP 400: Error parsing query: unexpected token"):
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion=version))
    datadog.answer = "ok"
    with pytest.raises(QueryError, match="HTTP 403: Forbidden"):
        await measure(
            "datadog", {**DD_HEADERS, "DD-API-KEY": "wrong"}, DD_ARGS, **dd(datadog, apiVersion=version)
        )


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_datadog_429_is_retried_after_its_reset_within_the_timeout(datadog, version):
    datadog.rate_limited_times, datadog.reset_seconds, datadog.value = 1, 1, 0.3
    started = time.monotonic()
    assert (
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion=version, timeout="5s")) == 0.3
    )
    assert time.monotonic() - started >= 1.0  # waited for the reset
    assert len(datadog.seen) == 2


async def test_datadog_429_resetting_after_the_timeout_is_an_error_at_once(datadog):
    datadog.answer, datadog.reset_seconds = "rate-limited", 30
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"rate limited by Datadog \(HTTP 429; the limit resets in 30s"):
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, timeout="3s"))
    assert time.monotonic() - started < 3
    assert len(datadog.seen) == 1


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_datadog_slower_than_the_timeout_is_an_error(datadog, version):
    datadog.delay = 3
    started = time.monotonic()
    with pytest.raises(QueryError, match="did not answer within 1s"):
        await measure("datadog", DD_HEADERS, DD_ARGS, **dd(datadog, apiVersion=version, timeout="1s"))
    assert time.monotonic() - started < 2.5


async def test_datadog_unreachable_is_an_error():
    with pytest.raises(QueryError, match="unreachable"):
        await measure("datadog", DD_HEADERS, DD_ARGS, address="http://127.0.0.1:9", query=DD_QUERY, **DD_KEYS)


# --- New Relic against a server checking the documented NerdGraph API ---------------------------

NRQL = (
    "SELECT percentage(count(*), WHERE error IS true) FROM Transaction "
    "WHERE appName = '{{args.app}}' SINCE 5 minutes ago"
)


@pytest.fixture
async def nerdgraph():
    api = NerdGraph()
    async with serving(api.app()) as base:
        api.base = base
        yield api
    assert not api.violations, api.violations


def nr(nerdgraph, **fields):
    return {"address": f"{nerdgraph.base}/graphql", "query": NRQL, **NR_SECRETS, **fields}


async def test_newrelic_nrql_travels_as_a_graphql_variable_with_the_user_key(nerdgraph):
    nerdgraph.results = [{"percentage": 1.25}]
    assert await measure("newRelic", NR_HEADERS, {"app": "shop's web"}, **nr(nerdgraph, timeout="7s")) == 1.25
    asked = nerdgraph.seen[-1]
    assert asked["headers"]["API-Key"] == NR_USER_KEY
    variables = asked["body"]["variables"]
    assert variables["accountId"] == NR_ACCOUNT and variables["timeout"] == 7
    assert "WHERE appName = 'shop\\'s web'" in variables["nrql"]
    assert "shop" not in asked["body"]["query"]  # the NRQL is never spliced into the GraphQL


async def test_newrelic_result_key_picks_a_field(nerdgraph):
    nerdgraph.answer = "several-fields"
    assert (
        await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph, resultKey="average.duration"))
        == 0.2
    )
    with pytest.raises(QueryError, match=r"2 numeric fields \(average.duration, count\): set resultKey"):
        await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph))


@pytest.mark.parametrize(
    ("answer", "error", "said"),
    [
        ("facet", QueryError, "returned 2 result rows where one is expected"),
        ("graphql-error", QueryError, "NerdGraph answered errors: NRQL Syntax Error"),
        ("empty", NoData, "returned no result rows"),
        ("nulls", NoData, "holds no number"),
    ],
)
async def test_newrelic_answers_that_are_not_one_number(nerdgraph, answer, error, said):
    nerdgraph.answer = answer
    with pytest.raises(error, match=said):
        await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph))


async def test_newrelic_a_wrong_key_or_account_is_an_error(nerdgraph):
    with pytest.raises(QueryError, match="Invalid API key"):
        await measure("newRelic", {**NR_HEADERS, "API-Key": "NRAK-WRONG"}, {"app": "a"}, **nr(nerdgraph))
    with pytest.raises(QueryError, match="Account not found"):
        await measure("newRelic", {**NR_HEADERS, "account ID": "42"}, {"app": "a"}, **nr(nerdgraph))
    with pytest.raises(QueryError, match="account ID read from its Secret is not a number"):
        await measure("newRelic", {**NR_HEADERS, "account ID": "acme"}, {"app": "a"}, **nr(nerdgraph))


async def test_newrelic_slower_than_the_timeout_is_an_error(nerdgraph):
    nerdgraph.delay = 3
    with pytest.raises(QueryError, match="/graphql did not answer within 1s"):
        await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph, timeout="1s"))


def test_newrelic_region_chooses_the_endpoint():
    assert (
        resolved("newRelic", {}, query="SELECT 1", **NR_SECRETS).endpoint
        == "https://api.newrelic.com/graphql"
    )
    eu = resolved("newRelic", {}, query="SELECT 1", region="eu", **NR_SECRETS)
    assert eu.endpoint == "https://api.eu.newrelic.com/graphql"


# --- through the controller's Secret plumbing and the bookkeeping ---------------------------------


def b64(text):
    return base64.b64encode(text.encode()).decode()


async def test_vendor_metrics_measured_through_the_controller_read_their_secrets(datadog, nerdgraph):
    strategy = {"canary": {"steps": [{"analysis": {"templates": [{"name": "t"}]}}]}}
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    ref = rollout.spec.strategy.canary.steps[0].analysis
    datadog.value, nerdgraph.results = 2.5, [{"count": 0.1}]
    metrics = [
        {
            "name": "dd",
            "successCondition": "result < 1",
            "provider": {"datadog": {**dd(datadog), "query": "sum:errors{service:{{args.canary-service}}}"}},
        },
        {
            "name": "nr",
            "successCondition": "result < 1",
            "provider": {
                "newRelic": nr(nerdgraph, query="SELECT count(*) FROM T WHERE h = '{{args.canary-hash}}'")
            },
        },
    ]
    lookup = {TemplateKey("t"): parse_template({"spec": {"metrics": metrics}})}
    builtins = {"canary-service": "web-canary", "canary-hash": "abc"}
    resolved_metrics, errors = resolve(ref, "spec.x", lookup, builtins, bounded=True)
    assert not errors, errors
    secrets = {
        "dd": {"api-key": b64(API_KEY), "app-key": b64(APP_KEY)},
        "nr": {"user-key": b64(NR_USER_KEY), "account-id": b64(str(NR_ACCOUNT))},
    }
    run = AnalysisRun(name="step-1", revision="r1", started_at=T0)
    results = [await measure_one(secrets, None, rollout, "step-1", "r1", m, T0) for m in resolved_metrics]
    assert [r.value for r in results] == [2.5, 0.1]
    assert record(run, resolved_metrics[0], results[0]).phase == "Failed"
    assert record(run, resolved_metrics[1], results[1]).phase == "Successful"
    assert nerdgraph.seen[-1]["body"]["variables"]["nrql"] == "SELECT count(*) FROM T WHERE h = 'abc'"
    # A key gone from the Secret during a run: an Error saying which, never a pass.
    gone = await measure_one(
        {"dd": {"api-key": b64(API_KEY)}}, None, rollout, "step-1", "r1", resolved_metrics[0], T0
    )
    assert gone.value is None and "Secret shop/dd has no key 'app-key'" in gone.error


# --- escaping, for any value: refused, or it stays where it was put ------------------------------

NRQL_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
NRQL_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_nrql_string_argument_stays_one_literal_holding_the_value(value):
    request = resolved(
        "newRelic", {"v": value}, query="SELECT count(*) FROM T WHERE a = '{{args.v}}'", **NR_SECRETS
    )
    literal = request.text.removeprefix("SELECT count(*) FROM T WHERE a = ")
    assert NRQL_LITERAL.fullmatch(literal), literal
    assert NRQL_ESCAPE.sub(r"\1", literal[1:-1]) == value


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("web\n")  # `$` in a pattern matches before a final newline: fullmatch is needed
def test_any_datadog_argument_is_refused_or_one_tag_value(value):
    try:
        request = resolved("datadog", {"v": value}, query="sum:errors{service:{{args.v}}}", **DD_KEYS)
    except ArgError:
        return
    scope = request.text.removeprefix("sum:errors{").removesuffix("}")
    assert scope == f"service:{value}" and not set(value) & set("{}(), \t\n!*'\"")


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("web\n")
def test_any_graphite_argument_is_refused_or_stays_in_its_node_or_string(value):
    target = 'alias(apps.{{args.v}}.errors, "{{args.v}}")'
    try:
        request = resolved("graphite", {"v": value}, address="http://g", target=target)
    except ArgError:
        return
    assert request.text == f'alias(apps.{value}.errors, "{value}")'
    assert re.fullmatch(r"[A-Za-z0-9_-]+", value)


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("5\n")
def test_any_bare_nrql_argument_is_refused_or_a_number_or_name(value):
    try:
        request = resolved(
            "newRelic",
            {"v": value},
            query="SELECT count(*) FROM T SINCE {{args.v}} minutes ago",
            **NR_SECRETS,
        )
    except ArgError:
        return
    assert request.text == f"SELECT count(*) FROM T SINCE {value} minutes ago"
    assert re.fullmatch(r"[A-Za-z0-9_.]+", value)


async def test_newrelic_429_is_asked_again_after_its_retry_after_within_the_timeout(nerdgraph):
    nerdgraph.rate_limited_times, nerdgraph.retry_after = 1, "1"
    started = time.monotonic()
    assert await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph, timeout="5s")) == 0.5
    assert time.monotonic() - started >= 1.0  # waited as asked
    assert len(nerdgraph.seen) == 2


@pytest.mark.parametrize(
    ("retry_after", "message"),
    [
        ("30", r"HTTP 429 \(rate limited\).*retry after 30s, past the 3s timeout"),
        (None, "with no Retry-After"),
    ],
)
async def test_newrelic_429_that_cannot_be_waited_for_is_an_error_at_once(nerdgraph, retry_after, message):
    nerdgraph.rate_limited_times, nerdgraph.retry_after = 5, retry_after
    started = time.monotonic()
    with pytest.raises(QueryError, match=message):
        await measure("newRelic", NR_HEADERS, {"app": "a"}, **nr(nerdgraph, timeout="3s"))
    assert time.monotonic() - started < 3
    assert len(nerdgraph.seen) == 1
