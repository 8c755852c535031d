"""Structural-schema defaulting and pruning, as kube-apiserver does them to custom resources.

The emulated API server (apiserver.py) runs both on every create and update of an object whose
CRD it serves, so the controller and the tests read back what a real cluster would store: a
Gateway API backendRef written without `weight` reads `weight: 1`, and a field the CRD does not
declare is gone. Pure functions on plain JSON values; no I/O.

The algorithms follow k8s.io/apiextensions-apiserver/pkg/apiserver/schema/{defaulting,pruning}:

- defaulting: at each object, every declared property that is missing (or null while not
  nullable) gets a deep copy of its `default`; then every present value is defaulted by its own
  schema (so a nested object's defaults apply only where that object exists, and a default
  value is itself defaulted). Arrays default each item. A null that is not nullable and has no
  default is dropped.
- pruning: at each object, a key that is neither a declared property nor covered by
  `additionalProperties` is removed, unless `x-kubernetes-preserve-unknown-fields: true` is
  set at that level. `apiVersion`, `kind` and `metadata` are kept at the root and in
  `x-kubernetes-embedded-resource` objects. Value-validation keywords (`allOf`, `anyOf`,
  `oneOf`, `not`) never declare fields in a structural schema, so they are ignored here."""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]
_RESOURCE_KEYS = ("apiVersion", "kind", "metadata")


def _sub(schema: Schema, key: str) -> Schema | None:
    """Schema of `key` inside an object schema: the property, else `additionalProperties`."""
    props = schema.get("properties") or {}
    if key in props:
        return props[key]  # type: ignore[no-any-return]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def apply_defaults(schema: Schema | None, obj: Any) -> Any:
    """Fill in `default:` values of `schema` in `obj` (in place); returns `obj`."""
    if schema is None:
        return obj
    if isinstance(obj, dict):
        for key, prop in (schema.get("properties") or {}).items():
            if key in obj and obj[key] is not None:
                continue
            if "default" in prop:
                if key not in obj or not prop.get("nullable", False):
                    obj[key] = copy.deepcopy(prop["default"])
            elif key in obj and not prop.get("nullable", False):
                del obj[key]  # kube's PruneNonNullableNullsWithoutDefaults
        for key, value in obj.items():
            apply_defaults(_sub(schema, key), value)
    elif isinstance(obj, list):
        for item in obj:
            apply_defaults(schema.get("items"), item)
    return obj


def prune(schema: Schema | None, obj: Any, *, root: bool = True) -> Any:
    """Remove from `obj` (in place) the fields `schema` does not declare; returns `obj`.

    `root` marks the top of a resource, whose apiVersion, kind and metadata are never pruned."""
    if schema is None:
        return obj
    if isinstance(obj, dict):
        keep_resource_keys = root or schema.get("x-kubernetes-embedded-resource", False)
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for key in list(obj):
            if keep_resource_keys and key in _RESOURCE_KEYS:
                continue
            sub = _sub(schema, key)
            if sub is not None:
                prune(sub, obj[key], root=False)
            elif not preserve:
                del obj[key]
    elif isinstance(obj, list):
        for item in obj:
            prune(schema.get("items"), item, root=False)
    return obj


def normalize(schema: Schema, obj: dict[str, Any]) -> dict[str, Any]:
    """What a real API server stores for `obj` under `schema`: pruned, then defaulted (in place)."""
    prune(schema, obj)
    apply_defaults(schema, obj)
    return obj
