"""Builders of test manifests shared by unit, integration and e2e tests."""

from __future__ import annotations

import copy
from typing import Any


def rollout_manifest(
    name: str = "web",
    namespace: str = "shop",
    *,
    replicas: int = 4,
    image: str = "web:1",
    strategy: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": copy.deepcopy(strategy)
            if strategy is not None
            else {"rolling": {"maxSurge": 1, "maxUnavailable": 1}},
            **spec,
        },
    }


def service_manifest(name: str, namespace: str = "shop", app: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def image_patch(image: str, name: str = "web") -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
        }
    }
