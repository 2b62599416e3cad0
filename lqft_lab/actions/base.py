"""What every action promises, and the one autograd force helper they share.

An action is a small callable object with its couplings as attributes:
``action(x)`` returns the Euclidean action ``S(x)`` of shape ``(B,)`` for a batched
field ``x`` of shape ``(B, *lattice)``; ``logp = -S`` up to the unknown ``log Z``.
``action.force(x)`` returns ``-dS/dx`` with the shape of ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import checks
from ..lattice import check_field

__all__ = ["autograd_force"]


def check_lattice_field(x: torch.Tensor, name: str) -> None:
    """:func:`lqft_lab.lattice.check_field` for an action's input, every refusal naming ``name``.

    Checks the kind, dtype (half precision refused), batch and extents (``>= 2``), all
    without a device sync; never the values (package docstring).
    """
    if isinstance(x, torch.Tensor) and x.dim() >= 2 and min(x.shape[1:]) < 2:
        raise ValueError(f"every lattice extent of {name} must be >= 2, got shape {tuple(x.shape)}")
    check_field(x, name=name)


def autograd_force(action: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return ``F = -dS/dx`` by automatic differentiation.

    Works inside and outside ``torch.no_grad()`` and never builds a graph that
    reaches the caller's ``x``. An action that does not depend on ``x`` has zero force.

    Args:
        action: a callable ``S(x) -> (B,)``.
        x: a real field ``(B, *lattice)``, float32 or float64.

    Raises:
        TypeError: if ``action`` is not callable or ``x`` is not a tensor.
        ValueError: if ``x`` is not float32/float64 (half precision is refused) or
            ``action(x)`` is not a real tensor of shape ``(B,)``.
    """
    if not callable(action):
        raise TypeError(f"action must be callable, S(x) -> (B,), got {type(action).__name__}")
    checks.tensor("x", x, finite=False)  # dtype only: this runs every HMC step
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        S = action(y)
        if not isinstance(S, torch.Tensor) or not S.is_floating_point() or S.shape != x.shape[:1]:
            got = tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__
            raise ValueError(
                f"action must return a real tensor of shape (B,) = {tuple(x.shape[:1])}, got {got}"
            )
        if not S.requires_grad:  # S does not depend on x
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(S.sum(), y, allow_unused=True)
    return torch.zeros_like(x) if grad is None else -grad
