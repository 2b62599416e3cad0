"""Base distributions r(z) for flows: each samples `(B, *lattice_shape)` and scores `(B,)`.

``lattice_shape`` is the per-sample shape of the field the prior draws: ``(L0, L1)`` for a
scalar field, ``(2, L0, L1)`` for 2D U(1) link angles. :class:`~lqft_lab.flows.base.FlowModel`
reads it to check the fields it scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..lattice import lattice_shape as _lattice_shape

__all__ = ["NormalPrior", "UniformAnglePrior"]


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


class UniformAnglePrior(nn.Module):
    """Independent uniform link angles: the Haar measure of compact U(1) on every link.

    Draws ``(B, d, *lattice)`` angles in ``[-π, π)`` (the range of
    :func:`lqft_lab.actions.u1.wrap_angle`), one link per direction ``mu < d`` per site. The
    density is that of the circle, ``r(z) = (2π)^(-n_links)``, so :meth:`log_prob` is the same
    constant for every input, wrapped or not: angles are only defined modulo ``2π``.

    Device and dtype follow the module, as for :class:`NormalPrior`.

    Args:
        lattice_shape: lattice extents, e.g. ``(8, 8)``; the number of directions ``d`` is its
            length. The ``lattice_shape`` *attribute* is the per-sample field shape
            ``(d, *lattice)``, e.g. ``(2, 8, 8)``, as :class:`FlowModel` expects; the extents
            alone are in ``lattice``.

    Example:
        >>> prior = UniformAnglePrior((8, 8))
        >>> prior.sample(4).shape, prior.lattice_shape
        (torch.Size([4, 2, 8, 8]), (2, 8, 8))
    """

    def __init__(self, lattice_shape: Sequence[int]):
        super().__init__()
        self.lattice = _lattice_shape(tuple(lattice_shape))
        self.lattice_shape = (len(self.lattice), *self.lattice)
        self.n_links = math.prod(self.lattice_shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        u = torch.rand(
            (batch_size, *self.lattice_shape), generator=generator, device=a.device, dtype=a.dtype
        )
        return 2 * math.pi * u - math.pi

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return z.new_full((z.shape[0],), -self.n_links * math.log(2 * math.pi))
