"""Validators from the real third-party CRD schemas (read, not copied): the directory named by
ROLLOUT_THIRDPARTY_CRDS, else ../shared/thirdparty/crds beside the repository. A test that needs
them and finds neither is skipped, saying how to provide them; under CI (the `CI` environment
variable set) it fails instead, so a CI job never passes by skipping."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rollout.api.crds import openapi_validator
from tests.processes import missing_part

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when PyYAML has it

ENV = "ROLLOUT_THIRDPARTY_CRDS"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "thirdparty" / "crds"


def crds_dir() -> Path | None:
    """Where the third-party CRDs are (the directory holding gateway-api-v1.6.1/ and istio/)."""
    candidates = [Path(os.environ[ENV]).expanduser()] if os.environ.get(ENV) else []
    candidates.append(SHARED)
    return next((c for c in candidates if (c / "gateway-api-v1.6.1").is_dir()), None)


def require_crds() -> Path:
    """The third-party CRD directory; skips the calling test without it (fails under CI)."""
    found = crds_dir()
    if found is not None:
        return found
    message = (
        f"third-party CRDs (Gateway API v1.6.1, Istio) not found: set {ENV} to a directory holding "
        f"gateway-api-v1.6.1/ and istio/, or check out the shared directory at {SHARED}"
    )
    missing_part(message)


def _crd_file(*parts: str) -> Path:
    return require_crds().joinpath(*parts)


GATEWAY_FILES = {"HTTPRoute": "httproutes.yaml", "GRPCRoute": "grpcroutes.yaml", "TCPRoute": "tcproutes.yaml"}


@functools.cache
def _gateway_schema(kind: str, version: str) -> dict[str, Any]:
    crd = yaml.load(_crd_file("gateway-api-v1.6.1", GATEWAY_FILES[kind]).read_text(), Loader=LOADER)
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


def gateway_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The openAPIV3Schema of a Gateway API route CRD (a copy, free to change)."""
    return copy.deepcopy(_gateway_schema(kind, version))


@functools.cache
def gateway_validator(kind: str, version: str = "v1") -> jsonschema.Draft4Validator:
    return openapi_validator(_gateway_schema(kind, version))


def schema_errors(kind: str, document: dict[str, Any]) -> list[str]:
    """Structural-schema errors (the CEL rules are checked by a real API server in tests/e2e)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in gateway_validator(kind).iter_errors(document)
    ]


@functools.cache
def istio_validator(kind: str = "VirtualService", version: str = "v1") -> jsonschema.Draft4Validator:
    documents = yaml.safe_load_all(_crd_file("istio", "customresourcedefinitions.gen.yaml").read_text())
    crd = next(
        d
        for d in documents
        if d and d["spec"]["names"]["kind"] == kind and d["spec"]["group"] == "networking.istio.io"
    )
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    return openapi_validator(schema)


def istio_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in istio_validator().iter_errors(document)
    ]


@functools.cache
def _routing_crds() -> tuple[dict[str, Any], ...]:
    crds = [
        yaml.load(_crd_file("gateway-api-v1.6.1", name).read_text(), Loader=LOADER)
        for name in GATEWAY_FILES.values()
    ]
    istio = yaml.load_all(_crd_file("istio", "customresourcedefinitions.gen.yaml").read_text(), Loader=LOADER)
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
