"""Structural defaulting and pruning (rollout/sandbox/structural.py) against the real Gateway API
HTTPRoute CRD and the project's own Rollout CRD, as kube-apiserver applies them on write."""

import copy

from rollout.api.crds import rollout_crd
from rollout.sandbox.structural import apply_defaults, normalize, prune
from tests.manifests import http_route_manifest, rollout_manifest
from tests.thirdparty import gateway_schema, schema_errors


def rollout_schema():
    return copy.deepcopy(rollout_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_httproute_defaults_fill_weights_kinds_groups_and_paths():
    route = http_route_manifest()
    route["spec"]["rules"].append({"name": "bare", "backendRefs": [{"name": "other", "port": 80}]})
    route["spec"]["rules"].append(
        {"name": "header-only", "matches": [{"headers": [{"name": "x", "value": "1"}]}]}
    )
    out = apply_defaults(gateway_schema("HTTPRoute"), copy.deepcopy(route))
    assert out["spec"]["parentRefs"] == [
        {"name": "public", "group": "gateway.networking.k8s.io", "kind": "Gateway"}
    ]
    app = out["spec"]["rules"][1]
    assert app["backendRefs"] == [
        {"name": "web-stable", "port": 8080, "weight": 1, "group": "", "kind": "Service"},
        {"name": "web-canary", "port": 8080, "weight": 0, "group": "", "kind": "Service"},
    ]
    assert app["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]  # as written
    bare = out["spec"]["rules"][2]
    assert bare["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]  # the rule-level default
    header_only = out["spec"]["rules"][3]
    assert header_only["matches"] == [
        {
            "headers": [{"name": "x", "value": "1", "type": "Exact"}],
            "path": {"type": "PathPrefix", "value": "/"},
        }
    ]
    assert schema_errors("HTTPRoute", out) == []


def test_httproute_nested_defaults_only_where_the_parent_exists():
    route = http_route_manifest()
    out = apply_defaults(gateway_schema("HTTPRoute"), copy.deepcopy(route))
    # The filter has no requestMirror/requestRedirect/cors: none of their defaults appear.
    assert out["spec"]["rules"][1]["filters"] == route["spec"]["rules"][1]["filters"]
    assert "status" not in out
    mirror = {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "web-canary"}, "fraction": {"numerator": 5}},
    }
    route["spec"]["rules"][1]["filters"] = [mirror]
    out = apply_defaults(gateway_schema("HTTPRoute"), route)
    assert out["spec"]["rules"][1]["filters"][0]["requestMirror"] == {
        "backendRef": {"name": "web-canary", "group": "", "kind": "Service"},
        "fraction": {"numerator": 5, "denominator": 100},
    }


def test_httproute_without_rules_gets_the_default_rule_defaulted_in_turn():
    out = apply_defaults(gateway_schema("HTTPRoute"), {"spec": {"parentRefs": [{"name": "gw"}]}})
    assert out["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]


def test_defaults_leave_explicit_values_and_are_idempotent():
    route = apply_defaults(gateway_schema("HTTPRoute"), http_route_manifest())
    route["spec"]["rules"][1]["backendRefs"][0]["weight"] = 7
    again = apply_defaults(gateway_schema("HTTPRoute"), copy.deepcopy(route))
    assert again == route


def test_null_takes_the_default_or_goes_when_there_is_none():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 1},
            "b": {"type": "string"},
            "c": {"type": "string", "nullable": True},
            "d": {"type": "integer", "nullable": True, "default": 2},
        },
    }
    assert apply_defaults(schema, {"a": None, "b": None, "c": None, "d": None}) == {
        "a": 1,
        "c": None,
        "d": None,
    }
    assert apply_defaults(schema, {}) == {"a": 1, "d": 2}


def test_httproute_prune_drops_undeclared_fields_keeps_metadata():
    route = http_route_manifest()
    route["metadata"]["whatever"] = {"kept": True}
    route["spec"]["extra"] = 1
    route["spec"]["rules"][1]["backendRefs"][0]["colour"] = "blue"
    route["status"] = {
        "parents": [{"parentRef": {"name": "public"}, "controllerName": "x", "conditions": [], "junk": 1}]
    }
    out = prune(gateway_schema("HTTPRoute"), copy.deepcopy(route))
    assert out["metadata"]["whatever"] == {"kept": True}
    assert "extra" not in out["spec"]
    assert "colour" not in out["spec"]["rules"][1]["backendRefs"][0]
    assert "junk" not in out["status"]["parents"][0]
    assert out["apiVersion"] == route["apiVersion"] and out["kind"] == "HTTPRoute"
    written = http_route_manifest()
    assert prune(gateway_schema("HTTPRoute"), copy.deepcopy(written)) == written


def test_rollout_prune_keeps_the_pod_spec_and_drops_unknown_steps_fields():
    rollout = rollout_manifest(
        strategy={"canary": {"steps": [{"setWeight": 10}, {"fancyNewStep": {"x": 1}}], "colour": "red"}}
    )
    rollout["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    rollout["spec"]["template"]["metadata"]["name"] = "not-declared"
    rollout["status"] = {"phase": "Healthy", "canary": {"weight": 0, "bogus": 1}, "kopf": {"progress": {}}}
    out = normalize(rollout_schema(), copy.deepcopy(rollout))
    assert out["spec"]["template"]["spec"] == rollout["spec"]["template"]["spec"]  # preserve-unknown-fields
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
    assert out["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 10}, {}]  # as the design says
    assert "colour" not in out["spec"]["strategy"]["canary"]
    assert out["status"] == {"phase": "Healthy", "canary": {"weight": 0}}
    assert out["metadata"] == rollout["metadata"]


def test_embedded_resources_keep_their_type_and_metadata():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "obj": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    }
                },
            }
        },
    }
    doc = {
        "spec": {
            "obj": {
                "apiVersion": "v1",
                "kind": "X",
                "metadata": {"name": "n"},
                "spec": {"a": "1", "b": 2},
                "z": 0,
            }
        }
    }
    assert prune(schema, doc) == {
        "spec": {"obj": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}, "spec": {"a": "1"}}}
    }


def test_additional_properties_schema_is_followed():
    schema = {
        "type": "object",
        "properties": {
            "m": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"v": {"type": "integer", "default": 3}},
                },
            }
        },
    }
    assert normalize(schema, {"m": {"k": {"junk": 1}}}) == {"m": {"k": {"v": 3}}}
