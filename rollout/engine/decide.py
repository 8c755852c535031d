"""The engine's entry point: `decide(parsed, observed, commands, now) -> Decision`.

Order of a decision: spec errors first (InvalidSpec, nothing moves), then revision bookkeeping
(first deploy, new template), commands (a promote goes to the strategy, a restart starts from
the observed pods), the strategy's run (its moves, from the strategy registry strategies.py:
scaling, traffic, completion), a running restart's next eviction (restart.py), the progress
deadline, and finally the phase and conditions a person reads (the strategy says where its
update stands). The Rollout's routing is worked out once (by the reconciler, or here) and
passed to validation and the strategy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rollout.analysis.resolve import ResolvedMetric, resolve_analyses
from rollout.api.revision import revision_hash
from rollout.api.rollout import ParsedRollout, Rollout, SpecError
from rollout.api.status import RolloutStatus
from rollout.api.vocabulary import (
    ANALYSIS,
    ANALYSIS_PAUSE,
    AVAILABLE,
    DEADLINE_EXCEEDED,
    INVALID_SPEC,
    INVALID_STATUS,
    PROGRESSING,
    SPEC_PAUSE,
)
from rollout.engine import rollback
from rollout.engine.baseline import baseline_change_errors
from rollout.engine.bounds import MESSAGE, bounded, clip
from rollout.engine.commands import apply_commands
from rollout.engine.gates import Analyses, promote_analysis, reset_runs
from rollout.engine.moves import Moves, Outcome
from rollout.engine.pod_metadata import pod_metadata_actions, role_labels
from rollout.engine.recovery import disagreement, recover_stable
from rollout.engine.restart import advance_restart
from rollout.engine.rolling import oldest_first
from rollout.engine.status_conditions import add_pause, remove_condition, remove_pause, set_condition
from rollout.engine.strategies import forget_progress, pause_reasons, strategy_of
from rollout.engine.types import (
    Action,
    Command,
    Decision,
    DeleteReplicaSet,
    Event,
    Observed,
    ReplicaSetState,
)
from rollout.engine.validation import validate
from rollout.engine.workload import with_workload, workload_actions
from rollout.traffic.routing import Routing, routing_of


def current_revision(rollout: Rollout) -> str:
    return revision_hash(rollout.spec.template.model_dump(by_alias=True, exclude_defaults=True, mode="json"))


def decide(
    parsed: ParsedRollout,
    observed: Observed,
    commands: Sequence[Command],
    now: datetime,
    *,
    routing: Routing | None = None,
) -> Decision:
    """The next actions and status. `routing`: the Rollout's routing_of, when the caller has
    worked it out already (the reconciler has); else it is worked out here, once."""
    if parsed.status_errors:
        return _unreadable_status(parsed, now)
    parsed = with_workload(parsed, observed.workload)
    status = parsed.status.model_copy(deep=True)
    status.observed_generation = parsed.meta.generation
    errors = list(parsed.errors)
    if parsed.rollout is not None:
        if routing is None:
            routing = routing_of(parsed.rollout)
        current = current_revision(parsed.rollout)
        open_runs = frozenset(
            run.name for run in status.analysis_runs if run.finished_at is None and run.revision == current
        )
        errors += validate(parsed.rollout, observed, routing, open_runs)
        errors += baseline_change_errors(parsed.rollout, status)
        analyses = observed.analyses
        if analyses is None:
            analyses = resolve_analyses(parsed.rollout, parsed.status, observed.analysis_templates, current)
        resolved = analyses.metrics
        errors += analyses.errors
    if errors or parsed.rollout is None:
        return bounded(_invalid(status, errors, now))
    events: list[Event] = []
    if remove_condition(status, INVALID_SPEC):
        events.append(Event("Normal", "SpecValid", "The spec is valid again; resuming"))
    if remove_condition(status, INVALID_STATUS):
        events.append(Event("Normal", "StatusReadable", "The status can be read again; resuming"))
    return bounded(_decide_valid(parsed.rollout, status, observed, resolved, commands, now, events, routing))


def _unreadable_status(parsed: ParsedRollout, now: datetime) -> Decision:
    """Hold: no action, and only a condition written. The status is the controller's memory of
    where a rollout stands; guessing past a part it cannot read could promote a canary that no
    analysis passed. Fixing or removing the field lets it continue (a status removed as a whole
    is recovered from what the cluster shows)."""
    problems = "; ".join(str(e) for e in parsed.status_errors)
    message = clip(
        f"status cannot be read by this controller version: {problems}; holding the rollout "
        "(no traffic or scale change) until the field is fixed or removed",
        MESSAGE,
    )
    status = RolloutStatus(conditions=list(parsed.conditions))
    previous = status.condition(INVALID_STATUS)
    previous_message = None if previous is None else previous.message  # set_condition updates it in place
    set_condition(status, INVALID_STATUS, "True", "StatusUnreadable", message, now)
    events = []
    if previous_message != message:
        events.append(Event("Warning", "StatusUnreadable", message))
    return Decision(status=status, events=events, conditions_only=True)


def _invalid(status: RolloutStatus, errors: list[SpecError], now: datetime) -> Decision:
    message = clip("; ".join(str(e) for e in errors), MESSAGE)  # as status keeps it: compared below
    previous = status.condition(INVALID_SPEC)
    previous_message = None if previous is None else previous.message  # set_condition updates it in place
    set_condition(status, INVALID_SPEC, "True", "InvalidSpec", message, now)
    status.phase = "Degraded"
    status.message = f"InvalidSpec: {message}"
    events = []
    if previous_message != message:
        events.append(Event("Warning", "InvalidSpec", message))
    return Decision(status=status, events=events)


def _decide_valid(
    rollout: Rollout,
    status: RolloutStatus,
    observed: Observed,
    resolved: dict[str, list[ResolvedMetric]],
    commands: Sequence[Command],
    now: datetime,
    events: list[Event],
    routing: Routing | None,
) -> Decision:
    current = current_revision(rollout)
    status = _stable_from_cluster(rollout, status, observed, current, events)
    started = _follow_revision(status, current, now, events)
    in_progress = current != status.stable_revision
    analyses = Analyses(rollout, status, observed, resolved, current, now, events)
    analyses.fold()
    strategy = strategy_of(rollout).moves(rollout, status, observed, current, now, events, analyses, routing)
    if started:
        rollback.fast_track(rollout, status, strategy, events)
    stable_before = status.stable_revision

    def promote_command(command: Command) -> Event:
        passed = promote_analysis(status, now) if in_progress else None
        if passed is not None and command.value != "full":
            return passed  # one promote passes one gate: the analysis, not a pause or switch as well
        return strategy.promote(command)

    command_events = apply_commands(
        status,
        commands,
        in_progress=in_progress,
        now=now,
        promote=promote_command,
        pods=observed.pods,
        replicas=rollout.spec.replicas,
    )
    events += command_events
    # An ignored promote is said in the message too (until the next reconcile), not only in an Event.
    note = "; ".join(e.message for e in command_events if e.reason == "PromoteIgnored")
    _spec_pause(status, rollout.spec.paused, now, events)
    if status.aborted:
        analyses.stop("the rollout was aborted")
        status.fast_tracked = ""  # the fast-tracked attempt is over; a retry runs the steps
    outcome = strategy.run()
    rollback.remember(rollout, status, stable_before)
    if status.aborted:
        _drop_pending_promote(status, events, "the rollout was aborted")
    elif status.stable_revision == current:
        _drop_pending_promote(status, events, "the rollout completed with no pause or analysis left to pass")

    previous_counts = (status.updated_replicas, status.available_replicas)
    _count(status, rollout, observed.replicasets, current)
    # A measurement taken counts as progress: a long analysis is not a stuck rollout. One under
    # way (a Job running) does not: it would rewrite the status at every poll.
    if (
        outcome.progressed
        or any(not m.pending for m in observed.measurements)
        or (status.updated_replicas, status.available_replicas) != previous_counts
    ):
        status.last_progress_at = now
    # Idle ReplicaSets beyond the history limit; the stable and current revisions are never among them.
    actions = outcome.actions + _history_actions(
        rollout, observed.replicasets, {current, status.stable_revision or ""}
    )
    stable_rs = next((rs for rs in observed.replicasets if rs.revision == status.stable_revision), None)
    restart = advance_restart(
        status,
        stable_rs,
        observed.pods,
        in_progress=current != status.stable_revision,
        started_now=any(e.reason == "RestartStarted" for e in command_events),
        deadline_seconds=rollout.spec.progress_deadline_seconds,
        now=now,
        events=events,
    )
    actions += restart.actions
    # A restart takes pods down on purpose: that is no lack of progress toward a revision.
    deadline = _deadline(
        rollout, status, outcome.at_rest or restart.running, now, events, outcome.stuck_baseline
    )
    # A person reads how many pods the stable revision has, not the sum with one scaling down.
    stable_available = stable_rs.healthy if stable_rs is not None else status.available_replicas
    _phase(
        status,
        strategy,
        outcome,
        now,
        events,
        note=note,
        restarting=restart.note,
        stable_available=stable_available,
    )
    actions = pod_metadata_actions(rollout, status, current, observed.replicasets, actions)
    status.roles = role_labels(rollout, status, current)
    scaled, said = workload_actions(rollout, status, observed.replicasets, observed.workload)
    actions += scaled
    events += said
    requeue_after = _earliest(
        outcome.requeue_after, deadline, analyses.next_measurement_in(), restart.requeue_after
    )
    return Decision(
        status=status, actions=actions, events=events, requeue_after=requeue_after, commands_applied=True
    )


def _spec_pause(status: RolloutStatus, paused: bool, now: datetime, events: list[Event]) -> None:
    if paused:
        if add_pause(status, SPEC_PAUSE, now):
            events.append(Event("Normal", "RolloutPaused", "Paused by spec.paused"))
    elif remove_pause(status, SPEC_PAUSE):
        status.last_progress_at = now
        events.append(Event("Normal", "RolloutResumed", "spec.paused cleared"))


def _follow_revision(status: RolloutStatus, current: str, now: datetime, events: list[Event]) -> bool:
    """A new template starts its update from the beginning; the first revision is stable at once.
    True when a revision other than the stable one started."""
    started = False
    if status.current_revision != current:
        started = current != status.stable_revision
        status.fast_tracked = ""
        if status.current_revision is not None and current != status.stable_revision:
            events.append(
                Event("Normal", "NewRevision", f"New revision {current}; stable is {status.stable_revision}")
            )
        status.current_revision = current
        status.aborted, status.abort_reason = False, ""
        status.last_progress_at = now
        forget_progress(status)  # a canary starts again from step 1 with the newest revision
        for reason in (*pause_reasons(), ANALYSIS_PAUSE):
            remove_pause(status, reason)
        remove_condition(status, PROGRESSING)
        remove_condition(status, ANALYSIS)
        reset_runs(status)
        status.skip_analysis = False
        _drop_pending_promote(status, events, f"revision {current} replaced the one it was for")
    if status.stable_revision is None:
        # First deploy (no ReplicaSet yet): nothing to protect, so the first revision is stable at once.
        status.stable_revision = current
        events.append(
            Event("Normal", "FirstRevision", f"Revision {current} is the first: stable at once, no steps")
        )
    if status.last_progress_at is None:
        status.last_progress_at = now
    return started


def _stable_from_cluster(
    rollout: Rollout, status: RolloutStatus, observed: Observed, current: str, events: list[Event]
) -> RolloutStatus:
    """A status with no stable revision while ReplicaSets exist (lost, reset), or naming one users
    are not on, yields to the cluster: a fresh status on the revision users are on, from which
    the current revision starts again (recovery.py)."""
    if status.stable_revision is None and observed.replicasets:
        found = recover_stable(rollout, observed, current)
        why = "status has no stable revision (lost or reset)"
    else:
        found = disagreement(rollout, status, observed, current)
        if found is None:
            return status
        why = f"status says revision {status.stable_revision} is stable, but users are on {found.revision}"
    message = f"{why}: taking {found.revision} as stable ({found.evidence})"
    if found.revision != current:
        message += f"; {current} starts again from the beginning with traffic on stable, every analysis again"
        weight = max((r.traffic.weight for r in observed.routes if r and r.traffic), default=0)
        if weight:
            message += f" (the routes carried {weight}% to the canary)"
    events.append(Event("Warning", "StableRecovered", message))
    return RolloutStatus(
        observed_generation=status.observed_generation,
        stable_revision=found.revision,
        conditions=status.conditions,
    )


def _drop_pending_promote(status: RolloutStatus, events: list[Event], why: str) -> None:
    """A pending promote that can no longer take effect is said to be unused, never lost quietly."""
    if status.promote_pending:
        status.promote_pending = False
        events.append(
            Event("Normal", "PromoteUnused", f"The pending rollout.dev/promote was not used: {why}")
        )


def _earliest(*delays: float | None) -> float | None:
    return min((d for d in delays if d is not None), default=None)


def _history_actions(
    rollout: Rollout, replicasets: Sequence[ReplicaSetState], keep: set[str]
) -> list[Action]:
    """Old ReplicaSets at zero beyond `revisionHistoryLimit` are deleted, oldest first (and a
    canary's baseline at zero at once)."""
    idle = [
        rs
        for rs in oldest_first(replicasets)
        if rs.revision not in keep and rs.spec_replicas == 0 and rs.replicas == 0
    ]
    # A baseline is no revision to go back to: deleted once it is down, never kept as history.
    baselines = [DeleteReplicaSet(name=rs.name) for rs in idle if rs.baseline_of]
    idle = [rs for rs in idle if not rs.baseline_of]
    excess = len(idle) - rollout.spec.revision_history_limit
    return baselines + [DeleteReplicaSet(name=rs.name) for rs in idle[: max(0, excess)]]


def _count(
    status: RolloutStatus, rollout: Rollout, replicasets: Sequence[ReplicaSetState], current: str
) -> None:
    status.replicas = sum(rs.replicas for rs in replicasets)
    status.ready_replicas = sum(rs.ready for rs in replicasets)
    status.available_replicas = sum(rs.available for rs in replicasets)
    status.updated_replicas = sum(rs.replicas for rs in replicasets if rs.revision == current)
    status.selector = rollout.spec.selector.as_query()


def _deadline(
    rollout: Rollout,
    status: RolloutStatus,
    complete: bool,
    now: datetime,
    events: list[Event],
    stuck_baseline: str = "",
) -> float | None:
    """Degraded when no progress was made for progressDeadlineSeconds; abort if asked to, or when
    it is the canary's baseline that has no pods (a canary cannot be judged without it, and
    stable keeps the traffic)."""
    if complete or status.aborted or status.pause_conditions or status.last_progress_at is None:
        return None
    deadline = rollout.spec.progress_deadline_seconds
    waited = (now - status.last_progress_at).total_seconds()
    if waited < deadline:
        progressing = status.condition(PROGRESSING)
        if progressing is not None and progressing.reason == DEADLINE_EXCEEDED:
            remove_condition(status, PROGRESSING)  # progress resumed since the deadline passed
        return deadline - waited
    message = (
        f"Revision {status.current_revision} made no progress for {deadline}s "
        f"(progressDeadlineSeconds); {status.available_replicas}/{rollout.spec.replicas} available"
    )
    strategy = rollout.spec.strategy.chosen
    separation = strategy.separation()
    if separation is not None and separation.required and status.current_revision != status.stable_revision:
        message += (
            f"; {strategy.path}.antiAffinity is required: the new revision's pods may stay Pending "
            "when every node already runs a pod of the stable revision (a small or single-node "
            "cluster); use preferredDuringSchedulingIgnoredDuringExecution there"
        )
    if stuck_baseline:
        message += f"; the baseline is not available: {stuck_baseline}"
    if set_condition(status, PROGRESSING, "False", DEADLINE_EXCEEDED, message, now):
        events.append(Event("Warning", DEADLINE_EXCEEDED, message))
    if rollout.spec.progress_deadline_abort or stuck_baseline:
        status.aborted = True
        status.abort_reason = "progress deadline exceeded"
        if stuck_baseline:
            status.abort_reason += f": {stuck_baseline}"
        events.append(Event("Warning", "RolloutAborted", f"Aborted: {message}"))
        return 0.0
    return None


def _phase(
    status: RolloutStatus,
    strategy: Moves,
    outcome: Outcome,
    now: datetime,
    events: list[Event],
    *,
    note: str,
    restarting: str,
    stable_available: int,
) -> None:
    """The phase and message a person reads; the strategy says where its update stands (and a
    running restart, how far it got: Progressing until every pod is replaced)."""
    desired = strategy.replicas
    complete, waiting, blocked = outcome.at_rest, outcome.waiting, outcome.blocked
    progressing = status.condition(PROGRESSING)
    deadline_exceeded = progressing is not None and progressing.reason == DEADLINE_EXCEEDED
    if status.aborted:
        phase, message = (
            "Degraded",
            f"Aborted ({status.abort_reason}); stable revision {status.stable_revision}",
        )
        set_condition(status, PROGRESSING, "False", "RolloutAborted", message, now)
    elif blocked:
        phase, message = "Degraded", f"Stopped: {blocked}"
        set_condition(status, PROGRESSING, "False", "RouteNotAccepted", message, now)
    elif status.pause_conditions:
        reasons = ", ".join(p.reason for p in status.pause_conditions)
        phase, message = "Paused", f"Paused ({reasons}){strategy.where('Paused')}"
        analysis = status.condition(ANALYSIS)
        if status.paused_by(ANALYSIS_PAUSE) and analysis is not None:
            message += f"; {analysis.message}"
        elif strategy.waiting_when_paused(waiting):
            message += f"; {strategy.waiting_when_paused(waiting)}"
        if restarting:
            message += f"; {restarting}"
        set_condition(status, PROGRESSING, "Unknown", "RolloutPaused", message, now)
    elif restarting:
        phase = "Progressing"
        message = f"Revision {status.stable_revision}: {stable_available}/{desired} available; {restarting}"
        set_condition(status, PROGRESSING, "True", "RestartInProgress", message, now)
    elif complete and status.stable_revision == status.current_revision:
        phase, message = (
            "Healthy",
            f"Revision {status.stable_revision}: {stable_available}/{desired} available",
        )
        if waiting:
            message += f"; {waiting}"
        set_condition(status, PROGRESSING, "True", "RolloutCompleted", message, now)
    elif deadline_exceeded:
        assert progressing is not None
        phase, message = "Degraded", progressing.message
    else:
        phase = "Progressing"
        message = (
            f"Updating to {status.current_revision}: {status.updated_replicas}/{desired} updated, "
            f"{status.available_replicas} available"
        )
        message += strategy.where("Progressing")
        if waiting:
            message += f"; {waiting}"
        set_condition(status, PROGRESSING, "True", "ReplicaSetUpdated", message, now)
    available = "True" if status.available_replicas >= desired else "False"
    set_condition(
        status,
        AVAILABLE,
        available,
        "Available" if available == "True" else "NotAvailable",
        f"{status.available_replicas}/{desired} available",
        now,
    )
    if status.fast_tracked and phase in ("Progressing", "Paused"):
        message += f"; rollback fast-tracked: {status.fast_tracked}"
    if status.promote_pending:
        message += "; a rollout.dev/promote is pending: it passes the next pause or inconclusive analysis"
    if note:
        message += f"; {note}"
    if status.phase != phase:
        events.append(
            Event(
                "Warning" if phase == "Degraded" else "Normal",
                f"Phase{phase}",
                f"{status.phase or 'New'} -> {phase}: {message}",
            )
        )
    status.phase, status.message = phase, message
