"""`rollout lint` as people used to kubectl call it: `-f` a file, a directory (`-R` for its
subdirectories), `-` for standard input, repeated; each problem of an object said once, by its
field path. Run through the CLI's entry point, as a user or a CI job runs it."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from rollout.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
OVER_100 = "spec.strategy.canary.steps[0].setWeight: 120 is greater than the maximum of 100"


def rollout_yaml(name="web", steps="[{setWeight: 20}, {pause: {}}]", canary="web-canary", replicas="2"):
    return f"""apiVersion: rollout.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: app, image: "{name}:1"}}]}}
  strategy:
    canary:
      stableService: {name}-stable
      canaryService: {canary}
      steps: {steps}
"""


SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web-stable, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""


def lint(capsys, *argv):
    """(exit code, stdout lines, stderr) of `rollout lint ARGV...`."""
    code = main(["lint", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_a_directory_is_its_manifest_files_in_name_order(tmp_path, capsys):
    """Its .yaml, .yml and .json files, sorted; other files and subdirectories are not read."""
    same = "web-stable"
    (tmp_path / "b-web.yaml").write_text(SERVICE + "---\n" + rollout_yaml("web", canary=same))
    (tmp_path / "a-api.yml").write_text(rollout_yaml("api", canary="api-stable"))
    shop = yaml.safe_load(rollout_yaml("shop", canary="shop-stable"))
    (tmp_path / "c-shop.json").write_text(json.dumps(shop, indent="\t"))
    (tmp_path / "notes.txt").write_text(rollout_yaml("notes", steps="[{setWeight: 120}]"))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bad.yaml").write_text(rollout_yaml("bad", steps="[{setWeight: 120}]"))

    code, out, err = lint(capsys, "-f", f"{tmp_path}/")
    assert (code, err) == (1, "")
    must_differ = "spec.strategy.canary.canaryService: must differ from stableService"
    assert out == [
        f"{tmp_path / 'a-api.yml'}#1 Rollout api: {must_differ}",
        f"{tmp_path / 'b-web.yaml'}#2 Rollout web: {must_differ}",
        f"{tmp_path / 'c-shop.json'}#1 Rollout shop: {must_differ}",
        "3 object(s) checked: 3 problem(s)",
    ]


def test_recursive_reads_the_subdirectories(tmp_path, capsys):
    (tmp_path / "web.yaml").write_text(rollout_yaml("web"))
    (tmp_path / "team" / "deeper").mkdir(parents=True)
    (tmp_path / "team" / "deeper" / "bad.yaml").write_text(rollout_yaml("bad", canary="bad-stable"))
    (tmp_path / "team" / "api.yaml").write_text(rollout_yaml("api"))
    (tmp_path / "zz.yaml").write_text(rollout_yaml("zz", canary="zz-stable"))

    for flag in ("-R", "--recursive"):
        code, out, err = lint(capsys, "-f", tmp_path, flag)
        assert (code, err) == (1, "")
        must_differ = "spec.strategy.canary.canaryService: must differ from stableService"
        assert out == [  # each directory's files where its name sorts, as kubectl -R reads them
            f"{tmp_path / 'team' / 'deeper' / 'bad.yaml'}#1 Rollout bad: {must_differ}",
            f"{tmp_path / 'zz.yaml'}#1 Rollout zz: {must_differ}",
            "4 object(s) checked: 2 problem(s)",
        ]


def test_f_is_repeatable_and_references_cross_files(tmp_path, capsys):
    """An AnalysisTemplate in one file is read for the Rollout of another, as before."""
    (tmp_path / "rollouts").mkdir()
    (tmp_path / "rollouts" / "web.yaml").write_text(
        rollout_yaml("web", steps="[{analysis: {templates: [{name: rate}]}}]")
    )
    template = tmp_path / "template.yaml"
    template.write_text(
        """apiVersion: rollout.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: rate, namespace: shop}
spec:
  metrics: [{name: rate, successCondition: "result[0] > 0.9", provider: {prometheus: {query: "{{args.x}}"}}}]
