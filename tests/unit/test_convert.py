"""`rollout convert` on manifests written as Argo Rollouts' and Flagger's users write them: what
lands where, what is named as not carried over, what is refused, and that what is written passes
`rollout lint`. Run through the CLI's entry point, as a user runs it."""

from pathlib import Path

import yaml

from rollout.api.crds import all_crds
from rollout.api.templates import KNOWN_PROVIDERS
from rollout.cli.lint import problems
from rollout.cli.main import main
from rollout.convert.mapping import (
    ARGO_ROLLOUT,
    ARGO_TEMPLATE,
    FLAGGER_CANARY,
    OWN_PROVIDERS,
    TABLES,
    migration_table_markdown,
)

ROOT = Path(__file__).resolve().parents[2]

ARGO_CANARY = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: shop, namespace: prod, uid: 1234, labels: {team: a}}
spec:
  replicas: 4
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: shop, image: "shop:1"}]}
  restartAt: "2024-01-01T00:00:00Z"
  strategy:
    canary:
      stableService: shop-stable
      canaryService: shop-canary
      trafficRouting:
        istio:
          virtualServices: [{name: shop-vs, routes: [primary]}]
          destinationRule: {name: shop-dr, stableSubsetName: stable, canarySubsetName: canary}
        managedRoutes: [{name: beta}]
      steps:
      - setWeight: 10
      - experiment: {templates: [{name: baseline, specRef: stable}]}
      - setHeaderRoute:
          name: beta
          match: [{headerName: x-beta, headerValue: {exact: "yes"}}]
      - pause: {duration: 1h}
      - analysis:
          templates: [{templateName: success-rate}]
          args:
          - {name: service, value: shop-canary}
          - {name: hash, valueFrom: {podTemplateHashValue: Latest}}
      - setWeight: 50
"""

ARGO_TEMPLATES = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate, namespace: prod}
spec:
  args: [{name: service}]
  metrics:
  - name: ratio
    interval: 1m
    count: 5
    failureLimit: 2
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        address: http://prometheus:9090
        timeout: 20
        query: sum(rate(http_requests_total{service="{{args.service}}",code!~"5.."}[2m]))
  - name: ready
    successCondition: result == true
    provider:
      web:
        url: http://status.prod/ready
        method: POST
        jsonBody: {service: "{{args.service}}"}
        timeoutSeconds: 5
        jsonPath: "{$.ready}"
  - name: smoke
    successCondition: result == true
    provider:
      job: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: t, image: busybox}]}}}}
  - name: smoke-forever
    provider:
      job: {spec: {template: {spec: {containers: [{name: t, image: busybox}]}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata: {name: one-off, namespace: prod}
spec:
  terminate: true
  metrics:
  - name: errors
    failureCondition: result[0] > 5
    provider: {prometheus: {query: sum(errors)}}
"""

