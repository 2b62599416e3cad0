"""What samplers share: the one Metropolis–Hastings test, and the state of action-based chains."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks

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

    Raises:
        TypeError: if ``log_ratio`` is not a tensor or ``generator`` not a generator.
        ValueError: for a ``log_ratio`` that is not float32/float64, or a generator on
            another device.
    """
    checks.tensor("log_ratio", log_ratio, finite=False)  # NaN and ±inf have a meaning here
    checks.random_generator("generator", generator, log_ratio.device)
    return _accept(log_ratio, generator)


def _accept(log_ratio: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """:func:`metropolis_accept` without the input checks, for the samplers' steps."""
    u = torch.rand(
        log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype
    )
    # log(u) < log_ratio is False for NaN, so a NaN proposal is rejected.
    return torch.log(u) < log_ratio


def initial_action(action, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``action(x)``, ``(B,)``, of a sampler's starting fields, checked once at ``init``.

    Raises:
        ValueError: naming ``name`` if the action refuses the fields (a field of another
            theory, say), returns another shape than ``(B,)``, or a non-finite action (a
            field so large that its action overflows would never move).
    """
    try:
        with torch.no_grad():
            S = action(x)
    except torch.cuda.OutOfMemoryError:
        raise
    except (TypeError, ValueError, IndexError, RuntimeError) as err:
        raise ValueError(
            f"{name} {tuple(x.shape)} {x.dtype} does not suit the action {action!r}: {err}"
        ) from err
    if not isinstance(S, torch.Tensor) or tuple(S.shape) != (x.shape[0],):
        got = tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__
        raise ValueError(
            f"the action {action!r} must return shape ({x.shape[0]},) for {name} of shape "
            f"{tuple(x.shape)}, got {got}"
        )
    if not bool(torch.isfinite(S).all()):
        n_bad = int((~torch.isfinite(S)).sum())
        raise ValueError(
            f"{name} has a non-finite action in {n_bad} of {x.shape[0]} chains (a field too "
            f"large for its dtype?); such a chain would never move"
        )
    return S
