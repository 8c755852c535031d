"""Entry point of the `rollout` command (also the kubectl plugin `kubectl-rollouts`): the
controller, generators (`crds`, `argocd`), `sandbox`, and the commands people and CI pipelines
use on Rollouts (`get`, `list`, `status`, `promote`, ... in view.py, ops.py, lint.py).

Errors end with a non-zero exit and one readable line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from rich.console import Console

from rollout.api.base import parse_duration
from rollout.api.crds import all_crds, render, write_crds
from rollout.cli import check, convert, lint, ops, view
from rollout.cli.session import CliError, Session, add_flags, connect
from rollout.kube import api_message


def _controller(args: argparse.Namespace) -> int:
    from rollout.controller.leader import ElectionSettings, LeadershipLost
    from rollout.controller.process import ProcessSettings, run_process
    from rollout.controller.shards import ShardCountMismatch, ShardSettings
    from rollout.kube import Kube, load_api_client
    from rollout.notify.delivery import NotifySettings
    from rollout.observability.logging import configure_logging

    election = shards = None
    if args.shards < 1:
        print(f"rollout controller: --shards must be at least 1 (got {args.shards})", file=sys.stderr)
        return 2
    if args.leader_elect or args.shards > 1:
        namespace = args.leader_election_namespace or _own_namespace()
        if not namespace:
            print(
                "rollout controller: --leader-election-namespace is required outside a Pod "
                "(the namespace of the Lease)",
                file=sys.stderr,
            )
            return 2
        election = ElectionSettings(
            namespace=namespace,
            name=args.leader_election_id,
            lease_duration=args.leader_election_lease_duration,
            renew_deadline=args.leader_election_renew_deadline,
            retry_period=args.leader_election_retry_period,
        )
        problems = election.problems()
        if problems:
            print(f"rollout controller: {'; '.join(problems)}", file=sys.stderr)
            return 2
        if args.shards > 1:  # the shards' Leases replace the single leader's
            shards = ShardSettings(
                count=args.shards,
                namespace=namespace,
                name=args.leader_election_id,
                lease_duration=args.leader_election_lease_duration,
                renew_deadline=args.leader_election_renew_deadline,
                retry_period=args.leader_election_retry_period,
                filter_after_watch=args.shard_watch == "filter",
            )
            election = None
    configure_logging(args.log_level, json=args.log_format == "json")
    kube = Kube(load_api_client(args.kubeconfig))
    settings = ProcessSettings(
        namespaces=tuple(args.namespace),
        resync_seconds=args.resync_seconds,
        prometheus_address=args.prometheus_address,
        http_host=args.http_address,
        http_port=args.http_port,
        election=election,
        shards=shards,
        workers=args.workers,
        notifications=NotifySettings(
            configmap=args.notifications_configmap, timeout=args.notifications_timeout
        ),
    )
    try:
        asyncio.run(run_process(kube, settings))
    except LeadershipLost as exc:
        # Ends the process: it starts again (the Pod's restart) as a follower.
        print(f"rollout controller: {exc}", file=sys.stderr)
        return 1
    except ShardCountMismatch as exc:
        print(f"rollout controller: {exc}", file=sys.stderr)
        return 2
    return 0


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str | None:
    """The Pod's namespace: POD_NAMESPACE (the chart sets it), else the ServiceAccount's mount."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return None


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _configmap_ref(text: str) -> str:
    namespace, slash, name = text.partition("/")
    if not (namespace and slash and name) or "/" in name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, got {text!r}")
    return text


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


CHART_CRDS = Path("charts/rollout-controller/crds")


def _crd_directories(args: argparse.Namespace) -> list[Path]:
    """crds/ and the Helm chart's copy, which must never drift apart; `--output` names one."""
    if args.output is not None:
        return [Path(args.output)]
    return [Path("crds"), *([CHART_CRDS] if CHART_CRDS.parent.is_dir() else [])]


def _crds(args: argparse.Namespace) -> int:
    directories = _crd_directories(args)
    if args.check:
        stale = [
            str(directory / name)
            for directory in directories
            for name, crd in all_crds().items()
            if not (directory / name).exists() or (directory / name).read_text() != render(crd)
        ]
        if stale:
            print(f"rollout: stale CRDs: {', '.join(stale)}; run `rollout crds`", file=sys.stderr)
            return 1
        return 0
    for directory in directories:
        for path in write_crds(directory):
            print(path)
    return 0


