"""One scenario of a Rollout driven by the real reconciler against a faulty emulated API server,
shared by tests/integration/test_faults.py (a few examples) and bench/faults.py (many).

The reconciler (`Reconciler.reconcile`, no kopf) runs in a loop with a virtual clock; the kubelet
stand-in is ticked by the scenario on that clock, so a run is deterministic for a seed. The fault
plan applies to the reconciler's requests only; after every reconcile the scenario reads the
world through the test's own fault-free client and checks the invariants:

- route weights sum to 100, and the canary weight never exceeds the target of the step the
  controller is working on (the stored step index, or the steps it can pass without a gate in
  one reconcile whose status write has not landed yet);
- no traffic (weight > 0, header rule, mirror, active Service) to a revision with no available
  pods, and no ReplicaSet of such a revision at 0 replicas;
- every command annotation is removed and leaves exactly one Event.

Then faults go off and the rollout must complete within `converge_limit` reconciles, with an
operator's promote / resume / retry whenever it waits for one; with `failing_analysis` (every
measurement fails) it must instead come to rest on stable by itself, unless a `promote: full`
skipped the analysis."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.controller.reconciler import Reconciler
from rollout.engine.decide import current_revision
from rollout.kube import (
    ANALYSIS_TEMPLATES,
    EVENTS,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    USER_AGENT,
    Kube,
    api_client_for,
)
from rollout.sandbox.cluster import EmulatedCluster
from rollout.sandbox.faults import FaultPlan
from tests.emulated import HTTPROUTES, NS, make_cluster
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest

GROUP = "rollout.dev"
COMMANDS = ("promote", "promote-full", "abort", "retry", "pause", "resume")
OPS = (*COMMANDS, "ready", "wait", "image")
STARTUP = 1.0  # seconds of virtual time for a pod to become available
# Seconds a canary waits to scale down the old revision after completion, or itself after an
# abort: canary_strategy(steps, scale_down_delay=SCALE_DOWN_DELAY).
SCALE_DOWN_DELAY = 5

# The Events that answer each command (the engine's reasons, see rollout/engine/commands.py,
# canary.py, bluegreen.py, decide.py); some reasons are shared with other causes, told apart by
# their message.
COMMAND_EVENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "promote": (
        ("PromotedStep", "Promoted past step"),  # not "The pending rollout.dev/promote passed ..."
        ("PromotedFull", ""),
        ("PromoteIgnored", ""),
        ("PromotePending", ""),  # answered now; its later use (or PromoteUnused) is a follow-up
        ("PromotedAnalysis", "Promoted past an inconclusive analysis"),
        ("Promoted", ""),
    ),
    "abort": (("RolloutAborted", "Aborted by command"), ("AbortIgnored", "")),
    "retry": (("RolloutRetried", ""), ("RetryIgnored", "")),
    "pause": (("RolloutPaused", "Paused by the rollout.dev/pause"), ("PauseIgnored", "")),
    "resume": (("RolloutResumed", "Resumed by the rollout.dev/resume"), ("ResumeIgnored", "")),
}


def command_of(event: dict[str, Any]) -> str | None:
    for kind, answers in COMMAND_EVENTS.items():
        for reason, prefix in answers:
            if event.get("reason") == reason and str(event.get("message", "")).startswith(prefix):
                return kind
    return None


class SteppedReconciler(Reconciler):
    """The real reconciler with no timers of its own: the scenario decides when it runs."""

    def schedule(self, namespace: str, name: str, delay: float) -> None:
        pass


FAILING_TEMPLATE = {
    "apiVersion": "rollout.dev/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "success-rate", "namespace": NS},
    "spec": {
        "metrics": [
            {
                "name": "success-rate",
                "interval": "1s",
                "count": 2,
                "successCondition": "result[0] >= 0.99",
                "provider": {"prometheus": {"address": "http://prometheus.invalid", "query": "ratio"}},
            }
        ]
    },
}
ANALYSIS_STEP = {"analysis": {"templates": [{"name": "success-rate"}]}}


class FailingMetrics:
    """Stands in for the Prometheus provider (the API server is what this scenario tests): every
    query answers a success rate of 50%, so every analysis fails."""

    def query(self, query: str, **_: Any) -> list[float]:
        return [0.5]


@dataclass
class Outcome:
    injected: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    reconciles: int = 0
    failed_reconciles: int = 0
    converge_reconciles: int | None = None  # None: did not converge
    seconds: float = 0.0


@dataclass
class Scenario:
    cluster: EmulatedCluster
    strategy: dict[str, Any]
    plan: FaultPlan | None
    replicas: int = 3
    reconciles_per_op: int = 2
    converge_limit: int = 40
    client_timeout: float = 0.1
    # The canary's steps include ANALYSIS_STEP and every measurement fails: it must end on stable.
    failing_analysis: bool = False
    outcome: Outcome = field(default_factory=Outcome)
    issued: Counter[str] = field(default_factory=Counter)
    image: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _t0: float = 0.0
    _seen_events: set[str] = field(default_factory=set)
    _event_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def canary(self) -> bool:
        return "canary" in self.strategy

    @property
    def services(self) -> tuple[str, str]:
        return ("web-stable", "web-canary") if self.canary else ("web-active", "web-preview")

    # --- set-up -----------------------------------------------------------------------------

    async def setup(self) -> None:
        kube = self.cluster.kube
        self.cluster.kubelet.paused = True  # ticked by hand, on the virtual clock
        self.cluster.kubelet.startup_seconds = STARTUP
        self._t0 = time.monotonic()
        for name in self.services:
            await kube.create(SERVICES, NS, service_manifest(name))
        if self.canary:
            await kube.create(HTTPROUTES, NS, http_route_manifest())
        await kube.create(ROLLOUTS, NS, rollout_manifest(replicas=self.replicas, strategy=self.strategy))
        if self.failing_analysis:
            await kube.create(ANALYSIS_TEMPLATES, NS, FAILING_TEMPLATE)
        api = api_client_for(self.cluster.url)
        api.user_agent = USER_AGENT
        # A short client timeout keeps injected timeouts cheap; Retry-After is honoured, capped low.
        controller_kube = Kube(api, timeout=self.client_timeout, max_retry_after=0.05, backoff=0.005)
        metrics = FailingMetrics() if self.failing_analysis else None
        self.reconciler = SteppedReconciler(controller_kube, clock=lambda: self.now, prometheus=metrics)
        if self.plan is not None:
            self.plan.timeout_seconds = max(self.plan.timeout_seconds, self.client_timeout * 1.5)
        for _ in range(6):  # the first deploy, fault-free
            await self.step(check=False)
            await self.advance(STARTUP)

    # --- driving ----------------------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        await self.kubelet_sync()

    async def kubelet_sync(self) -> None:
        kubelet = self.cluster.kubelet
        clock = (self.now - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()
        for rs in await self.cluster.kube.list(REPLICASETS, NS):
            status = kubelet.status_for(rs, clock)
            if (rs.get("status") or {}) != status:
                await self.cluster.kube.patch(
                    REPLICASETS, NS, rs["metadata"]["name"], {"status": status}, sub="status"
                )

    async def step(self, check: bool = True) -> None:
        self.outcome.reconciles += 1
        failed = False
        try:
            await self.reconciler.reconcile(NS, "web")
        except Exception as exc:  # what Reconciler._run does: log, and try again later
            self.last_failure, failed = exc, True
            self.outcome.failed_reconciles += 1
        await self.reconciler.events.drain()  # the decision's Events, posted after its reconcile
        await self.kubelet_sync()
        if check:
            await self.check(settled=not failed)

    async def command(self, kind: str) -> None:
        key, value = (f"{GROUP}/promote", "full") if kind == "promote-full" else (f"{GROUP}/{kind}", "")
        raw = await self.cluster.kube.get(ROLLOUTS, NS, "web")
        if key in ((raw or {}).get("metadata", {}).get("annotations") or {}):
            return  # still pending: setting it again is the same command
        await self.cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {key: value}}})
        self.issued[kind.split("-")[0]] += 1

    async def operate(self, op: str, arg: int = 0) -> None:
        if op in COMMANDS:
            await self.command(op)
        elif op == "ready":
            await self.advance(STARTUP)
        elif op == "wait":
            await self.advance(float(arg or 10))
        elif op == "image":
            self.image += 1
            await self.cluster.kube.patch(ROLLOUTS, NS, "web", image_patch(f"web:{self.image}"))
        for _ in range(self.reconciles_per_op):
            await self.step()

    async def run(self, ops: list[tuple[str, int]]) -> Outcome:
        await self.setup()
        self.cluster.api.faults = self.plan
        for op, arg in ops:
            await self.operate(op, arg)
        self.cluster.api.faults = None
        if self.plan is not None:
            self.outcome.injected = Counter(self.plan.injected)
        await self.converge()
        self.outcome.seconds = time.monotonic() - self._t0
        return self.outcome

    async def converge(self) -> None:
        for n in range(1, self.converge_limit + 1):
            await self.step()
            world = await self.read()
            if self.done(world):
                self.outcome.converge_reconciles = n
                return
            status = world["status"]
            if self.failing_analysis and status.get("aborted"):
                pass  # a failed analysis: it must come to rest on stable by itself
            elif status.get("phase") == "Degraded":
                await self.command("retry")
            elif status.get("phase") == "Paused":
                paused = {p.get("reason") for p in status.get("pauseConditions") or []}
                await self.command("resume" if "UserPause" in paused else "promote")
            await self.advance(10.0)
        self.violate(f"not complete after {self.converge_limit} fault-free reconciles: {self.summary()}")

    # --- observing --------------------------------------------------------------------------

    async def read(self) -> dict[str, Any]:
        kube = self.cluster.kube
        raw = await kube.get(ROLLOUTS, NS, "web") or {}
        replicasets: dict[str, dict[str, int]] = {}
        for rs in await kube.list(REPLICASETS, NS):
            revision = rs["metadata"].get("labels", {}).get(REVISION_LABEL, "")
            counts = replicasets.setdefault(revision, {"spec": 0, "available": 0})
            counts["spec"] += int((rs.get("spec") or {}).get("replicas", 0))
            counts["available"] += int((rs.get("status") or {}).get("availableReplicas", 0))
        selectors = {}
        for name in self.services:
            service = await kube.get(SERVICES, NS, name) or {}
            selectors[name] = ((service.get("spec") or {}).get("selector") or {}).get(REVISION_LABEL)
        route = await kube.get(HTTPROUTES, NS, "web") if self.canary else None
        events = [e for e in await kube.list(EVENTS, NS) if e["involvedObject"]["name"] == "web"]
        self._last = {
            "raw": raw,
            "status": raw.get("status") or {},
            "replicasets": replicasets,
            "selectors": selectors,
            "route": route,
            "events": events,
        }
        return self._last

    def summary(self) -> str:
        world = getattr(self, "_last", {})
        status = world.get("status", {})
        return (
            f"phase={status.get('phase')} message={status.get('message')!r} "
            f"stable={status.get('stableRevision')} current={status.get('currentRevision')} "
            f"step={status.get('currentStepIndex')} rs={world.get('replicasets')} "
            f"selectors={world.get('selectors')} "
            f"annotations={world.get('raw', {}).get('metadata', {}).get('annotations')}"
        )

    def violate(self, text: str) -> None:
        self.outcome.violations.append(f"reconcile {self.outcome.reconciles}: {text}")

    def done(self, world: dict[str, Any]) -> bool:
        """Healthy on the newest revision, or (failing analysis) aborted and at rest on stable:
        every selector, the route 100/0 and only the stable ReplicaSet scaled up."""
        raw, status = world["raw"], world["status"]
        parsed = parse_rollout(raw)
        if parsed.rollout is None:
            return False
        wanted = current_revision(parsed.rollout)
        if self.failing_analysis and status.get("aborted"):  # by the analysis or an abort command
            wanted = status.get("stableRevision") or ""
        elif not (status.get("phase") == "Healthy" and status.get("stableRevision") == wanted):
            return False
        if not (
            status.get("currentRevision") == current_revision(parsed.rollout)
            and status.get("observedGeneration") == raw["metadata"].get("generation")
        ):
            return False
        if any(selector != wanted for selector in world["selectors"].values()):
            return False
        pending = [k for k in raw["metadata"].get("annotations") or {} if k.startswith(f"{GROUP}/")]
        if pending:
            return False
        if any(rev != wanted and rs["spec"] > 0 for rev, rs in world["replicasets"].items()):
            return False
        if world["route"] is not None:
            app = _app_rule(world["route"])
            weights = _weights(app)
            managed = [r for r in world["route"]["spec"]["rules"] if str(r.get("name", "")).startswith(GROUP)]
            if weights != {"web-stable": 100, "web-canary": 0} or managed or _mirrors(app):
                return False
        return True

    async def check(self, settled: bool = True) -> None:
        world = await self.read()
        status, replicasets, selectors = world["status"], world["replicasets"], world["selectors"]

        def available(revision: str | None) -> int:
            return replicasets.get(revision or "", {}).get("available", 0)

        def spec(revision: str | None) -> int:
            return replicasets.get(revision or "", {}).get("spec", 0)

        served: dict[str, str] = {}  # revision -> how users reach it
        if world["route"] is not None:
            app = _app_rule(world["route"])
            weights = _weights(app)
            if sum(weights.values()) != 100:
                self.violate(f"route weights {weights} do not sum to 100")
            bound = self.weight_bound(world)
            if bound is not None and weights.get("web-canary", 0) > bound:
                self.violate(f"canary weight {weights.get('web-canary')} above the step's {bound}")
            for service, weight in weights.items():
                if weight > 0:
                    served.setdefault(selectors.get(service) or "", f"weight {weight} on {service}")
            for rule in world["route"]["spec"]["rules"]:
                if str(rule.get("name", "")).startswith(GROUP):
                    for ref in rule.get("backendRefs") or []:
                        served.setdefault(selectors.get(ref["name"]) or "", f"header rule {rule['name']}")
            for target in _mirrors(app):
                served.setdefault(selectors.get(target) or "", f"mirror to {target}")
        else:
            served[selectors.get("web-active") or ""] = "the active Service"
        for revision, how in served.items():
            if available(revision) == 0:
                self.violate(f"{how}: revision {revision} has no available pods ({self.summary()})")
            if spec(revision) == 0:
                self.violate(f"{how}: revision {revision} scaled to 0 ({self.summary()})")
        self.check_commands(world, settled)
        del status

    def weight_bound(self, world: dict[str, Any]) -> int | None:
        """The highest canary weight the stored status allows: the step it names, or the steps
        one reconcile may reach past it without a gate (a step's weight is written before the
        status that records it)."""
        status = world["status"]
        parsed = parse_rollout(world["raw"])
        if parsed.rollout is None or parsed.rollout.spec.strategy.canary is None or status.get("aborted"):
            return None
        steps = parsed.rollout.spec.strategy.canary.steps
        if not steps:
            return 0
        start = min(status.get("currentStepIndex") or 0, len(steps) - 1)
        end = start
        while end + 1 < len(steps) and (
            end == start or (steps[end].pause is None and steps[end].analysis is None)
        ):
            end += 1
        weights = [s.set_weight for s in steps[: end + 1] if s.set_weight is not None]
        return max(weights, default=0)

    def check_commands(self, world: dict[str, Any], settled: bool) -> None:
        """Never more Events than commands; after a reconcile that did not fail, exactly one per
        command removed (a failed one may have removed a command it applies next time)."""
        for event in world["events"]:
            name = event["metadata"]["name"]
            if name not in self._seen_events:
                self._seen_events.add(name)
                kind = command_of(event)
                if kind is not None:
                    self._event_kinds[kind] += 1
        annotations = world["raw"].get("metadata", {}).get("annotations") or {}
        for kind in COMMAND_EVENTS:
            pending = 1 if f"{GROUP}/{kind}" in annotations else 0
            answered = self._event_kinds[kind]
            if answered > self.issued[kind] - pending or (settled and answered < self.issued[kind] - pending):
                self.violate(
                    f"{kind}: issued {self.issued[kind]}, pending {pending}, answered by {answered} Events"
                )
                self.issued[kind] = answered + pending  # report each discrepancy once


def _app_rule(route: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in route["spec"]["rules"] if r.get("name") == "app")


def _weights(rule: dict[str, Any]) -> dict[str, int]:
    return {ref["name"]: int(ref.get("weight", 1)) for ref in rule.get("backendRefs") or []}


def _mirrors(rule: dict[str, Any]) -> list[str]:
    return [
        f["requestMirror"]["backendRef"]["name"]
        for f in rule.get("filters") or []
        if f.get("type") == "RequestMirror"
    ]


def canary_steps(weights: list[int], pauses: list[str], extras: list[str]) -> list[dict[str, Any]]:
    """Steps from drawn parts: each weight step followed by its pause ("" none, "promote" until
    promoted, "timed" 5 s), optionally a header route first and a mirror at the end."""
    steps: list[dict[str, Any]] = []
    if "header" in extras:
        steps.append({"setHeaderRoute": {"name": "dark", "match": [{"header": "x-canary", "exact": "true"}]}})
    for weight, pause in zip(weights, pauses, strict=False):
        steps.append({"setWeight": weight})
        if pause == "promote":
            steps.append({"pause": {}})
        elif pause == "timed":
            steps.append({"pause": {"duration": 5}})
    if "mirror" in extras:
        steps.append({"setMirrorRoute": {"name": "shadow", "percent": 20}})
    return steps


async def run_example(
    strategy: dict[str, Any], ops: list[tuple[str, int]], plan: FaultPlan | None, **settings: Any
) -> Outcome:
    """One run on a fresh emulated cluster (the integration tests' own set-up)."""
    async with make_cluster() as cluster:
        return await Scenario(cluster, strategy, plan, **settings).run(ops)