FLAGGER_ISTIO = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {name: podinfo, port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    stepWeight: 20
    maxWeight: 50
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
    - name: request-duration
      thresholdRange: {max: 500}
      interval: 30s
    webhooks:
    - {name: gate, type: confirm-promotion, url: http://flagger-loadtester.test/gate/approve}
    - {name: load, type: rollout, url: http://flagger-loadtester.test/, metadata: {cmd: "hey http://podinfo"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo, namespace: test}
spec:
  replicas: 3
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec: {containers: [{name: podinfo, image: "podinfo:1"}]}
"""


def convert(capsys, *argv):
    """(exit code, objects written, stderr lines) of `rollout convert ARGV...`."""
    code = main(["convert", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d], err.splitlines()


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def lint_clean(objects):
    assert problems([(f"out#{i}", o) for i, o in enumerate(objects)]) == []


def test_an_argo_canary_keeps_its_steps_and_routes_and_names_what_it_loses(tmp_path, capsys):
    (tmp_path / "shop.yaml").write_text(ARGO_CANARY)
    code, objects, err = convert(capsys, "-f", tmp_path / "shop.yaml")
    assert code == 0
    (rollout,) = objects
    assert rollout["apiVersion"] == "rollout.dev/v1alpha1"
    assert rollout["metadata"] == {"name": "shop", "namespace": "prod", "labels": {"team": "a"}}
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["istio"] == {
        "virtualService": {"name": "shop-vs", "routes": ["primary"]},
        "destinationRule": {"name": "shop-dr", "stableSubset": "stable", "canarySubset": "canary"},
    }
    # The experiment step is left out; the header route is in this project's shape; the
    # argument from a pod template hash is left out, the literal one kept.
    assert canary["steps"] == [
        {"setWeight": 10},
        {"setHeaderRoute": {"name": "beta", "match": [{"header": "x-beta", "exact": "yes"}]}},
        {"pause": {"duration": "1h"}},
        {
            "analysis": {
                "templates": [{"name": "success-rate"}],
                "args": [{"name": "service", "value": "shop-canary"}],
            }
        },
        {"setWeight": 50},
    ]
    where = f"{tmp_path / 'shop.yaml'}#1 Rollout shop"
    dropped = [line.removeprefix(where + ": ") for line in err if line.startswith(where)]
    paths = [line.split(": not carried over")[0] for line in dropped]
    assert paths[:4] == [
        "metadata.uid",
        "spec.restartAt",
        "spec.strategy.canary.trafficRouting.managedRoutes",
        "spec.strategy.canary.steps[1].experiment",
    ]
    # `.valueFrom`, or `.valueFrom.podTemplateHashValue` where the API has valueFrom.fieldRef
    assert len(paths) == 5 and paths[4].startswith("spec.strategy.canary.steps[4].analysis.args[1].valueFrom")
    assert "Experiments are not supported" in dropped[3]
    assert err[-1].startswith("0 converted, 1 converted with fields not carried over, 0 refused")
    lint_clean(objects)


def test_argo_templates_and_a_run_become_analysis_templates(tmp_path, capsys):
    (tmp_path / "templates.yaml").write_text(ARGO_TEMPLATES)
    code, objects, err = convert(capsys, "-f", tmp_path / "templates.yaml")
    assert code == 0
    templates = by_kind(objects, "AnalysisTemplate")
    assert set(templates) == {"success-rate", "one-off"}
    ratio, ready, smoke = templates["success-rate"]["spec"]["metrics"]
    assert ratio["provider"]["prometheus"]["timeout"] == 20
    assert ratio["successCondition"] == "result[0] >= 0.95"
    assert ready["provider"]["web"] == {
        "url": "http://status.prod/ready",
        "method": "POST",
        "body": '{"service":"{{args.service}}"}',
        "timeout": 5,
        "jsonPath": "$.ready",
    }
    assert templates["one-off"]["spec"]["metrics"][0]["failureCondition"] == "result[0] > 5"
    # A Job gate carries over as it is; its condition (Argo Rollouts evaluates none on a Job) is
    # named, and a Job Kubernetes would refuse leaves its metric out, saying why.
    assert smoke == {
        "name": "smoke",
        "provider": {
            "job": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox"}]}
                    }
                }
            }
        },
    }
    assert any(
        "spec.metrics[2].successCondition: not carried over: a job metric is judged" in line for line in err
    )
    assert any(
        "spec.metrics[3].provider.job.spec.template.spec.restartPolicy: not set: a Job's pod needs Never"
        in line
        for line in err
    ), err
    assert any("AnalysisRun one-off: spec.terminate: not carried over" in line for line in err)
    lint_clean(objects)


def test_the_gateway_api_plugin_becomes_the_built_in_router(tmp_path, capsys):
    doc = yaml.safe_load(ARGO_CANARY)
    doc["spec"]["strategy"]["canary"]["trafficRouting"] = {
        "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "shop-route", "namespace": "prod"}}
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(capsys, "-f", tmp_path / "gw.yaml")
    assert code == 0
    routing = objects[0]["spec"]["strategy"]["canary"]["trafficRouting"]
    assert routing == {"gatewayAPI": {"httpRoutes": [{"name": "shop-route"}]}}
    assert any(
        "trafficRouting.plugins.argoproj-labs/gatewayAPI.namespace: not carried over" in x for x in err
    )


def test_a_canary_whose_only_router_is_unsupported_loses_its_header_steps(tmp_path, capsys):
    doc = yaml.safe_load(ARGO_CANARY)
    doc["spec"]["strategy"]["canary"]["trafficRouting"] = {"alb": {"ingress": "shop"}}
    (tmp_path / "alb.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(capsys, "-f", tmp_path / "alb.yaml")
    assert code == 0
    canary = objects[0]["spec"]["strategy"]["canary"]
    assert "trafficRouting" not in canary
    assert not any("setHeaderRoute" in step for step in canary["steps"])
    assert any("trafficRouting.alb: not carried over: the AWS ALB router is not supported" in x for x in err)
    assert any("steps[2].setHeaderRoute: not carried over: no traffic router" in x for x in err)
    lint_clean(objects)


def test_a_flagger_canary_becomes_a_weighted_rollout_with_flaggers_metrics(tmp_path, capsys):
    (tmp_path / "podinfo.yaml").write_text(FLAGGER_ISTIO)
    code, objects, err = convert(capsys, "-f", tmp_path / "podinfo.yaml")
    assert code == 0
    rollout = by_kind(objects, "Rollout")["podinfo"]
    assert rollout["spec"]["workloadRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo",
    }
    assert rollout["spec"]["replicas"] == 3  # from the Deployment among the files
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["stableService"] == "podinfo-primary"
    assert canary["canaryService"] == "podinfo-canary"
    assert canary["trafficRouting"] == {"istio": {"virtualService": {"name": "podinfo"}}}
    assert canary["analysis"] == {"templates": [{"name": "podinfo-analysis"}]}
    # stepWeight 20 up to maxWeight 50: 20, 40, 50, each held one interval; then the
    # confirm-promotion gate as a pause only `rollout promote` passes.
    assert canary["steps"] == [
        {"setWeight": 20},
        {"pause": {"duration": "30s"}},
        {"setWeight": 40},
        {"pause": {"duration": "30s"}},
        {"setWeight": 50},
        {"pause": {"duration": "30s"}},
        {"pause": {}},
    ]
    template = by_kind(objects, "AnalysisTemplate")["podinfo-analysis"]
    rate, duration = template["spec"]["metrics"]
    assert rate["successCondition"] == "result[0] >= 99"
    assert duration["successCondition"] == "result[0] <= 500"
    assert rate["interval"] == "30s" and rate["failureLimit"] == 4  # threshold 5: the fifth failure
    query = rate["provider"]["prometheus"]["query"]
    assert 'destination_service_name="{{args.canary-service}}"' in query and "[1m]" in query
    assert "istio_request_duration_milliseconds_bucket" in duration["provider"]["prometheus"]["query"]
    assert "[30s]" in duration["provider"]["prometheus"]["query"]
    assert any("spec.analysis.webhooks[1]: not carried over: rollout webhook load" in x for x in err)
    assert any("spec.service.port: not carried over" in x for x in err)
    lint_clean(objects)


def test_flagger_iterations_without_weights_are_blue_green(tmp_path, capsys):
    doc = yaml.safe_load_all(FLAGGER_ISTIO).__next__()
    doc["spec"]["provider"] = "kubernetes"
    doc["spec"]["analysis"] = {
        "interval": "1m",
        "threshold": 2,
        "iterations": 10,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
        "webhooks": [{"name": "ok", "type": "confirm-promotion", "url": "http://gate/"}],
    }
    (tmp_path / "bg.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(capsys, "-f", tmp_path / "bg.yaml")
    assert code == 0
    blue_green = by_kind(objects, "Rollout")["podinfo"]["spec"]["strategy"]["blueGreen"]
    assert blue_green == {
        "activeService": "podinfo",
        "previewService": "podinfo-canary",
        "prePromotionAnalysis": {"templates": [{"name": "podinfo-analysis"}]},
        "autoPromotionEnabled": False,
    }
    (metric,) = by_kind(objects, "AnalysisTemplate")["podinfo-analysis"]["spec"]["metrics"]
    assert metric["count"] == 10 and metric["interval"] == "1m" and metric["failureLimit"] == 1
    assert "{{args.rollout}}-{{args.canary-hash}}-" in metric["provider"]["prometheus"]["query"]
    assert any("note: spec.replicas: Flagger takes the count" in x for x in err)  # no Deployment given
    lint_clean(objects)


def test_flagger_ab_testing_becomes_header_routes(tmp_path, capsys):
    doc = yaml.safe_load_all(FLAGGER_ISTIO).__next__()
    doc["spec"]["provider"] = "gatewayapi:v1"
    doc["spec"]["analysis"] = {
        "interval": "1m",
        "iterations": 5,
        "match": [
            {"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}, "sourceLabels": {"a": "b"}},
        ],
    }
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(capsys, "-f", tmp_path / "ab.yaml")
    assert code == 0
    canary = objects[0]["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"] == {"gatewayAPI": {"httpRoutes": [{"name": "podinfo"}]}}
    assert canary["steps"] == [
        {"setHeaderRoute": {"name": "podinfo-ab-0", "match": [{"header": "x-canary", "exact": "insider"}]}},
        {
            "setHeaderRoute": {
                "name": "podinfo-ab-1",
                "match": [{"header": "cookie", "regex": "^(.*?;)?(canary=always)(;.*)?$"}],
            }
        },
        {"pause": {"duration": "300s"}},
    ]
    assert any("spec.analysis.match[1].sourceLabels: not carried over" in x for x in err)
    lint_clean(objects)


def test_a_metric_template_in_another_file_fills_the_canarys_query(tmp_path, capsys):
    doc = yaml.safe_load_all(FLAGGER_ISTIO).__next__()
    doc["spec"]["analysis"]["metrics"] = [
        {
            "name": "not-found",
            "templateRef": {"name": "not-found-percentage", "namespace": "flagger"},
            "templateVariables": {"code": "404"},
            "thresholdRange": {"max": 5},
            "interval": "2m",
        }
    ]
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "metric.yaml").write_text(
        """apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: not-found-percentage, namespace: flagger}
spec:
  provider: {type: prometheus, address: "http://prometheus.monitoring:9090", insecureSkipVerify: true}
  query: |
    sum(rate(requests{namespace="{{ namespace }}", pod=~"{{ target }}-.*",
      code="{{ variables.code }}"}[{{ interval }}]))
"""
    )
    code, objects, err = convert(capsys, "-f", tmp_path)
    assert code == 0
    (metric,) = by_kind(objects, "AnalysisTemplate")["podinfo-analysis"]["spec"]["metrics"]
    assert metric["provider"]["prometheus"] == {
        "address": "http://prometheus.monitoring:9090",
        "insecure": True,
        "query": 'sum(rate(requests{namespace="{{args.namespace}}", pod=~"{{args.rollout}}-.*",\n'
        '  code="404"}[2m]))',
    }
    assert any("MetricTemplate not-found-percentage: note: carried over into" in x for x in err)
    lint_clean(objects)


def test_a_vendor_metric_template_names_the_provider_to_write_it_with(tmp_path, capsys):
    doc = yaml.safe_load_all(FLAGGER_ISTIO).__next__()
    doc["spec"]["analysis"]["metrics"] = [
        {"name": "errors", "templateRef": {"name": "dd-errors"}, "thresholdRange": {"max": 1}}
    ]
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "dd-errors", "namespace": doc["metadata"]["namespace"]},
        "spec": {"provider": {"type": "datadog", "secretRef": {"name": "dd"}}, "query": "sum:errors{*}"},
    }
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all([doc, template]))
    _, _, err = convert(capsys, "-f", tmp_path / "in.yaml")
    assert any(
        "spec.analysis.metrics[0].templateRef: not carried over: a datadog MetricTemplate is not converted"
        in x
        and "provider.datadog" in x
        for x in err
    ), err


BAD_MIX = """apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata: {name: trial}
spec: {templates: []}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: both}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: both}
  template: {spec: {containers: [{name: a, image: a}]}}
  strategy: {canary: {steps: [{setWeight: 10}]}}
