"""The claims index finds every Rollout that shares something with another: looking up only
those gives validation the same conflicts, and the triggers the same Rollouts, as walking every
Rollout of the namespace."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.api.spec import LabelSelector, LabelSelectorRequirement
from rollout.controller.claims import ClaimsIndex, overlapping
from rollout.engine.types import Claims

RULES = [("httproutes", "r", "app"), ("tcproutes", "t", "0")]
LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["a", "b"]), max_size=2)


@st.composite
def claims(draw, name):
    expressions = draw(st.booleans()) and draw(st.booleans())
    selector = LabelSelector(
        match_labels=draw(LABELS),
        match_expressions=[LabelSelectorRequirement(key="app", operator="Exists")] if expressions else [],
    )
    return Claims(
        name=name,
        created_at=draw(st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"])),
        services=frozenset(draw(st.sets(st.sampled_from(["s1", "s2", "s3"]), max_size=2))),
        rules=frozenset(draw(st.sets(st.sampled_from(RULES)))),
        selector=selector if selector.match_labels or expressions else None,
        template_labels=draw(LABELS),
        workload=draw(st.sampled_from(["", "", "deploy"])),
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_index_finds_every_overlapping_rollout(data):
    everyone = [data.draw(claims(f"r{i}")) for i in range(data.draw(st.integers(1, 8)))]
    index = ClaimsIndex()
    for one in everyone:
        index.put("shop", one.name, data.draw(claims(one.name)))  # an older spec, replaced below
        index.put("shop", one.name, one)
    gone = everyone[-1] if len(everyone) > 1 and data.draw(st.booleans()) else None
    if gone is not None:
        index.put("shop", gone.name, None)
        everyone = everyone[:-1]
    for mine in [*everyone, *([gone] if gone else [])]:
        found = [c.name for c in index.sharing("shop", mine, besides=mine.name)]
        wanted = {c.name for c in everyone if c.name != mine.name and overlapping(mine, c)}
        assert wanted <= set(found), (mine, wanted - set(found))
        assert gone is None or gone.name not in found or gone.name == mine.name
        assert len(found) == len(set(found))


def test_a_rollout_sharing_nothing_finds_nobody_among_many():
    index = ClaimsIndex()
    for i in range(1000):  # the scale bench's shape: each its own Services, route and labels
        index.put(
            "shop",
            f"app-{i}",
            Claims(
                name=f"app-{i}",
                services=frozenset({f"app-{i}-stable", f"app-{i}-canary"}),
                rules=frozenset({("httproutes", f"app-{i}", "app")}),
                selector=LabelSelector(match_labels={"app": f"app-{i}"}),
                template_labels={"app": f"app-{i}"},
            ),
        )
    mine = index.claims("shop", "app-7")
    assert mine is not None
    assert index.sharing("shop", mine, besides="app-7") == ()
    twin = Claims(name="app-x", services=frozenset({"app-7-stable"}))
    assert [c.name for c in index.sharing("shop", twin, besides="app-x")] == ["app-7"]
