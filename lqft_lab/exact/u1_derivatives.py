"""Analytic references: β-derivatives of 2D U(1) expectation values on a periodic torus.

The targets of notebook 06's Feynman–Hellmann estimators. With ``p_β ∝ e^{β E}``,
``E = Σ_P cos θ_P``, every β-derivative is a connected correlator with the energy,
``d⟨O⟩/dβ = Cov(O, E)``; here they are summed exactly from the character expansion of
:mod:`lqft_lab.exact.u1` (same conventions, same argument checks):

* ``d log Z/dβ = V ⟨cos θ_P⟩``;
* ``d⟨cos θ_P⟩/dβ = Var(E)/V``;
* ``dχ_t/dβ = Cov(Q², E)/V``.

Derivation of the last. With ``Z = Σ_n I_n^V``, as in
:func:`~lqft_lab.exact.u1.u1_topological_susceptibility`,
``χ_t = Σ_n T_n / (4π² Σ_n I_n^V)`` with ``T_n = I_n^{V-1} B_n - (V-1) I_n^{V-2} A_n²``.
The β-derivatives of the three moments follow from ``∂_β e^{β cos φ} = cos φ e^{β cos φ}``
and ``cos φ · g(nφ) = [g((n+1)φ) + g((n-1)φ)]/2``:
``I_n' = (I_{n-1} + I_{n+1})/2``, ``A_n' = (A_{n-1} + A_{n+1})/2`` (``A_{-n} = -A_n``),
``B_n' = (B_{n-1} + B_{n+1})/2`` (``B_{-n} = B_n``). Then
``dχ_t/dβ = [Σ_n T_n' - (Σ_n T_n) V ⟨cos θ_P⟩] / (4π² Σ_n I_n^V)``. Every term of ``T_n``
and ``T_n'`` is homogeneous of degree ``V`` in the Bessel-like quantities, so each is
divided by ``I_0`` before the powers are taken, as in :mod:`lqft_lab.exact.u1`.

References:
    R. Abbott et al., arXiv:2401.10874 (correlated ensembles; Feynman–Hellmann);
    C. Bonati, P. Rossi, arXiv:1901.09830 (χ_t on the finite torus).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .u1 import (
    _sum_over_z,
    _u1_bessel,
    _u1_phi_moments,
    _u1_validate,
    u1_energy_variance,
    u1_plaquette,
)

__all__ = ["u1_log_z_derivative", "u1_plaquette_derivative", "u1_susceptibility_derivative"]


def u1_log_z_derivative(beta: float, L: int | Sequence[int]) -> float:
    """Exact ``d log Z/dβ = ⟨E⟩ = V ⟨cos θ_P⟩`` on the torus.

    Args and raises as for :func:`lqft_lab.exact.u1.u1_log_z`.
    """
    _, V = _u1_validate(beta, L)
    return V * u1_plaquette(beta, L)


def u1_plaquette_derivative(beta: float, L: int | Sequence[int]) -> float:
    """Exact ``d⟨cos θ_P⟩/dβ = Var(E)/V`` on the torus (``E = Σ_P cos θ_P``).

    The Feynman–Hellmann target of notebook 06: ``0.015608`` at ``β = 6``, ``L = 8``.

    Args and raises as for :func:`lqft_lab.exact.u1.u1_log_z`.

    References:
        R. Abbott et al., arXiv:2401.10874.
    """
    _, V = _u1_validate(beta, L)
    return u1_energy_variance(beta, L) / V


def u1_susceptibility_derivative(beta: float, L: int | Sequence[int]) -> float:
    """Exact ``dχ_t/dβ = Cov(Q², E)/V`` of the geometric charge on the torus.

    Summed from the character expansion (derivation in the module docstring); ``χ_t`` is
    :func:`lqft_lab.exact.u1.u1_topological_susceptibility`. Accurate to about ``1e-15``
    absolute; where that function clips a frozen ``χ_t`` at zero (``V ≲ 2β``) this result
    is rounding noise too.

    Args and raises as for :func:`lqft_lab.exact.u1.u1_log_z`.

    Example:
        >>> round(u1_susceptibility_derivative(6.0, 8), 7)
        -0.001095
    """
    beta, V = _u1_validate(beta, L)
    i_n, n_max = _u1_bessel(beta)
    # moments for n = 0 .. n_max + 1; the top one enters only through I_{n_max}^{V-2} ≈ 0
    A, B = _u1_phi_moments(i_n, n_max, n_top=n_max + 1)
    n = np.arange(n_max + 1)
    scale = i_n[0]
    r = i_n[: n_max + 1] / scale
    dr = (i_n[np.abs(n - 1)] + i_n[n + 1]) / (2 * scale)
    a, b = A[: n_max + 1] / scale, B[: n_max + 1] / scale
    a_below = np.where(n >= 1, A[np.abs(n - 1)], -A[1]) / scale  # A_{n-1}, A_{-1} = -A_1
    da = (a_below + A[n + 1] / scale) / 2
    db = (B[np.abs(n - 1)] + B[n + 1]) / (2 * scale)
    t = r ** (V - 1) * b - (V - 1) * r ** (V - 2) * a**2
    dt = (
        (V - 1) * r ** (V - 2) * dr * b
        + r ** (V - 1) * db
        - (V - 1) * (V - 2) * r ** (V - 3) * dr * a**2
        - 2 * (V - 1) * r ** (V - 2) * a * da
    )
    z = _sum_over_z(r**V)
    mean_energy = V * _sum_over_z(r ** (V - 1) * dr) / z  # V ⟨cos θ_P⟩, as u1_plaquette
    chi_times_4pi2 = _sum_over_z(t) / z
    if chi_times_4pi2 <= 0:  # where u1_topological_susceptibility clips: rounding noise only
        return 0.0
    return (_sum_over_z(dt) / z - chi_times_4pi2 * mean_energy) / (4 * math.pi**2)