---
- just
- a list
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""


def test_bad_input_is_one_line_each_and_the_rest_is_still_written(tmp_path, capsys):
    (tmp_path / "a-mix.yaml").write_text(BAD_MIX)
    (tmp_path / "b-good.yaml").write_text(ARGO_CANARY)
    (tmp_path / "c-broken.yaml").write_text("kind: Rollout\n  name: [unclosed\n")
    (tmp_path / "d-broken.json").write_text('{"kind": "Rollout",')
    code, objects, err = convert(capsys, "-f", tmp_path)
    assert code == 1
    assert [o["metadata"]["name"] for o in objects] == ["shop"]  # what converted is written
    mix, broken = tmp_path / "a-mix.yaml", tmp_path / "c-broken.yaml"
    assert f"{mix}#1: kind Experiment of argoproj.io/v1alpha1 is not converted" in "\n".join(err)
    assert any(
        line.startswith(f"{mix}#2 Rollout both: refused: spec.template and spec.workloadRef are both set")
        for line in err
    )
    assert f"{mix}#3: not a Kubernetes object (a YAML list)" in err
    assert any(line.startswith(f"{broken}#1: not YAML: ") for line in err)
    assert any(line.startswith(f"{tmp_path / 'd-broken.json'}#1: not JSON: ") for line in err)
    assert err[-1] == (
        "0 converted, 1 converted with fields not carried over, 1 refused, 4 document(s) not read; "
        "1 other object(s) left as they are"
    )


