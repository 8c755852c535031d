"""Validators from the real third-party CRD schemas in ../shared/thirdparty/crds (read, not copied)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when PyYAML has it

CRDS = Path(__file__).resolve().parents[1].parent / "shared" / "thirdparty" / "crds"
GATEWAY_FILES = {"HTTPRoute": "httproutes.yaml", "GRPCRoute": "grpcroutes.yaml", "TCPRoute": "tcproutes.yaml"}


@functools.cache
def gateway_validator(kind: str, version: str = "v1") -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((CRDS / "gateway-api-v1.6.1" / GATEWAY_FILES[kind]).read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


def schema_errors(kind: str, document: dict[str, Any]) -> list[str]:
    """Structural-schema errors (the CEL rules are checked by a real API server in tests/e2e)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in gateway_validator(kind).iter_errors(document)
    ]


@functools.cache
def istio_validator(kind: str = "VirtualService", version: str = "v1") -> jsonschema.Draft7Validator:
    documents = yaml.safe_load_all((CRDS / "istio" / "customresourcedefinitions.gen.yaml").read_text())
    crd = next(
        d
        for d in documents
        if d and d["spec"]["names"]["kind"] == kind and d["spec"]["group"] == "networking.istio.io"
    )
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


def istio_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in istio_validator().iter_errors(document)
    ]


@functools.cache
def _routing_crds() -> tuple[dict[str, Any], ...]:
    crds = [
        yaml.load((CRDS / "gateway-api-v1.6.1" / name).read_text(), Loader=LOADER)
        for name in GATEWAY_FILES.values()
    ]
    istio = yaml.load_all((CRDS / "istio" / "customresourcedefinitions.gen.yaml").read_text(), Loader=LOADER)
    wanted = {"VirtualService", "DestinationRule"}
    crds += [
        d
        for d in istio
        if d and d["spec"]["group"] == "networking.istio.io" and d["spec"]["names"]["kind"] in wanted
    ]
    return tuple(crds)


def routing_crds() -> list[dict[str, Any]]:
    """The Gateway API route CRDs and Istio's VirtualService and DestinationRule CRDs, as a cluster
    with Gateway API and Istio installed has them (parsed once; the emulator copies what it keeps)."""
    return list(_routing_crds())
