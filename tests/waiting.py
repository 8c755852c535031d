"""Polling for an expected state, shared by the integration and e2e suites."""

import asyncio
import time


async def wait_for(probe, timeout=20.0, interval=0.05, what="condition"):
    """Poll an async probe until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
