"""The controller starts without the metric providers' client libraries: each is imported on its
provider's first measurement, so a controller that never measures CloudWatch, InfluxDB (Flux) or
Datadog does not carry them (together some 30 MiB of resident memory, and numpy with them)."""

import subprocess
import sys

HEAVY = ("boto3", "botocore", "influxdb_client", "datadog_api_client", "numpy", "scipy")


def test_the_controller_imports_no_provider_client_library_at_start():
    probe = (
        "import sys, rollout.controller.process, rollout.analysis.providers, rollout.cli.main; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
