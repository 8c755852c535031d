"""`rollout convert` on manifests no one here wrote: Argo Rollouts' examples and end-to-end test
manifests, and Flagger's examples, kustomize bases, end-to-end test scripts and documentation, as
their Go modules ship them (pinned in tests/peers_manifests/go.mod, downloaded into the Go module
cache when missing; nothing is copied into this repository).

Every Rollout, Canary and analysis template there is converted or refused with a reason, what is
written passes `rollout lint`, and the counts are held here so that a change in them is seen."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rollout.cli.convert import documents_of, read_sources
from rollout.cli.lint import problems
from rollout.convert import Outcome, convert_documents
from rollout.convert.flagger import DEFAULT_PROVIDER
from tests.peers import ARGO, FLAGGER, flagger_blocks, require_modules

SOURCE_KINDS = ("Rollout", "Canary", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")


@pytest.fixture(scope="session")
def peer_modules() -> dict[str, Path]:
    return require_modules()


def _mesh_provider(module: Path, tests: Path) -> str:
    """The --mesh-provider Flagger runs with in one directory of its end-to-end tests, as its
    install script sets it (a Helm value, or a kustomize overlay's patch): the router of the
    Canaries there that name none."""
    install = tests / "install.sh"
    script = install.read_text(encoding="utf-8") if install.exists() else ""
    found = re.search(r"meshProvider=(\S+)", script)
    overlay = re.search(r"kustomize/(\w+)", script)
    patch = module / "kustomize" / overlay.group(1) / "patch.yaml" if overlay else None
    if found is None and patch is not None and patch.exists():
        found = re.search(r"-mesh-provider=(\S+)", patch.read_text(encoding="utf-8"))
    return found.group(1) if found else DEFAULT_PROVIDER


def _convert(
    paths: list[Path], provider: str = DEFAULT_PROVIDER
) -> tuple[list[Outcome], list[str], list[tuple[str, dict[str, Any]]]]:
    """Every document's outcome, the lines for files that are not YAML, and what was written."""
    documents, unreadable = [], []
    for source in read_sources([str(p) for p in paths], True, None):  # type: ignore[arg-type]
        found, errors = documents_of(source)
        documents += found
        unreadable += errors
    outcomes = convert_documents(documents, provider)
    written = [
        (f"{o.where}/{i}", obj)
        for o in outcomes
        if o.conversion is not None
        for i, obj in enumerate(o.conversion.objects)
    ]
    return outcomes, unreadable, written


def _counts(outcomes: list[Outcome]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        c = outcome.conversion
        if c is None or c.kind not in SOURCE_KINDS:
            continue
        counts["refused" if c.refused else "with fields dropped" if c.dropped else "converted"] += 1
    return dict(counts)


def _check(outcomes: list[Outcome], written: list[tuple[str, dict[str, Any]]]) -> None:
    for outcome in outcomes:
        c = outcome.conversion
        if c is not None and c.refused is not None:
            assert c.refused.strip() and not c.objects, outcome
        elif c is not None and c.kind in SOURCE_KINDS:
            assert c.objects, outcome  # converted: something written
            assert all(d.why for d in c.dropped)
    assert problems(written) == []  # all of it, together, as `rollout lint -R` would read it


def _by_name(outcomes: list[Outcome], suffix: str) -> list[Outcome]:
    return [o for o in outcomes if o.where.rsplit("#", 1)[0].endswith(suffix)]


def test_argo_rollouts_examples_and_e2e_manifests(peer_modules, capsys):
    module = peer_modules[ARGO]
    outcomes, unreadable, written = _convert([module / "examples", module / "test" / "e2e"])
    _check(outcomes, written)
    counts = _counts(outcomes)
    errors = [o for o in outcomes if o.error is not None]
    with capsys.disabled():
        print(
            f"\nArgo Rollouts v1.10.1 examples/ and test/e2e/: {counts}; {len(errors)} other argoproj.io "
            f"kinds or non-objects, {len(unreadable)} files not YAML (Helm templates and the like)"
        )
    # Held: a change in what converts shows here (refused: URL-by-argument templates, a ping-pong
    # canary, which has no stableService, and the Rollout below).
    assert counts == {"converted": 54, "with fields dropped": 41, "refused": 12}
    # e2e/functional/rollout-rollback-window.yaml reads a label its Rollout does not have (Argo
    # Rollouts passes an empty value; here that is InvalidSpec, so it is refused, saying so).
    [window] = [
        o
        for o in _by_name(outcomes, "rollout-rollback-window.yaml")
        if o.conversion and o.conversion.kind == "Rollout"
    ]
    assert "fieldRef.fieldPath: \"metadata.labels['rev']\": the Rollout has no such label" in (
        window.conversion.refused or ""
    ), window
    kinds_not_converted = Counter(o.error.split(" of ")[0] for o in errors if o.error.startswith("kind "))
    assert kinds_not_converted == {"kind Experiment": 13}
    # The canonical canary converts whole, and its steps are the same steps.
    (canary,) = _by_name(outcomes, "examples/rollout-canary.yaml")[:1]
    assert canary.conversion is not None and canary.conversion.dropped == []
    steps = canary.conversion.objects[0]["spec"]["strategy"]["canary"]["steps"]
    assert steps[0] == {"setWeight": 20} and {"pause": {}} in steps


def test_flagger_examples_tests_and_docs(peer_modules, tmp_path, capsys):
    module = peer_modules[FLAGGER]
    docs = flagger_blocks(module / "docs", tmp_path)
    outcomes, _, written = _convert([module / "artifacts" / "examples", module / "kustomize", *docs])
    _check(outcomes, written)
    providers = {}
    for tests in sorted(p for p in (module / "test").iterdir() if p.is_dir()):
        providers[tests.name] = _mesh_provider(module, tests)
        (tmp_path / tests.name).mkdir()
        blocks = flagger_blocks(tests, tmp_path / tests.name)
        if blocks:
            found, _, more = _convert(blocks, providers[tests.name])
            _check(found, more)
            outcomes += found
    counts = _counts(outcomes)
    reasons = Counter(
        o.conversion.refused.split(":")[0] for o in outcomes if o.conversion and o.conversion.refused
    )
    with capsys.disabled():
        print(f"\nFlagger test/ directories' mesh providers: {providers}")
        print(
            f"\nFlagger v1.36.1 artifacts/examples, kustomize/, test/ scripts, docs/: {counts}; refused by "
            f"reason: {dict(reasons)}"
        )
    # No Canary converts whole: its spec.service ports and the like are what Flagger generates its
    # Services from, and they are named as not carried over. Refused: documentation fragments
    # without a targetRef, DaemonSet targets, A/B tests on a router this project lacks.
    assert counts == {"with fields dropped": 62, "refused": 17}
    # Flagger's own A/B tests: header routes on the route Flagger generated (its istio test names
    # no provider: istio, Flagger's default; its Gateway API tests run Flagger with gatewayapi:v1).
    for block, routing in [
        ("istio/test-canary.sh.3.yaml", {"istio": {"virtualService": {"name": "podinfo"}}}),
        ("gatewayapi/test-ab.sh.0.yaml", {"gatewayAPI": {"httpRoutes": [{"name": "podinfo"}]}}),
    ]:
        (outcome,) = _by_name(outcomes, block.replace("/", "__"))
        assert outcome.conversion is not None and outcome.conversion.objects, outcome
        canary = outcome.conversion.objects[0]["spec"]["strategy"]["canary"]
        assert canary["trafficRouting"] == routing
        assert any("setHeaderRoute" in step for step in canary["steps"])
