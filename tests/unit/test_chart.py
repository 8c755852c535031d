"""The Helm chart, rendered by the real `helm` for every values case: lint, every object valid
against the Kubernetes 1.35 schemas (kubernetes-validate) or the chart's own CRDs, the security
settings, the controller's arguments from values, the optional parts, and bad values refused with
a message naming the value."""

import json
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from rollout.api.crds import openapi_validator
from rollout.cli.main import build_parser
from tests.chart import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    REPO,
    controller_args,
    find,
    grants,
    render,
    run_helm,
)

K8S_VERSION = "1.35.0"
ALL_ON = {
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "grafanaDashboard": {"enabled": True},
    "analysisTemplates": {"enabled": True},
}
CASES = {
    "defaults": {},
    "watchNamespaces": {"watchNamespaces": ["shop", "cart"]},
    "leaderElectionOff": {"replicaCount": 1, "leaderElection": {"enabled": False}},
    "everythingOn": {**ALL_ON, "controller": {"prometheusAddress": "http://prometheus.monitoring:9090"}},
    "dashboard": {"dashboard": {"enabled": True}},
    "dashboardActions": {"dashboard": {"enabled": True, "allowActions": True, "port": 8443}},
}
DASHBOARD_SA = RELEASE + "-rollout-controller-dashboard"
CHART_CRD_KINDS = {"ClusterAnalysisTemplate", "AnalysisTemplate", "Rollout"}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # the Prometheus Operator's: checked below


def crd_validators(docs):
    out = {}
    for crd in find(docs, "CustomResourceDefinition"):
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out[crd["spec"]["names"]["kind"]] = openapi_validator(schema)
    return out


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(case):
    done = run_helm("lint", "--strict", str(CHART), values=CASES[case])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("case", CASES)
def test_every_rendered_object_is_valid(case):
    docs = render(CASES[case])
    validators = crd_validators(docs)
    assert set(validators) == CHART_CRD_KINDS
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["kind"] in CHART_CRD_KINDS:
            errors = list(validators[doc["kind"]].iter_errors(doc))
            assert not errors, f"{doc['metadata']['name']}: {errors[0].message}"
        elif doc["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Service"} <= kinds
    if case == "everythingOn":
        assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "ClusterAnalysisTemplate"} <= kinds


