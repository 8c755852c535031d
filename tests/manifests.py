"""Builders of test manifests (Rollouts and their strategies, Deployments, Services, routes)
shared by the unit, integration and e2e tests and by bench/."""

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


# The routing of most canaries here: the weights on the `app` rule of the HTTPRoute `web`.
HTTP_ROUTING = {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}}
# A canary Ingress beside the stable Ingress `web` (ingress_manifest()).
NGINX_ROUTING = {"nginx": {"stableIngress": "web"}}
# A canary's steps when a test names none: 20%, a pause until promoted, 50%, a 60 s pause.
CANARY_STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "60s"}}]


def canary_strategy(
    steps: list[dict[str, Any]] = CANARY_STEPS,
    routing: dict[str, Any] | None = HTTP_ROUTING,
    *,
    scale_down_delay: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """spec.strategy of a canary from web-stable to web-canary taking `steps`, with `routing` as
    its trafficRouting (None: none, a canary by replicas only); `scale_down_delay` sets both
    scaleDownDelaySeconds and abortScaleDownDelaySeconds (neither written when None); `extra`
    adds fields of spec.strategy.canary or overrides them."""
    canary: dict[str, Any] = {"stableService": "web-stable", "canaryService": "web-canary"}
    if routing is not None:
        canary["trafficRouting"] = copy.deepcopy(routing)
    canary["steps"] = steps
    if scale_down_delay is not None:
        canary["scaleDownDelaySeconds"] = canary["abortScaleDownDelaySeconds"] = scale_down_delay
    return {"canary": {**canary, **extra}}


def blue_green_strategy(*, scale_down_delay: int | None = None, **extra: Any) -> dict[str, Any]:
    """spec.strategy of a blue/green with the Services web-active and web-preview;
    `scale_down_delay` sets both scaleDownDelaySeconds and abortScaleDownDelaySeconds (neither
    written when None); `extra` adds fields of spec.strategy.blueGreen (trafficRouting,
    autoPromotionEnabled, ...) or overrides them (activeService, previewService)."""
    blue_green: dict[str, Any] = {"activeService": "web-active", "previewService": "web-preview"}
    if scale_down_delay is not None:
        blue_green["scaleDownDelaySeconds"] = blue_green["abortScaleDownDelaySeconds"] = scale_down_delay
    return {"blueGreen": {**blue_green, **extra}}


def deployment_manifest(
    name: str = "web", namespace: str = "shop", *, replicas: int = 5, image: str = "web:1"
) -> dict[str, Any]:
    """A Deployment as users have it before they move it to a Rollout."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def adopting_manifest(
    name: str = "web",
    namespace: str = "shop",
    *,
    deployment: str = "web",
    scale_down: str = "progressively",
    replicas: int = 5,
    strategy: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Rollout taking over the Deployment `deployment` (spec.workloadRef)."""
    manifest = rollout_manifest(name, namespace, replicas=replicas, strategy=strategy, **spec)
    del manifest["spec"]["template"], manifest["spec"]["selector"]
    manifest["spec"]["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
        "scaleDown": scale_down,
    }
    return manifest


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


def http_route_manifest(
    name: str = "web", namespace: str = "shop", backends: tuple[str, str] = ("web-stable", "web-canary")
) -> dict[str, Any]:
    """An HTTPRoute with a rule of its own (static) and one splitting the two `backends`
    (stable and canary, or active and preview)."""
    stable, canary = backends
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "generation": 3},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {
                    "name": "static",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "cdn", "port": 80}],
                },
                {
                    "name": "app",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "x-env", "value": "prod"}]},
                        }
                    ],
                    "timeouts": {"request": "10s"},
                    "backendRefs": [
                        {"name": stable, "port": 8080},
                        {"name": canary, "port": 8080, "weight": 0},
                    ],
                },
            ],
        },
    }


def virtual_service_manifest(name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    """A VirtualService with an http route of its own (admin), a primary http route and a tcp
    route on 5432, both splitting web-stable/web-canary."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": ["web.shop.svc.cluster.local"],
            "http": [
                {
                    "name": "admin",
                    "match": [{"uri": {"prefix": "/admin"}}],
                    "route": [{"destination": {"host": "admin"}}],
                },
                {
                    "name": "primary",
                    "match": [{"uri": {"prefix": "/"}}],
                    "timeout": "5s",
                    "retries": {"attempts": 3, "perTryTimeout": "2s"},
                    "corsPolicy": {"allowOrigins": [{"exact": "https://shop.example.com"}]},
                    "route": [
                        {"destination": {"host": "web-stable", "port": {"number": 80}}, "weight": 100},
                        {"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 0},
                    ],
                },
            ],
            "tcp": [
                {
                    "match": [{"port": 5432}],
                    "route": [
                        {
                            "destination": {
                                "host": "web-stable.shop.svc.cluster.local",
                                "port": {"number": 5432},
                            },
                            "weight": 100,
                        },
                        {
                            "destination": {
                                "host": "web-canary.shop.svc.cluster.local",
                                "port": {"number": 5432},
                            },
                            "weight": 0,
                        },
                    ],
                },
            ],
        },
    }


def ingress_manifest(name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    """A stable Ingress (networking.k8s.io/v1, class nginx) with TLS, a path to web-stable on two
    hosts and a path of its own (/admin -> admin) that a canary must not copy."""
    backend = {"service": {"name": "web-stable", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend},
                            {
                                "path": "/admin",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "admin", "port": {"name": "http"}}},
                            },
                        ]
                    },
                },
                {
                    "host": "www.shop.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                },
            ],
        },
    }


# --- GRPCRoute and TCPRoute (tests/e2e/test_routers_e2e.py) ----------------------------------


def grpc_route_manifest(name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    """A GRPCRoute with a rule of its own (health checks to `health`) and one (`app`) that sends
    the shop.Catalog service to web-stable and web-canary, with a header filter of the user's."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["grpc.shop.example.com"],
            "rules": [
                {
                    "name": "health",
                    "matches": [{"method": {"service": "grpc.health.v1.Health"}}],
                    "backendRefs": [{"name": "health", "port": 9090}],
                },
                {
                    "name": "app",
                    "matches": [{"method": {"service": "shop.Catalog"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "x-env", "value": "prod"}]},
                        }
                    ],
                    "backendRefs": [
                        {"name": "web-stable", "port": 9090},
                        {"name": "web-canary", "port": 9090, "weight": 0},
                    ],
                },
            ],
        },
    }


def tcp_route_manifest(name: str = "web", namespace: str = "shop") -> dict[str, Any]:
    """A TCPRoute (its one rule, as the CRD allows) splitting port 5432 between web-stable and
    web-canary."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "TCPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public", "sectionName": "postgres"}],
            "rules": [
                {
                    "name": "db",
                    "backendRefs": [
                        {"name": "web-stable", "port": 5432},
                        {"name": "web-canary", "port": 5432, "weight": 0},
                    ],
                }
            ],
        },
    }


def unresolved_route_status(generation: int) -> dict[str, Any]:
    """An HTTPRoute status as a gateway writes it at `generation`: accepted, its canary backend
    not found."""
    conditions = [
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for type_, status, reason, message in (
            ("Accepted", "True", "Accepted", ""),
            ("ResolvedRefs", "False", "BackendNotFound", "backend web-canary not found"),
        )
    ]
    return {
        "parents": [
            {"parentRef": {"name": "public"}, "controllerName": "example.com/gw", "conditions": conditions}
        ]
    }
