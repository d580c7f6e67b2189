"""Command lines: each parses flags and calls one library function."""
