"""Base distributions r(z) for flows: each samples `(B, *lattice)` and scores `(B,)`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..lattice import lattice_shape as _lattice_shape

__all__ = ["NormalPrior"]


class NormalPrior(nn.Module):
    """Independent Gaussians ``N(0, σ²)`` at every site.

    The device and dtype follow the module (``prior.to(device, dtype)``), through a
    zero-size buffer, so a model moved with ``.to`` samples where it lives.

    Args:
        lattice_shape: lattice extents, e.g. ``(8, 8)``.
        sigma: standard deviation (1 by default, as in arXiv:2101.08176).
    """

    def __init__(self, lattice_shape: Sequence[int], sigma: float = 1.0):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.lattice_shape = _lattice_shape(tuple(lattice_shape))
        self.sigma = float(sigma)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        z = torch.randn(
            (batch_size, *self.lattice_shape), generator=generator, device=a.device, dtype=a.dtype
        )
        return self.sigma * z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        n = math.prod(self.lattice_shape)
        quad = (z / self.sigma).pow(2).flatten(1).sum(dim=1)
        return -0.5 * quad - n * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))
