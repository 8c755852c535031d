"""provider.cloudWatch and provider.influxdb before anything is measured: the models refuse what
they cannot use (naming the field), arguments are escaped for where they stand, and credentials
are named as Secret uses so that a missing one is an InvalidSpec."""

import pytest

from rollout.analysis.args import ArgError
from rollout.analysis.cloudwatch import newest_value, retry_budget
from rollout.analysis.influxdb import influxql_value
from rollout.analysis.provider import NoData, QueryError
from rollout.analysis.providers import PROVIDERS
from rollout.api.templates import parse_template


def template(provider):
    return {"spec": {"metrics": [{"name": "m", "successCondition": "result < 1", "provider": provider}]}}


def config_of(provider):
    spec = parse_template(template(provider))
    assert not isinstance(spec, str), spec
    return spec.metrics[0].provider.config


STAT = {"metric": {"namespace": "App", "metricName": "Errors"}, "period": 60, "stat": "Sum"}
SECRET = {"name": "aws", "key": "id"}


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        (
            {"cloudWatch": {"metricDataQueries": [{"id": "m", "metricStat": STAT, "stats": 1}]}},
            "spec.metrics[0].provider.cloudWatch.metricDataQueries[0].stats: Extra inputs are not permitted",
        ),
        (
            {"cloudWatch": {"metricDataQueries": []}},
            "spec.metrics[0].provider.cloudWatch.metricDataQueries: ",
        ),
        (
            {"cloudWatch": {"metricDataQueries": [{"id": "m"}]}},
            "spec.metrics[0].provider.cloudWatch.metricDataQueries[0]: query 'm' needs exactly one of "
            "metricStat or expression",
        ),
        (
            {"cloudWatch": {"metricDataQueries": [{"id": "Bad-id", "metricStat": STAT}]}},
            "spec.metrics[0].provider.cloudWatch.metricDataQueries[0].id: String should match pattern",
        ),
        (
            {"cloudWatch": {"metricDataQueries": [{"id": "m", "metricStat": STAT, "returnData": False}]}},
            "spec.metrics[0].provider.cloudWatch: no query returns data",
        ),
        (
            {
                "cloudWatch": {
                    "accessKeyIdSecretRef": SECRET,
                    "metricDataQueries": [{"id": "m", "metricStat": STAT}],
                }
            },
            "spec.metrics[0].provider.cloudWatch: accessKeyIdSecretRef and secretAccessKeySecretRef "
            "are given together",
        ),
        (
            {"influxdb": {"address": "http://i:8086", "query": "SELECT 1", "database": "d", "bucket": "b"}},
            "spec.metrics[0].provider.influxdb.bucket: Extra inputs are not permitted",
        ),
        (
            {"influxdb": {"address": "http://i:8086", "query": "SELECT 1"}},
            "spec.metrics[0].provider.influxdb: an influxql query needs database",
        ),
        (
            {"influxdb": {"address": "http://i:8086", "language": "flux", "query": "x"}},
            "spec.metrics[0].provider.influxdb: a flux query needs org",
        ),
        (
            {"influxdb": {"address": "i:8086", "database": "d", "query": "SELECT 1"}},
            "spec.metrics[0].provider.influxdb: address 'i:8086' must start with http://",
        ),
        (
            {"influxdb": {"address": "http://i", "database": "d", "query": "x", "passwordSecretRef": SECRET}},
            "spec.metrics[0].provider.influxdb: usernameSecretRef and passwordSecretRef are given together",
        ),
    ],
)
def test_a_mistake_is_named_at_its_field(provider, said):
    assert parse_template(template(provider)).startswith(said)


def test_cloudwatch_arguments_stand_as_parameters_and_as_plain_tokens_in_expressions():
    config = config_of(
        {
            "cloudWatch": {
                "metricDataQueries": [
                    {
                        "id": "errors",
                        "returnData": False,
                        "metricStat": {
                            "metric": {
                                "namespace": "App",
                                "metricName": "Errors",
                                "dimensions": [{"name": "Service", "value": "{{args.service}}"}],
                            },
                            "period": 60,
                            "stat": "Sum",
                        },
                    },
                    {"id": "rate", "expression": "errors / {{args.scale}}"},
                ]
            }
        }
    )
    provider = PROVIDERS["cloudWatch"]
    assert provider.placeholders(config) == {"service", "scale"}
    request = provider.resolve(config, {"service": "web canary', x", "scale": "60"})
    # A dimension value is an API parameter of its own: kept exactly, quotes and all.
    assert request.queries[0]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "Service", "Value": "web canary', x"}
    ]
    assert request.queries[1]["Expression"] == "errors / 60"
    assert request.text == "rate = errors / 60"
    with pytest.raises(ArgError, match="only numbers and names"):
        provider.resolve(config, {"service": "s", "scale": "60) + METRICS("})


