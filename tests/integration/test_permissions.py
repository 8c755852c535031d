"""A controller started without a permission it needs (the chart's namespace-mode RBAC minus
`create replicasets`, enforced by the emulated API server): it logs one clear line naming the
missing permission, creates nothing, and the Rollout stays Progressing with nothing available
(never Healthy)."""

import asyncio
import json

from rollout.kube import REPLICASETS, ROLLOUTS
from tests.chart import Grant, controller_args, granted, grants, render
from tests.emulated import NS, status_of
from tests.manifests import rollout_manifest
from tests.processes import ControllerProcesses
from tests.waiting import wait_for

LINE = "permission missing: the controller may not create replicasets.apps in namespace shop"


async def test_missing_permission_is_named_once_and_nothing_moves(cluster, tmp_path):
    docs = render({"watchNamespaces": [NS], "replicaCount": 1, "leaderElection": {"enabled": False}})
    rules = grants(docs) - {Grant(NS, "apps", "replicasets", "create")}
    cluster.api.authorize = lambda call: granted(call, rules)
    processes = ControllerProcesses(
        str(cluster.kubeconfig(tmp_path / "kubeconfig")), NS, tmp_path, args=controller_args(docs)
    )
    processes.start()
    try:
        await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))

        async def refused_twice():
            return sum(1 for c in cluster.api.audit.denied if c.resource == "replicasets") >= 2

        await wait_for(refused_twice, timeout=20, what="the create refused, and tried again")
        await asyncio.sleep(0.5)
        lines = [json.loads(line) for line in processes.log_of(0).splitlines() if line.startswith("{")]
        named = [line for line in lines if line.get("event", "").startswith(LINE)]
        assert len(named) == 1, [line.get("event") for line in lines if line.get("level") == "error"]
        assert named[0]["level"] == "error" and "'apps'" in named[0]["event"]
        assert await cluster.kube.list(REPLICASETS, NS) == []
        status = await status_of(cluster)
        # A first deploy: its revision is the only one (stable by definition); it stays Progressing
        # with nothing available, never Healthy.
        assert status.get("phase") == "Progressing" and status.get("availableReplicas") == 0, status
        assert {c.verb for c in cluster.api.audit.denied} == {"create"}
    finally:
        processes.stop_all()
