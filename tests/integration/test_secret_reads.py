"""How the controller reads Secrets (controller/cached.py), against the emulated API server: a GET
of each named Secret, reused for SECRET_TTL seconds by a burst of reconciles, read again after it;
a missing Secret is never remembered; a fresh read (after a conflict, or for a key missing from
the kept copy) goes to the server; nothing lists or watches Secrets."""

from rollout.controller.cache import Caches
from rollout.controller.cached import SECRET_TTL, CachedKube
from rollout.controller.operator import cached_kinds
from rollout.kube import SECRETS, load_api_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def secret_gets(cluster):
    """The paths of the GETs of Secrets the emulated API server served (reads, lists, watches)."""
    return [
        r.url.path
        for r in cluster.api.requests_since(0)
        if r.resource is not None and r.resource.plural == "secrets" and r.method.value == "GET"
    ]


async def test_a_secret_is_read_once_per_ttl_and_a_missing_one_every_time(cluster, tmp_path):
    assert SECRETS not in {kind.resource for kind in cached_kinds()}
    clock = Clock()
    api = load_api_client(str(cluster.kubeconfig(tmp_path / "kubeconfig")))
    kube = CachedKube(api, Caches(lambda: api, []), clock=clock)
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth", "namespace": "shop"}}
    await cluster.kube.create(SECRETS, "shop", {**body, "data": {"token": "b25l"}})
    before = len(secret_gets(cluster))

    for _ in range(5):  # a burst of reconciles
        assert (await kube.get(SECRETS, "shop", "auth"))["data"] == {"token": "b25l"}
    assert len(secret_gets(cluster)) - before == 1

    await cluster.kube.patch(SECRETS, "shop", "auth", {"data": {"token": "dHdv"}})
    assert (await kube.get(SECRETS, "shop", "auth"))["data"] == {"token": "b25l"}  # within the TTL
    assert (await kube.get_fresh(SECRETS, "shop", "auth"))["data"] == {"token": "dHdv"}
    clock.now += SECRET_TTL + 0.1
    await cluster.kube.patch(SECRETS, "shop", "auth", {"data": {"token": "dGhyZWU="}})
    assert (await kube.get(SECRETS, "shop", "auth"))["data"] == {"token": "dGhyZWU="}  # TTL over

    for _ in range(3):
        assert await kube.get(SECRETS, "shop", "missing") is None
    gets = secret_gets(cluster)
    assert sum(1 for path in gets if path.endswith("/secrets/missing")) == 3  # never kept as missing
    assert all(not path.endswith("/secrets") for path in gets)  # no list, no watch
