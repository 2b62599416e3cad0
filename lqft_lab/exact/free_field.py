"""Analytic references: the free scalar field (λ = 0, m² > 0) on a finite periodic lattice.

These are the exact anchors that φ⁴ samplers, flows and observables are tested against.
Every function takes a lattice ``shape`` (any dimension, integer extents >= 2, at most
``2**24`` sites) and ``m2 > 0`` (within ``[1e-300, 1e300]``, where ``1/(2m²)`` is a float64)
and returns finite float64 NumPy data (arrays or floats); nothing here is random. Bad
arguments raise ``TypeError`` (the wrong kind: a string for ``m2``, ``None`` for ``shape``)
or ``ValueError`` (a value outside those ranges), naming the argument.

Derivation (convention of :class:`lqft_lab.actions.Phi4Action`, arXiv:2101.08176 eq. (13)).
At λ = 0 the action is

    S(φ) = Σ_x [ -2 Σ_μ φ_x φ_{x+μ} + (2d + m²) φ_x² ] = φᵀ K φ,   K = -Δ + m²,

because ``Σ_x Σ_μ (φ_{x+μ} - φ_x)² = Σ_x [2d φ_x² - 2 Σ_μ φ_x φ_{x+μ}]`` is ``φᵀ(-Δ)φ``
with Δ the periodic lattice Laplacian. The weight ``e^{-φᵀKφ} = e^{-φᵀ(2K)φ/2}`` is a
Gaussian of covariance ``(2K)⁻¹`` (note the 2: there is no ½ in front of the action), so

    ⟨φ_x φ_y⟩ = (2K)⁻¹_{xy} = G(x - y),   G(x) = (1/V) Σ_p e^{ipx} G̃(p),
    G̃(p) = 1 / (2 (p̂² + m²)),   p̂² = Σ_μ 4 sin²(p_μ/2),   p_μ = 2π n_μ / L_μ,

with ``n_μ = 0, …, L_μ - 1``. Hence ``χ₂ = Σ_x G(x) = G̃(0) = 1/(2m²)`` in any volume.

Zero momentum: ``C(t) = Σ_x⃗ G(t, x⃗)`` is the one-dimensional propagator of
``2(-∂_t² + m²)``, which for ``t ≠ 0 (mod L_0)`` obeys
``C(t+1) + C(t-1) = (2 + m²) C(t)``. So ``C(t) ∝ cosh(m_p (t - L_0/2))`` with

    cosh(m_p) = 1 + m²/2,   equivalently   m_p = 2 arcsinh(m/2),

and explicitly ``C(t) = cosh(m_p (t - L_0/2)) / (4 sinh(m_p) sinh(m_p L_0/2))`` for
``0 <= t <= L_0``. The arccosh effective mass of this ``C`` equals ``m_p`` at every
``t = 1, …, L_0 - 1``; the lattice pole mass ``m_p`` is below the bare ``m`` (``m_p → m``
as ``m → 0``).

Partition function: ``∫ dφ e^{-φᵀKφ} = π^{V/2} det(K)^{-1/2}``, so

    log Z = (V/2) log π - (1/2) Σ_p log(p̂² + m²),

which anchors free-energy estimates (``log Z = -F``) of flows at λ = 0.

References:
    I. Montvay, G. Münster, "Quantum Fields on a Lattice" (CUP 1994), ch. 3 (free scalar
    field on the lattice).
    M. S. Albergo et al., "Introduction to Normalizing Flows for Lattice Field Theory",
    arXiv:2101.08176.
    M. S. Albergo, G. Kanwar, P. E. Shanahan, arXiv:1904.12072, sec. IV.

The U(1) references are in :mod:`lqft_lab.exact.u1`, the SU(N) ones in
:mod:`lqft_lab.exact.sun`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

from . import _args

__all__ = [
    "lattice_momentum_squared",
    "free_field_momentum_propagator",
    "free_field_propagator",
    "free_field_phi2",
    "free_field_chi2",
    "free_field_ising_energy",
    "free_field_zero_momentum_correlator",
    "free_field_pole_mass",
    "free_field_log_z",
]


#: Largest lattice volume accepted: the references build arrays of the lattice's size.
MAX_VOLUME = 2**24
#: ``m2`` range: beyond it ``χ₂ = 1/(2 m²)`` or ``2 (p̂² + m²)`` leaves float64.
M2_RANGE = (1e-300, 1e300)


def _validate(shape: int | Sequence[int], m2: float) -> tuple[tuple[int, ...], float]:
    return _validate_shape(shape), _validate_m2(m2)


def _validate_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return _args.lattice("shape", shape, dim=None, max_volume=MAX_VOLUME)


def _validate_m2(m2: float) -> float:
    if isinstance(m2, bool) or not isinstance(m2, Real):
        raise TypeError(f"m2 must be a real number, got {m2!r}")
    m2 = float(m2)
    low, high = M2_RANGE
    if not (math.isfinite(m2) and m2 > 0):
        raise ValueError(
            f"the free field needs m2 > 0 (the zero mode diverges otherwise), got m2={m2}"
        )
    if not low <= m2 <= high:
        raise ValueError(
            f"the free field needs m2 > 0 within [{low:g}, {high:g}] (outside it "
            f"1/(2 m2) or 2 (p̂² + m2) overflows float64), got m2={m2}"
        )
    return m2


def lattice_momentum_squared(shape: int | Sequence[int]) -> np.ndarray:
    """``p̂² = Σ_μ 4 sin²(p_μ/2)`` on the momentum grid ``p_μ = 2π n_μ / L_μ``.

    Args:
        shape: lattice extents (an int means a square 2D lattice), each >= 2.

    Returns:
        float64 array of the lattice shape, in FFT order (``[0, …, 0]`` is ``p = 0``).

    Raises:
        TypeError, ValueError: for a bad ``shape`` (module docstring).
    """
    shape = _validate_shape(shape)
    axes = [4 * np.sin(np.pi * np.arange(n) / n) ** 2 for n in shape]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.sum(grids, axis=0)


def free_field_momentum_propagator(shape: int | Sequence[int], m2: float) -> np.ndarray:
    """``G̃(p) = 1 / (2 (p̂² + m²))`` on the momentum grid (FFT order), float64.

    Raises:
        TypeError, ValueError: for a bad ``m2`` or ``shape`` (module docstring).
    """
    shape, m2 = _validate(shape, m2)
    return 1.0 / (2.0 * (lattice_momentum_squared(shape) + m2))


def free_field_propagator(shape: int | Sequence[int], m2: float) -> np.ndarray:
    """Exact ``G(x) = ⟨φ_0 φ_x⟩`` of the free field on a periodic lattice, float64.

    Args:
        shape: lattice extents, e.g. ``(8, 8)``; any dimension.
        m2: mass squared, ``> 0``.

    Returns:
        Array of the lattice shape indexed by the separation ``x``.

    Example:
        >>> G = free_field_propagator((4, 4), 0.5)
        >>> bool(abs(G.sum() - 1.0) < 1e-12)   # χ₂ = 1/(2 m²)
        True

    Raises:
        TypeError, ValueError: for a bad ``m2`` or ``shape`` (module docstring).
    """
    Gp = free_field_momentum_propagator(shape, m2)
    # np.fft.ifftn includes the 1/V of G(x) = (1/V) Σ_p e^{ipx} G̃(p)
    return np.fft.ifftn(Gp).real


def free_field_phi2(shape: int | Sequence[int], m2: float) -> float:
    """``⟨φ_x²⟩ = G(0)``."""
    return float(free_field_propagator(shape, m2).flat[0])


def free_field_chi2(shape: int | Sequence[int], m2: float) -> float:
    """Two-point susceptibility ``χ₂ = Σ_x G(x) = G̃(0) = 1/(2 m²)`` (volume independent)."""
    _, m2 = _validate(shape, m2)
    return 1.0 / (2.0 * m2)


def free_field_ising_energy(shape: int | Sequence[int], m2: float) -> float:
    """Ising energy ``E = (1/d) Σ_μ G(μ̂)``, the nearest-neighbour correlator."""
    G = free_field_propagator(shape, m2)
    d = G.ndim
    units = [tuple(1 if nu == mu else 0 for nu in range(d)) for mu in range(d)]
    return float(sum(G[u] for u in units) / d)


def free_field_zero_momentum_correlator(shape: int | Sequence[int], m2: float) -> np.ndarray:
    """``C(t) = Σ_x⃗ G(t, x⃗)`` with time along direction 0, shape ``(L_0,)``.

    Equals ``cosh(m_p (t - L_0/2)) / (4 sinh(m_p) sinh(m_p L_0/2))`` with ``m_p`` from
    :func:`free_field_pole_mass`.
    """
    G = free_field_propagator(shape, m2)
    return G.reshape(G.shape[0], -1).sum(axis=1)  # (L_0, V / L_0) -> (L_0,)


def free_field_pole_mass(m2: float) -> float:
    """Lattice pole mass ``m_p`` with ``cosh(m_p) = 1 + m²/2``, i.e. ``2 arcsinh(m/2)``.

    The exact arccosh effective mass of the free field at every ``t ≠ 0 (mod L_0)``, in any
    volume and dimension.

    Raises:
        TypeError, ValueError: for a bad ``m2`` (module docstring).
    """
    m2 = _validate_m2(m2)
    return 2.0 * math.asinh(math.sqrt(m2) / 2.0)


def free_field_log_z(shape: int | Sequence[int], m2: float) -> float:
    """``log Z = log ∫ dφ e^{-S} = (V/2) log π - (1/2) Σ_p log(p̂² + m²)``.

    Uses ``∫ dφ e^{-φᵀKφ} = π^{V/2} det(K)^{-1/2}`` with ``det K = Π_p (p̂² + m²)``.
    """
    shape, m2 = _validate(shape, m2)
    V = math.prod(shape)
    return 0.5 * V * math.log(math.pi) - 0.5 * float(
        np.sum(np.log(lattice_momentum_squared(shape) + m2))
    )
