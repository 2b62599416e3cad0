"""What samplers share: the one Metropolis–Hastings test, and the state of action-based chains."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["metropolis_accept", "FieldState"]


@dataclass(frozen=True)
class FieldState:
    """One configuration per chain, with its action cached.

    The state of samplers that move in field space by the action alone (HMC, local
    Metropolis); ``HMCState`` and ``LocalMetropolisState`` are names for it.

    Attributes:
        x: fields ``(B, *lattice)``.
        S: their actions ``(B,)``.
    """

    x: torch.Tensor
    S: torch.Tensor


def metropolis_accept(
    log_ratio: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Accept with probability ``min(1, exp(log_ratio))``, elementwise.

    Args:
        log_ratio: log of the acceptance ratio, e.g. ``-ΔH`` for HMC or
            ``(logp' - logq') - (logp - logq)`` for an independence sampler. NaN counts
            as a rejection (never as an acceptance).
        generator: random source; the uniforms are drawn on ``log_ratio``'s device.

    Returns:
        Boolean tensor of the shape of ``log_ratio``.
    """
    u = torch.rand(
        log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype
    )
    # log(u) < log_ratio is False for NaN, so a NaN proposal is rejected.
    return torch.log(u) < log_ratio
