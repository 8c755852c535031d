"""The smoke-test service of examples/canary-web-analysis.yaml, played by a local HTTP server (the
`smoke_tests` fixture), and a canary on the emulated cluster gated on it through provider.web."""

from pathlib import Path

import yaml
from aiohttp import web

from rollout.kube import ANALYSIS_TEMPLATES, SECRETS
from tests.emulated import NS, setup

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-web-analysis.yaml"


class SmokeTests:
    """The smoke-test service: answers POST /api/v1/runs with the suite's outcome, and only to
    the token of the example's Secret."""

    def __init__(self) -> None:
        self.passing = True
        self.seen: list[dict] = []
        self.host = ""

    async def run(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer replace-me":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.seen.append({"query": dict(request.query), "body": await request.json()})
        failures = 0 if self.passing else 3
        return web.json_response({"run": {"passed": self.passing, "failures": failures, "tests": 40}})


def example(kind):
    doc = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == kind)
    doc["metadata"]["namespace"] = NS
    return doc


def web_analysis_step(service):
    return {
        "analysis": {
            "templates": [{"name": "smoke-tests"}],
            "args": [{"name": "checks-host", "value": service.host}],
        }
    }


async def start(cluster, service):
    """The example's AnalysisTemplate (measuring every second) and Secret, and a 2-replica canary
    20% -> smoke tests -> 60% -> smoke tests; its status once the first deploy is Healthy."""
    template = example("AnalysisTemplate")
    template["spec"]["metrics"][0]["interval"] = "1s"
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
    await cluster.kube.create(SECRETS, NS, example("Secret"))
    steps = [{"setWeight": 20}, web_analysis_step(service), {"setWeight": 60}, web_analysis_step(service)]
    return await setup(cluster, steps, replicas=2)
