"""provider.graphite against a real Graphite: Debian's carbon-cache and graphite-web started on
free loopback ports (tests/graphite_server.py), points sent over carbon's plaintext protocol,
every query through the provider and graphite-web's render API."""

import asyncio
import time

import pytest

from rollout.analysis.args import ArgError
from rollout.analysis.provider import NoData, QueryError
from rollout.analysis.providers import PROVIDERS
from rollout.api.templates import parse_template
from tests.graphite_server import GraphiteServer

pytestmark = pytest.mark.graphite
PROVIDER = PROVIDERS["graphite"]


@pytest.fixture(scope="module")
def graphite():
    server = GraphiteServer()
    now = int(time.time())
    try:
        # Error ratios of two revisions of one app, the canary's last point the worst.
        server.send("apps.web-canary.http.error_ratio", [(0.01, now - 3), (0.02, now - 2), (0.09, now - 1)])
        server.send("apps.web-stable.http.error_ratio", [(0.01, now - 3), (0.01, now - 2), (0.01, now - 1)])
        server.wait_for_points("apps.*.http.error_ratio", 6)
        yield server
    finally:
        server.stop()


def config(**fields):
    metric = {"name": "errors", "successCondition": "result < 0.05", "provider": {"graphite": fields}}
    parsed = parse_template({"spec": {"metrics": [metric]}})
    assert not isinstance(parsed, str), parsed
    return parsed.metrics[0].provider.config


async def measure(graphite, args=None, **fields):
    request = PROVIDER.resolve(config(address=graphite.url, **fields), args or {})
    return await asyncio.to_thread(PROVIDER.measure, request, {}, {}, {})


async def test_one_series_is_its_last_point_or_its_aggregate(graphite):
    target = "apps.{{args.app}}.http.error_ratio"
    assert await measure(graphite, {"app": "web-canary"}, target=target) == pytest.approx(0.09)
    assert await measure(graphite, {"app": "web-canary"}, target=target, aggregator="max") == pytest.approx(
        0.09
    )
    assert await measure(graphite, {"app": "web-canary"}, target=target, aggregator="avg") == pytest.approx(
        0.04
    )
    assert await measure(graphite, {"app": "web-stable"}, target=target) == pytest.approx(0.01)


async def test_graphite_functions_and_a_quoted_argument_reach_graphite(graphite):
    target = 'alias(scale(apps.{{args.app}}.http.error_ratio, 100), "{{args.app}} errors (%)")'
    assert await measure(graphite, {"app": "web-canary"}, target=target) == pytest.approx(9.0)


async def test_a_target_matching_several_series_is_an_error_naming_the_count(graphite):
    with pytest.raises(QueryError, match="returned 2 series where one is expected"):
        await measure(graphite, target="apps.*.http.error_ratio")
    # Graphite's own aggregation makes them one.
    assert await measure(graphite, target="maxSeries(apps.*.http.error_ratio)") == pytest.approx(0.09)


async def test_no_series_or_no_point_in_the_window_is_no_data(graphite):
    with pytest.raises(NoData, match="returned no series"):
        await measure(graphite, target="apps.nothing-here.http.error_ratio")
    with pytest.raises(NoData, match="without points"):
        await measure(
            graphite, target="apps.web-canary.http.error_ratio", **{"from": "-50min", "until": "-40min"}
        )


async def test_a_target_graphite_rejects_is_an_error_with_its_words(graphite):
    with pytest.raises(QueryError, match=r"HTTP 400: 'Invalid parameters .*unknown function: noSuchFunction"):
        await measure(graphite, target="noSuchFunction(apps.web-canary.http.error_ratio)")
    # graphite-web 1.1 answers an unbalanced target with no series (200, []): no data, never a pass.
    with pytest.raises(NoData, match="returned no series"):
        await measure(graphite, target="sumSeries(apps.web-canary.http.error_ratio")


async def test_an_argument_that_would_widen_the_match_never_reaches_graphite(graphite):
    # With `*` this target would match both series (an Error); as one node it is refused first.
    with pytest.raises(ArgError, match="one path node"):
        await measure(graphite, {"app": "*"}, target="apps.{{args.app}}.http.error_ratio")


async def test_an_unreachable_graphite_is_an_error():
    request = PROVIDER.resolve(config(address="http://127.0.0.1:9", target="a.b"), {})
    with pytest.raises(QueryError, match="unreachable"):
        await asyncio.to_thread(PROVIDER.measure, request, {}, {}, {})
