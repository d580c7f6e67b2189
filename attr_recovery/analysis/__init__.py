"""Analyses: recognition models as one interface, reconstruction, attack metrics, attributes, significance, counterfactuals."""
