"""Tests of interp_fr.data (data/)."""