def test_strict_fails_on_any_field_not_carried_over(tmp_path, capsys):
    clean = yaml.safe_load(ARGO_CANARY)
    canary = clean["spec"]["strategy"]["canary"]
    canary["trafficRouting"]["istio"] = {"virtualService": {"name": "shop-vs"}}
    del clean["spec"]["restartAt"], clean["metadata"]["uid"], canary["trafficRouting"]["managedRoutes"]
    canary["steps"] = [{"setWeight": 10}, {"pause": {}}]
    (tmp_path / "clean.yaml").write_text(yaml.safe_dump(clean))
    assert convert(capsys, "--strict", "-f", tmp_path / "clean.yaml")[0] == 0
    canary["unknownKnob"] = True  # a field no rule names is reported as such
    (tmp_path / "clean.yaml").write_text(yaml.safe_dump(clean))
    code, objects, err = convert(capsys, "--strict", "-f", tmp_path / "clean.yaml")
    assert code == 1 and len(objects) == 1
    assert any(
        "spec.strategy.canary.unknownKnob: not carried over: not known to the converter" in x for x in err
    )


def test_output_dir_gets_one_file_per_input_file(tmp_path, capsys):
    source = tmp_path / "in"
    (source / "team").mkdir(parents=True)
    (source / "team" / "shop.yaml").write_text(ARGO_CANARY)
    (source / "templates.yaml").write_text(ARGO_TEMPLATES)
    out = tmp_path / "out"
    code, objects, _ = convert(capsys, "-R", "-f", source, "-o", out)
    assert code == 0 and objects == []  # nothing on standard output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert written == ["team/shop.yaml", "templates.yaml"]
    kinds = [d["kind"] for d in yaml.safe_load_all((out / "templates.yaml").read_text())]
    assert kinds == ["AnalysisTemplate", "AnalysisTemplate"]
    assert main(["lint", "-R", "-f", str(out)]) == 0
    capsys.readouterr()


