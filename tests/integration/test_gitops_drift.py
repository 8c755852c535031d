"""GitOps drift: what Argo CD would see while the controller moves traffic in objects that Git
also holds. Each example in examples/ is applied as Git has it and driven through its canary (or
blue/green switch); at every pause the live routes, Services and DestinationRules are compared
with the files, as Argo CD compares them (fields the server adds are not drift), after the
documented jqPathExpressions of examples/argocd/application-jq.yaml are deleted from both sides
by libjq, as Argo CD does. With them there is no drift; without them a canary shows drift.

Every write the controller made is also checked to carry the field manager `rollout-controller`
(the emulator records each write's fieldManager and User-Agent), which is what the
`managedFieldsManagers: [rollout-controller]` of examples/argocd/application.yaml relies on."""

from pathlib import Path

import jq
import pytest
import yaml

from rollout.kube import CLUSTER_ANALYSIS_TEMPLATES, FIELD_MANAGER, ROLLOUTS, USER_AGENT
from tests.integration.example_files import (
    BUILTIN_TEMPLATES,
    KINDS,
    drive_blue_green,
    each_pause,
    rollout_status,
)
from tests.waiting import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
APPLICATIONS = EXAMPLES / "argocd"
DRIVEN = [
    "canary-httproute.yaml",
    "canary-virtualservice.yaml",
    "dark-launch-httproute.yaml",
    "mirroring.yaml",
    "tcp-istio.yaml",
    "blue-green.yaml",
]


def ignored_paths(kind):
    app = yaml.safe_load((APPLICATIONS / "application-jq.yaml").read_text())
    for entry in app["spec"]["ignoreDifferences"]:
        if entry["kind"] == kind:
            return [jq.compile(f"del({expr})") for expr in entry["jqPathExpressions"]]
    return []


def normalized(obj, kind):
    for program in ignored_paths(kind):
        obj = program.input_value(obj).first()
    return obj


def differs(desired, live, path=""):
    """Where `live` departs from `desired`; fields only in `live` (server defaults, status) are
    not differences."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [path]
        return [d for k, v in desired.items() for d in differs(v, live.get(k), f"{path}.{k}")]
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return [path]
        return [
            d
            for i, (a, b) in enumerate(zip(desired, live, strict=True))
            for d in differs(a, b, f"{path}[{i}]")
        ]
    return [] if desired == live else [path]


async def drift(cluster, documents, ignore):
    found = {}
    for doc in documents:
        if doc["kind"] in ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "Secret"):
            continue
        meta = doc["metadata"]
        live = await cluster.kube.get(KINDS[doc["kind"]], meta["namespace"], meta["name"])
        desired = {"spec": doc["spec"]}
        live = {"spec": live["spec"]}
        if ignore:
            desired, live = normalized(desired, doc["kind"]), normalized(live, doc["kind"])
        paths = differs(desired, live)
        if paths:
            found[f"{doc['kind']}/{meta['name']}"] = paths
    return found


@pytest.mark.parametrize("example", DRIVEN)
async def test_no_drift_with_the_documented_ignores_and_every_write_names_the_controller(cluster, example):
    documents = [d for d in yaml.safe_load_all((EXAMPLES / example).read_text()) if d]
    for namespace in {d["metadata"].setdefault("namespace", "default") for d in documents} - {"shop"}:
        cluster.create_namespace(namespace)
    rollouts = [d for d in documents if d["kind"] == "Rollout"]
    raw_drift = []
    async with cluster.controller():
        for template in yaml.safe_load_all(BUILTIN_TEMPLATES.read_text()):
            await cluster.kube.create(CLUSTER_ANALYSIS_TEMPLATES, None, template)
        for doc in documents:
            await cluster.kube.create(KINDS[doc["kind"]], doc["metadata"].get("namespace"), doc)
        for doc in rollouts:
            await wait_for(_healthy(cluster, doc), timeout=30, what=f"{doc['metadata']['name']} Healthy")
        assert await drift(cluster, documents, ignore=True) == {}

        for doc in rollouts:
            if "blueGreen" in doc["spec"]["strategy"]:
                await drive_blue_green(cluster, doc)
            else:
                async for _ in _pauses(cluster, doc):
                    assert await drift(cluster, documents, ignore=True) == {}
                    raw_drift.append(await drift(cluster, documents, ignore=False))
            assert await drift(cluster, documents, ignore=True) == {}

    if example != "blue-green.yaml":  # a Service selector gains a key: not drift to Argo CD anyway
        assert any(raw_drift), "a canary in flight should differ from Git without the ignores"
    writes = list(cluster.api.writes)
    controller = [w for w in writes if w.user_agent == USER_AGENT]
    assert {w.field_manager for w in controller} == {FIELD_MANAGER}
    plurals = {_plural(w.path) for w in controller}
    held = {KINDS[d["kind"]].plural for d in documents if d["kind"] not in ("Rollout", "Service")}
    if any(_named_services(d) for d in rollouts):
        held.add("services")
    held.discard(CLUSTER_ANALYSIS_TEMPLATES.plural)
    assert {"replicasets", "rollouts", "events", *held} <= plurals  # the Git-held objects too
    others = {w.user_agent for w in writes} - {USER_AGENT, cluster.kube.api.user_agent}
    assert all(agent.startswith("Python/") and "aiohttp" in agent for agent in others), others  # the kubelet


def _named_services(rollout):
    strategy = next(iter(rollout["spec"]["strategy"].values()))
    return [
        strategy[k]
        for k in ("stableService", "canaryService", "activeService", "previewService")
        if k in strategy
    ]


def _plural(path):
    parts = path.split("/")
    return parts[parts.index("namespaces") + 2]


def _healthy(cluster, doc):
    async def probe():
        status = await rollout_status(cluster, doc["metadata"]["namespace"], doc["metadata"]["name"])()
        return status if status.get("phase") == "Healthy" else None

    return probe


async def _pauses(cluster, doc):
    """Update the image and promote at each pause, yielding there, until the new revision is stable."""
    meta = doc["metadata"]
    container = doc["spec"]["template"]["spec"]["containers"][0]
    start = await rollout_status(cluster, meta["namespace"], meta["name"])()
    await cluster.kube.patch(
        ROLLOUTS,
        meta["namespace"],
        meta["name"],
        {
            "spec": {
                "template": {"spec": {"containers": [{**container, "image": container["image"] + "-next"}]}}
            }
        },
    )
    async for status in each_pause(cluster, meta["namespace"], meta["name"], start["stableRevision"]):
        yield status
