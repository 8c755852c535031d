"""Role metadata (engine/pod_metadata.py, workload/replicasets.py): which revision gets which
role's labels, the patch that moves pods between roles, and the labels refused because a
Service, the selector or the revision hash uses them."""

import json
from datetime import UTC, datetime, timedelta

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.api.spec import PodMetadata
from rollout.api.status import BlueGreenStatus, RolloutStatus
from rollout.engine.decide import _deadline
from rollout.engine.pod_metadata import (
    canonical,
    pod_metadata_actions,
    pod_metadata_errors,
    separation_by_revision,
    wanted_by_revision,
)
from rollout.engine.types import CreateReplicaSet, ReplicaSetState, SetAntiAffinity, SetPodMetadata
from rollout.workload.replicasets import (
    POD_METADATA_ANNOTATION,
    build_replicaset,
    role_metadata_patch,
    with_anti_affinity,
)
from tests.manifests import blue_green_strategy, canary_strategy, rollout_manifest

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CANARY = {"labels": {"role": "canary"}, "annotations": {"tier": "canary"}}
STABLE = {"labels": {"role": "stable"}}


def canary_rollout(**roles):
    return parse_rollout(rollout_manifest(strategy=canary_strategy([], None, **roles))).rollout


def blue_green_rollout(**roles):
    return parse_rollout(rollout_manifest(strategy=blue_green_strategy(**roles))).rollout


def test_a_canary_labels_the_stable_and_the_canary_revision_by_role():
    rollout = canary_rollout(canaryMetadata=CANARY, stableMetadata=STABLE)
    wanted = wanted_by_revision(rollout, RolloutStatus(stable_revision="v1"), "v2")
    assert json.loads(wanted["v1"]) == {"labels": {"role": "stable"}, "annotations": {}}
    assert json.loads(wanted["v2"]) == {"labels": {"role": "canary"}, "annotations": {"tier": "canary"}}
    # Completed: the one revision is the stable one.
    done = wanted_by_revision(rollout, RolloutStatus(stable_revision="v2"), "v2")
    assert done == {"v2": wanted["v1"]}


def test_blue_green_labels_active_and_preview():
    rollout = blue_green_rollout(activeMetadata={"labels": {"role": "active"}}, previewMetadata=STABLE)
    status = RolloutStatus(stable_revision="v1", blue_green=BlueGreenStatus(active_revision="v1"))
    wanted = wanted_by_revision(rollout, status, "v2")
    assert set(wanted) == {"v1", "v2"} and '"active"' in wanted["v1"] and '"stable"' in wanted["v2"]


def test_actions_create_with_the_role_and_relabel_what_changed_role():
    rollout = canary_rollout(canaryMetadata=CANARY, stableMetadata=STABLE)
    status = RolloutStatus(stable_revision="v2")  # v2 just became stable; v1 no longer is
    replicasets = (
        ReplicaSetState(
            "web-v1", "v1", 0, pod_metadata=canonical(rollout.spec.strategy.canary.stable_metadata)
        ),
        ReplicaSetState(
            "web-v2", "v2", 2, pod_metadata=canonical(rollout.spec.strategy.canary.canary_metadata)
        ),
    )
    actions = pod_metadata_actions(rollout, status, "v3", replicasets, [CreateReplicaSet("v3", 1)])
    created, *relabelled = actions
    assert json.loads(created.pod_metadata)["labels"] == {"role": "canary"}
    assert {a.name: json.loads(a.wanted or "{}") for a in relabelled if isinstance(a, SetPodMetadata)} == {
        "web-v1": {},
        "web-v2": {"labels": {"role": "stable"}, "annotations": {}},
    }
    # Without role metadata nothing is decided for it.
    plain = canary_rollout()
    assert pod_metadata_actions(plain, status, "v2", replicasets[1:2], []) == [
        SetPodMetadata("web-v2", "v2", replicasets[1].pod_metadata, "")
    ]
    assert pod_metadata_actions(plain, status, "v2", (ReplicaSetState("web-v2", "v2", 2),), []) == []


def test_the_patch_removes_what_the_old_role_had():
    patch = role_metadata_patch(canonical_of(CANARY), canonical_of(STABLE))
    assert patch == {"labels": {"role": "stable"}, "annotations": {"tier": None}}
    assert role_metadata_patch(canonical_of(STABLE), canonical_of(STABLE)) == {}


def canonical_of(raw):
    return canonical(PodMetadata.model_validate(raw))


