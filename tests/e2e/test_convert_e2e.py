"""Argo Rollouts' own examples, converted by `rollout convert`, run on the real control plane: a
sample whose routers are supported (none, blue/green Services, workloadRef, Istio subsets). The
objects the converter leaves as they are (Services, the Deployment, the VirtualService and
DestinationRule) are applied as the example ships them, the converted Rollout beside them; it
becomes Healthy, an update pauses where the example pauses, and `promote` takes it to the new
revision."""

import pytest

from rollout.cli.convert import Source, documents_of
from rollout.convert import convert_documents
from rollout.kube import ROLLOUTS, Resource
from rollout.kube.resources import ANALYSIS_TEMPLATES
from tests.e2e.helpers import wait_for
from tests.peers import ARGO, require_modules

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
