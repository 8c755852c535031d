"""One reconcile of one Rollout, and the bookkeeping that decides when the next one runs.

Flow: read the Rollout -> consume command annotations -> observe ReplicaSets, Services, routes,
analysis templates (and the stable revision's Pods, only while a restart runs: pods.py) -> take
the analysis measurements that are due -> `engine.decide` -> hold the traffic finalizer if
traffic leaves stable -> apply actions -> (after a traffic move, decide again from what the writes
left in the caches, passes.py) -> write status (the only memory) -> queue Events (posted
after it, event_queue.py) -> release the finalizer once routes are at rest -> schedule a
look-again if the engine asked for one.
A Rollout being deleted has its routes restored. Reconciles of one Rollout never overlap, and
triggers that arrive while one runs collapse into a single follow-up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import json_merge_patch
import structlog
from kubernetes.client.exceptions import ApiException

from rollout.analysis.jobs import delete_ended_jobs
from rollout.analysis.masking import LOG_MASK
from rollout.analysis.measure import (
    denied_secrets,
    measure,
    observe_secrets,
    observe_templates,
    secret_arg_values,
    secret_keys,
)
from rollout.analysis.prometheus import Prometheus
from rollout.analysis.resolve import resolve_analyses
from rollout.api.rollout import ParsedRollout, Rollout, parse_rollout
from rollout.api.vocabulary import SHARD_LABEL
from rollout.controller.cached import fresh_reads
from rollout.controller.claims import observe_others
from rollout.controller.command_annotations import (
    applied_taken_removal,
    pending_commands,
    taken_id,
    taken_removal,
    taking_patch,
    unapplied_commands,
)
from rollout.controller.event_queue import EventQueue
from rollout.controller.finalizer import (
    FINALIZER,
    finalizer_patch,
    finalizers,
    holds_traffic,
    holds_workload,
    routes_at_rest,
)
from rollout.controller.passes import MAX_PASSES, decides_again, may_act_ahead
from rollout.controller.pods import evict_pod, observe_stable_pods, set_anti_affinity, set_pod_metadata
from rollout.controller.routes import (
    Seen,
    observe_pinned,
    observe_routes,
    pin_revision,
    restore_routes,
    write_traffic,
)
from rollout.controller.shard_caches import shard_label
from rollout.controller.shards import ShardManager
from rollout.engine import Command, Decision, Observed, decide
from rollout.engine.decide import current_revision
from rollout.engine.types import (
    Action,
    CreateBaseline,
    CreateReplicaSet,
    DeleteReplicaSet,
    Event,
    EvictPod,
    PinRevision,
    PinService,
    ScaleDeployment,
    ScaleReplicaSet,
    SetAntiAffinity,
    SetPodMetadata,
    SetTraffic,
    WorkloadState,
)
from rollout.engine.validation import claims_of, referenced_services
from rollout.engine.workload import with_workload
from rollout.kube import (
    DEPLOYMENTS,
    JSON_PATCH,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    Kube,
    Resource,
    api_message,
)
from rollout.kube.events import event_body
from rollout.kube.guard import NotLeader
from rollout.notify.delivery import Notifier
from rollout.observability import metrics
from rollout.traffic.base import RouteProblem
from rollout.traffic.routing import Routing, routing_of
from rollout.workload.deployments import available_of, deployment_state, give_back_replicas
from rollout.workload.replicasets import (
    ROLLOUT_NAME_LABEL,
    build_baseline,
    build_replicaset,
    is_owned_by,
    replicaset_state,
)
from rollout.workload.services import pin_patch

log = structlog.get_logger("rollout.controller")
Key = tuple[str, str]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Conflict(Exception):
    """The Rollout changed under us; the reconcile starts again from a fresh read (commands
    already taken are found there again: command_annotations.py)."""

    def __init__(self) -> None:
        super().__init__("the Rollout changed while it was reconciled")


# Seconds until a Rollout waiting on a missing or unreadable Secret is looked at again.
SECRET_RECHECK = 1.0
# Seconds until a Rollout of a held shard whose writes are fenced (renewal late) is tried again.
FENCED_RETRY = 1.0


def secrets_wanting(observed: Observed) -> bool:
    """Whether a Secret named by the analysis is missing or may not be read."""
    return bool(observed.unreadable_secrets) or any(keys is None for keys in observed.secrets.values())


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        *,
        prometheus: Prometheus | None = None,
        clock: Callable[[], datetime] = utcnow,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 300.0,
        workers: int = 64,
        notifier: Notifier | None = None,
        shards: ShardManager | None = None,
    ) -> None:
        self.kube = kube
        self.shards = shards  # with --shards: only the Rollouts of the shards held here
        self.notifier = notifier  # webhooks told of the Events that name a trigger (notify/)
        self.workers = workers  # Rollouts reconciled at the same time (each one at a time)
        self._slots: asyncio.Semaphore | None = None
        self.prometheus = prometheus or Prometheus()
        self.clock = clock
        # A failing Rollout is tried again after retry_seconds, doubling up to max_retry_seconds.
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self._failures: dict[Key, int] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._waiting: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Revisions whose ReplicaSet the API server refused as invalid, with its words: the spec
        # is InvalidSpec until it changes (retrying the same create cannot succeed).
        self._refused_templates: dict[Key, tuple[str, str]] = {}
        # The pod whose eviction a disruption budget refused last, and how many times in a row,
        # per Rollout: said once, and looked at again less and less often (up to 30 s).
        self._eviction_blocked: dict[Key, tuple[str, int]] = {}
        # A decision's Events, posted after its reconcile in the background, in order per Rollout.
        self.events = EventQueue(kube, around=lambda key: self._in_shard(key))

    # --- triggering -------------------------------------------------------------------------

    def trigger(self, namespace: str, name: str) -> None:
        """Reconcile soon; a trigger while one is already waiting is absorbed by it (and one for
        a Rollout of a shard held elsewhere is ignored)."""
        key = (namespace, name)
        if key in self._waiting or (self.shards is not None and not self.shards.holds(namespace, name)):
            return
        self._waiting.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule(self, namespace: str, name: str, delay: float) -> None:
        """Reconcile after `delay` seconds unless something triggers it earlier."""
        key = (namespace, name)
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        if existing is not None:
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def forget(self, namespace: str, name: str) -> None:
        timer = self._timers.pop((namespace, name), None)
        if timer is not None:
            timer.cancel()
        self._locks.pop((namespace, name), None)
        self._refused_templates.pop((namespace, name), None)
        self._failures.pop((namespace, name), None)
        self._eviction_blocked.pop((namespace, name), None)
        self.kube.forget_reads((namespace, name))
        metrics.forget_rollout(namespace, name)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.trigger(*key)

    async def _run(self, key: Key) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        async with lock, self._slots:
            self._waiting.discard(key)
            if self.shards is not None and not self.shards.owns(*key):
                if self.shards.holds(*key):
                    # Held, its renewal late (a busy API server): looked at again, not dropped
                    # (before, such triggers were lost until the next resync).
                    self.schedule(*key, FENCED_RETRY)
                return  # else its shard was given up while it waited: its new holder runs it
            with metrics.reconcile_timer() as outcome, self._in_shard(key):
                try:
                    with self.kube.reads_for(key):
                        await self.reconcile(*key)
                    self._failures.pop(key, None)
                except Conflict:
                    outcome["result"] = "conflict"
                    self.schedule(*key, 0.05)
                except NotLeader:
                    # The shard's renewal fell behind mid-reconcile: not the Rollout's failure,
                    # so no growing back-off; looked at again once the renewal lands.
                    outcome["result"] = "fenced"
                    self.schedule(*key, FENCED_RETRY)
                except Exception:
                    outcome["result"] = "error"
                    failures = self._failures[key] = self._failures.get(key, 0) + 1
                    delay = min(self.max_retry_seconds, self.retry_seconds * 2 ** (failures - 1))
                    log.exception(
                        "reconcile failed", namespace=key[0], name=key[1], failures=failures, retry_in=delay
                    )
                    self.schedule(*key, delay)

    def _in_shard(self, key: Key) -> contextlib.AbstractContextManager[None]:
        """The reconcile's writes fenced by its shard's Lease (with --shards)."""
        return self.shards.reconciling(*key) if self.shards is not None else contextlib.nullcontext()

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.events.close()

    # --- one reconcile ----------------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str, attempts: int = 5) -> Decision | None:
        with contextlib.suppress(Conflict):
            return await self._reconcile_once(namespace, name)
        # A conflict means something read was behind: the next attempts read the API server.
        with fresh_reads():
            for _ in range(attempts - 2):
                with contextlib.suppress(Conflict):
                    return await self._reconcile_once(namespace, name)
            return await self._reconcile_once(namespace, name)

    async def _reconcile_once(self, namespace: str, name: str) -> Decision | None:
        raw = await self.kube.get(ROLLOUTS, namespace, name)
        if raw is None:
            self.forget(namespace, name)
            return None
        if (raw.get("metadata") or {}).get("deletionTimestamp"):
            # Owned ReplicaSets go with it through garbage collection; routes are not owned.
            await self._finalize(raw)
            return None
        if unapplied_commands(raw):
            # Taken earlier and not applied, as the cache shows it: the API server's word before
            # acting on them (a shard's new holder may not have seen the status that applied them).
            raw = await self.kube.get_fresh(ROLLOUTS, namespace, name)
            if raw is None:
                self.forget(namespace, name)
                return None
        parsed = parse_rollout(raw)
        commands = unapplied_commands(raw)  # taken earlier, their status write never landed
        if parsed.rollout is not None and not parsed.status_errors:  # a held Rollout keeps its commands
            raw, commands = await self._take_commands(raw, commands)
            parsed = parse_rollout(raw)
        taken = taken_id(raw)
        workload = await self._observe_workload(parsed)
        parsed = with_workload(parsed, workload)  # the Deployment's template, before anything reads it
        routing = routing_of(parsed.rollout) if parsed.rollout is not None else None  # once per reconcile
        routes_seen: Seen = {}
        observed = dataclasses.replace(await self._observe(parsed, routes_seen), workload=workload)
        if self._restarting(parsed, commands):
            items = await self.kube.list(REPLICASETS, namespace, f"{ROLLOUT_NAME_LABEL}={name}")
            owned = [rs for rs in items if is_owned_by(rs, parsed.meta.uid)]
            pods = await observe_stable_pods(self.kube, namespace, owned, parsed.status.stable_revision)
            observed = dataclasses.replace(observed, pods=pods)
        read = parsed  # as read: the Jobs of the runs this reconcile ends are found against it
        decision = self._decide(parsed, observed, commands, routing, taken)
        earlier: list[Decision] = []  # the passes before the last, for their Events
        failure: Exception | None = None
        try:
            for done in range(1, MAX_PASSES + 1):
                holds = holds_traffic(decision) or holds_workload(raw)
                if holds and FINALIZER not in finalizers(raw):
                    raw = await self._set_finalizer(raw, add=True)
                for action in decision.actions:
                    if isinstance(action, EvictPod):
                        await self._evict(parsed, action, decision)
                    else:
                        await self.apply_action(parsed, action, routes_seen)
                if done == MAX_PASSES or observed.pods is not None or decision.conditions_only:
                    break
                if not decides_again(decision.actions):
                    break
                follow_up = await self._follow_up(parsed, decision, workload, routing, taken)
                if follow_up is None:
                    break  # left to the next reconcile, after this status is written
                earlier.append(decision)
                parsed, observed, decision, routes_seen = follow_up
        except (ApiException, RouteProblem) as exc:
            failure = exc
            log.warning("action failed", namespace=namespace, name=name, error=str(exc))
        raw = await self._write_status(raw, decision)
        await self._delete_ended_jobs(read, observed, decision)
        # Said once the status holds it, before the finalizer's release: a conflict there retries
        # from the new status, which would not say (or notify) a completion again.
        for said in (*earlier, decision):  # each pass's Events told with the status it decided
            await self._post_events(raw, said)
        raw = await self._clear_taken(raw, taken if decision.commands_applied else "")
        if FINALIZER in finalizers(raw) and routes_at_rest(observed, decision) and not holds_workload(raw):
            raw = await self._set_finalizer(raw, add=False)
        if isinstance(failure, ApiException) and failure.status == 409:
            raise Conflict() from failure  # an object changed since it was read: read again
        if failure is not None:
            raise failure
        if decision.requeue_after is not None:
            self.schedule(namespace, name, max(decision.requeue_after, 0.0))
        return decision

    async def _follow_up(
        self,
        parsed: ParsedRollout,
        decision: Decision,
        workload: WorkloadState | None,
        routing: Routing | None,
        taken: str,
    ) -> tuple[ParsedRollout, Observed, Decision, Seen] | None:
        """The decision again from what the first pass's writes left in the caches (passes.py);
        None when it would act where only the next reconcile may."""
        if parsed.rollout is None:
            return None
        again = dataclasses.replace(parsed, status=decision.status)
        seen: Seen = {}
        try:
            looked = dataclasses.replace(await self._observe(again, seen), workload=workload)
            follow_up = self._decide(again, looked, [], routing, taken, log_it=False)
        except Exception:  # the first pass's status is written all the same
            log.exception("second pass failed", namespace=parsed.meta.namespace, name=parsed.meta.name)
            return None
        current = current_revision(parsed.rollout)
        if not may_act_ahead(follow_up.actions, looked, current, routing is not None):
            return None
        self._log_decision(again, looked, follow_up, [])
        return again, looked, follow_up, seen

    def _decide(
        self,
        parsed: ParsedRollout,
        observed: Observed,
        commands: list[Command],
        routing: Routing | None,
        taken: str,
        *,
        log_it: bool = True,
    ) -> Decision:
        decision = decide(parsed, observed, commands, self.clock(), routing=routing)
        if taken and decision.commands_applied:
            # The status write says the taken commands are applied (command_annotations.py); a
            # decision that could not apply them (an invalid spec) leaves them waiting.
            decision.status.commands_applied = taken
        if secrets_wanting(observed):
            # Secrets are not watched (cached.py): look again shortly for one created or granted.
            decision.requeue_after = min(decision.requeue_after or SECRET_RECHECK, SECRET_RECHECK)
        if log_it:
            self._log_decision(parsed, observed, decision, commands)
        return decision

    def _log_decision(
        self, parsed: ParsedRollout, observed: Observed, decision: Decision, commands: list[Command]
    ) -> None:
        metrics.record_decision(parsed, decision.status, observed.analysis_templates)
        busy = decision.actions or decision.events or commands
        (log.info if busy else log.debug)(
            "reconciled",
            namespace=parsed.meta.namespace,
            name=parsed.meta.name,
            phase=decision.status.phase,
            stable=decision.status.stable_revision,
            current=decision.status.current_revision,
            actions=[type(a).__name__ for a in decision.actions],
            commands=[c.kind for c in commands],
        )

    async def _delete_ended_jobs(self, parsed: ParsedRollout, observed: Observed, decision: Decision) -> None:
        """The Jobs of job metrics whose run this reconcile ended go, now that the status says
        so; a failed delete is logged, not retried (the Rollout's deletion takes them anyway)."""
        if parsed.rollout is None or observed.analyses is None:
            return
        try:
            await delete_ended_jobs(
                self.kube, parsed.rollout, observed.analyses.metrics, parsed.status, decision.status
            )
        except ApiException as exc:
            log.warning(
                "jobs not deleted", namespace=parsed.meta.namespace, name=parsed.meta.name, error=str(exc)
            )

    def _restarting(self, parsed: ParsedRollout, commands: list[Command]) -> bool:
        """Whether this reconcile reads the stable revision's Pods: a restart runs or is asked."""
        if parsed.rollout is None or parsed.status_errors:
            return False
        return parsed.status.restarted_at is not None or any(c.kind == "restart" for c in commands)

    async def _evict(self, parsed: ParsedRollout, action: EvictPod, decision: Decision) -> None:
        """Carry out a restart's eviction; a disruption budget's 429 is said once and looked at
        again after 1, 2, 4 ... 30 s."""
        key = (parsed.meta.namespace, parsed.meta.name)
        revision = decision.status.stable_revision
        try:
            event = await evict_pod(self.kube, parsed.meta.namespace, action.name, revision)
        except ApiException as exc:
            if exc.status != 429:
                raise
            pod, refused = self._eviction_blocked.get(key, ("", 0))
            if pod != action.name:
                refused = 0
                why = api_message(exc)
                decision.events.append(
                    Event("Warning", "EvictionBlocked", f"Restart: pod {action.name} not evicted yet: {why}")
                )
            self._eviction_blocked[key] = (action.name, refused + 1)
            decision.requeue_after = min(30.0, 2.0**refused)
            return
        self._eviction_blocked.pop(key, None)
        if event is not None:
            decision.events.append(event)

    async def _take_commands(
        self, raw: dict[str, Any], unapplied: list[Command]
    ) -> tuple[dict[str, Any], list[Command]]:
        """The Rollout with its command annotations taken, and the commands to apply: those
        taken earlier and not applied yet, then the new ones."""
        commands = pending_commands(raw)
        if not commands:
            return raw, unapplied
        meta = raw["metadata"]
        patch, new_id = taking_patch(raw, commands, unapplied)
        try:
            updated = await self.kube.patch(ROLLOUTS, meta["namespace"], meta["name"], patch)
        except Exception as exc:
            # An attempt whose answer was lost may have landed: sent again the patch conflicts
            # with itself, or its retries end on another error (a 429, a 503). A fresh read that
            # holds this id says it landed.
            fresh = await self.kube.get_fresh(ROLLOUTS, meta["namespace"], meta["name"])
            if fresh is None or taken_id(fresh) != new_id:
                if isinstance(exc, ApiException) and exc.status == 409:
                    raise Conflict() from exc
                raise
            updated = fresh
        log.info(
            "commands taken",
            namespace=meta["namespace"],
            name=meta["name"],
            commands=[f"{c.kind}={c.value}" for c in (*unapplied, *commands)],
            id=new_id,
        )
        return updated, unapplied_commands(updated)

    async def _clear_taken(self, raw: dict[str, Any], applied: str) -> dict[str, Any]:
        """The commands-taken annotation off once the status records its commands as applied
        (`applied`: the id this reconcile's status write carried, if it applied commands); a
        failure is left to the next reconcile, which finds them applied (command_annotations.py)."""
        patch = applied_taken_removal(raw)
        meta = raw["metadata"]
        if patch is None and applied and taken_id(raw) == applied:
            # Written, and the answer has no status.commandsApplied: a CRD older than this
            # controller prunes the field. Without the record taken off, the commands would be
            # applied again on every reconcile; taken off, they are applied at most once.
            log.error(
                "the Rollout CRD in the cluster lacks status.commandsApplied: apply this version's "
                "CRDs (crds/); until then a command may be lost if the controller stops mid-reconcile",
                namespace=meta["namespace"],
                name=meta["name"],
            )
            patch = taken_removal(raw)
        if patch is None:
            return raw
        try:
            return await self.kube.patch(ROLLOUTS, meta["namespace"], meta["name"], patch)
        except Exception as exc:  # a 409, a lapsed Lease: the next reconcile takes it off
            log.info(
                "applied commands' record left for now",
                namespace=meta["namespace"],
                name=meta["name"],
                error=str(exc),
            )
            return raw

    async def _observe_workload(self, parsed: ParsedRollout) -> WorkloadState | None:
        """The Deployment of spec.workloadRef; None without one, or when it does not exist."""
        ref = None if parsed.rollout is None else parsed.rollout.spec.workload_ref
        if ref is None:
            return None
        found = await self.kube.get(DEPLOYMENTS, parsed.meta.namespace, ref.name)
        return None if found is None else deployment_state(found)

    async def _observe(self, parsed: ParsedRollout, routes_seen: Seen) -> Observed:
        meta = parsed.meta
        items = await self.kube.list(REPLICASETS, meta.namespace, f"{ROLLOUT_NAME_LABEL}={meta.name}")
        owned = [rs for rs in items if is_owned_by(rs, meta.uid)]
        await self._label_into_shard(meta.namespace, meta.name, owned)
        states = [replicaset_state(rs) for rs in owned]
        services: dict[str, dict[str, str] | None] = {}
        if parsed.rollout is None:
            return Observed(replicasets=tuple(s for s in states if s is not None))
        for service in set(referenced_services(parsed.rollout).values()):
            obj = await self.kube.get(SERVICES, meta.namespace, service)
            services[service] = None if obj is None else dict((obj.get("spec") or {}).get("selector") or {})
        templates = await observe_templates(self.kube, parsed.rollout)
        secrets = await observe_secrets(self.kube, parsed.rollout, templates)
        current = current_revision(parsed.rollout)
        arg_values = secret_arg_values(parsed.rollout, secrets)
        # Known to the log masking before any provider logs a query holding one of them.
        secret_values = [v for v in arg_values.values() if isinstance(v, str)]
        LOG_MASK.remember(f"{meta.namespace}/{meta.name}", secret_values)
        analyses = resolve_analyses(parsed.rollout, parsed.status, templates, current, arg_values)
        measurements = await measure(
            secrets,
            self.prometheus,
            parsed.rollout,
            parsed.status,
            analyses,
            current,
            self.clock(),
            self.kube,
        )
        refused = self._refused_templates.get((meta.namespace, meta.name))
        return Observed(
            refused_template=refused[1] if refused is not None and refused[0] == current else None,
            replicasets=tuple(s for s in states if s is not None),
            services=services,
            routes=await observe_routes(self.kube, parsed.rollout, routes_seen),
            pins=await observe_pinned(self.kube, parsed.rollout),
            analysis_templates=templates,
            analyses=analyses,
            measurements=measurements,
            secrets=secret_keys(secrets),
            unreadable_secrets=denied_secrets(secrets),
            others=await observe_others(
                self.kube,
                meta.namespace,
                meta.name,
                claims_of(parsed.rollout),
                self.kube.claims_index(meta.namespace),
            ),
        )

    async def apply_action(
        self, parsed: ParsedRollout, action: Action, routes_seen: Seen | None = None
    ) -> None:
        rollout, ns = parsed.rollout, parsed.meta.namespace
        assert rollout is not None  # actions are only decided for a valid spec
        if isinstance(action, CreateReplicaSet):
            body = build_replicaset(
                rollout, action.revision, action.replicas, action.pod_metadata, action.anti_affinity
            )
            body["metadata"]["labels"].update(self._shard_labels(ns, parsed.meta.name))
            try:
                await self.kube.create(REPLICASETS, ns, body)
            except ApiException as exc:
                if exc.status in (400, 422):  # Invalid: the template, not the moment, is wrong
                    key = (ns, parsed.meta.name)
                    self._refused_templates[key] = (action.revision, api_message(exc))
                if exc.status != 409:
                    raise
                # Created by an earlier reconcile whose status write was lost: take it as is.
                await self.kube.patch(
                    REPLICASETS, ns, body["metadata"]["name"], {"spec": {"replicas": action.replicas}}
                )
        elif isinstance(action, CreateBaseline):
            await self._create_baseline(rollout, ns, action)
        elif isinstance(action, SetPodMetadata):
            await set_pod_metadata(
                self.kube, ns, action, await self._version_of(REPLICASETS, ns, action.name)
            )
        elif isinstance(action, SetAntiAffinity):
            await set_anti_affinity(self.kube, ns, action)
        elif isinstance(action, ScaleReplicaSet):
            # Guarded by the version the decision was made on: a stale read costs a 409, not a
            # scale computed from a world that has moved on.
            guard = await self._version_of(REPLICASETS, ns, action.name)
            await self.kube.patch(
                REPLICASETS, ns, action.name, {"metadata": guard, "spec": {"replicas": action.replicas}}
            )
        elif isinstance(action, DeleteReplicaSet):
            guard = await self._version_of(REPLICASETS, ns, action.name)
            version = guard.get("resourceVersion")
            await self.kube.delete(REPLICASETS, ns, action.name, resource_version=version)
        elif isinstance(action, PinService):
            guard = await self._version_of(SERVICES, ns, action.service)
            body = {**pin_patch(action.revision), "metadata": guard}
            await self.kube.patch(SERVICES, ns, action.service, body)
        elif isinstance(action, ScaleDeployment):
            # Guarded like a ReplicaSet: never scale down from a stale view of the Deployment.
            guard = await self._version_of(DEPLOYMENTS, ns, action.name)
            await self.kube.patch(
                DEPLOYMENTS, ns, action.name, {"metadata": guard, "spec": {"replicas": action.replicas}}
            )
        elif isinstance(action, PinRevision):
            await pin_revision(self.kube, rollout, action.role, action.revision)
        elif isinstance(action, SetTraffic):
            await write_traffic(self.kube, rollout, action.state, {} if routes_seen is None else routes_seen)

    async def _create_baseline(self, rollout: Rollout, ns: str, action: CreateBaseline) -> None:
        """The baseline from the stable ReplicaSet's template; one already there (an earlier
        reconcile's whose status write was lost) is scaled instead."""
        source = await self.kube.get(REPLICASETS, ns, action.source)
        if source is None:  # gone since observed: the next reconcile decides again
            log.warning("baseline source missing", namespace=ns, replicaset=action.source)
            return
        body = build_baseline(rollout, source, action.replicas)
        body["metadata"].setdefault("labels", {}).update(self._shard_labels(ns, rollout.metadata.name))
        try:
            await self.kube.create(REPLICASETS, ns, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self.kube.patch(
                REPLICASETS, ns, body["metadata"]["name"], {"spec": {"replicas": action.replicas}}
            )

    def _shard_labels(self, namespace: str, name: str) -> dict[str, str]:
        """With --shards, the label of the Rollout's shard its ReplicaSets carry (each replica
        watches only its shards' ReplicaSets: shard_caches.py)."""
        if self.shards is None:
            return {}
        count = self.shards.settings.count
        return {SHARD_LABEL: shard_label(self.shards.shard(namespace, name), count)}

    async def _label_into_shard(self, namespace: str, name: str, owned: list[dict[str, Any]]) -> None:
        """Label the Rollout's ReplicaSets that lack its shard's label (made before --shards,
        or under another count), so that its shard's watch holds them."""
        wanted = self._shard_labels(namespace, name)
        for rs in owned if wanted else []:
            meta = rs.get("metadata") or {}
            if (meta.get("labels") or {}).get(SHARD_LABEL) != wanted[SHARD_LABEL]:
                await self.kube.patch(REPLICASETS, namespace, meta["name"], {"metadata": {"labels": wanted}})

    async def _version_of(self, res: Resource, namespace: str, name: str) -> dict[str, str]:
        """`{resourceVersion: ...}` of the object as the cache holds it (what the decision was
        made on); empty without a cache."""
        version = self.kube.known_version(res, namespace, name)
        return {"resourceVersion": version} if version else {}

    async def _set_finalizer(self, raw: dict[str, Any], *, add: bool) -> dict[str, Any]:
        """Add or remove the traffic finalizer, guarded by resourceVersion; returns the new object."""
        meta = raw["metadata"]
        try:
            return await self.kube.patch(
                ROLLOUTS,
                meta["namespace"],
                meta["name"],
                finalizer_patch(raw, add=add),
                content_type=JSON_PATCH,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict() from exc
            raise

    async def _finalize(self, raw: dict[str, Any]) -> None:
        """A Rollout being deleted: routes back to 100% stable with managed rules removed, then
        the finalizer released so that deletion completes."""
        if FINALIZER not in finalizers(raw):
            return
        meta = raw["metadata"]
        parsed = parse_rollout(raw)
        if parsed.rollout is None:
            problems = ["the spec cannot be read, so its routes are unknown"]
        else:
            problems = await restore_routes(self.kube, parsed.rollout)
        event = (
            Event("Warning", "TrafficNotRestored", "Deleted; not restored: " + "; ".join(problems))
            if problems
            else Event(
                "Normal", "TrafficRestored", "Deleted: routes restored to 100% stable, managed rules removed"
            )
        )
        # (a Rollout held only for its workload has no routes to speak of)
        routed = parsed.rollout is None or routing_of(parsed.rollout) is not None
        events = [event] if problems or routed else []
        if holds_workload(raw):
            given_back, said = await self._give_back_workload(raw)
            events += said
            if not given_back:  # the Rollout's pods stay until the Deployment's are available
                await self._post_events(raw, Decision(status=parsed.status, events=said))
                self.schedule(meta["namespace"], meta["name"], 0.5)
                return
        log.info("finalized", namespace=meta["namespace"], name=meta["name"], problems=problems)
        await self._set_finalizer(raw, add=False)
        await self._post_events(raw, Decision(status=parsed.status, events=events))

    async def _give_back_workload(self, raw: dict[str, Any]) -> tuple[bool, list[Event]]:
        """Scale the Deployment of spec.workloadRef back up; True once its pods are available (the
        Rollout's ReplicaSets may go then). Read from the API server: a deletion is no time to
        act on a cache that may be behind."""
        meta, ref = raw["metadata"], (raw.get("spec") or {}).get("workloadRef") or {}
        name = str(ref.get("name", ""))
        where = f"Deployment {meta['namespace']}/{name}"
        deployment = await self.kube.get_fresh(DEPLOYMENTS, meta["namespace"], name) if name else None
        if deployment is None:
            gone = Event("Warning", "WorkloadNotRestored", f"Deleted; {where} not found: nothing to return")
            return True, [gone]
        target = give_back_replicas(raw, deployment)
        events = []
        if int((deployment.get("spec") or {}).get("replicas", 1)) < target:
            guard = {"resourceVersion": deployment["metadata"]["resourceVersion"]}
            deployment = await self.kube.patch(
                DEPLOYMENTS, meta["namespace"], name, {"metadata": guard, "spec": {"replicas": target}}
            )
            events.append(
                Event(
                    "Normal",
                    "WorkloadRestoring",
                    f"Deleted: {where} scaled back up to {target}; "
                    "the Rollout's pods stay until its pods are available",
                )
            )
        available = available_of(deployment)
        if available < target:
            return False, events
        events.append(
            Event("Normal", "WorkloadRestored", f"Deleted: {where} has {available}/{target} available again")
        )
        return True, events

    async def _write_status(self, raw: dict[str, Any], decision: Decision) -> dict[str, Any]:
        stored = raw.get("status")
        old = stored if isinstance(stored, dict) else {}
        new = decision.status.wire()
        if decision.conditions_only:  # an unreadable status: the rest of it stays as it is
            new = {**old, "conditions": new.get("conditions", [])}
        garbage = stored is not None and not isinstance(stored, dict)  # overwritten, not merged into
        if old == new and not garbage:
            return raw
        meta = raw["metadata"]
        patch = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "status": json_merge_patch.create_patch(old, new),
        }
        try:
            return await self.kube.patch(ROLLOUTS, meta["namespace"], meta["name"], patch, sub="status")
        except ApiException as exc:
            if exc.status != 409:
                raise
            # A write whose answer was lost and that was sent again conflicts with itself.
            fresh = await self.kube.get_fresh(ROLLOUTS, meta["namespace"], meta["name"])
            if fresh is None or (fresh.get("status") or {}) != new:
                raise Conflict() from exc
            return fresh

    async def _post_events(self, raw: dict[str, Any], decision: Decision) -> None:
        """Queued in the order the decision gave them (people and the sandbox read them in that
        order), with their notifications; posted off the reconcile's path (event_queue.py)."""
        if not decision.events:
            return
        key = (raw["metadata"]["namespace"], raw["metadata"]["name"])
        await self.events.put(key, [event_body(raw, event) for event in decision.events])
        if self.notifier is not None:  # queued, never waited for
            for event in decision.events:
                self.notifier.notify(raw, decision.status, event, self.clock())
