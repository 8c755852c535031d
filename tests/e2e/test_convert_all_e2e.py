"""Every Argo Rollouts Rollout and Flagger Canary that `rollout convert` writes, run on the real
control plane.

tests/unit/test_convert_peers.py converts all of Argo Rollouts' examples/ and test/e2e/ manifests
(v1.10.1) and Flagger's examples, kustomize bases, e2e scripts and docs (v1.36.1), from their Go
modules; tests/e2e/test_convert_e2e.py runs a hand-picked sample. Here each converted Rollout is
judged by its converted spec alone (`unsupported`): a router this project does not drive, or an
analysis template that was not carried over or queries the example's own metrics backend, sets
it aside with the reason. Every other one runs, all at once under one controller, each in a
namespace of its own: for Argo, the objects of its file the converter leaves as they are
(Services, Ingresses, Istio and Gateway API routes, the Deployment of a workloadRef, Secrets) as
the peer ships them; for Flagger, its podinfo Deployment and the Services and route Flagger would
have generated. The converted objects go beside them; the Rollout becomes Healthy, its image is
changed, it stops at every `pause: {}` (and a blue/green one without auto-promotion before the
switch) and `rollout.dev/promote` takes it on, until the new revision is stable. The counts of
what ran and of what was set aside by reason are held, so that a regression shows.

Changed from the peers' manifests, to keep the run short on a busy machine: replicas are capped
at REPLICA_CAP (the stand-in kubelet's Pods are API objects only), and a timed pause longer than
LONG_PAUSE_SECONDS is passed with `promote` as well (Flagger's 15 s intervals, Argo's appmesh
example's 10 minutes); shorter timed pauses run out by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from rollout.api.base import parse_duration
from rollout.cli.convert import Source, documents_of, read_sources
from rollout.convert import convert_documents
from rollout.kube import CRDS, NAMESPACES, ROLLOUTS, Resource
from rollout.kube.resources import ANALYSIS_TEMPLATES
from tests.cluster.kubelet import StandInKubelet
from tests.e2e.conftest import wait_established
from tests.e2e.gateway_status import gateway_accepting
from tests.e2e.helpers import wait_for
from tests.peers import ARGO, FLAGGER, flagger_blocks, require_modules
from tests.processes import ControllerProcesses
from tests.thirdparty import require_crds

pytestmark = pytest.mark.e2e

ROUTERS_HERE = ("gatewayAPI", "istio", "nginx")  # the trafficRouting keys this controller drives
REPLICA_CAP = 2
LONG_PAUSE_SECONDS = 10.0
PROMOTE = "rollout.dev/promote"

# The kinds of the peer's files that are applied as they are, by (API group, kind): what a
# converted Rollout names (Services, routes, a workloadRef's Deployment) and what the examples ship
# beside them. Others (App Mesh, APISIX: routers this project does not drive, whose references the
# converter did not carry over) are left out, since this cluster has no CRD for them.
APPLIED = {
    ("", "Service"): "services",
    ("", "Secret"): "secrets",
    ("", "ConfigMap"): "configmaps",
    ("apps", "Deployment"): "deployments",
    ("networking.k8s.io", "Ingress"): "ingresses",
    ("networking.istio.io", "VirtualService"): "virtualservices",
    ("networking.istio.io", "DestinationRule"): "destinationrules",
    ("networking.istio.io", "Gateway"): "gateways",
    ("gateway.networking.k8s.io", "HTTPRoute"): "httproutes",
    ("gateway.networking.k8s.io", "GRPCRoute"): "grpcroutes",
    ("gateway.networking.k8s.io", "TCPRoute"): "tcproutes",
}

# What this file holds: of Argo Rollouts v1.10.1's 78 converted Rollouts (of the Rollouts and
# analysis templates tests/unit/test_convert_peers.py counts as converted), how many run to
# completion here and how many are set aside, by reason: the Job metrics their templates hold
# need a node to run a container, and web metrics whose whole URL is an argument are refused by
# the converter.
EXPECTED_RAN = 59
EXPECTED_UNSUPPORTED = {
    "a job metric's container needs a node (the stand-in kubelet runs none)": 10,
    "analysis template not converted: spec.metrics[].provider.web.url: a url given whole by an "
    "argument is not supported": 6,
}

# Supported by its spec, yet it cannot roll out with what its file ships: the controller must
# stop it (Degraded) saying why. Argo's expectedfailures/ (a pod template the API server refuses)
# are held by test_a_pod_template_the_api_server_refuses_stops_the_rollout below.
QUANTITY = "a resource quantity the API server refuses"
MISSING_ROUTES = "http routes its VirtualService does not have"
EXPECTED_STOPS = {
    # Argo splits this example's TLS routes; tlsRoutes are not carried over (named as dropped).
    "test/e2e/istio/istio-host-only-tls-split.yaml#4": MISSING_ROUTES,
}
STOP_MESSAGES = {MISSING_ROUTES: "VirtualService has no http route named 'primary'"}
MALFORMED = [
    "test/e2e/expectedfailures/malformed-rollout.yaml#1",
    "test/e2e/expectedfailures/malformed-rollout-ephemeral.yaml#1",
]


@dataclass
class Case:
    """One converted Rollout: where it was read, it, the converted templates of its file, and the
    objects of its file left as they are."""

    where: str
    rollout: dict[str, Any]
    templates: list[dict[str, Any]] = field(default_factory=list)
    left: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Templates:
    """The peer's analysis templates by (kind, name): the converted object, or why it was refused."""

    converted: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)


