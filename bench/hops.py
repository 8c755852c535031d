"""Where a first step's time goes (bench/scale.py): each Rollout's way from its update to its route
at 20%, cut into hops at what the bench sees happen, each hop named by the component that works in
it.

The times are the bench's own (time.monotonic()): when it sent the update, when its watch saw the
new ReplicaSet and that ReplicaSet with a ready replica, when the stand-in kubelet saw the Pod and
when its Ready patch was answered (tests/cluster/kubelet.py), and when the bench saw the route at
20%. A watch sees a change a little after it happened, so a hop's time includes that lag; a hop
measured below zero (two watches' lags apart) counts as zero.
"""

from __future__ import annotations

import statistics

# (hop, the component working in it)
HOPS = (
    ("update -> ReplicaSet", "controller"),
    ("ReplicaSet -> Pod", "controller-manager"),
    ("Pod -> Ready", "kubelet"),
    ("Ready -> ReplicaSet ready", "controller-manager"),
    ("ReplicaSet ready -> 20%", "controller"),
)


def owner_of(child: str) -> str:
    """The owner's name of a ReplicaSet (`<rollout>-<revision>`) or a Pod (`<replicaset>-<suffix>`)."""
    return child.rsplit("-", 1)[0]


def first_step_hops(
    updated: dict[str, float],
    routed: dict[str, float],
    replicasets_seen: dict[str, float],
    replicasets_ready: dict[str, float],
    pods_seen: dict[str, float],
    pods_ready: dict[str, float],
    before: set[str],
) -> dict[str, list[float]]:
    """Each hop's seconds over the Rollouts whose every mark was seen. `updated` and `routed` are by
    Rollout (when the update was sent, when the route was seen at 20%), the others by object name;
    `before` holds the ReplicaSets that existed before the update."""
    new_replicaset = {owner_of(rs): rs for rs in replicasets_seen if rs not in before}
    first_pod: dict[str, str] = {}
    for pod, seen in pods_seen.items():
        rs = owner_of(pod)
        if rs not in before and (rs not in first_pod or seen < pods_seen[first_pod[rs]]):
            first_pod[rs] = pod
    hops: dict[str, list[float]] = {hop: [] for hop, _ in HOPS}
    for rollout, sent in updated.items():
        rs = new_replicaset.get(rollout)
        pod = first_pod.get(rs or "")
        if (
            rs is None
            or pod is None
            or rollout not in routed
            or rs not in replicasets_ready
            or pod not in pods_ready
        ):
            continue
        marks = [
            sent,
            replicasets_seen[rs],
            pods_seen[pod],
            pods_ready[pod],
            replicasets_ready[rs],
            routed[rollout],
        ]
        for (hop, _), start, end in zip(HOPS, marks, marks[1:], strict=False):
            hops[hop].append(max(0.0, end - start))
    return hops


def hop_rows(hops: dict[str, list[float]]) -> list[dict[str, object]]:
    """One row per hop: its component, p50 / p99 and mean seconds, and its share of the mean."""
    total = sum(statistics.mean(values) for values in hops.values() if values) or 1.0
    rows: list[dict[str, object]] = []
    for hop, component in HOPS:
        values = sorted(hops[hop])
        if not values:
            continue
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
        rows.append(
            {
                "hop": hop,
                "component": component,
                "p50 s": round(statistics.median(values), 2),
                "p99 s": round(p99, 2),
                "mean s": round(statistics.mean(values), 2),
                "share": f"{100 * statistics.mean(values) / total:.0f}%",
                "Rollouts": len(values),
            }
        )
    return rows
