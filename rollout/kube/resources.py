"""Resource descriptors: which group, version and plural a kind of object is served at, and the
API paths built from them. Pure data, imported by every layer that names a Kubernetes kind (the
routers in traffic/ included); the client that calls those paths is client.py beside it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    """A kind of object as the API server serves it. `kind` names it in messages and manifests;
    two descriptors of one group, version and plural are the same resource whatever kind says."""

    group: str
    version: str
    plural: str
    kind: str = field(default="", compare=False)

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        parts = [base]
        if namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


ROLLOUTS = Resource("rollout.dev", "v1alpha1", "rollouts", "Rollout")
REPLICASETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
SERVICES = Resource("", "v1", "services", "Service")
PODS = Resource("", "v1", "pods", "Pod")
JOBS = Resource("batch", "v1", "jobs", "Job")
EVENTS = Resource("", "v1", "events", "Event")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition")
DESTINATION_RULES = Resource("networking.istio.io", "v1", "destinationrules", "DestinationRule")
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
ANALYSIS_TEMPLATES = Resource("rollout.dev", "v1alpha1", "analysistemplates", "AnalysisTemplate")
CLUSTER_ANALYSIS_TEMPLATES = Resource(
    "rollout.dev", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate"
)
CLUSTER_ROLE_BINDINGS = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding"
)
