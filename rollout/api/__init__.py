"""The Rollout API: pydantic models of spec and status, the CRDs generated from them, revisions.

Everything else reads a Rollout through these models; nothing here does I/O.
"""
