"""Readers and writers for the original data files, tf.data pipelines, synthetic data."""
