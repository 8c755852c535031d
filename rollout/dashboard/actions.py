"""The dashboard's buttons, run through the CLI's own commands (rollout/cli/ops.py): the same
checks, the same refusals in the same words, a 409 retried as the CLI retries it. What the CLI
would print (or say on stderr) comes back as one line for the page."""

from __future__ import annotations

import io
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from rollout.cli import ops
from rollout.cli.session import CliError, Session
from rollout.kube import Kube, api_message

ACTIONS = ("promote", "promote-full", "abort", "retry", "pause", "resume", "restart", "undo")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str  # one line: what the CLI prints, or why it refused
    status: int  # the HTTP status the dashboard answers with


def one_line(text: str) -> str:
    return " ".join(text.split())


async def run(kube: Kube, namespace: str, name: str, action: str) -> Outcome:
    if action not in ACTIONS:
        return Outcome(False, f"unknown action {action!r} (one of {', '.join(ACTIONS)})", 404)
    session = Session(kube, namespace)
    out = io.StringIO()
    try:
        if action == "undo":
            await ops.undo(session, name, None, out)
        else:
            await ops.command(session, name, action, out)
    except CliError as exc:
        return Outcome(False, one_line(str(exc)), 409)
    except ApiException as exc:
        # As `rollout promote` says it on stderr; Kubernetes' own words for a 403 and the rest.
        said = f"the API server answered {exc.status} {exc.reason}: {api_message(exc)}"
        return Outcome(False, one_line(said), exc.status if 400 <= (exc.status or 0) < 500 else 502)
    except Exception as exc:  # unreachable API server: one line, not a traceback
        return Outcome(False, one_line(f"{type(exc).__name__}: {exc}"), 502)
    return Outcome(True, one_line(out.getvalue()), 200)
