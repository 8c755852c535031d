"""Role metadata (engine/pod_metadata.py, workload/replicasets.py): which revision gets which
role's labels, the patch that moves pods between roles, and the labels refused because a
Service, the selector or the revision hash uses them."""

import json

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.api.spec import PodMetadata
from rollout.api.status import BlueGreenStatus, RolloutStatus
from rollout.engine.pod_metadata import (
    canonical,
    pod_metadata_actions,
    pod_metadata_errors,
    wanted_by_revision,
)
from rollout.engine.types import CreateReplicaSet, ReplicaSetState, SetPodMetadata
from rollout.workload.replicasets import POD_METADATA_ANNOTATION, build_replicaset, role_metadata_patch
from tests.manifests import rollout_manifest

CANARY = {"labels": {"role": "canary"}, "annotations": {"tier": "canary"}}
STABLE = {"labels": {"role": "stable"}}


def canary_rollout(**roles):
    strategy = {
        "canary": {"stableService": "web-stable", "canaryService": "web-canary", "steps": [], **roles}
    }
    return parse_rollout(rollout_manifest(strategy=strategy)).rollout


def blue_green_rollout(**roles):
    strategy = {"blueGreen": {"activeService": "web-active", "previewService": "web-preview", **roles}}
    return parse_rollout(rollout_manifest(strategy=strategy)).rollout


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
