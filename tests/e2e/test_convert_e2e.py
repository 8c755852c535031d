"""Peers' own manifests, converted by `rollout convert`, run on the real control plane.

Argo Rollouts' examples, a sample whose routers are supported (none, blue/green Services,
workloadRef, Istio subsets): the objects the converter leaves as they are (Services, the
Deployment, the VirtualService and DestinationRule) are applied as the example ships them, the
converted Rollout beside them; it becomes Healthy, an update pauses where the example pauses, and
`promote` takes it to the new revision. A Flagger Canary from its istio end-to-end test, with
Flagger's podinfo Deployment and the Services and VirtualService Flagger would have generated:
the weights step through the route."""

import pytest
import yaml

from rollout.cli.convert import Source, documents_of
from rollout.convert import convert_documents
from rollout.kube import ROLLOUTS, Resource
from rollout.kube.resources import ANALYSIS_TEMPLATES, DEPLOYMENTS
from tests.e2e.helpers import wait_for
from tests.peers import ARGO, FLAGGER, here_documents, require_modules

pytestmark = pytest.mark.e2e

PLURALS = {
    "Service": ("", "services"),
    "Deployment": ("apps", "deployments"),
    "VirtualService": ("networking.istio.io", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "destinationrules"),
}
NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def _resource(doc):
    group, plural = PLURALS[doc["kind"]]
    return Resource(group, doc["apiVersion"].rsplit("/", 1)[-1], plural, doc["kind"])


def _converted(example):
    """(objects left as they are, objects written) of one Argo Rollouts example file."""
    path = require_modules()[ARGO] / example
    documents, unreadable = documents_of(Source(str(path), path, path.read_text()))
    assert unreadable == []
    left, written = [], []
    for (_, doc), outcome in zip(documents, convert_documents(documents), strict=True):
        assert outcome.error is None, outcome
        if outcome.conversion is None:
            left.append(doc)
        else:
            assert outcome.conversion.refused is None, outcome.conversion.refused
            written += outcome.conversion.objects
    return left, written


def _status(kube, ns, name, phase, other_than=None):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, name)) or {}).get("status") or {}
        if status.get("phase") != phase:
            return None
        return status if other_than is None or status.get("stableRevision") != other_than else None

    return probe


def _weights(virtual_service):
    route = next(r for r in virtual_service["spec"]["http"] if r.get("name") == "primary")
    return {d["destination"]["subset"]: d.get("weight") for d in route["route"]}


@pytest.mark.parametrize(
    "example",
    [
        "examples/rollout-canary.yaml",
        "examples/rollout-bluegreen.yaml",
        "examples/workload-ref/workload-ref.yaml",
        "examples/istio/istio-subset-split.yaml",
    ],
)
async def test_a_converted_argo_example_rolls_out(
    example, kube, namespace, routing_installed, pods_made_ready, start_controller
):
    left, written = _converted(example)
    for doc in left + written:
        doc["metadata"]["namespace"] = namespace
    for doc in left:
        await kube.create(_resource(doc), namespace, doc)
    for doc in written:
        resource = ROLLOUTS if doc["kind"] == "Rollout" else ANALYSIS_TEMPLATES
        await kube.create(resource, namespace, doc)
    (rollout,) = [d for d in written if d["kind"] == "Rollout"]
    name = rollout["metadata"]["name"]
    start_controller()
    first = await wait_for(_status(kube, namespace, name, "Healthy"), what=f"{name} Healthy", timeout=180)
    v1 = first["stableRevision"]

    # The update: the Rollout's template, or the Deployment's for a workloadRef.
    image = {"spec": {"template": {"spec": {"containers": [{"name": "placeholder"}]}}}}
    if "workloadRef" in rollout["spec"]:
        (deployment,) = [d for d in left if d["kind"] == "Deployment"]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        target = (_resource(deployment), deployment["metadata"]["name"])
    else:
        containers = rollout["spec"]["template"]["spec"]["containers"]
        target = (ROLLOUTS, name)
    image["spec"]["template"]["spec"]["containers"] = [{**containers[0], "image": NEW_IMAGE}]
    await kube.patch(target[0], namespace, target[1], image)

    if example.endswith("workload-ref.yaml"):  # its steps are a weight and a timed pause: no stop
        await wait_for(_status(kube, namespace, name, "Healthy", v1), what="v2 stable", timeout=180)
        return
    paused = await wait_for(_status(kube, namespace, name, "Paused"), what=f"{name} paused", timeout=180)
    assert paused["stableRevision"] == v1
    if example.endswith("istio-subset-split.yaml"):  # setWeight 10 on the example's VirtualService
        vs = next(d for d in left if d["kind"] == "VirtualService")
        stored = await kube.get(_resource(vs), namespace, vs["metadata"]["name"])
        assert _weights(stored) == {"stable": 90, "canary": 10}
    await kube.patch(
        ROLLOUTS, namespace, name, {"metadata": {"annotations": {"rollout.dev/promote": "full"}}}
    )
    done = await wait_for(_status(kube, namespace, name, "Healthy", v1), what="v2 stable", timeout=180)
    assert done["stableRevision"] != v1


