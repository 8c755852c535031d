"""The Argo CD Lua scripts run in a real Lua 5.1 (lupa's `lua51`, the semantics of Argo CD's
gopher-lua), with objects converted as Argo CD converts them: JSON objects and arrays become
tables (arrays 1-indexed), null is nil, numbers are doubles; an empty table coming back takes the
shape the input had at that place, as Argo CD's own clean-up of returned objects does."""

from __future__ import annotations

from typing import Any

from lupa import lua51

from rollout.argocd.config import script


def runtime() -> Any:
    return lua51.LuaRuntime(unpack_returned_tuples=False, register_eval=False)


def to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def from_lua(value: Any, like: Any = None) -> Any:
    if lua51.lua_type(value) != "table":
        if isinstance(value, float) and value.is_integer() and not isinstance(like, float):
            return int(value)
        return value
    keys = list(value.keys())
    if not keys:
        return [] if isinstance(like, list) else {}
    if all(isinstance(k, int) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        hint = like if isinstance(like, list) else []
        return [
            from_lua(value[i], hint[i - 1] if i - 1 < len(hint) else None) for i in range(1, len(keys) + 1)
        ]
    hint = like if isinstance(like, dict) else {}
    return {str(k): from_lua(value[k], hint.get(str(k))) for k in keys}


def run(source: str, obj: dict[str, Any]) -> Any:
    """Run a script with `obj` as its global, as Argo CD does; the script's return value, as Python."""
    lua = runtime()
    lua.globals().obj = to_lua(lua, obj)
    return from_lua(lua.execute(source), obj)


def health(obj: dict[str, Any]) -> dict[str, str]:
    return dict(run(script("health.lua"), obj))


def discovery(obj: dict[str, Any]) -> dict[str, bool]:
    """Action name -> enabled."""
    return {name: not spec["disabled"] for name, spec in run(script("actions/discovery.lua"), obj).items()}


def action(name: str, obj: dict[str, Any]) -> dict[str, Any]:
    return dict(run(script(f"actions/{name}.lua"), obj))