def test_a_broken_object_fails_the_validation():
    """The check above can fail: a Deployment with a misspelt field is refused."""
    (deployment,) = find(render(), "Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_restricted_pod_security_and_probes():
    (deployment,) = find(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["replicas"] == 2
    assert find(render(), "PodDisruptionBudget")[0]["spec"]["maxUnavailable"] == 1


def test_controller_arguments_come_from_values_and_parse():
    values = {
        "watchNamespaces": ["shop", "cart"],
        "controller": {
            "prometheusAddress": "http://prom:9090",
            "logLevel": "DEBUG",
            "logFormat": "console",
            "resyncSeconds": 45,
        },
        "leaderElection": {"leaseDuration": 20, "renewDeadline": 12, "retryPeriod": 3},
    }
    args = build_parser().parse_args(controller_args(render(values)))
    assert args.namespace == ["shop", "cart"]
    assert args.prometheus_address == "http://prom:9090"
    assert (args.log_level, args.log_format, args.resync_seconds) == ("DEBUG", "console", 45.0)
    assert args.leader_elect and args.leader_election_id == "rollout-rollout-controller"
    assert (args.leader_election_lease_duration, args.leader_election_renew_deadline) == (20, 12.0)
    assert args.leader_election_retry_period == 3.0
    off = build_parser().parse_args(controller_args(render(CASES["leaderElectionOff"])))
    assert not off.leader_elect and off.namespace == []


def test_rbac_modes():
    cluster = grants(render())
    assert all(g.namespace in ("", "rollout-system") for g in cluster)
    assert ("", "apps", "replicasets", "create") in {
        (g.namespace, g.group, g.resource, g.verb) for g in cluster
    }
    namespaced = grants(render(CASES["watchNamespaces"]))
    cluster_wide = {(g.group, g.resource, g.verb) for g in namespaced if g.namespace == ""}
    assert cluster_wide == {
        ("rollout.dev", "clusteranalysistemplates", "get"),
        ("rollout.dev", "clusteranalysistemplates", "list"),
        ("rollout.dev", "clusteranalysistemplates", "watch"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    per_namespace = {
        ns: {(g.group, g.resource, g.verb) for g in namespaced if g.namespace == ns}
        for ns in ("shop", "cart")
    }
    assert (
        per_namespace["shop"] == per_namespace["cart"]
        and ("apps", "replicasets", "create") in per_namespace["shop"]
    )
    leases = {(g.group, g.resource, g.verb) for g in namespaced if g.namespace == "rollout-system"}
    assert leases == {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
    assert not any(g.resource == "leases" for g in grants(render(CASES["leaderElectionOff"])))


def test_optional_parts():
    docs = render(ALL_ON)
    (service,) = find(docs, "Service")
    (monitor,) = find(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    (dashboard,) = find(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    in_chart = (CHART / "dashboards" / "rollout-controller.json").read_text()
    assert json.loads(dashboard["data"]["rollout-controller.json"]) == json.loads(in_chart)
    templates = find(docs, "ClusterAnalysisTemplate")
    examples = [
        d for d in yaml.safe_load_all((REPO / "examples" / "analysis-templates.yaml").read_text()) if d
    ]
    assert templates == examples
    assert (CHART / "files" / "analysis-templates.yaml").read_text() == (
        REPO / "examples" / "analysis-templates.yaml"
    ).read_text()
    alerts = {r["alert"] for g in find(docs, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"RolloutDegraded", "RolloutAnalysisFailed", "RolloutControllerNotReconciling"}


def dashboard_args(docs):
    (deployment,) = [d for d in find(docs, "Deployment") if d["metadata"]["name"] == DASHBOARD_SA]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == DASHBOARD_SA
    return [str(a) for a in container["args"]]


def test_the_dashboard_is_off_by_default_and_read_only_unless_values_grant_actions():
    assert not [d for d in render() if DASHBOARD_SA in d["metadata"]["name"]]
    read_only = render(CASES["dashboard"])
    args = dashboard_args(read_only)
    parsed = build_parser().parse_args(args)
    assert (parsed.command, parsed.address, parsed.port) == ("dashboard", "0.0.0.0", 3100)
    assert parsed.read_only
    seen = grants(read_only, service_account=DASHBOARD_SA)
    assert seen and {g.verb for g in seen} <= {"get", "list", "watch"}
    assert not any(g.resource == "secrets" for g in seen)
    # Bound to its own ServiceAccount only: the controller's grants are not the dashboard's.
    (binding,) = [d for d in find(read_only, "ClusterRoleBinding") if d["metadata"]["name"] == DASHBOARD_SA]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": DASHBOARD_SA, "namespace": RELEASE_NAMESPACE}
    ]
    (service,) = [d for d in find(read_only, "Service") if d["metadata"]["name"] == DASHBOARD_SA]
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 3100
    acting = render(CASES["dashboardActions"])
    parsed = build_parser().parse_args(dashboard_args(acting))
    assert (parsed.port, parsed.read_only) == (8443, False)
    writes = {(g.group, g.resource, g.verb) for g in grants(acting, service_account=DASHBOARD_SA)} - {
        (g.group, g.resource, g.verb) for g in seen
    }
    assert writes == {("rollout.dev", "rollouts", "patch")}


def test_dashboard_and_alerts_use_only_metrics_the_controller_exports():
    from rollout.observability.metrics import REGISTRY

    families = list(REGISTRY.collect())
    exported = {m.name + ("_total" if m.type == "counter" else "") for m in families}
    exported |= {m.name + "_bucket" for m in families if m.type == "histogram"}
    docs = render(ALL_ON)
    exprs = [r["expr"] for g in find(docs, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads((CHART / "dashboards" / "rollout-controller.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(rollout_[a-z_]+)", e)}
    assert used and used <= exported, used - exported


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed"
)
def test_alert_rules_pass_promtool(tmp_path):
    (rule,) = find(render(ALL_ON), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 3 rules found" in done.stdout


@pytest.mark.parametrize(
    "values, named",
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"watchNamespaces": ["Shop_1"]}, "/watchNamespaces/0"),
        ({"controller": {"logLevel": "verbose"}}, "/controller/logLevel"),
        ({"controller": {"resyncSecond": 10}}, "resyncSecond"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
        ({"leaderElection": {"enabled": False}}, "leaderElection.enabled"),
        ({"leaderElection": {"leaseDuration": 5, "renewDeadline": 10}}, "leaderElection.leaseDuration"),
        ({"dashboard": {"enabled": True, "allowAction": True}}, "allowAction"),
        ({"dashboard": {"port": 0}}, "/dashboard/port"),
    ],
)
def test_bad_values_fail_naming_the_value(values, named):
    done = run_helm("template", "rollout", str(CHART), values=values)
    assert done.returncode != 0
    assert named in done.stderr, done.stderr
