"""The documentation site's generated reference pages (docs/reference/*.md).

Each page is made from the thing it describes, so it cannot drift from it: the API from the
pydantic models (api.py), the CLI from its argparse parser (cli.py), the Helm values from the
chart's values.schema.json (helm.py) and the controller's metrics from their registry
(metrics.py). generate.py lists every output; `python -m rollout.docs` writes them and
`--check` (and tests/unit/test_docs_site.py) fails when a committed page is not current.
"""
