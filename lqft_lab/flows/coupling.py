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

__all__ = ["AffineCoupling"]


class AffineCoupling(nn.Module):
    """Real NVP coupling ``z → x`` on a 2D scalar field.

    Args:
        net: maps ``(B, 1, L, L)`` (frozen sites, active zeroed) to ``(B, 2, L, L)``: ``s, t``.
        mask: ``(L, L)`` tensor, 1 on frozen sites and 0 on updated ones.
    """

    def __init__(self, net: nn.Module, mask: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mask", mask.clone())

    def _s_t(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s, t`` from the frozen sites of ``y``, both zero on the frozen sites."""
        st = self.net((self.mask * y).unsqueeze(1)) * (1 - self.mask)  # (B, 2, L, L)
        return st[:, 0], st[:, 1]

    # With s = t = 0 on the frozen sites, x = z·exp(s) + t leaves them unchanged exactly
    # (exp(0) = 1), so no separate frozen/active split is needed: fewer tensor operations,
    # which is what a step at the tutorial's sizes is made of.
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._s_t(z)
        x = torch.addcmul(t, z, torch.exp(s))
        return x, s.flatten(1).sum(dim=1)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._s_t(x)
        z = (x - t) * torch.exp(-s)
        return z, -s.flatten(1).sum(dim=1)