def test_the_committed_migration_table_is_the_rendered_mapping():
    """docs/migration-table.md is `python -m rollout.convert > docs/migration-table.md`."""
    committed = (ROOT / "docs" / "migration-table.md").read_text(encoding="utf-8")
    assert committed == migration_table_markdown()


def test_the_table_has_a_row_for_every_rule():
    table = migration_table_markdown()
    for _, _, rules in TABLES:
        for rule in rules:
            assert f"| `{rule.source}` |" in table
    experiment = next(r for r in ARGO_ROLLOUT if r.source.endswith(".experiment"))
    assert f"not carried over: {experiment.note}" in table


def test_a_canary_naming_no_provider_takes_flaggers_mesh_provider(tmp_path, capsys):
    doc = next(yaml.safe_load_all(FLAGGER_ISTIO))
    del doc["spec"]["provider"]
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(
        capsys, "--flagger-provider", "gatewayapi:v1", "-f", tmp_path / "canary.yaml"
    )
    assert code == 0
    routing = by_kind(objects, "Rollout")["podinfo"]["spec"]["strategy"]["canary"]["trafficRouting"]
    assert routing == {"gatewayAPI": {"httpRoutes": [{"name": "podinfo"}]}}
    assert any(
        "note: spec.provider is not set: Flagger's --mesh-provider decides; taken as gatewayapi:v1" in x
        for x in err
    )
    lint_clean(objects)


