"""Attribute recovery (Ren et al.): decode face representations, estimate and explain attributes."""

# ``python -m attr_recovery.<command>`` imports this package first: the
# command's process set-up (interp_fr/__init__.py) must come before the
# command's modules import TensorFlow.
import interp_fr  # noqa: F401
