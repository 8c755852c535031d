"""Argo CD integration: the Lua health check and actions for `rollout.dev/Rollout`, shipped as
`.lua` files in this package, and the `argocd-cm` / Helm values snippets generated from them
(config.py, `rollout argocd`)."""