def test_flagger_modes_follow_flaggers_order(tmp_path, capsys):
    """Iterations win over weights (blue/green, weights named as dropped); the kubernetes
    provider is blue/green whatever is set, ten iterations when none are given."""
    doc = next(yaml.safe_load_all(FLAGGER_ISTIO))
    doc["spec"]["analysis"]["iterations"] = 5
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    doc["spec"]["provider"] = "kubernetes"
    del doc["spec"]["analysis"]["iterations"]
    doc["metadata"]["name"] = "plain"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc))
    code, objects, err = convert(capsys, "-f", tmp_path)
    assert code == 0
    rollouts, templates = by_kind(objects, "Rollout"), by_kind(objects, "AnalysisTemplate")
    assert list(rollouts["podinfo"]["spec"]["strategy"]) == ["blueGreen"]
    assert templates["podinfo-analysis"]["spec"]["metrics"][0]["count"] == 5
    assert any(
        "Canary podinfo: spec.analysis.stepWeight(s): not carried over: iterations are set" in x for x in err
    )
    assert list(rollouts["plain"]["spec"]["strategy"]) == ["blueGreen"]
    assert templates["plain-analysis"]["spec"]["metrics"][0]["count"] == 10
    assert any(
        "Canary plain: spec.analysis.stepWeight(s): not carried over: the kubernetes" in x for x in err
    )
    lint_clean(objects)


def _in_schema(schema, path):
    """Whether `path` (dots, `[]` for list items) names a field of the CRD schema."""
    for part in path.replace("[]", ".[]").split("."):
        if part == "[]":
            schema = schema.get("items")
        elif part:
            props = schema.get("properties") or {}
            schema = props.get(part)
        if schema is None:
            return False
    return True


def test_every_copy_rule_lands_on_a_field_of_this_projects_crds():
    schemas = {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in all_crds().values()
    }
    for rules, kind in (
        (ARGO_ROLLOUT, "Rollout"),
        (ARGO_TEMPLATE, "AnalysisTemplate"),
        (FLAGGER_CANARY, "Rollout"),
    ):
        for rule in rules:
            if rule.how == "copy" and not rule.target.startswith("metadata."):
                assert _in_schema(schemas[kind], rule.target), (kind, rule.target)


def test_every_provider_of_this_project_is_mapped_from_argo():
    """A provider the API declares (rollout/api/templates.py) is mapped from Argo Rollouts' or
    says why it cannot be, never "not supported yet"."""
    prefix = "spec.metrics[].provider."
    for provider in set(KNOWN_PROVIDERS) - set(OWN_PROVIDERS):
        rules = [r for r in ARGO_TEMPLATE if r.source.startswith(f"{prefix}{provider}")]
        assert rules and not any("not supported yet" in r.note for r in rules), provider


