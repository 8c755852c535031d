"""What `rollout sandbox` sets up around its Rollout before the controller sees it: the strategy
chosen with `--strategy` (for the embedded example), the Services the spec names, the HTTPRoutes
its Gateway API routing names, and the HTTPRoute CRD those need.

The HTTPRoute CRD is the real Gateway API one when it can be found (ROLLOUT_THIRDPARTY_CRDS when set,
else ../shared/thirdparty/crds beside the repository), so the controller's route writes are validated
by the real schema. Without it, a permissive CRD generated here (its schema keeps every field)
lets the sandbox run anyway, and the sandbox says so."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from rollout.api.rollout import parse_rollout
from rollout.engine.validation import referenced_services

GATEWAY_GROUP = "gateway.networking.k8s.io"
CRDS_ENV = "ROLLOUT_THIRDPARTY_CRDS"
GATEWAY_API_DIR = "gateway-api-v1.6.1"
STRATEGIES = ("canary", "rolling", "bluegreen")

ROLLING: dict[str, Any] = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
BLUE_GREEN: dict[str, Any] = {
    "blueGreen": {
        "activeService": "web-active",
        "previewService": "web-preview",
        "autoPromotionSeconds": 2,
        "scaleDownDelaySeconds": 1,
        "abortScaleDownDelaySeconds": 1,
    }
}


def with_strategy(manifest: dict[str, Any], strategy: str) -> dict[str, Any]:
    """The embedded example (a canary) with `strategy` (one of STRATEGIES) in its place."""
    if strategy == "canary":
        return manifest
    chosen = {"rolling": ROLLING, "bluegreen": BLUE_GREEN}[strategy]
    changed = copy.deepcopy(manifest)
    changed["spec"]["strategy"] = copy.deepcopy(chosen)
    return changed


def _thirdparty_dirs() -> list[Path]:
    if os.environ.get(CRDS_ENV):  # named explicitly: that directory only
        return [Path(os.environ[CRDS_ENV]).expanduser()]
    return [Path(__file__).resolve().parents[2].parent / "shared" / "thirdparty" / "crds"]


def httproute_crd() -> tuple[dict[str, Any], bool]:
    """(the HTTPRoute CRD, whether it is the real Gateway API one)."""
    for directory in _thirdparty_dirs():
        path = directory / GATEWAY_API_DIR / "httproutes.yaml"
        if path.is_file():
            return dict(yaml.safe_load(path.read_text())), True
    return permissive_crd("HTTPRoute", "httproutes", GATEWAY_GROUP, "v1"), False


def permissive_crd(kind: str, plural: str, group: str, version: str) -> dict[str, Any]:
    """A CRD serving `kind` with a schema that keeps whatever it is given."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def _pod_labels(manifest: dict[str, Any]) -> dict[str, str]:
    return dict(((manifest["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {})


def services(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """A Service for each one the Rollout names, selecting its pods."""
    parsed = parse_rollout(manifest)
    if parsed.rollout is None:
        return []  # the controller reports what is wrong with the spec
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": manifest["metadata"]["namespace"]},
            "spec": {"selector": _pod_labels(manifest), "ports": [{"port": 80, "targetPort": 8080}]},
        }
        for name in dict.fromkeys(referenced_services(parsed.rollout).values())
    ]


def route_services(manifest: dict[str, Any]) -> tuple[str, str]:
    strategy = manifest["spec"].get("strategy") or {}
    if "canary" in strategy:
        return strategy["canary"].get("stableService", ""), strategy["canary"].get("canaryService", "")
    blue_green = strategy.get("blueGreen") or {}
    return blue_green.get("activeService", ""), blue_green.get("previewService", "")


def httproutes(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """An HTTPRoute for each one the Rollout's Gateway API routing names, all traffic to stable."""
    strategy = manifest["spec"].get("strategy") or {}
    routing = ((strategy.get("canary") or strategy.get("blueGreen") or {}).get("trafficRouting")) or {}
    names = [ref.get("name") for ref in (routing.get("gatewayAPI") or {}).get("httpRoutes") or []]
    stable, preview = route_services(manifest)
    return [
        {
            "apiVersion": f"{GATEWAY_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": manifest["metadata"]["namespace"]},
            "spec": {
                "parentRefs": [{"name": "public"}],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [
                            {"name": stable, "port": 80, "weight": 100},
                            {"name": preview, "port": 80, "weight": 0},
                        ],
                    }
                ],
            },
        }
        for name in names
        if name
    ]


def route_weights(route: dict[str, Any]) -> str:
    """`web-stable=80 web-canary=20`: the weights of the route's backendRefs."""
    refs = [
        ref for rule in (route.get("spec") or {}).get("rules") or [] for ref in rule.get("backendRefs") or []
    ]
    return " ".join(f"{ref.get('name')}={ref.get('weight', 1)}" for ref in refs)
