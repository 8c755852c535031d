"""The cloudWatch and influxdb provider schemas on a real API server: the example templates are
stored exactly as written (nothing pruned by the generated CRD), and a field the schema does not
declare is pruned by the server, which `rollout lint` names beforehand."""

from pathlib import Path

import yaml

from rollout.kube import ANALYSIS_TEMPLATES
from tests.e2e.helpers import rollout_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def template_of(name, namespace):
    doc = next(
        d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d["kind"] == "AnalysisTemplate"
    )
    doc["metadata"]["namespace"] = namespace
    return doc


async def test_the_example_templates_are_stored_as_written(kube, namespace):
    for name in ("canary-cloudwatch-analysis.yaml", "canary-influxdb-analysis.yaml"):
        template = template_of(name, namespace)
        created = await kube.create(ANALYSIS_TEMPLATES, namespace, template)
        assert created["spec"] == template["spec"], name


async def test_a_misspelt_field_is_pruned_by_the_server_and_named_by_lint(
    kube, kubeconfig, namespace, tmp_path
):
    template = template_of("canary-cloudwatch-analysis.yaml", namespace)
    template["metadata"]["name"] = "misspelt"
    template["spec"]["metrics"][0]["provider"]["cloudWatch"]["metricDataQueries"][0]["retrunData"] = False
    path = tmp_path / "misspelt.yaml"
    path.write_text(yaml.safe_dump(template))
    code, out, _ = await rollout_cli(kubeconfig, None, "lint", "-f", str(path))
    assert code == 1
    assert (
        "spec.metrics[0].provider.cloudWatch.metricDataQueries[0].retrunData: Extra inputs are not permitted"
        in out
    )
    created = await kube.create(ANALYSIS_TEMPLATES, namespace, template)
    assert "retrunData" not in created["spec"]["metrics"][0]["provider"]["cloudWatch"]["metricDataQueries"][0]
