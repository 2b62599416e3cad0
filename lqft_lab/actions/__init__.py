"""Lattice actions.

Every action is a small object with its couplings as attributes and promises:
``action(x) -> S`` of shape ``(B,)`` for a batched field ``(B, *lattice)``, and
``action.force(x) -> -dS/dx`` with the shape of ``x``. ``logp = -S`` up to ``log Z``.
"""

from .base import autograd_force
from .phi4 import Phi4Action

__all__ = ["Phi4Action", "autograd_force"]