"""
    )
    code, out, _ = lint(capsys, "-f", tmp_path / "rollouts", "-f", template)
    assert code == 1
    assert out[-1] == "2 object(s) checked: 1 problem(s)"
    assert out[0] == (
        f"{tmp_path / 'rollouts' / 'web.yaml'}#1 Rollout web: spec.strategy.canary.steps[0].analysis."
        "templates[0] (AnalysisTemplate rate, metric rate): argument(s) x have no value (give them in the "
        "Rollout's args)"
    )

    code, out, _ = lint(capsys, "-f", tmp_path / "rollouts")  # the template not given: assumed right
    assert (code, out) == (0, ["1 object(s) checked: no problems"])


def test_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SERVICE + "---\n" + rollout_yaml(canary="web-stable")))
    code, out, err = lint(capsys, "-f", "-")
    assert (code, err) == (1, "")
    assert out == [
        "<stdin>#2 Rollout web: spec.strategy.canary.canaryService: must differ from stableService",
        "1 object(s) checked: 1 problem(s)",
    ]


def test_a_pipe_into_the_command(tmp_path):
    """`... | rollout lint -f -`, the command a process of its own reading its real standard input."""
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "lint", "-f", "-"],
        input=rollout_yaml(steps="[{setWeight: 120}]"),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout == f"<stdin>#1 Rollout web: {OVER_100}\n1 object(s) checked: 1 problem(s)\n"


def test_standard_input_as_json_with_other_files(tmp_path, monkeypatch, capsys):
    """JSON as `kubectl get -o json` writes it (tab indentation is not YAML), beside a file."""
    document = yaml.safe_load(rollout_yaml())
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(document, indent="\t")))
    (tmp_path / "api.json").write_text(json.dumps({**document, "metadata": {"name": "api"}}, indent="\t"))
    code, out, err = lint(capsys, "-f", tmp_path / "api.json", "-f", "-")
    assert (code, out, err) == (0, ["2 object(s) checked: no problems"], "")


def test_standard_input_can_be_named_once(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(rollout_yaml()))
    code, out, err = lint(capsys, "-f", "-", "-f", "-")
    assert code != 0 and out == []
    assert err == "rollout lint: -f - (standard input) can be given once\n"


def test_a_path_that_is_not_there_is_one_line(tmp_path, capsys):
    (tmp_path / "web.yaml").write_text(rollout_yaml())
    code, out, err = lint(capsys, "-f", tmp_path / "web.yaml", "-f", tmp_path / "nope")
    assert (code, out) == (1, [])
    assert err == f"rollout lint: cannot read {tmp_path / 'nope'}: No such file or directory\n"


def test_a_directory_without_manifests_is_one_line(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# nothing to lint\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "web.yaml").write_text(rollout_yaml())
    code, out, err = lint(capsys, "-f", tmp_path)
    assert (code, out) == (1, [])
    assert err == f"rollout lint: no .yaml, .yml or .json file in {tmp_path}\n"

    (tmp_path / "sub" / "web.yaml").unlink()
    code, out, err = lint(capsys, "-f", tmp_path, "-R")
    assert (code, out) == (1, [])
    assert err == f"rollout lint: no .yaml, .yml or .json file in {tmp_path} (or below it)\n"


def test_the_examples_directory_passes(capsys):
    code, out, err = lint(capsys, "-f", f"{ROOT / 'examples'}/")
    assert (code, err) == (0, ""), out
    assert out[-1].endswith("object(s) checked: no problems")
    code, out, err = lint(capsys, "-R", "-f", ROOT / "examples")
    assert (code, err) == (0, ""), out


def test_a_weight_over_100_is_one_line(tmp_path, capsys):
    """The CRD schema and the API model both refuse it; said once, in the schema's words."""
    web = tmp_path / "web.yaml"
    web.write_text(rollout_yaml(steps="[{setWeight: 120}, {pause: {}}]"))
    code, out, err = lint(capsys, "-f", web)
    assert (code, err) == (1, "")
    assert out == [
        f"{web}#1 Rollout web: {OVER_100}",
        "1 object(s) checked: 1 problem(s)",
    ]


