"""Tests of interp_fr.eval (eval/)."""
