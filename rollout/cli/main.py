"""Entry point of the `rollout` command: `controller`, `crds`, `sandbox`.

Errors end with a non-zero exit and one readable line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from rollout.api.crds import all_crds, render, write_crds


def _controller(args: argparse.Namespace) -> int:
    from rollout.controller.kube import Kube, load_api_client
    from rollout.controller.leader import ElectionSettings, LeadershipLost
    from rollout.controller.process import ProcessSettings, run_process
    from rollout.observability.logging import configure_logging

    election = None
    if args.leader_elect:
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
    configure_logging(args.log_level, json=args.log_format == "json")
    kube = Kube(load_api_client(args.kubeconfig))
    settings = ProcessSettings(
        namespaces=tuple(args.namespace),
        resync_seconds=args.resync_seconds,
        prometheus_address=args.prometheus_address,
        http_host=args.http_address,
        http_port=args.http_port,
        election=election,
        workers=args.workers,
    )
    try:
        asyncio.run(run_process(kube, settings))
    except LeadershipLost as exc:
        # Ends the process: it starts again (the Pod's restart) as a follower.
        print(f"rollout controller: {exc}", file=sys.stderr)
        return 1
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
    return asyncio.run(run_sandbox(sys.stdout, file=args.file, new_image=args.image, timeout=args.timeout))


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
        default=16,
        help="Rollouts reconciled at the same time (each Rollout one reconcile at a time)",
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
    ctl.set_defaults(run=_controller)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument(
        "--output",
        "-o",
        help="one directory (default: crds/ and the Helm chart's charts/rollout-controller/crds/)",
    )
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    crds.set_defaults(run=_crds)

    box = sub.add_parser("sandbox", help="run the controller on an emulated cluster and roll out an update")
    box.add_argument("--file", "-f", type=Path, help="a Rollout manifest (default: the embedded example)")
    box.add_argument("--image", help="the image to update to (default: the next major tag)")
    box.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each phase")
    box.set_defaults(run=_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one readable line, not a traceback
        print(f"rollout {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
