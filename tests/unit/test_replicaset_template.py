"""A ReplicaSet records the pod template as its Rollout had it, so going back to a revision
(`rollout undo`) writes the template that hashes to that revision, not the copy a real API server
has filled with defaults."""

import copy

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.engine.decide import current_revision
from rollout.workload.replicasets import build_replicaset, written_template
from tests.manifests import rollout_manifest


def parsed(manifest):
    rollout = parse_rollout(manifest).rollout
    assert rollout is not None
    return rollout


def test_the_written_template_survives_server_defaults_and_hashes_to_its_revision():
    rollout = parsed(rollout_manifest(image="web:1"))
    revision = current_revision(rollout)
    replicaset = build_replicaset(rollout, revision, 2)
    stored = copy.deepcopy(replicaset)  # as a real API server returns it: defaults filled in
    container = stored["spec"]["template"]["spec"]["containers"][0]
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    stored["spec"]["template"]["spec"].update(restartPolicy="Always", dnsPolicy="ClusterFirst")

    template = written_template(stored)

    assert REVISION_LABEL not in template["metadata"]["labels"]
    assert "imagePullPolicy" not in template["spec"]["containers"][0]
    manifest = rollout_manifest(image="web:2")
    manifest["spec"]["template"] = template  # what undo writes back
    assert current_revision(parsed(manifest)) == revision
    manifest["spec"]["template"] = stored["spec"]["template"]  # what it wrote before
    assert current_revision(parsed(manifest)) != revision


def test_a_replicaset_without_the_record_gives_its_own_template_less_the_revision_label():
    rollout = parsed(rollout_manifest(image="web:1"))
    replicaset = build_replicaset(rollout, current_revision(rollout), 1)
    del replicaset["metadata"]["annotations"]
    template = written_template(replicaset)
    assert template["spec"]["containers"][0]["image"] == "web:1"
    assert REVISION_LABEL not in template["metadata"]["labels"]
