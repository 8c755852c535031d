"""The CLI's connection to a cluster: the kubectl flags (`--kubeconfig`, `--context`, `-n`,
`-A`) turned into an API client and a namespace, and one-line errors for what a person mistypes.

Every CLI command that talks to a cluster goes through here; writes name the field manager
`kubectl-rollouts`, so they are told apart from the controller's in managedFields."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import config

from rollout.kube import ROLLOUTS, Kube, client_configuration

CLI_FIELD_MANAGER = "kubectl-rollouts"


class CliError(Exception):
    """A problem said in one line, ending the command with exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Session:
    kube: Kube
    namespace: str
    all_namespaces: bool = False

    async def rollout(self, name: str) -> dict[str, Any]:
        found = await self.kube.get(ROLLOUTS, self.namespace, name)
        if found is None:
            raise CliError(f'Rollout "{name}" not found in namespace "{self.namespace}"')
        return found


def add_flags(parser: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    if all_namespaces:
        parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def connect(args: argparse.Namespace) -> Session:
    configuration = client_configuration()
    try:
        config.load_kube_config(
            config_file=args.kubeconfig, context=args.context, client_configuration=configuration
        )
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        if args.context:
            contexts, _ = config.list_kube_config_contexts(config_file=args.kubeconfig)
            active = next(c for c in contexts if c["name"] == args.context)
    except (config.ConfigException, OSError, StopIteration) as exc:
        raise CliError(f"cannot load the kubeconfig: {exc}") from exc
    if not configuration.verify_ssl:
        # The kubeconfig says insecure-skip-tls-verify: kubectl then skips verification quietly,
        # and so does the plugin (urllib3 would print InsecureRequestWarning before every answer).
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    from kubernetes import client

    namespace = args.namespace or (active.get("context") or {}).get("namespace") or "default"
    kube = Kube(client.ApiClient(configuration), attempts=2, field_manager=CLI_FIELD_MANAGER)
    return Session(kube, namespace, bool(getattr(args, "all_namespaces", False)))
