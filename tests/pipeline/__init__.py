"""Tests of interp_fr.pipeline (the main job)."""