def test_cloudwatch_credentials_are_secret_uses_named_by_their_field():
    config = config_of(
        {
            "cloudWatch": {
                "accessKeyIdSecretRef": {"name": "aws", "key": "id"},
                "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
                "metricDataQueries": [{"id": "m", "metricStat": STAT}],
            }
        }
    )
    uses = PROVIDERS["cloudWatch"].secret_uses(config)
    assert [(u.field, u.ref.name, u.ref.key) for u in uses] == [
        ("accessKeyIdSecretRef", "aws", "id"),
        ("secretAccessKeySecretRef", "aws", "secret"),
    ]


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ("WHERE \"service\" = '{{args.v}}'", "it's", "WHERE \"service\" = 'it\\'s'"),
        ("WHERE \"service\" = '{{args.v}}'", "a\\' OR 1=1", "WHERE \"service\" = 'a\\\\\\' OR 1=1'"),
        ('SELECT "{{args.v}}" FROM m', 'x" FROM secrets', 'SELECT "x\\" FROM secrets" FROM m'),
        ("WHERE time > now() - {{args.v}}", "5m", "WHERE time > now() - 5m"),
        ("WHERE a = 'x' AND b = {{args.v}}", "3.5", "WHERE a = 'x' AND b = 3.5"),
    ],
)
def test_influxql_arguments_are_escaped_for_where_they_stand(query, value, expected):
    config = config_of({"influxdb": {"address": "http://i:8086", "database": "d", "query": query}})
    assert PROVIDERS["influxdb"].resolve(config, {"v": value}).query == expected


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ('r.service == "{{args.v}}"', 'we"b', 'r.service == "we\\"b"'),
        (
            'r.service == "{{args.v}}"',
            '${secrets.get(key: "k")}',
            'r.service == "\\${secrets.get(key: \\"k\\")}"',
        ),
        ('r.service == "{{args.v}}"', "a\\", 'r.service == "a\\\\"'),
        ("range(start: -{{args.v}})", "5m", "range(start: -5m)"),
    ],
)
def test_flux_arguments_are_escaped_for_where_they_stand(query, value, expected):
    config = config_of(
        {"influxdb": {"address": "http://i:8086", "language": "flux", "org": "o", "query": query}}
    )
    assert PROVIDERS["influxdb"].resolve(config, {"v": value}).query == expected


@pytest.mark.parametrize("language", ["influxql", "flux"])
def test_an_unquoted_argument_must_be_a_plain_token(language):
    extra = {"database": "d"} if language == "influxql" else {"org": "o"}
    config = config_of(
        {"influxdb": {"address": "http://i:8086", "language": language, "query": "x > {{args.v}}", **extra}}
    )
    with pytest.raises(ArgError, match="outside a quoted string"):
        PROVIDERS["influxdb"].resolve(config, {"v": "1 OR true"})


def test_influxdb_credentials_are_secret_uses_named_by_their_field():
    config = config_of(
        {
            "influxdb": {"address": "http://i", "language": "flux", "org": "o", "query": "x"}
            | {"tokenSecretRef": SECRET}
        }
    )
    [use] = PROVIDERS["influxdb"].secret_uses(config)
    assert (use.field, use.header, use.ref.name) == ("tokenSecretRef", "token", "aws")


def test_the_retry_budget_fits_the_timeout():
    for timeout in (1.0, 2.0, 5.0, 10.0, 30.0, 120.0):
        attempts, socket_timeout = retry_budget(timeout)
        worst_waits = 2 ** (attempts - 1) - 1
        assert attempts >= 1 and worst_waits + attempts * socket_timeout <= timeout + 1e-9
    assert retry_budget(10.0)[0] == 3 and retry_budget(1.0)[0] == 1


def test_answers_with_several_series_are_errors_with_the_count_and_none_is_no_data():
    with pytest.raises(QueryError, match=r"^2 series answered where one is expected"):
        newest_value({"MetricDataResults": [{"Id": "a"}, {"Id": "b"}]}, 300)
    with pytest.raises(NoData):
        newest_value({"MetricDataResults": []}, 300)
    with pytest.raises(QueryError, match=r"^3 series answered where one is expected"):
        influxql_value({"results": [{"series": [{}, {}, {}]}]})
    with pytest.raises(NoData):
        influxql_value({"results": [{"statement_id": 0}]})
