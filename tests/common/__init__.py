"""Tests of interp_fr.common."""
