"""Copies of API objects (JSON data: dicts, lists, strings, numbers, booleans, None), taken where
a cached or observed object is about to be handed out or edited (controller/cached.py, the
route bindings in traffic/)."""

from __future__ import annotations

import pickle
from typing import TypeVar

T = TypeVar("T")


def copied(obj: T) -> T:
    """A deep copy. A pickle round trip gives what copy.deepcopy gives for JSON data in about a
    sixth of the time (13 against 80 microseconds for a Rollout); at N = 200 canaries the caches'
    copies and the route edits' had been a tenth of the controller's CPU."""
    return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
