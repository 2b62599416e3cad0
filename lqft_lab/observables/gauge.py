"""Observables of 2D U(1) gauge fields: plaquette, Wilson loops and the topological charge.

Every function takes link angles ``theta`` of shape ``(B, 2, L0, L1)`` (the conventions of
:mod:`lqft_lab.actions.u1`) and returns one number per configuration, ``(B,)``, on the
input's device and dtype. The links' dtype and shape are checked (``TypeError`` for a
non-tensor, ``ValueError`` otherwise), their finiteness is not: these run inside chains,
every step, where the check would wait for the device; NaN in gives NaN out, and the
Γ-method refuses it. All are gauge invariant. Their exact finite-volume expectation
values under the Wilson action are in :mod:`lqft_lab.exact` (``u1_plaquette``,
``u1_wilson_loop``, ``u1_topological_susceptibility``).

References:
    G. Kanwar et al., arXiv:2003.06413 (plaquette and geometric topological charge);
    C. Bonati, P. Rossi, arXiv:1901.09830 (the geometric charge on the lattice).
"""

from __future__ import annotations

import math

import torch

from .. import checks
from ..actions.u1 import check_links, plaquette_angles, wrap_angle
from ..lattice import shift

__all__ = ["plaquette", "topological_charge", "wilson_loop_angles", "wilson_loop"]


def plaquette(theta: torch.Tensor) -> torch.Tensor:
    """Average plaquette ``(1/V) Σ_x cos θ_P(x)``, shape ``(B,)``.

    For the Wilson action ``S = -β V · plaquette(θ)``.
    """
    return torch.cos(plaquette_angles(theta)).flatten(1).mean(dim=1)


def topological_charge(theta: torch.Tensor) -> torch.Tensor:
    """Geometric topological charge ``Q = (1/2π) Σ_x wrap(θ_P(x))``, shape ``(B,)``.

    ``wrap`` maps into ``[-π, π)``. On a periodic lattice the unwrapped plaquette angles sum
    to exactly zero (each link enters two plaquettes with opposite signs), so ``Q`` is an
    integer up to rounding: ``Q = -Σ_x n_x`` where ``wrap(θ_P) = θ_P - 2π n_x``. Return
    the float sum (callers may ``round()``); its distance from an integer measures rounding.

    References:
        G. Kanwar et al., arXiv:2003.06413, eq. (8); C. Bonati, P. Rossi, arXiv:1901.09830.
    """
    q = wrap_angle(plaquette_angles(theta)).flatten(1).sum(dim=1)
    return q / (2 * math.pi)


def _check_extent(value: int, name: str, extent: int, axis: int) -> int:
    value = checks.integer(name, value)  # TypeError for floats, bools, strings
    if not 1 <= value <= extent:
        raise ValueError(
            f"{name} must be an integer in [1, {extent}] (the extent of direction {axis}), "
            f"got {value!r}"
        )
    return value


def wilson_loop_angles(theta: torch.Tensor, R: int, T: int) -> torch.Tensor:
    """Angle of the ``R × T`` rectangular Wilson loop with lower-left corner ``x``.

    The loop runs ``T`` links along direction 0 from ``x``, then ``R`` links along direction
    1, then back ``T`` along 0 and ``R`` along 1 (the orientation of :func:`plaquette_angles`,
    so ``R = T = 1`` gives ``θ_P``). It equals the sum of the ``R·T`` plaquette angles it
    encloses (lattice Stokes theorem).

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        R: spatial extent, along direction 1, ``1 <= R <= L1``.
        T: temporal extent, along direction 0, ``1 <= T <= L0``.

    Returns:
        Unwrapped loop angles ``(B, L0, L1)``.

    Raises:
        TypeError: if ``theta`` is not a tensor or ``R``/``T`` not integers.
        ValueError: for links of the wrong dtype or shape, or ``R``/``T`` out of range.
    """
    check_links(theta)
    R = _check_extent(R, "R", theta.shape[3], 1)
    T = _check_extent(T, "T", theta.shape[2], 0)
    t0, t1 = theta[:, 0], theta[:, 1]  # (B, L0, L1) each
    line0 = sum(shift(t0, 0, t) for t in range(T))  # Σ_{t<T} θ_0(x + t 0̂)
    line1 = sum(shift(t1, 1, r) for r in range(R))  # Σ_{r<R} θ_1(x + r 1̂)
    return line0 + shift(line1, 0, T) - shift(line0, 1, R) - line1


def wilson_loop(theta: torch.Tensor, R: int, T: int) -> torch.Tensor:
    """Rectangular Wilson loop ``W(R, T) = (1/V) Σ_x cos(loop angle)``, shape ``(B,)``.

    ``R`` links along direction 1 ("space") and ``T`` along direction 0 ("time"); see
    :func:`wilson_loop_angles`. ``W(1, 1)`` is the :func:`plaquette`. The imaginary part
    averages to zero by charge conjugation and is not returned.
    """
    return torch.cos(wilson_loop_angles(theta, R, T)).flatten(1).mean(dim=1)
