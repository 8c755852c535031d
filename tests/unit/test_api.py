"""The API models: parsing, field paths in errors, durations, revisions, and the generated CRD."""

from pathlib import Path

import pytest
import yaml

from rollout.api.base import parse_duration, resolve_int_or_percent
from rollout.api.crds import all_crds, openapi_validator, render, rollout_crd
from rollout.api.revision import revision_hash
from rollout.api.rollout import parse_rollout
from rollout.cli.main import main as cli
from tests.manifests import rollout_manifest

REPO = Path(__file__).resolve().parents[2]


def errors_of(manifest):
    return {e.path: e.message for e in parse_rollout(manifest).errors}


def test_valid_rollout_parses_with_defaults():
    parsed = parse_rollout(rollout_manifest(strategy={}))
    assert parsed.errors == ()
    spec = parsed.rollout.spec
    assert spec.strategy.rolling.max_surge == "25%"
    assert spec.progress_deadline_seconds == 600
    assert spec.revision_history_limit == 10


@pytest.mark.parametrize(
    ("strategy", "path", "fragment"),
    [
        ({"canary": {"steps": [{"setWeight": 10}, {}]}}, "spec.strategy.canary.steps[1]", "no action"),
        (
            {"canary": {"steps": [{"setWeight": 10, "pause": {}}]}},
            "spec.strategy.canary.steps[0]",
            "exactly one",
        ),
        (
            {"canary": {"steps": [{"pause": {"duration": "soon"}}]}},
            "spec.strategy.canary.steps[0].pause.duration",
            "not a duration",
        ),
        ({"rolling": {"maxSurge": "lots"}}, "spec.strategy.rolling.maxSurge", "percentage"),
        ({"rolling": {}, "canary": {}}, "spec.strategy", "exactly one strategy"),
        (
            {"canary": {"steps": [{"setHeaderRoute": {"name": "h", "match": [{"header": "x"}]}}]}},
            "spec.strategy.canary.steps[0].setHeaderRoute.match[0]",
            "exactly one of exact",
        ),
    ],
)
def test_spec_errors_name_the_field(strategy, path, fragment):
    errors = errors_of(rollout_manifest(strategy=strategy))
    assert path in errors, errors
    assert fragment in errors[path]


def test_unknown_field_is_an_error_with_its_path():
    manifest = rollout_manifest()
    manifest["spec"]["strategy"]["rolling"]["maxSurprise"] = 1
    assert "spec.strategy.rolling.maxSurprise" in errors_of(manifest)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5), (45, 45), ("90", 90)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1d", "m", "5 m", "-3s", -1])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [("25%", 5, True, 2), ("25%", 5, False, 1), (3, 10, True, 3), ("100%", 4, False, 4), ("0%", 7, True, 0)],
)
def test_int_or_percent(value, total, up, expected):
    assert resolve_int_or_percent(value, total, round_up=up) == expected


def test_revision_hash_is_stable_and_key_order_independent():
    a = {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"containers": [{"image": "x"}]}}
    b = {"spec": {"containers": [{"image": "x"}]}, "metadata": {"labels": {"tier": "fe", "app": "web"}}}
    assert revision_hash(a) == revision_hash(b)
    assert len(revision_hash(a)) == 10
    assert revision_hash(a) != revision_hash({**a, "spec": {"containers": [{"image": "y"}]}})


# --- the generated CRD ---------------------------------------------------------------------


def test_crds_directory_is_up_to_date():
    for name, crd in all_crds().items():
        path = REPO / "crds" / name
        assert path.exists(), f"{path} missing: run `rollout crds`"
        assert path.read_text() == render(crd), f"{path} is stale: run `rollout crds`"
    assert cli(["crds", "--check", "--output", str(REPO / "crds")]) == 0