def _group(doc: dict[str, Any]) -> str:
    api_version = str(doc.get("apiVersion") or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


# Argo's e2e suite fills these placeholders of its templates before applying them
# (RolloutTemplate in its canary_test.go and step_plugin_test.go); the first value it uses here.
PLACEHOLDERS = {"REPLACEME": "set-canary-scale", "$$name$$": "successful", "$$phase$$": "Successful"}


def _filled(source: Source) -> Source:
    text = source.text
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return Source(source.name, source.output, text)


def _named_services(rollout: dict[str, Any]) -> set[str]:
    _, body = _strategy(rollout)
    keys = ("canaryService", "stableService", "activeService", "previewService")
    return {body[k] for k in keys if body.get(k)}


def converted_argo(module: Path) -> tuple[list[Case], Templates]:
    """Every Rollout of Argo Rollouts' examples/ and test/e2e/ that converts, and its templates.
    An example in a directory of its own (examples/ambassador/) may ship its Services in another
    file there: a Rollout whose file lacks a Service it names gets the objects of those files."""
    cases, templates = [], Templates()
    left_by_file: dict[str, list[dict[str, Any]]] = {}
    has_rollout: set[str] = set()
    paths = [str(module / "examples"), str(module / "test" / "e2e")]
    for source in map(_filled, read_sources(paths, True, None)):  # type: ignore[arg-type]
        documents, unreadable = documents_of(source)
        if unreadable:  # Helm templates and the like: not YAML, counted by the unit test
            continue
        outcomes = convert_documents(documents)
        left = [d for (_, d), o in zip(documents, outcomes, strict=True) if o.conversion is o.error is None]
        left_by_file[source.name] = left
        written = [x for o in outcomes if o.conversion is not None for x in o.conversion.objects]
        own = [x for x in written if x["kind"] in ("AnalysisTemplate", "ClusterAnalysisTemplate")]
        for (where, _), outcome in zip(documents, outcomes, strict=True):
            c = outcome.conversion
            if c is None:
                continue
            if c.kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
                if c.refused is not None:
                    templates.refused[c.kind, c.name] = c.refused
                for obj in c.objects:
                    templates.converted[obj["kind"], obj["metadata"]["name"]] = obj
            elif c.kind == "Rollout":
                has_rollout.add(source.name)
                if c.refused is None:
                    rel = where.split(str(module) + "/", 1)[-1]
                    (rollout,) = [x for x in c.objects if x["kind"] == "Rollout"]
                    cases.append(Case(rel, rollout, own, list(left)))
    for case in cases:
        there = {d["metadata"]["name"] for d in case.left if d["kind"] == "Service"}
        if _named_services(case.rollout) - there:
            folder = str(module / case.where).rsplit("/", 1)[0]
            for name, left in left_by_file.items():
                if name.rsplit("/", 1)[0] == folder and name not in has_rollout:
                    case.left += left
    return cases, templates


def _strategy(rollout: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    strategy = rollout["spec"].get("strategy") or {}
    for kind in ("canary", "blueGreen"):
        if kind in strategy:
            return kind, strategy[kind] or {}
    return None, {}


def template_refs(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """Every analysis template reference of the spec: steps, background, pre- and post-promotion."""
    _, body = _strategy(rollout)
    refs = [
        t for s in body.get("steps") or [] if "analysis" in s for t in s["analysis"].get("templates") or []
    ]
    for key in ("analysis", "prePromotionAnalysis", "postPromotionAnalysis"):
        refs += (body.get(key) or {}).get("templates") or []
    return refs


def _refusal(text: str) -> str:
    """The part of a template's refusal that says why, its metric index left out (one reason for
    a template whatever its metric's place)."""
    reason = text.split("the metric is left out: ", 1)[-1].split(": write it", 1)[0].rstrip(")")
    return re.sub(r"\[\d+\]", "[]", reason.split(" (providers:", 1)[0])


def unsupported(rollout: dict[str, Any], templates: Templates) -> str | None:
    """Why this converted Rollout cannot run to completion here, or None: read from its spec."""
    _, body = _strategy(rollout)
    for router in body.get("trafficRouting") or {}:
        if router not in ROUTERS_HERE:
            return f"router {router} not driven here"
    for ref in template_refs(rollout):
        key = ("ClusterAnalysisTemplate" if ref.get("clusterScope") else "AnalysisTemplate", ref["name"])
        if key in templates.refused:
            return f"analysis template not converted: {_refusal(templates.refused[key])}"
        template = templates.converted.get(key)
        if template is None:
            return "analysis template not among the peer's manifests"
        # The peers' templates query their own examples' backends (their Prometheus, their web
        # endpoints): nothing here can answer them as those examples expect. A Job's container
        # needs a node to run on, which this control plane does not have.
        kinds = sorted({k for m in template["spec"].get("metrics") or [] for k in m.get("provider") or {}})
        if kinds == ["job"]:
            return "a job metric's container needs a node (the stand-in kubelet runs none)"
        return f"needs the example's metrics backend ({', '.join(kinds)})"
    return None


def _quantities(rollout: dict[str, Any]) -> list[str]:
    pod = ((rollout["spec"].get("template") or {}).get("spec")) or {}
    resources = [
        c.get("resources") or {} for c in [*pod.get("containers", []), *pod.get("initContainers", [])]
    ]
    return [
        str(v) for r in resources for part in ("requests", "limits") for v in (r.get(part) or {}).values()
    ]


def _http_route_names(virtual_service: dict[str, Any]) -> set[str]:
    return {str(r.get("name")) for r in (virtual_service.get("spec") or {}).get("http") or []}


def refused_here(case: Case) -> str | None:
    """Why the converted Rollout, with the objects shipped beside it, cannot roll out at all (the
    controller must say so, clearly), or None: a pod template the API server refuses (Argo's
    expectedfailures/), or http routes its VirtualService does not have."""
    for value in _quantities(case.rollout):
        try:
            parse_quantity(value)
        except ValueError:
            return QUANTITY
    _, body = _strategy(case.rollout)
    istio = (body.get("trafficRouting") or {}).get("istio") or {}
    wanted = (istio.get("virtualService") or {}).get("routes") or []
    name = (istio.get("virtualService") or {}).get("name")
    for vs in case.left:
        if (
            vs["kind"] == "VirtualService"
            and _group(vs) == "networking.istio.io"
            and vs["metadata"]["name"] == name
        ):
            if set(wanted) - _http_route_names(vs):
                return MISSING_ROUTES
    return None


def _resource(doc: dict[str, Any]) -> Resource:
    group, version = _group(doc), str(doc["apiVersion"]).rsplit("/", 1)[-1]
    return Resource(group, version, APPLIED[group, doc["kind"]], doc["kind"])


def _updated_image(image: str) -> str:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    return f"{name}:{tag}-v2"


@dataclass
class Run:
    """What one case did: the pauses it stopped at and was promoted through."""

    where: str
    indefinite_pauses: int = 0
    long_pauses: int = 0
    other_promotions: int = 0
    routes_checked: int = 0  # canary destinations seen back at weight 0 once done


def _expected_stops(rollout: dict[str, Any]) -> int:
    """Where the converted spec waits for a person: `pause: {}` steps, and a blue/green switch
    without auto-promotion."""
    kind, body = _strategy(rollout)
    if kind == "blueGreen":
        return 0 if body.get("autoPromotionEnabled", True) else 1
    return sum(1 for s in body.get("steps") or [] if "pause" in s and "duration" not in (s["pause"] or {}))


async def apply_case(kube: Any, ns: str, case: Case) -> dict[str, Any]:
    """The objects of the case's file applied as they are, its converted templates, and the
    converted Rollout (its replicas capped); the Rollout as created."""
    rollout = copy.deepcopy(case.rollout)
    spec = rollout["spec"]
    spec["replicas"] = min(int(spec.get("replicas", 1)), REPLICA_CAP)
    applied = [(_resource(d), d) for d in case.left if (_group(d), d["kind"]) in APPLIED]
    applied += [(ANALYSIS_TEMPLATES, t) for t in case.templates if t["kind"] == "AnalysisTemplate"]
    for resource, doc in [*applied, (ROLLOUTS, rollout)]:
        body = copy.deepcopy(doc)
        body["metadata"] = {**body.get("metadata", {}), "namespace": ns}
        try:
            await kube.create(resource, ns, body)
        except ApiException as exc:
            if exc.status == 409:  # the namespace is new: a retried create that had gone through
                continue
            raise AssertionError(f"{case.where}: the API server refused {doc['kind']}: {exc.body}") from exc
    return rollout


async def _until(kube: Any, ns: str, case: Case, check: Any, what: str, timeout: float) -> dict[str, Any]:
    """Poll the Rollout until check(status, object) gives a status; an AssertionError naming
    the manifest and the last status seen otherwise."""
    seen: dict[str, Any] = {}

    async def probe() -> dict[str, Any] | None:
        nonlocal seen
        obj = await kube.get(ROLLOUTS, ns, case.rollout["metadata"]["name"]) or {}
        seen = obj.get("status") or {}
        return await check(seen, obj)

    try:
        return await wait_for(probe, what=what, timeout=timeout)
    except AssertionError as exc:
        brief = {k: seen.get(k) for k in ("phase", "message", "currentStepIndex", "stableRevision")}
        raise AssertionError(f"{case.where}: {exc}; status {brief}") from None


async def refused_case(kube: Any, ns: str, case: Case) -> str:
    """Apply a case `refused_here` names; the message of the Rollout's stop (Degraded)."""
    await apply_case(kube, ns, case)

    async def degraded(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
        return status if status.get("phase") == "Degraded" else None

    return str((await _until(kube, ns, case, degraded, "Degraded", 180))["message"])


async def run_case(kube: Any, ns: str, case: Case) -> Run:
    """Apply, become Healthy, update, promote through every stop, and see the new revision
    stable; an AssertionError naming the manifest otherwise."""
    run = Run(case.where)
    rollout = await apply_case(kube, ns, case)
    name = rollout["metadata"]["name"]
    spec = rollout["spec"]

    async def healthy(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
        if status.get("phase") == "Degraded":
            raise AssertionError(f"{case.where}: Degraded before the update: {status.get('message')}")
        return status if status.get("phase") == "Healthy" else None

    v1 = (await _until(kube, ns, case, healthy, "Healthy", 240))["stableRevision"]

    workload = spec.get("workloadRef")
    if workload:
        (deployment,) = [
            d for d in case.left if d["kind"] == "Deployment" and d["metadata"]["name"] == workload["name"]
        ]
        target, target_name, pod_spec = _resource(deployment), deployment["metadata"]["name"], deployment
    else:
        target, target_name, pod_spec = ROLLOUTS, name, rollout
    containers = pod_spec["spec"]["template"]["spec"]["containers"]
    update = [{**containers[0], "image": _updated_image(containers[0]["image"])}]
    await kube.patch(target, ns, target_name, {"spec": {"template": {"spec": {"containers": update}}}})

    _, body = _strategy(rollout)
    steps = body.get("steps") or []
    promoted: set[tuple[Any, ...]] = set()

    async def promoted_to_v2(found: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any] | None:
        phase = found.get("phase")
        if phase == "Healthy" and found.get("stableRevision") not in (None, v1):
            return found
        if phase == "Degraded":
            raise AssertionError(f"{case.where}: Degraded on the update: {found.get('message')}")
        if phase != "Paused" or PROMOTE in ((obj.get("metadata") or {}).get("annotations") or {}):
            return None
        index = found.get("currentStepIndex")
        key = (found.get("currentRevision"), index)
        if key in promoted:
            return None
        step = steps[index] if isinstance(index, int) and index < len(steps) else {}
        pause = step.get("pause") if isinstance(step.get("pause"), dict) else None
        if pause is not None and "duration" in pause:
            if parse_duration(pause["duration"]) <= LONG_PAUSE_SECONDS:
                return None  # a short timed pause ends by itself
            run.long_pauses += 1
        elif pause is not None:
            run.indefinite_pauses += 1
        else:
            run.other_promotions += 1  # a blue/green switch waiting, or a pause of another cause
        promoted.add(key)
        await kube.patch(ROLLOUTS, ns, name, {"metadata": {"annotations": {PROMOTE: "step"}}})
        return None

    await _until(kube, ns, case, promoted_to_v2, "promoted to its new revision", 300)
    stops = run.indefinite_pauses + (run.other_promotions if _strategy(rollout)[0] == "blueGreen" else 0)
    assert stops == _expected_stops(rollout), (case.where, run)
    weights = await canary_weights(kube, ns, rollout)
    assert set(weights) <= {0}, (case.where, "traffic left on the canary after completion", weights)
    if {"istio", "gatewayAPI"} & set(body.get("trafficRouting") or {}):
        assert weights, (case.where, "no canary destination found on the routes it names")
    run.routes_checked = len(weights)
    return run


VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")


async def canary_weights(kube: Any, ns: str, rollout: dict[str, Any]) -> list[int]:
    """The weight each route the Rollout names gives its canary now: the Istio VirtualService's
    destinations to the canary Service or subset (in the named http routes, or all), the Gateway
    API HTTPRoutes' backendRefs to the canary Service."""
    _, body = _strategy(rollout)
    routing = body.get("trafficRouting") or {}
    canary = body.get("canaryService") or body.get("previewService")
    found: list[int] = []
    istio = routing.get("istio") or {}
    if istio.get("virtualService"):
        vs = await kube.get(VIRTUAL_SERVICES, ns, istio["virtualService"]["name"])
        names = istio["virtualService"].get("routes") or []
        subset = (istio.get("destinationRule") or {}).get("canarySubset")
        for route in (vs or {}).get("spec", {}).get("http") or []:
            if names and route.get("name") not in names:
                continue
            for d in route.get("route") or []:
                dest = d["destination"]
                if (subset and dest.get("subset") == subset) or (not subset and dest.get("host") == canary):
                    found.append(int(d.get("weight", 0)))
    for ref in (routing.get("gatewayAPI") or {}).get("httpRoutes") or []:
        route = await kube.get(HTTPROUTES, ns, ref["name"])
        for rule in (route or {}).get("spec", {}).get("rules") or []:
            found += [int(b.get("weight", 1)) for b in rule.get("backendRefs") or [] if b["name"] == canary]
    return found


async def _install_istio_gateway(kube: Any) -> None:
    """Istio's Gateway CRD (the examples ship Gateways beside their VirtualServices)."""
    path = require_crds() / "istio" / "customresourcedefinitions.gen.yaml"
    for crd in yaml.safe_load_all(path.read_text()):
        if (
            crd
            and crd["spec"]["group"] == "networking.istio.io"
            and crd["spec"]["names"]["kind"] == "Gateway"
        ):
            if await kube.get(CRDS, None, crd["metadata"]["name"]) is None:
                crd["metadata"] = {"name": crd["metadata"]["name"]}
                crd.pop("status", None)
                await kube.create(CRDS, None, crd)
            await wait_established(kube, crd["metadata"]["name"])


# Flagger: what its Canaries hold of the converted objects, and what Flagger itself would generate.
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
# Of Flagger v1.36.1's 62 converted Canaries: those with metrics query the mesh's or ingress's own
# Prometheus series (istio_requests_total, nginx_ingress_controller_requests, ...).
EXPECTED_FLAGGER_RAN = 23
EXPECTED_FLAGGER_UNSUPPORTED = {"needs the example's metrics backend (prometheus)": 39}


def flagger_generated(rollout: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The objects Flagger generates and owns that the converted Rollout names (`rollout convert`
    says to keep them): its Services, selecting the Deployment's pods as the converter's note
    tells, and the route it names, all traffic on the stable (active) Service."""
    _, body = _strategy(rollout)
    stable = body.get("stableService") or body.get("activeService")
    canary = body.get("canaryService") or body.get("previewService")
    ports = [{"name": "http", "port": 80, "targetPort": 9898}]
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": dict(labels), "ports": ports},
        }
        for name in (stable, canary)
        if name
    ]
    routing = body.get("trafficRouting") or {}
    if "istio" in routing:
        vs = routing["istio"]["virtualService"]
        weights = [
            {"destination": {"host": stable}, "weight": 100},
            {"destination": {"host": canary}, "weight": 0},
        ]
        http = [{"name": n, "route": copy.deepcopy(weights)} for n in vs.get("routes") or []]
        spec = {"hosts": [vs["name"]], "http": http or [{"route": weights}]}
        out.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": vs["name"]},
                "spec": spec,
            }
        )
    for route in (routing.get("gatewayAPI") or {}).get("httpRoutes") or []:
        refs = [{"name": stable, "port": 80, "weight": 100}, {"name": canary, "port": 80, "weight": 0}]
        spec = {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": refs}]}
        out.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": route["name"]},
                "spec": spec,
            }
        )
    if "nginx" in routing:
        backend = {"service": {"name": stable, "port": {"number": 80}}}
        paths = [{"path": "/", "pathType": "Prefix", "backend": backend}]
        spec = {"rules": [{"host": "app.example.com", "http": {"paths": paths}}]}
        name = routing["nginx"]["stableIngress"]
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name},
                "spec": spec,
            }
        )
    return out


def converted_flagger(module: Path, tmp: Path) -> list[Case]:
    """Every Canary of Flagger's examples, kustomize bases, docs and e2e scripts that converts
    (each e2e directory with the mesh provider its install script gives Flagger), with Flagger's
    podinfo Deployment (kustomize/podinfo, named as the workloadRef names it), the objects Flagger
    would have generated, and the Canary's own converted templates."""
    from tests.unit.test_convert_peers import _convert, _mesh_provider  # the unit test's reading

    podinfo = yaml.safe_load((module / "kustomize" / "podinfo" / "deployment.yaml").read_text())
    groups = [
        ("", [module / "artifacts" / "examples", module / "kustomize", *flagger_blocks(module / "docs", tmp)])
    ]
    for tests in sorted(p for p in (module / "test").iterdir() if p.is_dir()):
        (tmp / tests.name).mkdir()
        blocks = flagger_blocks(tests, tmp / tests.name)
        if blocks:
            groups.append((_mesh_provider(module, tests), blocks))
    cases = []
    for provider, paths in groups:
        outcomes, _, _ = _convert(paths, provider) if provider else _convert(paths)
        for outcome in outcomes:
            c = outcome.conversion
            if c is None or c.kind != "Canary" or c.refused is not None:
                continue
            (rollout,) = [x for x in c.objects if x["kind"] == "Rollout"]
            deployment = copy.deepcopy(podinfo)
            deployment["metadata"]["name"] = rollout["spec"]["workloadRef"]["name"]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            left = [deployment, *flagger_generated(rollout, labels)]
            templates = [x for x in c.objects if x["kind"] == "AnalysisTemplate"]
            cases.append(Case(outcome.where.rsplit("/", 1)[-1], rollout, templates, left))
    return cases


async def _run_all(kube: Any, kubeconfig: str, logs: Path, jobs: list[tuple[Any, Case]]) -> list[Any]:
    """Each job (run_case or refused_case, and its case) in a namespace of its own, all at once,
    under one controller watching them all; a stand-in kubelet and Gateway per namespace. The
    results in order, an exception where a job failed."""
    prefix = f"conv-{uuid.uuid4().hex[:4]}"
    namespaces = [f"{prefix}-{i}" for i in range(len(jobs))]
    watched = [arg for ns in namespaces for arg in ("--namespace", ns)]
    args = ["controller", *watched, "--resync-seconds", "2", "--workers", "16"]
    controller = ControllerProcesses(kubeconfig, namespaces[0], logs, args=args)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for ns, (_, case) in zip(namespaces, jobs, strict=True):
                namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                await kube.create(NAMESPACES, None, namespace)
                stack.enter_context(StandInKubelet(kubeconfig, ns, threads=2))
                if any(d["kind"] == "HTTPRoute" for d in case.left):
                    await stack.enter_async_context(gateway_accepting(kube, ns, HTTPROUTES, period=1.0))
            controller.start()
            work = (job(kube, ns, case) for ns, (job, case) in zip(namespaces, jobs, strict=True))
            return await asyncio.gather(*work, return_exceptions=True)
    finally:
        controller.stop_all()
        for ns in namespaces:
            with contextlib.suppress(ApiException):
                await kube.delete(NAMESPACES, None, ns)


def _flagger_reason(case: Case) -> str | None:
    own = Templates(converted={(t["kind"], t["metadata"]["name"]): t for t in case.templates})
    return unsupported(case.rollout, own)


async def test_every_supported_converted_rollout_and_canary_runs_to_completion(
    kube, kubeconfig, crds_applied, routing_installed, tmp_path, capsys
):
    """Argo Rollouts' Rollouts and Flagger's Canaries, converted, together on one control plane."""
    modules = require_modules()
    argo, templates = converted_argo(modules[ARGO])
    assert len(argo) == 78
    (tmp_path / "flagger").mkdir()
    flagger = converted_flagger(modules[FLAGGER], tmp_path / "flagger")
    assert len(flagger) == 62
    argo_reasons = Counter(r for r in (unsupported(c.rollout, templates) for c in argo) if r is not None)
    flagger_reasons = Counter(r for r in map(_flagger_reason, flagger) if r is not None)
    supported = [c for c in argo if unsupported(c.rollout, templates) is None]
    refused = [c for c in supported if refused_here(c) == MISSING_ROUTES]
    assert sorted(c.where for c in supported if refused_here(c) == QUANTITY) == sorted(MALFORMED)
    argo_runnable = [c for c in supported if refused_here(c) is None]
    flagger_runnable = [c for c in flagger if _flagger_reason(c) is None]
    assert [refused_here(c) for c in flagger_runnable] == [None] * len(flagger_runnable)
    await _install_istio_gateway(kube)

    jobs = [(run_case, c) for c in argo_runnable + flagger_runnable] + [(refused_case, c) for c in refused]
    results = await _run_all(kube, kubeconfig, tmp_path, jobs)

    failed = [f"{r!r}" for r in results if isinstance(r, BaseException)]
    argo_runs = [r for r in results[: len(argo_runnable)] if isinstance(r, Run)]
    flagger_runs = [
        r
        for r in results[len(argo_runnable) : len(argo_runnable) + len(flagger_runnable)]
        if isinstance(r, Run)
    ]
    stops = {
        c.where: (refused_here(c), r)
        for c, r in zip(refused, results[len(argo_runnable) + len(flagger_runnable) :], strict=True)
        if isinstance(r, str)
    }
    runs = argo_runs + flagger_runs
    with capsys.disabled():
        print(
            f"\nConverted and run on the real control plane: Argo Rollouts v1.10.1: {len(argo_runs)} ran to "
            f"completion, {len(stops)} stopped as predicted, set aside: {dict(argo_reasons)}; Flagger "
            f"v1.36.1: {len(flagger_runs)} ran to completion, set aside: {dict(flagger_reasons)}; "
            f"{len(failed)} failed; pauses promoted: {sum(r.indefinite_pauses for r in runs)} indefinite, "
            f"{sum(r.long_pauses for r in runs)} long timed, {sum(r.other_promotions for r in runs)} other; "
            f"{sum(1 for r in runs if r.routes_checked)} with routes back at 0 % canary"
        )
        for where, (why, message) in stops.items():
            print(f"  {where}: {why}: {message}")
    assert failed == [], "\n".join(failed)
    assert (len(argo_runs), dict(argo_reasons)) == (EXPECTED_RAN, EXPECTED_UNSUPPORTED)
    assert len(supported) == EXPECTED_RAN + len(EXPECTED_STOPS) + len(MALFORMED)
    assert {where: why for where, (why, _) in stops.items()} == EXPECTED_STOPS
    for why, message in stops.values():
        assert STOP_MESSAGES[why] in message, (why, message)
    assert (len(flagger_runs), dict(flagger_reasons)) == (EXPECTED_FLAGGER_RAN, EXPECTED_FLAGGER_UNSUPPORTED)


async def test_a_pod_template_the_api_server_refuses_stops_the_rollout(
    kube, kubeconfig, crds_applied, tmp_path
):
    """Argo's expectedfailures/: `memory: invalid` in the pod template. The converted Rollout is
    accepted (the CRD does not check quantities), but no ReplicaSet can be made of it: the Rollout
    stops (Degraded, InvalidSpec) naming the quantity in the API server's words."""
    cases, _ = converted_argo(require_modules()[ARGO])
    malformed = [c for c in cases if c.where in MALFORMED]
    assert [refused_here(c) for c in malformed] == [QUANTITY, QUANTITY]
    namespaces = [f"conv-bad-{uuid.uuid4().hex[:4]}" for _ in malformed]
    for ns in namespaces:
        await kube.create(
            NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    watched = [arg for ns in namespaces for arg in ("--namespace", ns)]
    controller = ControllerProcesses(
        kubeconfig, namespaces[0], tmp_path, args=["controller", *watched, "--resync-seconds", "2"]
    )
    try:
        controller.start()
        for ns, case in zip(namespaces, malformed, strict=True):
            await apply_case(kube, ns, case)

        async def degraded(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
            return status if status.get("phase") == "Degraded" else None

        for ns, case in zip(namespaces, malformed, strict=True):
            stopped = await _until(kube, ns, case, degraded, "Degraded", 30)
            assert stopped["message"].startswith("InvalidSpec: spec.template: the API server refused"), (
                stopped
            )
            assert "quantities must match" in stopped["message"], stopped
    finally:
        controller.stop_all()
        for ns in namespaces:
            with contextlib.suppress(ApiException):
                await kube.delete(NAMESPACES, None, ns)
