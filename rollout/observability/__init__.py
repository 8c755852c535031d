"""Logging and the controller's own metrics."""
