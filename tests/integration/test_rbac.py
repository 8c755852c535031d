"""The chart's RBAC against the requests the controller really made: the emulated API server
records every request it serves to the controller (verb, API group, resource, subresource,
namespace), the `cluster` fixture gathers them over the run, and this file (moved to the end of
the run) compares them with the rules `helm template` renders, both modes together (cluster-wide,
and watchNamespaces with its Namespaces list/watch, there with notifications.configMap too).

- Missing: every recorded call must be granted; checked on any run, whole or partial.
- Never used: every granted (apiGroup, resource, verb) must have been used; checked only when the
  whole integration directory ran (a partial run exercises only part of the code).
- Bound right: test_leader_election.py runs the controller under the rendered namespace-mode RBAC
  enforced by the emulator (a Role's rule only in its namespace) and asserts nothing was refused.
Non-resource requests (discovery: /api, /apis) are left out: every authenticated user may make
them (the built-in system:discovery role)."""

import pytest

from tests.chart import grants, render, triples
from tests.integration.recorded import RECORDED_CALLS, WHOLE_SUITE


def chart_triples():
    notifying = {"watchNamespaces": ["shop"], "notifications": {"configMap": "notifications"}}
    return triples(grants(render())) | triples(grants(render(notifying)))


def recorded_triples():
    return {(c.group, c.rbac_resource, c.verb) for c in RECORDED_CALLS}


def test_every_request_the_controller_made_is_granted_by_the_chart():
    if not RECORDED_CALLS:
        pytest.skip("no integration test ran before this one: nothing recorded")
    missing = recorded_triples() - chart_triples()
    assert not missing, f"the chart's RBAC lacks (apiGroup, resource, verb): {sorted(missing)}"


def test_every_permission_the_chart_grants_was_used():
    if not WHOLE_SUITE["collected"]:
        pytest.skip("only part of tests/integration ran: unused permissions are checked on a whole run")
    unused = chart_triples() - recorded_triples()
    assert not unused, f"the chart grants what the controller never used: {sorted(unused)}"
