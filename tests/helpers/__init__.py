"""Shared test helpers (small worlds, model fixtures, export checks)."""
