"""Tools around trained models."""
