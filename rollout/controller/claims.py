"""What the other Rollouts of a namespace claim (Services, route rules, the workload, selectors),
read while observing so that validation can find two Rollouts managing the same thing.

The claims are read off the cached Rollouts and kept per (uid, generation): a spec is parsed
once per change, not once per reconcile of every other Rollout of its namespace. `ClaimsIndex`,
fed by the Rollout cache's changes, files each Rollout's claims under what it claims, so a
reconcile looks up only the Rollouts that share something with it: its cost does not grow with
the number of Rollouts in the namespace (a walk over all of them did, O(N^2) per wave)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rollout.api.rollout import parse_rollout
from rollout.engine.types import Claims
from rollout.engine.validation import claims_of, selectors_overlap
from rollout.kube import ROLLOUTS, Kube

_MEMO_LIMIT = 20_000
_memo: dict[tuple[str, str, int], Claims | None] = {}


def claims_for(raw: dict[str, Any] | None) -> Claims | None:
    """The claims of one Rollout object; None when its spec cannot be read (it claims nothing:
    it moves nothing either)."""
    if raw is None:
        return None
    meta = raw.get("metadata") or {}
    key = (str(meta.get("uid", "")), str(meta.get("name", "")), int(meta.get("generation") or 0))
    if key in _memo:
        return _memo[key]
    rollout = parse_rollout(raw).rollout
    found = None if rollout is None else claims_of(rollout)
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[key] = found
    return found


def overlapping(one: Claims, other: Claims) -> bool:
    """Whether two Rollouts claim anything in common (a change to one concerns the other)."""
    return (
        bool(one.services & other.services)
        or bool(one.rules & other.rules)
        or bool(one.workload and one.workload == other.workload)
        or selectors_overlap(one, other)
    )


Label = tuple[str, str]


@dataclass
class _NamespaceClaims:
    """One namespace's claims, and for each thing that can be claimed, who claims it."""

    claims: dict[str, Claims] = field(default_factory=dict)
    services: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rules: defaultdict[tuple[str, str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    workloads: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    template_labels: defaultdict[Label, set[str]] = field(default_factory=lambda: defaultdict(set))
    selector_labels: defaultdict[Label, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Selectors with matchExpressions only: no label to file them under, compared with everyone.
    unindexed: set[str] = field(default_factory=set)

    def _postings(self, claims: Claims) -> list[tuple[defaultdict[Any, set[str]], Any]]:
        found: list[tuple[defaultdict[Any, set[str]], Any]] = []
        found += [(self.services, service) for service in claims.services]
        found += [(self.rules, rule) for rule in claims.rules]
        if claims.workload:
            found.append((self.workloads, claims.workload))
        found += [(self.template_labels, label) for label in claims.template_labels.items()]
        if claims.selector is not None:
            found += [(self.selector_labels, label) for label in claims.selector.match_labels.items()]
        return found

    def put(self, name: str, claims: Claims | None) -> None:
        old = self.claims.pop(name, None)
        if old is not None:
            for index, key in self._postings(old):
                index[key].discard(name)
                if not index[key]:
                    del index[key]
            self.unindexed.discard(name)
        if claims is None:
            return
        self.claims[name] = claims
        for index, key in self._postings(claims):
            index[key].add(name)
        if claims.selector is not None and not claims.selector.match_labels:
            self.unindexed.add(name)

    def sharing(self, mine: Claims) -> set[str]:
        """Every Rollout that may share something with `mine` (a superset: validation and
        `overlapping` decide exactly)."""
        if mine.selector is not None and not mine.selector.match_labels:
            return set(self.claims)  # expressions only: it may match anyone's labels
        names: set[str] = set(self.unindexed)
        for service in mine.services:
            names |= self.services.get(service, set())
        for rule in mine.rules:
            names |= self.rules.get(rule, set())
        if mine.workload:
            names |= self.workloads.get(mine.workload, set())
        if mine.selector is not None:
            for label in mine.selector.match_labels.items():
                # Its selector may match their pods, or their selectors share a label with it.
                names |= self.template_labels.get(label, set()) | self.selector_labels.get(label, set())
        for label in mine.template_labels.items():
            names |= self.selector_labels.get(label, set())  # their selector may match its pods
        return names


class ClaimsIndex:
    """The claims of the cached Rollouts, by namespace, filed under what they claim."""

    def __init__(self) -> None:
        self._namespaces: dict[str, _NamespaceClaims] = {}

    def changed(self, namespace: str, name: str, new: dict[str, Any] | None) -> None:
        """A Rollout was listed, changed or deleted (None)."""
        self.put(namespace, name, claims_for(new))

    def put(self, namespace: str, name: str, claims: Claims | None) -> None:
        """A Rollout's claims now (None: it claims nothing, or is gone)."""
        index = self._namespaces.setdefault(namespace, _NamespaceClaims())
        index.put(name, claims)
        if not index.claims:
            del self._namespaces[namespace]

    def claims(self, namespace: str, name: str) -> Claims | None:
        index = self._namespaces.get(namespace)
        return None if index is None else index.claims.get(name)

    def sharing(self, namespace: str, mine: Claims, besides: str) -> tuple[Claims, ...]:
        """The claims of the other Rollouts of the namespace that may share something with
        `mine`, oldest first (the order validation reports conflicts in)."""
        index = self._namespaces.get(namespace)
        if index is None:
            return ()
        found = [index.claims[name] for name in index.sharing(mine) if name != besides]
        return tuple(sorted(found, key=lambda c: (c.created_at, c.name)))


async def observe_others(
    kube: Kube, namespace: str, name: str, mine: Claims | None = None, index: ClaimsIndex | None = None
) -> tuple[Claims, ...]:
    """The claims of the other readable Rollouts of the namespace that may share something
    with this one: from the index when one is kept (and `mine` is known), else by reading every
    Rollout of the namespace."""
    if index is not None and mine is not None:
        return index.sharing(namespace, mine, name)
    found: list[Claims] = []
    for raw in await kube.peek_all(ROLLOUTS, namespace):
        if (raw.get("metadata") or {}).get("name") == name:
            continue
        claims = claims_for(raw)
        if claims is not None:
            found.append(claims)
    return tuple(found)
