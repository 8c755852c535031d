"""The Kubernetes API as every part of the project reaches it: resource descriptors
(resources.py), the async client with its one retry layer (client.py), the hook around each
request that fences writes, counts them and explains a 403 (guard.py), and the Event body
(events.py). The controller, notifications, the CLI, the sandbox and the benches import it; it
imports nothing of theirs."""

from rollout.kube.client import (
    API_THREADS,
    FIELD_MANAGER,
    JSON_PATCH,
    MERGE_PATCH,
    USER_AGENT,
    Kube,
    api_client_for,
    api_message,
    client_configuration,
    connection_info,
    load_api_client,
    retry_after,
)
from rollout.kube.guard import missing_grant
from rollout.kube.resources import (
    ANALYSIS_TEMPLATES,
    CLUSTER_ANALYSIS_TEMPLATES,
    CLUSTER_ROLE_BINDINGS,
    CONFIGMAPS,
    CRDS,
    DEPLOYMENTS,
    DESTINATION_RULES,
    EVENTS,
    JOBS,
    LEASES,
    NAMESPACES,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    SECRETS,
    SERVICES,
    Resource,
)

__all__ = [
    "ANALYSIS_TEMPLATES",
    "API_THREADS",
    "CLUSTER_ANALYSIS_TEMPLATES",
    "CLUSTER_ROLE_BINDINGS",
    "CONFIGMAPS",
    "CRDS",
    "DEPLOYMENTS",
    "DESTINATION_RULES",
    "EVENTS",
    "FIELD_MANAGER",
    "JOBS",
    "JSON_PATCH",
    "LEASES",
    "MERGE_PATCH",
    "NAMESPACES",
    "PODS",
    "REPLICASETS",
    "ROLLOUTS",
    "SECRETS",
    "SERVICES",
    "USER_AGENT",
    "Kube",
    "Resource",
    "api_client_for",
    "api_message",
    "client_configuration",
    "connection_info",
    "load_api_client",
    "missing_grant",
    "retry_after",
]
