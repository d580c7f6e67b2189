"""Evaluation protocols (IJB-A, IJB-C), plots and interpretability analyses."""

# ``python -m eval.<command>`` in a checkout imports this package first: the
# command's process set-up (interp_fr/__init__.py) must come before the
# command's modules import TensorFlow.
import interp_fr  # noqa: F401
