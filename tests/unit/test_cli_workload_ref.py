"""`set image` and `undo` on a Rollout that takes its template from a Deployment say, in one line,
to change the Deployment instead (a template written beside workloadRef would be InvalidSpec)."""

import asyncio
import io

import pytest

from rollout.cli import ops
from rollout.cli.session import CliError

ADOPTING = {
    "metadata": {"name": "catalog", "resourceVersion": "7"},
    "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "catalog"}},
}


class OneRollout:
    namespace = "shop"

    async def rollout(self, name):
        return ADOPTING


def test_set_image_on_an_adopting_rollout_names_the_deployment():
    with pytest.raises(CliError) as caught:
        asyncio.run(ops.set_image(OneRollout(), "catalog", ["app=catalog:2"], io.StringIO()))
    message = str(caught.value)
    assert "Deployment catalog" in message and "spec.workloadRef" in message and "\n" not in message
