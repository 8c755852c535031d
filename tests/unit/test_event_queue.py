"""The Event queue (rollout/controller/event_queue.py): Events leave the reconcile's path, keep
their order per Rollout, bounded in flight and in backlog, and are never a reason to fail."""

import asyncio
import contextlib

import structlog.testing
from kubernetes.client.exceptions import ApiException

from rollout.controller.event_queue import EventQueue


class SlowEvents:
    """Takes each Event POST `delay` seconds; refuses reasons in `refused` with a 500."""

    def __init__(self, delay=0.01, refused=()):
        self.delay = delay
        self.refused = set(refused)
        self.posted: list[tuple[str, str]] = []
        self.now_in_flight = 0
        self.most_in_flight = 0

    async def create(self, resource, namespace, body):
        self.now_in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.now_in_flight)
        try:
            await asyncio.sleep(self.delay)
            if body["reason"] in self.refused:
                raise ApiException(status=500, reason="Internal Server Error")
            self.posted.append((body["involvedObject"], body["reason"]))
        finally:
            self.now_in_flight -= 1


def bodies(name, *reasons):
    return [{"involvedObject": name, "reason": reason} for reason in reasons]


async def test_put_returns_before_the_posts_and_each_rollouts_order_is_kept():
    kube = SlowEvents(delay=0.02)
    queue = EventQueue(kube, in_flight=4)
    reasons = [f"R{i}" for i in range(6)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for name in ("a", "b", "c"):
        await queue.put(("ns", name), bodies(name, *reasons))
    assert loop.time() - started < 0.01  # queued: the reconcile does not wait on the API server
    assert kube.posted == [] and len(queue) == 18
    assert await queue.drain(timeout=5)
    for name in ("a", "b", "c"):
        assert [r for n, r in kube.posted if n == name] == reasons
    # One at a time per Rollout, so three Rollouts post at most three at once.
    assert kube.most_in_flight == 3 and len(queue) == 0


async def test_at_most_in_flight_posts_run_at_once():
    kube = SlowEvents(delay=0.01)
    queue = EventQueue(kube, in_flight=5)
    for i in range(40):
        await queue.put(("ns", f"r{i}"), bodies(f"r{i}", "NewRevision", "PhaseProgressing"))
    assert await queue.drain(timeout=5)
    assert kube.most_in_flight == 5 and len(kube.posted) == 80


async def test_a_full_backlog_makes_the_reconcile_wait_and_loses_nothing():
    kube = SlowEvents(delay=0.02)
    queue = EventQueue(kube, in_flight=1, backlog=3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await queue.put(("ns", "a"), bodies("a", "E1", "E2", "E3", "E4", "E5"))
    # Two had to be posted to make room for the fourth and fifth.
    assert loop.time() - started >= 0.035
    assert await queue.drain(timeout=5)
    assert [r for _, r in kube.posted] == ["E1", "E2", "E3", "E4", "E5"]


async def test_a_refused_event_is_logged_and_the_next_ones_are_still_posted():
    kube = SlowEvents(delay=0.0, refused={"E2"})
    queue = EventQueue(kube)
    await queue.put(("ns", "a"), bodies("a", "E1", "E2", "E3"))
    assert await queue.drain(timeout=5)
    assert [r for _, r in kube.posted] == ["E1", "E3"]
    await queue.put(("ns", "a"), bodies("a", "E4"))  # the sender ended; a new one starts
    assert await queue.drain(timeout=5)
    assert [r for _, r in kube.posted] == ["E1", "E3", "E4"]


async def test_a_retried_post_that_finds_its_event_posted_is_not_a_warning():
    """A create retried after its answer was lost gets 409: the Event is there, nothing to tell."""

    class AnswerLost(SlowEvents):
        async def create(self, resource, namespace, body):
            await super().create(resource, namespace, body)
            if body["reason"] == "E1":
                raise ApiException(status=409, reason="AlreadyExists")

    kube = AnswerLost(delay=0.0, refused={"E2"})
    queue = EventQueue(kube)
    with structlog.testing.capture_logs() as logs:
        await queue.put(("ns", "a"), bodies("a", "E1", "E2"))
        assert await queue.drain(timeout=5)
    warned = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(entry["event"], entry["reason"]) for entry in warned] == [("event not posted", "E2")]
    assert [entry["event"] for entry in logs if entry["log_level"] == "debug"] == ["event already posted"]


async def test_each_sender_runs_inside_its_rollouts_context():
    """With --shards the context is the shard's fence and hand-over count (shards.py)."""
    inside: dict[tuple[str, str], int] = {}
    seen: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def around(key):
        inside[key] = inside.get(key, 0) + 1
        try:
            yield
        finally:
            inside[key] -= 1

    class Recording(SlowEvents):
        async def create(self, resource, namespace, body):
            seen.append((body["involvedObject"], inside.get(("ns", body["involvedObject"]), 0)))
            await super().create(resource, namespace, body)

    queue = EventQueue(Recording(delay=0.01), around=around)
    await queue.put(("ns", "a"), bodies("a", "E1", "E2"))
    await asyncio.sleep(0)
    assert inside[("ns", "a")] == 1  # a hand-over of its shard waits for these
    assert await queue.drain(timeout=5)
    assert seen == [("a", 1), ("a", 1)] and inside[("ns", "a")] == 0


async def test_close_gives_up_what_it_cannot_post_in_time():
    kube = SlowEvents(delay=10.0)
    queue = EventQueue(kube)
    await queue.put(("ns", "a"), bodies("a", "E1", "E2"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await queue.close(timeout=0.1)
    assert loop.time() - started < 1.0
    assert kube.posted == [] and await queue.drain(timeout=0)  # no sender left running
