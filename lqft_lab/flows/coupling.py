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

    def _s_t(self, frozen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(frozen.unsqueeze(1))  # (B, 2, L, L)
        active = 1 - self.mask
        return active * out[:, 0], active * out[:, 1]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frozen = self.mask * z
        s, t = self._s_t(frozen)
        x = frozen + (1 - self.mask) * z * torch.exp(s) + t
        return x, s.flatten(1).sum(dim=1)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frozen = self.mask * x
        s, t = self._s_t(frozen)
        z = frozen + (1 - self.mask) * (x - t) * torch.exp(-s)
        return z, -s.flatten(1).sum(dim=1)
