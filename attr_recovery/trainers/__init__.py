"""Training: the decoder, the attribute estimators, a small recogniser, and their data."""
