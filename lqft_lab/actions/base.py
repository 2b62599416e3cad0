"""What every action promises, and the one autograd force helper they share.

An action is a small callable object with its couplings as attributes:
``action(x)`` returns the Euclidean action ``S(x)`` of shape ``(B,)`` for a batched
field ``x`` of shape ``(B, *lattice)``; ``logp = -S`` up to the unknown ``log Z``.
``action.force(x)`` returns ``-dS/dx`` with the shape of ``x``.
"""

from __future__ import annotations

import torch

__all__ = ["autograd_force"]


def autograd_force(action, x: torch.Tensor) -> torch.Tensor:
    """Return ``F = -dS/dx`` by automatic differentiation.

    Works inside and outside ``torch.no_grad()`` and never builds a graph that
    reaches the caller's ``x``.
    """
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(action(y).sum(), y)
    return -grad
