"""Tests of interp_fr.export and the tools/freeze command lines."""
