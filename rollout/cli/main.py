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
    from rollout.controller.operator import run_controller
    from rollout.observability.logging import configure_logging

    configure_logging(args.log_level)
    kube = Kube(load_api_client(args.kubeconfig))
    asyncio.run(
        run_controller(
            kube,
            tuple(args.namespace),
            resync_seconds=args.resync_seconds,
            prometheus_address=args.prometheus_address,
        )
    )
    return 0


def _crds(args: argparse.Namespace) -> int:
    directory = Path(args.output)
    if args.check:
        stale = [
            name
            for name, crd in all_crds().items()
            if not (directory / name).exists() or (directory / name).read_text() != render(crd)
        ]
        if stale:
            print(
                f"rollout: stale CRDs in {directory}: {', '.join(stale)}; run `rollout crds`", file=sys.stderr
            )
            return 1
        return 0
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
    ctl.add_argument("--resync-seconds", type=float, default=30.0, help="period of the full re-check")
    ctl.add_argument(
        "--prometheus-address",
        default=os.environ.get("ROLLOUT_PROMETHEUS_ADDRESS"),
        help="Prometheus for analysis templates that name no address (env ROLLOUT_PROMETHEUS_ADDRESS)",
    )
    ctl.add_argument("--log-level", default="INFO")
    ctl.set_defaults(run=_controller)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--output", "-o", default="crds", help="directory (default: crds)")
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
