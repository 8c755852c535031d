"""The commands-taken annotation: which taken commands are still to apply, and a hand-edited value."""

import json

from rollout.controller.command_annotations import (
    TAKEN_ANNOTATION,
    applied_taken_removal,
    pending_commands,
    taken_id,
    taking_patch,
    unapplied_commands,
)
from rollout.engine.types import Command


def rollout(annotations, status=None):
    return {
        "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7", "annotations": annotations},
        "status": status,
    }


def taken(id_, *commands):
    return json.dumps({"id": id_, "commands": [list(c) for c in commands]})


def test_taking_removes_the_commands_and_records_them_with_the_unapplied_ones_under_a_new_id():
    raw = rollout({"rollout.dev/promote": "full", "team": "checkout"})
    patch, new_id = taking_patch(raw, pending_commands(raw), [Command("pause")])
    annotations = patch["metadata"]["annotations"]
    assert patch["metadata"]["resourceVersion"] == "7"
    assert annotations["rollout.dev/promote"] is None and "team" not in annotations
    assert json.loads(annotations[TAKEN_ANNOTATION]) == {
        "id": new_id,
        "commands": [["pause", ""], ["promote", "full"]],
    }
    _, other_id = taking_patch(raw, pending_commands(raw), [])
    assert other_id != new_id


def test_taken_commands_are_to_apply_until_the_status_holds_their_id():
    annotations = {TAKEN_ANNOTATION: taken("a1", ("abort", ""), ("promote", "step"))}
    assert unapplied_commands(rollout(annotations, {"commandsApplied": "older"})) == [
        Command("abort"),
        Command("promote", "step"),
    ]
    assert unapplied_commands(rollout(annotations, None)) == [Command("abort"), Command("promote", "step")]
    assert unapplied_commands(rollout(annotations, {"commandsApplied": "a1"})) == []
    assert taken_id(rollout(annotations)) == "a1"
    assert unapplied_commands(rollout({})) == [] and taken_id(rollout({})) == ""


def test_a_hand_edited_value_is_ignored_not_applied():
    for value in ("not json", taken("a1", ("launch", "")), json.dumps({"commands": []})):
        raw = rollout({TAKEN_ANNOTATION: value})
        assert unapplied_commands(raw) == [] and taken_id(raw) == ""


def test_the_record_comes_off_only_once_the_status_holds_its_id():
    annotations = {TAKEN_ANNOTATION: taken("a1", ("pause", ""))}
    assert applied_taken_removal(rollout(annotations, {"commandsApplied": "a1"})) == {
        "metadata": {"resourceVersion": "7", "annotations": {TAKEN_ANNOTATION: None}}
    }
    assert applied_taken_removal(rollout(annotations, {"commandsApplied": "a0"})) is None
    assert applied_taken_removal(rollout(annotations, None)) is None
    assert applied_taken_removal(rollout({}, {"commandsApplied": "a1"})) is None
