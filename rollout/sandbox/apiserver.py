"""kmock's KubernetesEmulator with the API-server behaviours the controller relies on.

kmock stores objects and merges patches; a real API server also stamps uid, resourceVersion,
generation and creationTimestamp, refuses a patch whose resourceVersion is stale (409), separates
the status subresource from the main resource, validates custom resources against their CRD schema
(422 naming the field) after pruning undeclared fields and applying the schema's defaults
(structural.py), garbage-collects owned objects, serves pods/eviction (eviction.py), tells a
watch every change made after the objects it sends first, however slowly it reads, and tells a
watch started at a resourceVersion what came after it, or 410 when that version is no longer
kept (watch_history.py). Those are added here, so the sandbox and the integration tests
exercise the controller the way a cluster would."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import datetime
import itertools
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import jsonschema
import kmock
from kmock._internal import dicts, enums, parsing, rendering

from rollout.api.crds import openapi_validator
from rollout.sandbox import structural
from rollout.sandbox.audit import READ_VERBS, ApiCall, Audit, Authorizer
from rollout.sandbox.eviction import PDBS, PODS, evict
from rollout.sandbox.faults import FaultPlan
from rollout.sandbox.watch_history import EVENTS_KEPT, KeptBus, events_after, expired, start_version

# Requests kept for tests and benchmarks to read (EmulatedApiServer.served).
REQUESTS_KEPT = 200_000

# Resources the controller and kopf need, with the discovery information a real server gives.
_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
BACKBONE: dict[str, kmock.ResourceInfo] = {
    "apiextensions.k8s.io/v1/customresourcedefinitions": kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs=_VERBS
    ),
    "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs=_VERBS),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True, verbs=_VERBS),
    "v1/services": kmock.ResourceInfo(kind="Service", namespaced=True, verbs=_VERBS, subresources=["status"]),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True, verbs=_VERBS),
    # Served for the controller-wide notifications (--notifications-configmap).
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True, verbs=_VERBS),
    "v1/pods": kmock.ResourceInfo(
        kind="Pod", namespaced=True, verbs=_VERBS, subresources=["status", "eviction", "log"]
    ),
    # Served for job metrics (a Job per measurement); no Job controller runs here: a test or the
    # sandbox plays it (pods and the Job's status).
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, verbs=_VERBS, subresources=["status"]),
    "policy/v1/poddisruptionbudgets": kmock.ResourceInfo(
        kind="PodDisruptionBudget", namespaced=True, verbs=_VERBS, subresources=["status"]
    ),
    # Served for routers that own an Ingress (ingress-nginx canaries).
    "networking.k8s.io/v1/ingresses": kmock.ResourceInfo(
        kind="Ingress", namespaced=True, verbs=_VERBS, subresources=["status"]
    ),
    "apps/v1/replicasets": kmock.ResourceInfo(
        kind="ReplicaSet", namespaced=True, verbs=_VERBS, subresources=["status", "scale"]
    ),
    # Served for Rollouts that take over a Deployment (spec.workloadRef).
    "apps/v1/deployments": kmock.ResourceInfo(
        kind="Deployment", namespaced=True, verbs=_VERBS, subresources=["status", "scale"]
    ),
    "coordination.k8s.io/v1/leases": kmock.ResourceInfo(kind="Lease", namespaced=True, verbs=_VERBS),
}
_LEASES = kmock.resource("coordination.k8s.io/v1/leases")
_ACTION_VERBS = {
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
    enums.action.FETCH: "get",
    enums.action.CREATE: "create",
    enums.action.UPDATE: "patch",
    enums.action.DELETE: "delete",
}


_SECRETS = kmock.resource("v1/secrets")
_REPLICASETS = kmock.resource("apps/v1/replicasets")
_kmock_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    # kmock 0.8 reads `/api/v1/namespaces[/name]` as "namespace <name>" with no resource, so the
    # Namespace resource (which kopf lists when given --namespace) would be unreachable.
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _kmock_parse_path(path)


parsing.parse_path = _parse_path


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stale(request: rendering.Request) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": '
        "the object has been modified; please apply your changes to the latest version",
    )


def _invalid(kind: str, name: str, causes: list[tuple[str, str]]) -> kmock.KubernetesError:
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    return kmock.KubernetesError(
        status=422,
        reason="Invalid",
        message=f'{kind} "{name}" is invalid: {text}',
        details={
            "name": name,
            "kind": kind,
            "causes": [{"field": f, "message": m, "reason": "FieldValueInvalid"} for f, m in causes],
        },
    )


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _unchanged(path: Any, new: Any, old: Any) -> bool:
    for part in path:
        try:
            new, old = new[part], old[part]
        except (KeyError, IndexError, TypeError):
            return False
    return bool(new == old)


def _fault_error(fault: str, request: rendering.Request, plan: FaultPlan) -> kmock.KubernetesError:
    """An injected error in the shape a real API server gives it."""
    if fault == "conflict":
        return _stale(request)
    if fault == "throttle":
        return kmock.KubernetesError(
            status=429,
            reason="TooManyRequests",
            message="Too many requests, please try again later.",
            details={"retryAfterSeconds": plan.retry_after_seconds},
        )
    if fault == "unavailable":
        return kmock.KubernetesError(
            status=503,
            reason="ServiceUnavailable",
            message="the server is currently unable to handle the request",
        )
    return kmock.KubernetesError(
        status=500, reason="InternalError", message="Internal error occurred: injected fault", details={}
    )


def _hang_up(request: rendering.Request) -> None:
    transport = request._raw_request.transport if request._raw_request is not None else None
    if transport is not None:
        transport.close()


def _replace_data(request: rendering.Request, data: Any) -> None:
    # kmock matches reactions to requests by identity, so the request is changed in place.
    object.__setattr__(request, "data", data)


@dataclass(frozen=True)
class Write:
    """A write the server received: who made it (User-Agent) and the field manager it named,
    which a real server records in managedFields (and Argo CD's managedFieldsManagers reads)."""

    method: str
    path: str
    field_manager: str | None
    user_agent: str


_WRITES = frozenset({"POST", "PUT", "PATCH"})


@attrs.define(kw_only=True)
class EmulatedApiServer(kmock.KubernetesEmulator):
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    # resource -> ("Kind.group" for error messages, its openAPIV3Schema)
    _schemas: dict[Any, tuple[str, dict[str, Any]]] = attrs.field(factory=dict, init=False)
    # Faults toward the controller (rollout/sandbox/faults.py); None: none. Switchable at any time.
    faults: FaultPlan | None = attrs.field(default=None)
    # The controller's requests as RBAC sees them (rollout/sandbox/audit.py).
    audit: Audit = attrs.field(factory=Audit)
    # When set, a controller request it refuses gets a 403 as a real server's RBAC gives it.
    authorize: Authorizer | None = attrs.field(default=None)
    # The latest writes, oldest first (bounded: a benchmark makes millions).
    writes: deque[Write] = attrs.field(factory=lambda: deque(maxlen=100_000), init=False)
    # The latest requests served, oldest first, and how many were served in all (see requests_since).
    # kmock finds the reaction of each request by scanning its own log of requests for it, so that
    # log keeps only the requests in flight: a long test slowed down quadratically before.
    served: deque[rendering.Request] = attrs.field(factory=lambda: deque(maxlen=REQUESTS_KEPT), init=False)
    request_count: int = attrs.field(default=0, init=False)
    # Watch events kept per kind, to replay to a watch started at a resourceVersion; read when a
    # kind's first change or watch comes.
    watch_events_kept: int = attrs.field(default=EVENTS_KEPT)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Before any change is announced: every kind's bus keeps its last events.
        self._buses = collections.defaultdict(lambda: KeptBus(kept=deque(maxlen=self.watch_events_kept)))
        for key, info in BACKBONE.items():
            self.resources[key] = info

    async def store_as_is(self, resource: Any, namespace: str | None, name: str, obj: dict[str, Any]) -> None:
        """Put `obj` into the store unchecked (what another version of the server or of a
        controller left there), with a new resourceVersion, and tell the watches, as a real
        server's storage does."""
        async with self._lock:  # as every announcement: a watch's start sees it whole or not at all
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
            self.objects[resource, namespace, name].history.append(obj)
            await self._buses[resource].put({"type": "MODIFIED", "object": obj})

    def requests_since(self, mark: int) -> list[rendering.Request]:
        """The requests served after the first `mark` (a request_count read earlier), oldest
        first; refused when some of them are no longer kept."""
        missing = self.request_count - mark - len(self.served)
        if missing > 0:
            raise ValueError(
                f"{missing} of the requests since {mark} are no longer kept (the last {REQUESTS_KEPT} are)"
            )
        return list(self.served)[len(self.served) - (self.request_count - mark) :]

    def forget_requests(self) -> None:
        """Drop the requests kept so far (a benchmark that has counted them frees the memory)."""
        self.served.clear()

    def install_crd(self, crd: dict[str, Any]) -> None:
        """Serve a custom resource the way the API server does once its CRD is applied."""
        spec = crd["spec"]
        for version in spec["versions"]:
            key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
            self.resources[key] = kmock.ResourceInfo(
                kind=spec["names"]["kind"],
                singular=spec["names"].get("singular"),
                namespaced=spec["scope"] == "Namespaced",
                verbs=_VERBS,
                shortnames=spec["names"].get("shortNames", []),
                subresources=list(version.get("subresources", {})),
            )
            self._schemas[kmock.resource(key)] = (
                f"{spec['names']['kind']}.{spec['group']}",
                version["schema"]["openAPIV3Schema"],
            )
        self.objects[
            kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions"), None, crd["metadata"]["name"]
        ] = self.stamp_new(copy.deepcopy(crd))

    def stamp_new(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        return obj

    def _validate(self, resource: Any, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """422 naming each invalid field. On an update, a value left as it was stored is not an
        error (a real server's validation ratcheting: an object stored under an older schema,
        or by a newer controller before a downgrade, can still be written around)."""
        if resource not in self._schemas:
            return
        kind, schema = self._schemas[resource]
        validator = openapi_validator(schema)
        errors = [
            e for e in validator.iter_errors(obj) if old is None or not _unchanged(e.absolute_path, obj, old)
        ]
        causes = [(_path(e), e.message) for e in sorted(errors, key=str)]
        if causes:
            raise _invalid(kind, obj.get("metadata", {}).get("name", ""), causes)

    def _normalize(self, resource: Any, obj: dict[str, Any]) -> dict[str, Any]:
        """Prune and default a custom resource as a real server stores it (status included); a
        Secret's write-only `stringData` goes into `data`, base64-encoded."""
        if resource in self._schemas:
            structural.normalize(self._schemas[resource][1], obj)
        if resource == _SECRETS and isinstance(obj.get("stringData"), dict):
            plain = obj.pop("stringData")
            encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in plain.items()}
            obj["data"] = {**(obj.get("data") or {}), **encoded}
        return obj

    def _has_status(self, resource: Any) -> bool:
        return "status" in self.resources[resource].subresources if resource in self.resources else False

    def _updated(self, request: rendering.Request, current: dict[str, Any]) -> dict[str, Any]:
        """The object after a PATCH, with a real server's rules for versions and subresources."""
        body = request.data
        if isinstance(body, list):  # a JSON patch may carry the resourceVersion as its precondition
            guards = [
                op.get("value")
                for op in body
                if op.get("path") == "/metadata/resourceVersion" and op.get("op") in ("replace", "test")
            ]
            if any(v != current["metadata"].get("resourceVersion") for v in guards):
                raise _stale(request)
        if isinstance(body, dict):
            wanted_version = (body.get("metadata") or {}).get("resourceVersion")
            if wanted_version is not None and wanted_version != current["metadata"].get("resourceVersion"):
                raise _stale(request)
            body = copy.deepcopy(body)
            (body.get("metadata") or {}).pop("resourceVersion", None)
        try:
            new = copy.deepcopy(dict(dicts.patch_dict(copy.deepcopy(current), body)))
        except Exception as exc:  # a JSON patch whose `test` failed, or a path that does not exist
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message=f"patch not applied: {exc}"
            ) from exc
        if self._has_status(request.resource):
            if request.subresource == "status":
                # A copy of the stored object, not its dicts: stamping the new version below must
                # not restamp the version a watch has queued (a late event then read as new).
                new = {**copy.deepcopy(current), "status": new.get("status")}
            else:
                new["status"] = current.get("status")
            if new.get("status") is None:
                new.pop("status", None)
        self._normalize(request.resource, new)  # before the generation is compared
        meta = new.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))

        def content(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in o.items() if k not in ("metadata", "status")}

        if content(new) != content(current):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        return new

    def _api_call(self, request: rendering.Request) -> ApiCall | None:
        resource = request.resource
        if resource is None or not resource.plural:  # discovery: /api, /apis/<group>/<version>
            return None
        method = str(request.method.value).upper()
        # kmock guesses no action for a POST to a named object (pods/NAME/eviction): RBAC's create.
        verb = (
            "update"
            if method == "PUT"
            else "create"
            if method == "POST"
            else _ACTION_VERBS.get(request.action)
            if request.action
            else None
        )
        if verb is None:
            return None
        group, namespace = resource.group or "", request.namespace or ""
        return ApiCall(verb, group, resource.plural or "", request.subresource or "", namespace)

    def _lease_holders(self) -> dict[str, str | None]:
        return {
            f"{ns}/{name}": (obj.raw.get("spec") or {}).get("holderIdentity")
            for (res, ns, name), obj in list(self.objects.items())
            if res == _LEASES and not obj.deleted
        }

    def _forbidden(self, call: ApiCall, request: rendering.Request) -> kmock.KubernetesError:
        target = f'{call.resource} "{request.name}"' if request.name else call.resource
        where = f' in the namespace "{call.namespace}"' if call.namespace else " at the cluster scope"
        return kmock.KubernetesError(
            status=403,
            reason="Forbidden",
            message=f'{target} is forbidden: User "system:serviceaccount:rollout-system:rollout-controller" '
            f'cannot {call.verb} resource "{call.rbac_resource}" in API group "{call.group}"{where}',
        )

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        self.served.append(request)
        self.request_count += 1
        try:
            return await self._handle_kept(request)
        finally:
            # Out of kmock's logs once served (`served` says why). Each request takes out only
            # itself, so one still being matched is always found there.
            self._requests[:] = [r for r in self._requests if r is not request]
            for payload in self._payloads:
                payload._requests.clear()

    async def _handle_kept(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        agent = str(request.headers.get("User-Agent") or "")
        if self.audit.is_controller(agent):
            call = self._api_call(request)
            if call is None:
                self.audit.non_resource.add((str(request.method.value), request.url.path))
            else:
                if self.authorize is not None and not self.authorize(call):
                    self.audit.denied.append(call)
                    return await self._render_error(self._forbidden(call, request))
                self.audit.calls.add(call)
                if call.verb not in READ_VERBS:
                    self.audit.write(agent, call, request.name, self._lease_holders())
        plan = self.faults
        fault = None
        if plan is not None and request.action != enums.action.WATCH and plan.applies(request.headers):
            fault = plan.request_fault(str(request.method.value))
        if fault is None:
            return await self._serve(request)
        assert plan is not None
        if fault == "slow":
            await asyncio.sleep(plan.slow_seconds)
        elif fault == "timeout":  # the client gives up first; the request is never applied
            await asyncio.sleep(plan.timeout_seconds)
            _hang_up(request)
            return aiohttp.web.Response(status=504)
        elif fault != "drop":
            response = await self._render_error(_fault_error(fault, request, plan))
            if fault == "throttle":
                response.headers["Retry-After"] = str(plan.retry_after_seconds)
            return response
        response = await self._serve(request)
        if fault == "drop":  # applied, but the answer never arrives
            _hang_up(request)
        return response

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        stream = self._watch_events(request)
        async with contextlib.aclosing(stream):
            async for item in stream:
                plan = self.faults  # read per event: faults switched on or off apply to open streams
                faulty = plan is not None and isinstance(item, dict) and plan.applies(request.headers)
                fault = plan.watch_fault() if plan is not None and faulty else None
                if fault == "watch_drop":  # the stream ends early; the client lists and watches again
                    return
                if fault == "watch_late" and plan is not None:
                    await asyncio.sleep(plan.late_seconds)
                yield item
                if fault == "watch_duplicate":
                    yield item

    async def _watch_events(self, request: rendering.Request) -> AsyncIterator[Any]:
        """Without a resourceVersion: the objects as they are (ADDED), then every change after
        them. kmock joins the bus only once the last ADDED is sent, so a write made while a slow
        watcher read them was never told; here the bus is joined under the lock that the
        snapshot is taken under. From a resourceVersion: the changes after it, replayed from
        the kind's kept events, or 410 when it is no longer kept (watch_history.py)."""
        yield b""  # the headers go out before the first event
        resource = request.resource
        bus = self._buses[resource]
        since = start_version(request.params)

        def selected(namespace: str | None, name: str | None) -> bool:
            in_namespace = request.namespace is None or namespace == request.namespace
            return in_namespace and (request.name is None or name == request.name)

        def told(event: dict[str, Any]) -> bool:  # an event of the watched scope
            meta = (event.get("object") or {}).get("metadata") or {}
            return selected(meta.get("namespace"), meta.get("name"))

        async with self._lock:  # every announcement is made under it: none falls between
            mark = await bus.mark()
            if since is None:
                first: list[dict[str, Any]] | None = [
                    {"type": "ADDED", "object": obj.raw}
                    for (kind, namespace, name), obj in list(self.objects.items())
                    if kind == resource and not obj.deleted and selected(namespace, name)
                ]
            else:
                replayed = events_after(bus.kept, since)
                first = None if replayed is None else [e for e in replayed if told(e)]
        try:
            if first is None:
                assert since is not None
                yield expired(since, bus.kept)
                return
            for event in first:
                yield event
            async for event in bus.stream(since=mark):
                if told(event):
                    yield event
        finally:
            await bus.unmark(mark)

    async def _replace(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """PUT: the whole object replaced, guarded by its resourceVersion when the body has one
        (kmock serves no PUT; the leader election's Lease lock renews with it)."""
        key = (request.resource, request.namespace, request.name)
        try:
            if not isinstance(request.data, dict):
                raise kmock.KubernetesError(status=400, reason="BadRequest", message="not an object")
            async with self._lock:
                if key not in self.objects or self.objects[key].deleted:
                    raise kmock.KubernetesObjectNotFoundError()
                current = self.objects[key].raw
                wanted = (request.data.get("metadata") or {}).get("resourceVersion")
                if wanted and wanted != current["metadata"].get("resourceVersion"):
                    raise _stale(request)
                new = copy.deepcopy(request.data)
                meta = new.setdefault("metadata", {})
                for kept in ("uid", "creationTimestamp", "name", "namespace", "generation"):
                    if kept in current["metadata"]:
                        meta[kept] = current["metadata"][kept]
                if self._has_status(request.resource):
                    new.pop("status", None)
                    if "status" in current:
                        new["status"] = current["status"]
                self._normalize(request.resource, new)
                self._validate(request.resource, new, current)
                meta["resourceVersion"] = str(next(self._versions))
                self.objects[key].history.append(new)
                await self._buses[request.resource].put({"type": "MODIFIED", "object": new})
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)
        return aiohttp.web.json_response(new)

    async def _serve(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        method = str(request.method.value).upper()
        if method in _WRITES:
            self.writes.append(
                Write(
                    method=method,
                    path=request.url.path,
                    field_manager=request.params.get("fieldManager"),
                    user_agent=request.headers.get("User-Agent", ""),
                )
            )
        if request.resource is not None and request.name is not None and method == "PUT":
            return await self._replace(request)
        if request.resource == PODS and request.subresource == "eviction" and method == "POST":
            return await self._evict(request)
        if request.resource == PODS and request.subresource == "log" and method == "GET":
            return await self._log(request)
        if request.resource is None or request.subresource not in (None, "status", "scale"):
            return await super()._handle(request)
        try:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                obj = self.stamp_new(copy.deepcopy(request.data))
                if request.namespace:
                    obj["metadata"]["namespace"] = request.namespace
                self._normalize(request.resource, obj)
                self._validate(request.resource, obj)
                _replace_data(request, obj)
            elif request.action == enums.action.UPDATE and request.name is not None:
                key = (request.resource, request.namespace, request.name)
                async with self._lock:
                    if key not in self.objects or self.objects[key].deleted:
                        raise kmock.KubernetesObjectNotFoundError()
                    old = self.objects[key].raw
                    new = self._updated(request, old)
                    self._validate(request.resource, new, old)
                    self.objects[key].history.append(new)
                _replace_data(request, {})  # stored above; kmock only announces it
            elif request.action == enums.action.DELETE and request.name is not None:
                await self._mark_deleted(request)
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)
        response = await super()._handle(request)
        if request.name is not None and request.action in (enums.action.DELETE, enums.action.UPDATE):
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:  # gone, possibly by a finalizer release
                await self._collect_garbage()
        return response

    async def _evict(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """POST pods/NAME/eviction: the pod deleted (201), unless a disruption budget refuses (429)."""
        async with self._lock:
            try:
                pods = [
                    obj.raw
                    for (res, ns, _), obj in list(self.objects.items())
                    if res == PODS and ns == request.namespace and not obj.deleted
                ]
                budgets = [
                    obj.raw
                    for (res, ns, _), obj in list(self.objects.items())
                    if res == PDBS and ns == request.namespace and not obj.deleted
                ]
                scales = {
                    obj.raw["metadata"]["uid"]: int((obj.raw.get("spec") or {}).get("replicas", 1))
                    for (res, ns, _), obj in list(self.objects.items())
                    if res == _REPLICASETS and ns == request.namespace and not obj.deleted
                }
                key = (PODS, request.namespace, request.name)
                if key not in self.objects or self.objects[key].deleted:
                    raise kmock.KubernetesObjectNotFoundError()
                evict(self.objects[key].raw, pods, budgets, scales)
            except kmock.KubernetesError as exc:
                return await self._render_error(exc)
            raw = self.objects[key].raw
            self.objects[key].delete()
            await self._buses[PODS].put({"type": "DELETED", "object": raw})
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return aiohttp.web.json_response(status, status=201)

    async def _log(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """GET pods/NAME/log as a real API server answers with no kubelet to ask: 404 for no such
        pod; an empty log (200) for a pod no node runs; a pod on a node this emulator does not
        have: 404 for the node."""
        key = (PODS, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return await self._render_error(kmock.KubernetesObjectNotFoundError())
        node = (self.objects[key].raw.get("spec") or {}).get("nodeName")
        if not node:
            return aiohttp.web.Response(text="", content_type="text/plain")
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 404}
        message = f'nodes "{node}" not found'
        return aiohttp.web.json_response({**status, "message": message, "reason": "NotFound"}, status=404)

    async def _mark_deleted(self, request: rendering.Request) -> None:
        """An object with finalizers is only marked: deletionTimestamp set, as a new version
        (kmock would set it without a new resourceVersion, so a watcher comparing versions would
        take the event for one it already has)."""
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                return
            meta = self.objects[key].raw.get("metadata") or {}
            if not meta.get("finalizers") or meta.get("deletionTimestamp"):
                return
            marked = copy.deepcopy(self.objects[key].raw)
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["resourceVersion"] = str(next(self._versions))
            self.objects[key].history.append(marked)
            await self._buses[request.resource].put({"type": "MODIFIED", "object": marked})

    async def _collect_garbage(self) -> None:
        """Delete objects whose controlling owner is gone (what kube-controller-manager does)."""
        live = {obj.raw["metadata"].get("uid") for obj in self.objects.values() if not obj.deleted}
        for (resource, _, _), obj in list(self.objects.items()):
            if obj.deleted:
                continue
            owners = [r.get("uid") for r in obj.raw.get("metadata", {}).get("ownerReferences") or []]
            if owners and not any(uid in live for uid in owners):
                async with self._lock:
                    raw = obj.raw
                    obj.delete()
                    await self._buses[resource].put({"type": "DELETED", "object": raw})
