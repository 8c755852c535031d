"""A pure, in-memory cluster for engine tests: ReplicaSets whose pods become available when the
test says so, and a controller loop that observes routes and applies the engine's actions with the
controller's own code (Reconciler.apply_action, controller/routes.py) over a simulated API
(tests/sim_api.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.analysis.due import due_measurements
from rollout.analysis.resolve import ResolvedAnalyses, resolve_analyses
from rollout.analysis.runs import QueryResult
from rollout.api.revision import BASELINE_OF_LABEL
from rollout.api.rollout import ParsedRollout, parse_rollout
from rollout.controller.reconciler import Reconciler
from rollout.controller.routes import Seen, observe_pinned, observe_routes
from rollout.engine import Command, Decision, Observed, ReplicaSetState, decide
from rollout.engine.decide import current_revision
from rollout.engine.types import SetTraffic, WorkloadState
from rollout.engine.workload import with_workload
from tests.sim_api import SimKube, run_at_once

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class SimReplicaSet:
    name: str
    revision: str
    spec: int
    available: int = 0
    created: int = 0
    # The ReplicaSet's metadata as created (labels, annotations: its template, a baseline's source).
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline_of(self) -> str:
        return str((self.metadata.get("labels") or {}).get(BASELINE_OF_LABEL, ""))


@dataclass
class Sim:
    manifest: dict[str, Any]
    services: dict[str, dict[str, str] | None] = field(default_factory=dict)
    now: datetime = T0
    replicasets: dict[str, SimReplicaSet] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    # Route documents by name (HTTPRoute, VirtualService, ...), written through the real routers.
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # DestinationRule subsets: name -> labels (None: no DestinationRule).
    subsets: dict[str, dict[str, str]] | None = None
    # Every traffic state written, in order, for the property tests.
    traffic_writes: list[Any] = field(default_factory=list)
    # Analysis templates by key, and what a query returns: metric name -> value, or a str (error).
    templates: dict[Any, Any] = field(default_factory=dict)
    metric_values: dict[str, Any] = field(default_factory=dict)
    # Secrets by name: the keys they hold (None: missing); the other Rollouts' claims.
    secrets: dict[str, Any] = field(default_factory=dict)
    others: tuple[Any, ...] = ()
    # The Deployment of spec.workloadRef (a manifest) and how many of its pods are available.
    deployment: dict[str, Any] | None = None
    deployment_available: int = 0
    # The stable revision's pods as the controller reads them while a restart runs (None: unread).
    pods: tuple[Any, ...] | None = None
    _created: int = 0
    # The controller's action code, over the simulated API.
    _controller: Reconciler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._controller = Reconciler(SimKube(self))

    def _parsed(self) -> ParsedRollout:
        """The Rollout as the controller reads it: with its Deployment's template when it has one."""
        return with_workload(parse_rollout(copy.deepcopy(self.manifest)), self._workload())

    def _workload(self) -> WorkloadState | None:
        if self.deployment is None:
            return None
        spec = self.deployment["spec"]
        return WorkloadState(
            name=self.deployment["metadata"]["name"],
            template=spec["template"],
            selector=spec["selector"],
            spec_replicas=spec["replicas"],
            available=self.deployment_available,
        )

    @property
    def status(self) -> dict[str, Any]:
        return self.manifest.get("status") or {}

    def observed(self, seen: Seen | None = None) -> Observed:
        """The world as the controller reads it; the routes read are kept in `seen`."""
        analyses = self._analyses()
        parsed = self._parsed()
        api = self._controller.kube
        routes, pins = (), ()
        if parsed.rollout is not None:
            routes = run_at_once(observe_routes(api, parsed.rollout, {} if seen is None else seen))
            pins = run_at_once(observe_pinned(api, parsed.rollout))
        return Observed(
            replicasets=tuple(
                ReplicaSetState(
                    name=rs.name,
                    revision=rs.revision,
                    spec_replicas=rs.spec,
                    replicas=rs.spec,
                    ready=rs.available,
                    available=rs.available,
                    created_at=f"{rs.created:06d}",
                    baseline_of=rs.baseline_of,
                )
                for rs in self.replicasets.values()
            ),
            services=self.services,
            routes=routes,
            pins=pins,
            analysis_templates=self.templates,
            analyses=analyses,
            measurements=self._measure(analyses),
            secrets=self.secrets,
            others=self.others,
            workload=self._workload(),
            pods=self.pods,
        )

    def _analyses(self) -> ResolvedAnalyses | None:
        """The analyses resolved once, as the controller does before it measures."""
        parsed = self._parsed()
        if parsed.rollout is None:
            return None
        current = current_revision(parsed.rollout)
        return resolve_analyses(parsed.rollout, parsed.status, self.templates, current)

    def _measure(self, analyses: ResolvedAnalyses | None) -> tuple[QueryResult, ...]:
        """What the controller would query now, answered from `metric_values`."""
        parsed = self._parsed()
        if parsed.rollout is None or analyses is None:
            return ()
        current = current_revision(parsed.rollout)
        results = []
        for item in due_measurements(analyses, parsed.status, current, self.now):
            answer = self.metric_values.get(item.metric.name, "no answer scripted")
            error, value = (answer, None) if isinstance(answer, str) else ("", answer)
            results.append(QueryResult(item.run, item.revision, item.metric.name, self.now, value, error))
        return tuple(results)

    def destination_rule(self) -> dict[str, Any] | None:
        """The DestinationRule that `subsets` stands for (None: no DestinationRule)."""
        if self.subsets is None:
            return None
        return {"spec": {"subsets": [{"name": n, "labels": labels} for n, labels in self.subsets.items()]}}

    def reconcile(
        self, *commands: Command, lose_status: bool = False, fail_from: int | None = None
    ) -> Decision:
        """One reconcile. `lose_status`: a crash between acting and writing status. `fail_from`:
        the API refuses the decision's action of that index, and the controller skips the rest
        (it writes status all the same)."""
        seen: Seen = {}
        parsed = self._parsed()
        decision = decide(parsed, self.observed(seen), commands, self.now)
        for index, action in enumerate(decision.actions):  # an EvictPod is the test's (`pods`)
            if fail_from is not None and index >= fail_from:
                break
            if isinstance(action, SetTraffic):
                self.traffic_writes.append(action.state)
            run_at_once(self._controller.apply_action(parsed, action, seen))
        if decision.conditions_only:  # an unreadable status: only its conditions are written
            stored = self.manifest.get("status")
            self.manifest["status"] = {
                **(stored if isinstance(stored, dict) else {}),
                "conditions": decision.status.wire()["conditions"],
            }
        elif not lose_status:  # a crash between acting and writing status loses only the status
            self.manifest["status"] = decision.status.wire()
        self.decisions.append(decision)
        return decision

    def add_replicaset(
        self, name: str, revision: str, replicas: int, metadata: dict[str, Any] | None = None
    ) -> None:
        """A ReplicaSet created now, none of its pods available yet."""
        self._created += 1
        self.replicasets[name] = SimReplicaSet(
            name, revision, replicas, created=self._created, metadata=copy.deepcopy(metadata or {})
        )

    def pods_ready(self, count: int | None = None) -> None:
        """Make up to `count` pending pods available (all when None), the Deployment's first, then
        oldest ReplicaSet first."""
        budget = count
        if self.deployment is not None:
            missing = self.deployment["spec"]["replicas"] - self.deployment_available
            add = missing if budget is None else min(missing, budget)
            self.deployment_available += add
            if budget is not None:
                budget -= add
        for rs in sorted(self.replicasets.values(), key=lambda r: r.created):
            missing = rs.spec - rs.available
            add = missing if budget is None else min(missing, budget)
            rs.available += add
            if budget is not None:
                budget -= add

    def operate(self, kind: str, value: Any = None) -> tuple[Command, ...]:
        """One step of a property test's random script: the commands it sends, or the change it
        makes to the spec (`image`: web:<value>)."""
        if kind in ("promote", "abort", "retry", "pause", "resume"):
            return (Command(kind),)  # type: ignore[arg-type]
        if kind == "promote-full":
            return (Command("promote", "full"),)
        if kind == "image":
            self.set_image(f"web:{value}")
        return ()

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)

    def set_image(self, image: str) -> None:
        holder = self.deployment if self.deployment is not None else self.manifest
        holder["spec"]["template"]["spec"]["containers"][0]["image"] = image

    def revision_for(self, image: str) -> str:
        """The revision hash the spec would have with this image."""
        if self.deployment is not None:
            template = copy.deepcopy(self.deployment["spec"]["template"])
            template["spec"]["containers"][0]["image"] = image
            spec = {k: v for k, v in self.manifest["spec"].items() if k != "workloadRef"}
            manifest = {**self.manifest, "spec": {**spec, "template": template}}
            manifest["spec"]["selector"] = self.deployment["spec"]["selector"]
        else:
            manifest = copy.deepcopy(self.manifest)
            manifest["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return current_revision(parse_rollout(manifest).rollout)

    def spec_of(self, revision: str) -> int:
        return sum(rs.spec for rs in self.replicasets.values() if rs.revision == revision)

    def available_total(self) -> int:
        return sum(rs.available for rs in self.replicasets.values())

    def settle(self, rounds: int = 50) -> None:
        """Reconcile with every pod becoming ready until nothing changes."""
        for _ in range(rounds):
            decision = self.reconcile()
            all_ready = all(rs.available == rs.spec for rs in self.replicasets.values())
            self.pods_ready()
            self.tick()
            if (
                not decision.actions
                and all_ready
                and self.status.get("phase") in ("Healthy", "Degraded", "Paused")
            ):
                return
