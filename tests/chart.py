"""The Helm chart as tests use it: `helm` from ../shared/tools/k8s-tools.sh (skipped without it,
failed under CI), `render` (helm template), the controller's arguments from the rendered
Deployment, and the rendered RBAC as a set of grants to check API calls against."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollout.sandbox.audit import ApiCall
from tests.processes import missing_part

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "rollout-controller"
TOOLS = REPO.parent / "shared" / "tools" / "k8s-tools.sh"
RELEASE, RELEASE_NAMESPACE = "rollout", "rollout-system"


@functools.cache
def _tool_or_reason(name: str) -> tuple[str | None, str]:
    """helm or kubectl: $HELM / $KUBECTL, else the copy ../shared/tools/k8s-tools.sh installs."""
    if os.environ.get(name.upper()):
        return os.environ[name.upper()], ""
    if not TOOLS.exists():
        return None, f"{name} not found: set {name.upper()}, or provide {TOOLS}"
    done = subprocess.run(["bash", str(TOOLS)], capture_output=True, text=True, timeout=600)
    tool = Path(done.stdout.strip().splitlines()[-1]) / name if done.returncode == 0 and done.stdout else None
    if tool is None or not tool.exists():
        return None, f"{TOOLS} failed: {done.stderr.strip()[-300:]}"
    return str(tool), ""


def _tool(name: str) -> str:
    """The binary; skips the test without it (fails under CI: CI never passes by skipping)."""
    found, reason = _tool_or_reason(name)
    if found is None:
        missing_part(reason)
    return found


def helm() -> str:
    return _tool("helm")


def kubectl() -> str:
    return _tool("kubectl")


def run_helm(*args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    command = [helm(), *args]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        if values:
            yaml.safe_dump(values, file)
            file.flush()
            command += ["-f", file.name]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def render(values: dict[str, Any] | None = None, namespace: str = RELEASE_NAMESPACE) -> list[dict[str, Any]]:
    """`helm template` of the chart: the rendered objects (CRDs included, as install applies them)."""
    done = run_helm("template", RELEASE, str(CHART), "-n", namespace, "--include-crds", values=values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def controller_args(docs: list[dict[str, Any]]) -> list[str]:
    """The `rollout` arguments of the rendered Deployment's controller container."""
    (deployment,) = find(docs, "Deployment")
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "controller"
    ]
    return [str(a) for a in container["args"]]


@dataclass(frozen=True, order=True)
class Grant:
    namespace: str  # "" for a ClusterRole's (every namespace, and cluster-wide requests)
    group: str
    resource: str  # with the subresource: rollouts/status
    verb: str


def grants(docs: list[dict[str, Any]], service_account: str = RELEASE + "-rollout-controller") -> set[Grant]:
    """Every (namespace, apiGroup, resource, verb) the chart grants to the controller's
    ServiceAccount, through RoleBindings and ClusterRoleBindings (wildcards are refused)."""
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    found: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        role_ns = namespace if ref["kind"] == "Role" else ""
        role = roles[(ref["kind"], role_ns, ref["name"])]
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"wildcard in {ref['name']}: {rule}"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add(Grant(namespace, group, resource, verb))
    return found


def granted(call: ApiCall, rules: set[Grant]) -> bool:
    """As the API server's RBAC decides: a ClusterRole's rule allows the call anywhere; a Role's
    only in its namespace (so never a cluster-wide list)."""
    wanted = {Grant("", call.group, call.rbac_resource, call.verb)}
    if call.namespace:
        wanted.add(Grant(call.namespace, call.group, call.rbac_resource, call.verb))
    return bool(wanted & rules)


def triples(items: set[Grant]) -> set[tuple[str, str, str]]:
    return {(g.group, g.resource, g.verb) for g in items}