VENDORS = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: vendors, namespace: prod}
spec:
  metrics:
  - name: dd
    interval: 1m
    successCondition: result < 0.05
    provider:
      datadog:
        apiVersion: v2
        interval: 5m
        queries: {a: "sum:errors{service:shop}.as_count()", b: "sum:requests{service:shop}.as_count()"}
        formula: a / b
        aggregator: avg
        secretRef: {name: dd-keys, namespaced: true}
  - name: gr
    successCondition: result < 5
    provider: {graphite: {address: "http://graphite:8080", query: "sumSeries(errors.shop)"}}
  - name: ready
    successCondition: result == true
    provider: {web: {url: "http://status/ready"}}
"""


def test_argo_vendor_providers_map_where_this_project_has_them(tmp_path, capsys):
    """datadog and graphite are carried over once the API declares them (their Secret keys named
    as Argo Rollouts finds them); until then they are named as not supported yet."""
    (tmp_path / "vendors.yaml").write_text(VENDORS)
    code, objects, err = convert(capsys, "-f", tmp_path / "vendors.yaml")
    assert code == 0
    metrics = {m["name"]: m for m in objects[0]["spec"]["metrics"]}
    if "datadog" in KNOWN_PROVIDERS:
        assert metrics["dd"]["provider"]["datadog"] == {
            "apiVersion": "v2",
            "window": "5m",
            "queries": {
                "a": "sum:errors{service:shop}.as_count()",
                "b": "sum:requests{service:shop}.as_count()",
            },
            "formula": "a / b",
            "aggregator": "avg",
            "apiKeySecretRef": {"name": "dd-keys", "key": "api-key"},
            "appKeySecretRef": {"name": "dd-keys", "key": "app-key"},
        }
        assert any("datadog.secretRef.namespaced: not carried over" in line for line in err)
    else:
        assert "dd" not in metrics
        assert any(
            "provider.datadog: not carried over: provider datadog is not supported yet" in x for x in err
        )
    if "graphite" in KNOWN_PROVIDERS:
        assert metrics["gr"]["provider"] == {
            "graphite": {"address": "http://graphite:8080", "target": "sumSeries(errors.shop)"}
        }
    else:
        assert "gr" not in metrics
    assert metrics["ready"]["provider"] == {"web": {"url": "http://status/ready", "method": "GET"}}
    lint_clean(objects)


def test_argo_analysis_options_carry_over(tmp_path, capsys):
    """dryRun, measurementRetention and arguments from a field of the Rollout are carried over;
    an argument from the pod template hash is named, with the built-in argument to use."""
    doc = yaml.safe_load(ARGO_CANARY)
    doc["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 10}]
    doc["spec"]["strategy"]["canary"]["analysis"] = {
        "templates": [{"templateName": "success-rate"}],
        "args": [
            {"name": "service", "value": "shop-canary"},
            {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        ],
        "dryRun": [{"metricName": "ratio"}],
        "measurementRetention": [{"metricName": ".*", "limit": 5}],
    }
    template = next(yaml.safe_load_all(ARGO_TEMPLATES))
    template["spec"]["dryRun"] = [{"metricName": "ready"}]
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all([doc, template]))
    code, objects, err = convert(capsys, "-f", tmp_path / "in.yaml")
    assert code == 0
    analysis = by_kind(objects, "Rollout")["shop"]["spec"]["strategy"]["canary"]["analysis"]
    converted_template = by_kind(objects, "AnalysisTemplate")["success-rate"]["spec"]
    from_field = {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    assert analysis["args"] == [{"name": "service", "value": "shop-canary"}, from_field]
    assert any("analysis.args[2].valueFrom" in line and "canary-hash" in line for line in err)
    assert analysis["dryRun"] == [{"metricName": "ratio"}]
    assert analysis["measurementRetention"] == [{"metricName": ".*", "limit": 5}]
    assert converted_template["dryRun"] == [{"metricName": "ready"}]
    lint_clean(objects)
