"""The flow contract: bijections from base space to field space, and the model around them.

Direction (note: the opposite of zuko's): a flow maps **base → field**.

* ``layer.forward(z) -> (x, logJ)`` with ``logJ = log|det ∂x/∂z|`` per sample, shape ``(B,)``,
  on the input's device and dtype;
* ``layer.reverse(x) -> (z, logJ_inv)`` with ``logJ_inv = log|det ∂z/∂x| = -logJ``.

A :class:`FlowModel` is a prior ``r(z)`` plus a :class:`Flow` (a stack of layers). The model
density ``logq(x) = logr(z) - logJ`` is accumulated in exactly one place, :meth:`FlowModel.sample`
(and its inverse in :meth:`FlowModel.log_prob`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["Flow", "FlowModel"]


class Flow(nn.Module):
    """A composition of bijective layers, applied in order base → field.

    Args:
        layers: modules each implementing ``forward(z) -> (x, logJ)`` and
            ``reverse(x) -> (z, logJ_inv)``.
    """

    def __init__(self, layers: Iterable[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logJ = z.real.new_zeros(z.shape[0])  # real also for complex (SU(N)) fields
        x = z
        for layer in self.layers:
            x, ld = layer(x)
            logJ = logJ + ld
        return x, logJ

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logJ_inv = x.real.new_zeros(x.shape[0])
        z = x
        for layer in reversed(self.layers):
            z, ld = layer.reverse(z)
            logJ_inv = logJ_inv + ld
        return z, logJ_inv


class FlowModel(nn.Module):
    """A normalizing-flow density ``q(x)``: a prior pushed through a :class:`Flow`.

    Args:
        prior: an object with ``sample(B, generator=None) -> z`` and ``log_prob(z) -> (B,)``,
            and a ``lattice_shape`` attribute.
        flow: the base → field bijection.

    Example:
        >>> x, logq = model.sample(64)          # x: (64, L, L), logq: (64,)
        >>> torch.allclose(model.log_prob(x), logq, atol=1e-4)
        True
    """

    def __init__(self, prior: nn.Module, flow: Flow):
        super().__init__()
        self.prior = prior
        self.flow = flow

    @property
    def lattice_shape(self) -> tuple[int, ...]:
        return tuple(self.prior.lattice_shape)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x ~ q`` and return ``(x, logq(x))`` (differentiable w.r.t. the weights)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        z = self.prior.sample(batch_size, generator=generator)
        x, logJ = self.flow(z)
        logq = self.prior.log_prob(z) - logJ  # change of variables, base -> field
        return x, logq

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``logq(x)`` of given fields ``(B, *lattice)`` through the reverse flow."""
        if x.shape[1:] != torch.Size(self.lattice_shape):
            raise ValueError(
                f"field shape {tuple(x.shape)} does not match the model's lattice "
                f"(B, {', '.join(map(str, self.lattice_shape))})"
            )
        z, logJ_inv = self.flow.reverse(x)
        return self.prior.log_prob(z) + logJ_inv