def test_chart_crds_are_identical_to_crds(tmp_path, capsys, monkeypatch):
    chart = REPO / "charts" / "rollout-controller" / "crds"
    assert sorted(p.name for p in chart.iterdir()) == sorted(all_crds())
    for name in all_crds():
        assert (chart / name).read_text() == (REPO / "crds" / name).read_text(), f"{name} drifted"
    # `rollout crds` writes both and `--check` looks at both: a drifted chart copy fails it.
    work = tmp_path / "repo"
    (work / "charts" / "rollout-controller").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert cli(["crds"]) == 0
    assert (work / "crds" / "rollout.dev_rollouts.yaml").read_text() == (
        work / "charts" / "rollout-controller" / "crds" / "rollout.dev_rollouts.yaml"
    ).read_text()
    assert cli(["crds", "--check"]) == 0
    (work / "charts" / "rollout-controller" / "crds" / "rollout.dev_rollouts.yaml").write_text("drift: 1\n")
    capsys.readouterr()
    assert cli(["crds", "--check"]) == 1
    assert "charts/rollout-controller/crds/rollout.dev_rollouts.yaml" in capsys.readouterr().err


def test_crds_check_fails_on_stale_files(tmp_path, capsys):
    (tmp_path / "rollout.dev_rollouts.yaml").write_text("stale: true\n")
    assert cli(["crds", "--check", "--output", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().err


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def test_crd_schema_is_structural():
    schema = rollout_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "nullable" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "properties" in node or "items" in node:
            assert node.get("type") in ("object", "array"), path
    # every property and item schema has a type, unless it is int-or-string or kept as is
    for path, node in _walk(schema):
        for sub in [
            *node.get("properties", {}).values(),
            node.get("items"),
            node.get("additionalProperties"),
        ]:
            if isinstance(sub, dict):
                assert "type" in sub or sub.get("x-kubernetes-int-or-string"), (path, sub)
    rolling = schema["properties"]["spec"]["properties"]["strategy"]["properties"]["rolling"]["properties"]
    assert rolling["maxSurge"] == {"x-kubernetes-int-or-string": True}
    template = schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    assert template["x-kubernetes-preserve-unknown-fields"] is True


def test_crd_has_subresources_and_printer_columns():
    version = rollout_crd()["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Step",
        "Weight",
        "Stable",
        "Current",
        "Active",
        "Preview",
        "Message",
        "Age",
        "Roles",
        "Stable-Pods",
    ]
    wide = {c["name"] for c in version["additionalPrinterColumns"] if c.get("priority") == 1}
    assert wide == {"Roles", "Stable-Pods"}  # shown by `kubectl get -o wide`


def crd_validator():
    crd = yaml.safe_load((REPO / "crds" / "rollout.dev_rollouts.yaml").read_text())
    return openapi_validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m["spec"].update(replicas=-1), "replicas"),
        (lambda m: m["spec"].update(strategy={"canary": {"steps": [{"setWeight": 120}]}}), "setWeight"),
        (
            lambda m: m["spec"]["selector"].update(matchExpressions=[{"key": "a", "operator": "Near"}]),
            "operator",
        ),
        (lambda m: m["spec"].update(replicas="three"), "replicas"),
        # template or workloadRef: which one is the controller's check (InvalidSpec), not the schema's
        (lambda m: m["spec"].update(workloadRef={"name": "web", "scaleDown": "sometimes"}), "scaleDown"),
    ],
)
def test_schema_rejects_bad_shapes_naming_the_field(mutate, field):
    manifest = rollout_manifest()
    mutate(manifest)
    errors = list(crd_validator().iter_errors(manifest))
    assert errors, "the schema accepted a bad shape"
    assert any(field in "/".join(map(str, e.absolute_path)) + e.message for e in errors)


def test_schema_accepts_the_design_example():
    manifest = rollout_manifest(
        strategy={
            "canary": {
                "stableService": "web-stable",
                "canaryService": "web-canary",
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                "analysis": {
                    "templates": [{"name": "success-rate"}],
                    "args": [{"name": "service", "value": "web-canary"}],
                },
                "steps": [
                    {"setHeaderRoute": {"name": "dark", "match": [{"header": "x-canary", "exact": "true"}]}},
                    {"pause": {}},
                    {"setWeight": 10},
                    {"pause": {"duration": "2m"}},
                    {"analysis": {"templates": [{"name": "latency-p99"}]}},
                    {"setMirrorRoute": {"name": "shadow", "percent": 20}},
                    {"setWeight": 50},
                ],
            }
        }
    )
    assert list(crd_validator().iter_errors(manifest)) == []
    assert parse_rollout(manifest).errors == ()
