"""Attribute recovery (Ren et al.): decode face representations, estimate and explain attributes."""
