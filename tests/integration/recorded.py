"""What this run of the integration tests records for test_rbac.py: every request the controller
made to an emulated API server (gathered by the `cluster` fixtures), and whether every integration
test file was collected (set by conftest.py)."""

RECORDED_CALLS: set = set()
WHOLE_SUITE: dict[str, bool] = {"collected": False}
