"""Tests of attr_recovery."""
