"""Shared utilities of every package: atomic file writes, command lines, progress,
TensorFlow's log, JSON, figures, the bad-input exception types. Imports no other
part of the project."""
