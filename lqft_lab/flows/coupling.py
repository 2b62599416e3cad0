"""Affine (real NVP) coupling layers with a fixed mask, for scalar fields ``(B, L, L)``.

With a frozen mask ``m`` (1 on frozen sites) the layer updates the active sites,

    x = m ⊙ z + (1 - m) ⊙ (z ⊙ exp(s(m ⊙ z)) + t(m ⊙ z)),
    logJ = Σ_active s,

so the Jacobian is triangular and its log-determinant is exact (Dinh et al.,
arXiv:1605.08803; Albergo et al., arXiv:2101.08176, sec. III).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import checks
from .base import check_flow_input

__all__ = ["AffineCoupling"]


class AffineCoupling(nn.Module):
    """Real NVP coupling ``z → x`` on a 2D scalar field.

    Args:
        net: maps ``(B, 1, L, L)`` (frozen sites, active zeroed) to ``(B, 2, L, L)``: ``s, t``.
        mask: ``(L, L)`` tensor, 1 on frozen sites and 0 on updated ones.

    Raises:
        TypeError: ``net`` is not a module, ``mask`` not a tensor.
        ValueError: ``mask`` is not a 2D floating tensor holding only 0 and 1, with both.
    """

    def __init__(self, net: nn.Module, mask: torch.Tensor):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise checks.ArgumentKindError(
                f"net must be a torch.nn.Module, got {type(net).__name__}"
            )
        _check_mask(mask)
        self.net = net
        self.register_buffer("mask", mask.clone())

    def _check(self, name: str, y) -> None:
        check_flow_input(self, name, y, complex_field=False)
        if y.shape[1:] != self.mask.shape:
            raise ValueError(
                f"{name} of shape {tuple(y.shape)} does not fit this layer's lattice "
                f"(B, {', '.join(map(str, self.mask.shape))})"
            )

    def _s_t(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s, t`` from the frozen sites of ``y``, both zero on the frozen sites."""
        st = self.net((self.mask * y).unsqueeze(1)) * (1 - self.mask)  # (B, 2, L, L)
        return st[:, 0], st[:, 1]

    # With s = t = 0 on the frozen sites, x = z·exp(s) + t leaves them unchanged exactly
    # (exp(0) = 1), so no separate frozen/active split is needed: fewer tensor operations,
    # which is what a step at the tutorial's sizes is made of.
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check("z", z)
        s, t = self._s_t(z)
        x = torch.addcmul(t, z, torch.exp(s))
        return x, s.flatten(1).sum(dim=1)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check("x", x)
        s, t = self._s_t(x)
        z = (x - t) * torch.exp(-s)
        return z, -s.flatten(1).sum(dim=1)


def _check_mask(mask) -> None:
    """A coupling's mask is what keeps it invertible: exactly 0 or 1 on every site, both."""
    if not isinstance(mask, torch.Tensor):
        raise checks.ArgumentKindError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() != 2 or not mask.is_floating_point():
        raise ValueError(
            f"mask must be a 2D floating (L0, L1) tensor, got shape {tuple(mask.shape)} "
            f"{mask.dtype}"
        )
    if mask.is_meta:  # a shape-only model (lqft_lab.io checks checkpoints against one)
        return
    binary = (mask == 0) | (mask == 1)
    if not bool(binary.all()) or not bool((mask == 1).any()) or not bool((mask == 0).any()):
        raise ValueError(
            "mask must hold exactly 0 (updated) and 1 (frozen) sites, both present: any other "
            "value makes the layer non-invertible"
        )
