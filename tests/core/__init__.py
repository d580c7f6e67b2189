"""Tests of the core interp_fr library (model, losses, training, extraction, reference weights)."""