def _flagger_block(script: str, index: int) -> str:
    """One here-document of a Flagger end-to-end test script (where its Canaries are written)."""
    return here_documents(require_modules()[FLAGGER] / "test" / script)[index]


def _generated(ns: str, labels: dict[str, str]) -> list[dict]:
    """What Flagger generates for a Canary `podinfo` on istio and the Rollout runs on: the primary
    and canary Services (their selectors pointed at the Deployment's pod labels, as `rollout
    convert` tells) and the delegate VirtualService sending all to the primary."""
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": 80, "targetPort": 9898}]},
        }
        for name in ("podinfo-primary", "podinfo-canary")
    ]
    route = [
        {"destination": {"host": "podinfo-primary"}, "weight": 100},
        {"destination": {"host": "podinfo-canary"}, "weight": 0},
    ]
    virtual_service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"http": [{"route": route}]},
    }
    return [*services, virtual_service]


async def test_a_converted_flagger_canary_shifts_weights_on_istio(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    """Flagger's istio delegation test Canary (10 %, 20 %, 30 % every 15 s; no metrics) with
    Flagger's own podinfo Deployment (kustomize/podinfo)."""
    module = require_modules()[FLAGGER]
    deployment = yaml.safe_load((module / "kustomize" / "podinfo" / "deployment.yaml").read_text())
    canary = yaml.safe_load(_flagger_block("istio/test-delegation.sh", 2))
    assert canary["kind"] == "Canary"
    documents = [("canary#1", canary), ("deployment#1", deployment)]
    outcome, _ = convert_documents(documents)
    assert outcome.conversion is not None and outcome.conversion.refused is None
    (rollout,) = outcome.conversion.objects
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s.get("setWeight") for s in steps if "setWeight" in s] == [10, 20, 30]
    deployment["metadata"]["namespace"] = rollout["metadata"]["namespace"] = namespace
    await kube.create(DEPLOYMENTS, namespace, deployment)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for doc in _generated(namespace, labels):
        await kube.create(_resource(doc), namespace, doc)
    await kube.create(ROLLOUTS, namespace, rollout)
    start_controller()
    first = await wait_for(_status(kube, namespace, "podinfo", "Healthy"), what="Healthy", timeout=180)

    containers = deployment["spec"]["template"]["spec"]["containers"]
    update = [{**containers[0], "image": "ghcr.io/stefanprodan/podinfo:6.0.1"}]
    await kube.patch(
        DEPLOYMENTS, namespace, "podinfo", {"spec": {"template": {"spec": {"containers": update}}}}
    )
    vs_resource = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")

    async def shifted():
        vs = await kube.get(vs_resource, namespace, "podinfo")
        weights = {d["destination"]["host"]: d.get("weight") for d in vs["spec"]["http"][0]["route"]}
        return weights if weights["podinfo-canary"] == 10 else None

    assert await wait_for(shifted, what="10 % to the canary", timeout=180) == {
        "podinfo-primary": 90,
        "podinfo-canary": 10,
    }
    await wait_for(
        _status(kube, namespace, "podinfo", "Healthy", first["stableRevision"]), what="v2", timeout=180
    )
