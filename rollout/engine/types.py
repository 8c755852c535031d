"""What the engine reads (observed state, commands) and what it returns (actions, events, status)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from rollout.analysis.resolve import ResolvedAnalyses, TemplateLookup
from rollout.analysis.runs import QueryResult
from rollout.api.spec import LabelSelector
from rollout.api.status import RolloutStatus
from rollout.traffic.base import ObservedPins, ObservedRoute, TrafficState

CommandKind = Literal["promote", "abort", "retry", "pause", "resume", "restart"]


@dataclass(frozen=True)
class ReplicaSetState:
    """One ReplicaSet of the Rollout, as the cluster reports it."""

    name: str
    revision: str
    spec_replicas: int
    replicas: int = 0
    ready: int = 0
    available: int = 0
    created_at: str = ""
    # The role's pod metadata last put on its template and pods (canonical JSON; "" for none).
    pod_metadata: str = ""
    # The anti-affinity to another revision's pods in its template (canonical JSON; "" for none).
    anti_affinity: str = ""
    # A canary's baseline: the stable revision whose template it runs ("" for any other).
    baseline_of: str = ""

    @property
    def healthy(self) -> int:
        """Available pods the ReplicaSet still wants (a scale-down leaves a few extra briefly)."""
        return min(self.available, self.spec_replicas)


@dataclass(frozen=True)
class PodState:
    """One pod of the stable revision, as the cluster reports it (read only while a restart runs)."""

    name: str
    started_at: datetime  # metadata.creationTimestamp
    ready: bool
    terminating: bool = False  # metadata.deletionTimestamp is set


@dataclass(frozen=True)
class WorkloadState:
    """The Deployment of spec.workloadRef, as the cluster reports it: the pod template and
    selector the Rollout takes from it, and its own scale."""

    name: str
    template: Mapping[str, object]
    selector: Mapping[str, object]
    spec_replicas: int
    available: int = 0


@dataclass(frozen=True)
class Claims:
    """What one Rollout manages in its namespace, for conflicts between Rollouts: the Services it
    pins, the route rules it writes (`(plural, route, what)` where `what` names the rule, the
    Istio route or port, or the backend pair when no rule is named), its selector and template
    labels. Two Rollouts must not share any of them; the younger one is InvalidSpec."""

    name: str
    created_at: str = ""  # metadata.creationTimestamp (RFC 3339 UTC sorts as a string)
    services: frozenset[str] = frozenset()
    rules: frozenset[tuple[str, str, str]] = frozenset()
    selector: LabelSelector | None = None
    template_labels: Mapping[str, str] = field(default_factory=dict)
    workload: str = ""  # the Deployment of spec.workloadRef

    def older_than(self, other: Claims) -> bool:
        """Creation time decides which of two Rollouts keeps a claim; ties go by name."""
        return (self.created_at, self.name) < (other.created_at, other.name)


@dataclass(frozen=True)
class Observed:
    """The world around one Rollout at the start of a reconcile."""

    replicasets: tuple[ReplicaSetState, ...] = ()
    # Services the spec refers to: name -> selector, or None when the Service does not exist.
    services: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    # Routes of the strategy's trafficRouting, in spec order; None when the route is missing.
    routes: tuple[ObservedRoute | None, ...] = ()
    # Objects that select pods by revision besides the Services (DestinationRule subsets), in
    # spec order; None when the object is missing.
    pins: tuple[ObservedPins | None, ...] = ()
    # Analysis templates the spec refers to, as found (a spec, why it cannot be read, or None).
    analysis_templates: TemplateLookup = field(default_factory=dict)
    # Those analyses resolved once for this reconcile by the observer, which measured with them
    # (resolve_analyses); None: not resolved yet, decide() resolves them.
    analyses: ResolvedAnalyses | None = None
    # Measurements taken for this reconcile, for runs in status that were due.
    measurements: tuple[QueryResult, ...] = ()
    # Secrets named by analysis headers (valueFrom.secretKeyRef): name -> the keys it holds (never
    # the values), or None when the Secret does not exist.
    secrets: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    # Secrets the controller may not read (403): name -> the grant it lacks.
    unreadable_secrets: Mapping[str, str] = field(default_factory=dict)
    # What the other Rollouts of the namespace claim (see Claims).
    others: tuple[Claims, ...] = ()
    # The Deployment of spec.workloadRef; None when there is none (or it does not exist).
    workload: WorkloadState | None = None
    # The stable revision's pods, read only while a restart runs (rollout.dev/restart); None: not read.
    pods: tuple[PodState, ...] | None = None
    # The API server's words when it refused the current revision's ReplicaSet as invalid (a pod
    # template the CRD's schema lets through, such as `memory: invalid`); None: not refused.
    refused_template: str | None = None


@dataclass(frozen=True)
class Command:
    """A command annotation (`rollout.dev/<kind>: <value>`), already removed from the Rollout."""

    kind: CommandKind
    value: str = ""


@dataclass(frozen=True)
class CreateReplicaSet:
    revision: str
    replicas: int
    pod_metadata: str = ""  # its role's labels and annotations (canonical JSON), on every pod
    anti_affinity: str = ""  # its pods kept off another revision's nodes (canonical JSON)


@dataclass(frozen=True)
class CreateBaseline:
    """Create the canary's baseline: the template of the stable revision's ReplicaSet (named
    `source`) plus the baseline label (so a revision hash of its own), at `replicas`."""

    stable: str
    source: str
    replicas: int


@dataclass(frozen=True)
class SetPodMetadata:
    """Bring a ReplicaSet's template and its existing pods from the role metadata `applied` to
    `wanted` (canonical JSON of {labels, annotations}): keys no longer wanted are removed, and no
    pod is restarted."""

    name: str
    revision: str
    applied: str
    wanted: str


@dataclass(frozen=True)
class SetAntiAffinity:
    """Bring a ReplicaSet template's anti-affinity to another revision from `applied` to `wanted`
    (canonical JSON of {against, required, weight}; "" for none). Running pods keep theirs: the
    scheduler reads it only when placing a pod."""

    name: str
    applied: str
    wanted: str


@dataclass(frozen=True)
class ScaleReplicaSet:
    name: str
    replicas: int


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str


@dataclass(frozen=True)
class PinService:
    """Merge `rollout.dev/revision: <revision>` into the Service's selector."""

    service: str
    revision: str