def test_problems_at_other_paths_are_each_said(tmp_path, capsys):
    web = tmp_path / "web.yaml"
    web.write_text(rollout_yaml(steps="[{setWeight: 120}, {pause: {duratoin: 1m}}, {setWeight: -5}]"))
    code, out, _ = lint(capsys, "-f", web)
    assert code == 1
    assert out == [
        f"{web}#1 Rollout web: {OVER_100}",
        f"{web}#1 Rollout web: spec.strategy.canary.steps[1].pause.duratoin: Extra inputs are not permitted",
        f"{web}#1 Rollout web: spec.strategy.canary.steps[2].setWeight: -5 is less than the minimum of 0",
        "1 object(s) checked: 3 problem(s)",
    ]


def test_the_controllers_checks_run_beside_a_schema_problem(tmp_path, capsys):
    """A quoted number: the API server refuses it, the model reads it; the controller's own
    check (its InvalidSpec message) of another field is still made."""
    web = tmp_path / "web.yaml"
    web.write_text(rollout_yaml(replicas='"2"', canary="web-stable"))
    code, out, _ = lint(capsys, "-f", web)
    assert code == 1
    assert out == [
        f"{web}#1 Rollout web: spec.replicas: '2' is not of type 'integer'",
        f"{web}#1 Rollout web: spec.strategy.canary.canaryService: must differ from stableService",
        "1 object(s) checked: 2 problem(s)",
    ]


def test_a_rollout_the_model_cannot_read_has_its_schema_problems_once_each(tmp_path, capsys):
    """Past the model, nothing is checked: the Services are not compared."""
    web = tmp_path / "web.yaml"
    web.write_text(rollout_yaml(replicas='"2"', canary="web-stable", steps="[{setWeight: 120}]"))
    code, out, _ = lint(capsys, "-f", web)
    assert code == 1
    assert out == [
        f"{web}#1 Rollout web: spec.replicas: '2' is not of type 'integer'",
        f"{web}#1 Rollout web: {OVER_100}",
        "1 object(s) checked: 2 problem(s)",
    ]


def test_a_missing_field_is_said_once_at_its_own_path(monkeypatch, capsys):
    """The schema says it of the object that lacks it, the model of the field: one line, the
    field's path, as the API server says it."""
    document = rollout_yaml(steps="[{analysis: {templates: [{clusterScope: true}]}}]")
    monkeypatch.setattr(sys, "stdin", io.StringIO(document))
    code, out, _ = lint(capsys, "-f", "-")
    assert (code, out) == (
        1,
        [
            "<stdin>#1 Rollout web: spec.strategy.canary.steps[0].analysis.templates[0].name: Required value",
            "1 object(s) checked: 1 problem(s)",
        ],
    )


def test_a_rollout_without_a_name_is_one_line_per_problem(tmp_path, capsys):
    web = tmp_path / "web.yaml"
    web.write_text(rollout_yaml(steps="[{setWeight: 120}]").replace("name: web, namespace", "namespace"))
    code, out, err = lint(capsys, "-f", web)
    assert (code, err) == (1, "")
    assert out == [
        f"{web}#1 Rollout ?: metadata.name: Field required",
        f"{web}#1 Rollout ?: {OVER_100}",
        "1 object(s) checked: 2 problem(s)",
    ]


def test_every_problem_of_a_template_once(tmp_path, capsys):
    """All of a template's problems (not only the first), each once; at a provider of two kinds
    the model's words, which name them, rather than the schema's count of properties."""
    template = tmp_path / "template.yaml"
    template.write_text(
        """apiVersion: rollout.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: rate, namespace: shop}
spec:
  metrics:
  - name: rate
    failureLimit: -1
    successCondition: "true"
    provider: {prometheus: {query: up}, web: {url: x}}
  - {name: "", successCondition: "true", provider: {prometheus: {query: up}}}
"""
    )
    code, out, _ = lint(capsys, "-f", template)
    where = f"{template}#1 AnalysisTemplate rate"
    assert (code, out) == (
        1,
        [
            f"{where}: spec.metrics[0].failureLimit: -1 is less than the minimum of 0",
            f"{where}: spec.metrics[0].provider: a provider holds exactly one kind; found prometheus, web",
            f"{where}: spec.metrics[1].name: '' should be non-empty",
            "1 object(s) checked: 3 problem(s)",
        ],
    )
