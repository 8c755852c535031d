"""/readyz follows the caches: a controller whose first lists fail (the API server answering 429
while it initialises, as a real one does right after a CRD is installed) becomes ready once a
later list succeeds, instead of staying unready for good (found by bench/memory.py on the real
control plane)."""

import asyncio
import threading

from rollout.controller.operator import run_controller
from rollout.kube import Kube, api_client_for
from rollout.sandbox.faults import FaultPlan


async def test_ready_once_the_caches_list_after_failing_at_first(cluster):
    cluster.api.faults = FaultPlan(throttle=1.0)  # every request of the controller: 429
    stop, ready = threading.Event(), threading.Event()

    def serve():
        asyncio.run(run_controller(Kube(api_client_for(cluster.url)), stop_flag=stop, ready_flag=ready))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        await asyncio.sleep(2.0)
        assert cluster.api.faults.injected["throttle"] > 0
        assert not ready.is_set()  # nothing listed: not ready
        cluster.api.faults = None
        assert await asyncio.to_thread(ready.wait, 40), "never ready after the lists succeeded"
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