def test_a_new_replicaset_has_the_role_on_its_pods_but_not_in_its_revision():
    rollout = canary_rollout(canaryMetadata=CANARY)
    body = build_replicaset(rollout, "v2", 1, canonical_of(CANARY))
    template = body["spec"]["template"]["metadata"]
    assert template["labels"]["role"] == "canary" and template["annotations"] == {"tier": "canary"}
    assert (
        "role"
        not in json.loads(body["metadata"]["annotations"]["rollout.dev/template"])["metadata"]["labels"]
    )
    assert body["metadata"]["annotations"][POD_METADATA_ANNOTATION] == canonical_of(CANARY)
    assert body["spec"]["selector"]["matchLabels"] == {"app": "web", REVISION_LABEL: "v2"}


def test_labels_a_service_the_selector_or_the_revision_uses_are_refused():
    rollout = canary_rollout(
        canaryMetadata={"labels": {"app": "x", "track": "canary", REVISION_LABEL: "x", "role": "c"}}
    )
    errors = pod_metadata_errors(
        rollout, {"web-stable": {"app": "web", "track": "stable"}, "web-canary": None}
    )
    assert [(e.path, e.message) for e in errors] == [
        (
            "spec.strategy.canary.canaryMetadata.labels.app",
            "label 'app' is used by spec.selector; choose another",
        ),
        (
            f"spec.strategy.canary.canaryMetadata.labels.{REVISION_LABEL}",
            f"label '{REVISION_LABEL}' is used by the revision hash the controller sets; choose another",
        ),
        (
            "spec.strategy.canary.canaryMetadata.labels.track",
            "label 'track' is used by the selector of Service shop/web-stable; choose another",
        ),
    ]


PREFERRED = {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}}
REQUIRED = {"requiredDuringSchedulingIgnoredDuringExecution": {}}


def test_the_new_revision_is_kept_apart_from_the_stable_one_until_it_is_alone():
    rollout = canary_rollout(antiAffinity=PREFERRED)
    apart = separation_by_revision(rollout, RolloutStatus(stable_revision="v1"), "v2")
    assert {k: json.loads(v) for k, v in apart.items()} == {
        "v2": {"against": "v1", "required": False, "weight": 40}
    }
    assert separation_by_revision(rollout, RolloutStatus(stable_revision="v2"), "v2") == {}
    bg = blue_green_rollout(antiAffinity=REQUIRED)
    status = RolloutStatus(stable_revision="v1", blue_green=BlueGreenStatus(active_revision="v1"))
    assert json.loads(separation_by_revision(bg, status, "v2")["v2"])["required"] is True
    # Created with it; dropped from the template once the revision is alone.
    created, *_ = pod_metadata_actions(
        rollout, RolloutStatus(stable_revision="v1"), "v2", (), [CreateReplicaSet("v2", 1)]
    )
    assert json.loads(created.anti_affinity)["against"] == "v1"
    alone = (ReplicaSetState("web-v2", "v2", 2, anti_affinity=created.anti_affinity),)
    assert pod_metadata_actions(rollout, RolloutStatus(stable_revision="v2"), "v2", alone, []) == [
        SetAntiAffinity("web-v2", created.anti_affinity, "")
    ]


def test_the_term_goes_in_beside_the_users_own_and_comes_out_alone():
    users = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 5,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "zone",
                    },
                }
            ]
        },
    }
    wanted = json.dumps(
        {"against": "v1", "required": False, "weight": 40}, sort_keys=True, separators=(",", ":")
    )
    added = with_anti_affinity(users, "", wanted)
    terms = added["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert len(terms) == 2 and terms[1] == {
        "weight": 40,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": {REVISION_LABEL: "v1"}},
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    assert with_anti_affinity(added, wanted, "") == users
    assert with_anti_affinity(None, "", "") is None
    required = json.dumps(
        {"against": "v1", "required": True, "weight": 0}, sort_keys=True, separators=(",", ":")
    )
    assert with_anti_affinity(with_anti_affinity(None, "", required), required, "") is None


def test_a_required_anti_affinity_is_named_when_the_deadline_passes():
    rollout = canary_rollout(antiAffinity=REQUIRED)
    status = RolloutStatus(stable_revision="v1", current_revision="v2", last_progress_at=T0)
    events = []
    _deadline(rollout, status, False, T0 + timedelta(seconds=601), events)
    message = status.condition("Progressing").message
    assert "spec.strategy.canary.antiAffinity is required" in message and "Pending" in message, message
    assert events and events[0].reason == "ProgressDeadlineExceeded"
