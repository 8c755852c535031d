"""`rollout dashboard`: connect as the user (the kubeconfig flags of every CLI command, or the
Pod's ServiceAccount in a cluster), pick the scope the user may watch, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import webbrowser
from collections.abc import AsyncIterator
from typing import TextIO

from kubernetes.client.exceptions import ApiException

from rollout.cli.session import CLI_FIELD_MANAGER, Session, connect
from rollout.dashboard.server import Dashboard, serving
from rollout.dashboard.watching import Watches
from rollout.kube import ROLLOUTS, Kube, api_client_for, load_api_client


def in_cluster_session() -> Session:
    """In a Pod with no kubeconfig given: the Pod's ServiceAccount (the chart's Deployment)."""
    kube = Kube(load_api_client(None), attempts=2, field_manager=CLI_FIELD_MANAGER)
    namespace = os.environ.get("POD_NAMESPACE", "default")
    return Session(kube, namespace, all_namespaces=True)


async def scope_of(session: Session, asked: str | None) -> str | None:
    """The namespace to watch (None: every namespace): the one asked for, else every namespace
    when the user may list Rollouts cluster-wide, else the context's namespace."""
    if asked:
        return asked
    try:
        await session.kube.request("GET", ROLLOUTS.path(None), query={"limit": "1"}, attempts=1)
    except ApiException as exc:
        if exc.status == 403:
            return session.namespace
    except Exception:  # unreachable now: watch everything; the page says it cannot connect
        return None
    return None


async def serve(
    session: Session,
    *,
    namespace: str | None,
    address: str,
    port: int,
    read_only: bool,
    open_browser: bool,
    out: TextIO,
    ready: asyncio.Event | None = None,
) -> int:
    watched = await scope_of(session, namespace)
    watches = Watches(lambda: session.kube.api, watched)
    scope = "every namespace" if watched is None else f"namespace {watched}"
    board = Dashboard(session, watches, read_only=read_only, scope=scope)
    async with serving(board, address, port) as url:
        mode = " (read-only)" if read_only else ""
        print(f"dashboard{mode}: {url}  (Rollouts in {scope}; Ctrl-C to stop)", file=out, flush=True)
        if open_browser:
            await asyncio.to_thread(webbrowser.open, url)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()  # until cancelled (Ctrl-C)
    return 0


def run(args: argparse.Namespace) -> int:
    if (
        args.kubeconfig is None
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and not os.environ.get("KUBECONFIG")
    ):
        session = in_cluster_session()
    else:
        session = connect(args)
    try:
        return asyncio.run(
            serve(
                session,
                namespace=args.namespace,
                address=args.address,
                port=args.port,
                read_only=args.read_only,
                open_browser=args.open,
                out=sys.stdout,
            )
        )
    except OSError as exc:  # the port is taken, the address is not ours
        print(f"rollout dashboard: cannot listen on {args.address}:{args.port}: {exc}", file=sys.stderr)
        return 2


@contextlib.asynccontextmanager
async def on_emulated_cluster(server: str, namespace: str, address: str, port: int) -> AsyncIterator[str]:
    """The dashboard of `rollout sandbox --dashboard`: the emulated API server (plain HTTP, no
    user), watched in every namespace; yields its URL."""
    kube = Kube(api_client_for(server), attempts=2, field_manager=CLI_FIELD_MANAGER)
    session = Session(kube, namespace, all_namespaces=True)
    board = Dashboard(session, Watches(lambda: kube.api, None), scope="the sandbox's emulated cluster")
    async with serving(board, address, port) as url:
        yield url
