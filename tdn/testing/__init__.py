"""Helpers for testing tdn and its backends (not needed to run networks)."""