@dataclass(frozen=True)
class PinRevision:
    """Select `revision` for `role` (stable or canary) in every object that the routers pin by
    revision (the Istio router: the role's DestinationRule subset)."""

    role: str
    revision: str


@dataclass(frozen=True)
class SetTraffic:
    """Write this traffic state to every route of the Rollout (each only if it differs)."""

    state: TrafficState


@dataclass(frozen=True)
class ScaleDeployment:
    """Set the spec.replicas of the Deployment the Rollout took over (spec.workloadRef)."""

    name: str
    replicas: int


@dataclass(frozen=True)
class EvictPod:
    """Evict the pod through the Eviction API (PodDisruptionBudgets honoured; a 429 waits)."""

    name: str


Action = (
    CreateReplicaSet
    | CreateBaseline
    | SetPodMetadata
    | SetAntiAffinity
    | ScaleReplicaSet
    | DeleteReplicaSet
    | PinService
    | PinRevision
    | SetTraffic
    | ScaleDeployment
    | EvictPod
)


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Decision:
    status: RolloutStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Seconds until the engine wants to look again even if nothing changes (a deadline, a pause).
    requeue_after: float | None = None
    # The stored status could not be read: write status.conditions only, nothing else.
    conditions_only: bool = False
    # The commands given were applied (a valid spec and a readable status); otherwise they wait
    # for a decision that can apply them (controller/command_annotations.py).
    commands_applied: bool = False
