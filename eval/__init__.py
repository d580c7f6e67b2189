"""Evaluation protocols (IJB-A, IJB-C), plots and interpretability analyses."""
