"""Peer controllers built from their Go modules, for side-by-side benches on the same real API server."""