def _argocd(args: argparse.Namespace) -> int:
    from rollout.argocd import config

    directory = Path(args.output)
    if args.check:
        stale = config.stale(directory)
        if stale:
            print(
                f"rollout: stale Argo CD snippets in {directory}: {', '.join(stale)}; run `rollout argocd`",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in config.write(directory):
        print(path)
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    try:
        from rollout.sandbox.run import run_sandbox
    except ImportError as exc:
        print(
            f"rollout: the sandbox needs the 'sandbox' extra (pip install 'rollout-controller[sandbox]'): "
            f"{exc}",
            file=sys.stderr,
        )
        return 2
    from rollout.observability.logging import configure_logging

    configure_logging("ERROR", json=False)
    from rollout.sandbox.run import SandboxError

    if args.file is not None and (args.strategy is not None or args.analysis):
        print(
            "rollout sandbox: --strategy and --analysis apply to the embedded example, not to --file",
            file=sys.stderr,
        )
        return 2
    if args.analysis and args.strategy not in (None, "canary"):
        print(
            "rollout sandbox: --analysis shows a canary's analysis step; use --strategy canary",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(
            run_sandbox(
                sys.stdout,
                file=args.file,
                new_image=args.image,
                timeout=args.timeout,
                strategy=args.strategy,
                analysis=args.analysis,
                dashboard_port=args.port if args.dashboard else None,
                open_browser=args.open,
            )
        )
    except SandboxError as exc:
        print(f"rollout sandbox: {exc}", file=sys.stderr)
        return 2


def _cluster(
    run: Callable[[Session, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    """A command that talks to the cluster named by the kubectl flags."""

    def runner(args: argparse.Namespace) -> int:
        session = connect(args)

        async def go() -> int:
            try:
                return await run(session, args)
            finally:
                await asyncio.to_thread(session.kube.api.close)

        return asyncio.run(go())

    return runner


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200, highlight=False)


async def _get(session: Session, args: argparse.Namespace) -> int:
    if args.watch:
        return await view.watch(session, args.name, _console(), interval=args.interval)
    return await view.show(session, args.name, _console(), args.output)


async def _list(session: Session, args: argparse.Namespace) -> int:
    return await view.listing(session, _console())


async def _status(session: Session, args: argparse.Namespace) -> int:
    return await ops.wait_status(session, args.name, parse_duration(args.timeout), sys.stdout)


def _command(action: str) -> Callable[[Session, argparse.Namespace], Awaitable[int]]:
    async def run(session: Session, args: argparse.Namespace) -> int:
        chosen = "promote-full" if action == "promote" and args.full else action
        return await ops.command(session, args.name, chosen, sys.stdout)

    return run


async def _undo(session: Session, args: argparse.Namespace) -> int:
    return await ops.undo(session, args.name, args.to_revision, sys.stdout)


async def _set_image(session: Session, args: argparse.Namespace) -> int:
    return await ops.set_image(session, args.name, args.images, sys.stdout)


async def _check(session: Session, args: argparse.Namespace) -> int:
    return await check.check(session, args.name, sys.stdout, args.prometheus_address)


def _lint(args: argparse.Namespace) -> int:
    return lint.lint(args.file, sys.stdout, recursive=args.recursive, stdin=sys.stdin)


def _dashboard(args: argparse.Namespace) -> int:
    try:
        from rollout.dashboard.command import run
    except ImportError as exc:
        print(
            f"rollout dashboard: a dependency is missing ({exc}); reinstall rollout-controller",
            file=sys.stderr,
        )
        return 2
    return run(args)


def _dashboard_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = sub.add_parser(
        "dashboard", help="a live web dashboard of Rollouts, with promote/abort/... (local by default)"
    )
    board.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    board.add_argument("--port", type=_port, default=3100, help="port to listen on (default 3100; 0: any)")
    board.add_argument("--open", action="store_true", help="open it in the web browser")
    board.add_argument(
        "--read-only", action="store_true", help="show only: no action buttons, every POST refused"
    )
    add_flags(board)
    board.set_defaults(run=_dashboard)


def _convert(args: argparse.Namespace) -> int:
    return convert.convert(
        args.file,
        sys.stdout,
        sys.stderr,
        recursive=args.recursive,
        output_dir=args.output,
        strict=args.strict,
        stdin=sys.stdin,
        flagger_provider=args.flagger_provider,
    )


def _file_flags(parser: argparse.ArgumentParser) -> None:
    """-f (repeatable) and -R, as kubectl spells them, for the commands that read files offline."""
    parser.add_argument(
        "-f",
        "--filename",
        "--file",
        dest="file",
        action="append",
        required=True,
        metavar="PATH",
        help="a YAML or JSON file, a directory (its .yaml, .yml and .json files), or - for standard "
        "input; repeatable",
    )
    parser.add_argument(
        "-R", "--recursive", action="store_true", help="with a directory: its subdirectories too"
    )


def _rollout_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    get = sub.add_parser("get", help="show a Rollout as a tree (get rollout NAME)")
    get.add_argument("kind", choices=["rollout", "rollouts", "ro"], help="what to get: rollout")
    get.add_argument("name")
    get.add_argument("--watch", "-w", action="store_true", help="redraw in place until Ctrl-C")
    get.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    get.add_argument("--output", "-o", choices=["yaml", "json"], help="print the object instead")
    add_flags(get)
    get.set_defaults(run=_cluster(_get))

    listing = sub.add_parser("list", help="list Rollouts (list rollouts)")
    listing.add_argument("kind", choices=["rollouts", "rollout", "ro"], help="what to list: rollouts")
    add_flags(listing, all_namespaces=True)
    listing.set_defaults(run=_cluster(_list))

    status = sub.add_parser(
        "status", help="wait for a Rollout: exit 0 Healthy, 1 Degraded or aborted, 2 on timeout"
    )
    status.add_argument("name")
    status.add_argument("--timeout", default="10m", help="how long to wait (Go duration, default 10m)")
    add_flags(status)
    status.set_defaults(run=_cluster(_status))

    helps = {
        "promote": "pass the current pause, inconclusive analysis or blue/green gate (--full: to the end)",
        "abort": "stop the update: traffic back to the stable revision",
        "retry": "start an aborted update again",
        "pause": "hold the Rollout where it is",
        "resume": "lift a `rollout pause`",
        "restart": "replace the stable revision's pods one at a time (no new revision, no steps)",
    }
    for action, text in helps.items():
        cmd = sub.add_parser(action, help=text)
        cmd.add_argument("name")
        if action == "promote":
            cmd.add_argument(
                "--full", action="store_true", help="to 100%% at once, no further steps or analysis"
            )
        add_flags(cmd)
        cmd.set_defaults(run=_cluster(_command(action)))

    undo = sub.add_parser("undo", help="roll back to an earlier revision (the previous one by default)")
    undo.add_argument("name")
    undo.add_argument("--to-revision", help="a revision hash (or prefix), or its number as `get` shows it")
    add_flags(undo)
    undo.set_defaults(run=_cluster(_undo))

    set_cmd = sub.add_parser("set", help="set image NAME CONTAINER=IMAGE...")
    set_sub = set_cmd.add_subparsers(dest="what", required=True)
    image = set_sub.add_parser("image", help="change container images: an update like any other")
    image.add_argument("name")
    image.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE")
    add_flags(image)
    image.set_defaults(run=_cluster(_set_image))

    checking = sub.add_parser(
        "check", help="check on the cluster what a Rollout refers to: exit 1 when anything fails"
    )
    checking.add_argument("name")
    checking.add_argument(
        "--prometheus-address",
        default=os.environ.get("ROLLOUT_PROMETHEUS_ADDRESS"),
        help="Prometheus for templates that name no address (env ROLLOUT_PROMETHEUS_ADDRESS)",
    )
    add_flags(checking)
    checking.set_defaults(run=_cluster(_check))

    linting = sub.add_parser("lint", help="check Rollouts and AnalysisTemplates in files, offline")
    _file_flags(linting)
    linting.set_defaults(run=_lint)

    converting = sub.add_parser(
        "convert", help="turn Argo Rollouts and Flagger manifests into this project's objects, offline"
    )
    _file_flags(converting)
    converting.add_argument(
        "-o", "--output", metavar="DIR", help="write one file per input file here instead of standard output"
    )
    converting.add_argument("--strict", action="store_true", help="exit 1 when any field is not carried over")
    converting.add_argument(
        "--flagger-provider",
        default="istio",
        metavar="PROVIDER",
        help="the router of a Flagger Canary without spec.provider: Flagger's --mesh-provider "
        "(default istio, Flagger's default)",
    )
    converting.set_defaults(run=_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout", description="Progressive delivery for Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)

    ctl = sub.add_parser("controller", help="run the controller")
    ctl.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); cluster-wide by default",
    )
    ctl.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, then KUBECONFIG or ~/.kube/config)"
    )
    ctl.add_argument("--resync-seconds", type=_positive, default=30.0, help="period of the full re-check")
    ctl.add_argument(
        "--prometheus-address",
        default=os.environ.get("ROLLOUT_PROMETHEUS_ADDRESS"),
        help="Prometheus for analysis templates that name no address (env ROLLOUT_PROMETHEUS_ADDRESS)",
    )
    ctl.add_argument(
        "--workers",
        type=int,
        default=64,
        help="Rollouts reconciled at the same time (each Rollout one reconcile at a time)",
    )
    ctl.add_argument(
        "--notifications-configmap",
        type=_configmap_ref,
        default=os.environ.get("ROLLOUT_NOTIFICATIONS_CONFIGMAP") or None,
        metavar="NAMESPACE/NAME",
        help="ConfigMap of the webhooks told about every Rollout (key notifications.yaml, the shape of "
        "spec.notifications; env ROLLOUT_NOTIFICATIONS_CONFIGMAP)",
    )
    ctl.add_argument(
        "--notifications-timeout",
        type=_positive,
        default=2.0,
        help="seconds a webhook has to answer one POST (default 2); failures are retried with backoff",
    )
    ctl.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    ctl.add_argument("--log-format", default="json", choices=["json", "console"], help="default: json")
    ctl.add_argument("--http-address", default="0.0.0.0", help="address of /healthz, /readyz and /metrics")
    ctl.add_argument(
        "--http-port", type=_port, default=8080, help="port of /healthz, /readyz and /metrics (0: none)"
    )
    ctl.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a coordination.k8s.io Lease reconciles",
    )
    ctl.add_argument(
        "--leader-election-namespace", help="namespace of the Lease (default: the Pod's own namespace)"
    )
    ctl.add_argument("--leader-election-id", default="rollout-controller", help="name of the Lease")
    ctl.add_argument(
        "--leader-election-lease-duration",
        type=int,
        default=15,
        help="seconds a follower waits after the last renewal before it takes over (default 15)",
    )
    ctl.add_argument(
        "--leader-election-renew-deadline",
        type=_positive,
        default=10.0,
        help="seconds after the last renewal at which a leader stops writing (default 10)",
    )
    ctl.add_argument(
        "--leader-election-retry-period",
        type=_positive,
        default=2.0,
        help="seconds between attempts to acquire or renew the Lease (default 2)",
    )
    ctl.add_argument(
        "--shards",
        type=int,
        default=1,
        help="split the Rollouts into this many shards, each owned through a Lease of its own; "
        "every replica takes a fair share (default 1: one leader with --leader-elect). Give every "
        "replica the same count (the chart's `shards` value does); the Leases go where "
        "--leader-election-namespace says, named after --leader-election-id",
    )
    ctl.add_argument(
        "--shard-watch",
        choices=("selector", "filter"),
        default="selector",
        help="how a sharded replica watches its shards' ReplicaSets: 'selector' (default), one watch "
        "per shard that the API server selects by label; 'filter', one watch of every ReplicaSet, "
        "the other shards' dropped as they arrive (to compare the two)",
    )
    ctl.set_defaults(run=_controller)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument(
        "--output",
        "-o",
        help="one directory (default: crds/ and the Helm chart's charts/rollout-controller/crds/)",
    )
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    crds.set_defaults(run=_crds)

    argocd = sub.add_parser(
        "argocd",
        help="write the Argo CD health/actions snippets (argocd-cm, Helm values) from the Lua scripts",
    )
    argocd.add_argument(
        "--output", "-o", default="examples/argocd", help="directory (default: examples/argocd)"
    )
    argocd.add_argument("--check", action="store_true", help="exit 1 if the files differ from the scripts")
    argocd.set_defaults(run=_argocd)

    _rollout_commands(sub)
    _dashboard_command(sub)

    box = sub.add_parser("sandbox", help="run the controller on an emulated cluster and roll out an update")
    box.add_argument("--file", "-f", type=Path, help="a Rollout manifest (default: the embedded example)")
    box.add_argument("--image", help="the image to update to (default: the next major tag)")
    box.add_argument(
        "--strategy",
        choices=["canary", "rolling", "bluegreen"],
        help="the embedded example's strategy (default: canary on an HTTPRoute)",
    )
    box.add_argument(
        "--analysis",
        action="store_true",
        help="gate the canary with a real Prometheus (needs the prometheus binary): the update fails "
        "its analysis and rolls back on its own",
    )
    box.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each phase")
    box.add_argument(
        "--dashboard",
        action="store_true",
        help="serve `rollout dashboard` on the emulated cluster: the canary waits for Promote on its "
        "page; runs until Ctrl-C",
    )
    box.add_argument("--port", type=_port, default=3100, help="the dashboard's port (default 3100; 0: any)")
    box.add_argument("--open", action="store_true", help="open the dashboard in the web browser")
    box.set_defaults(run=_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"rollout {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except ApiException as exc:
        print(
            f"rollout {args.command}: the API server answered {exc.status} {exc.reason}: {api_message(exc)}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # one readable line, not a traceback
        print(f"rollout {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
