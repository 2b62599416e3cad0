"""Analytic references: 2D U(1) Wilson gauge theory on a periodic ``L0 × L1`` torus.

The exact finite-volume solution by the character expansion: ``log Z``, the plaquette,
Wilson loops, the topological susceptibility and the full charge distribution ``P(Q)``, the
anchors that U(1) samplers and flows are tested against. Every function takes
``0 <= beta <= 1e4`` (``BETA_MAX``) and a 2D lattice ``L`` (integer extents in
``[2, 2**20]``) and returns finite float64 NumPy data; nothing here is random. Bad arguments
raise ``TypeError`` (the wrong kind) or ``ValueError`` (out of range), naming the argument;
the sums are done in ratios ``I_n/I_0`` with ``log Z`` reassembled in logs, so large ``β``
and large ``L`` stay finite. The derivation is in
the comment block below; conventions are those of :class:`lqft_lab.actions.U1WilsonAction`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad_vec
from scipy.special import ive

from .. import checks
from . import _args

__all__ = [
    "u1_log_z",
    "u1_plaquette",
    "u1_plaquette_infinite_volume",
    "u1_wilson_loop",
    "u1_topological_susceptibility",
    "u1_topological_susceptibility_infinite_volume",
    "u1_charge_distribution",
    "u1_energy_variance",
    "u1_swap_acceptance",
    "u1_defect_references",
    "DefectReferences",
]

# ---------------------------------------------------------------------------------------------
# 2D U(1) Wilson gauge theory on a periodic L0 × L1 lattice (V = L0 L1 plaquettes).
#
# Conventions of lqft_lab.actions.U1WilsonAction: S = -β Σ_P cos θ_P, and
#     Z(β) = ∫ Π_links dθ/(2π) e^{-S},      (Haar measure normalised to 1 per link: Z(0) = 1).
#
# Character expansion: e^{β cos φ} = Σ_{n∈ℤ} I_n(β) e^{inφ}. On a 2D torus every link lies in
# exactly two plaquettes, with opposite orientations, so integrating a link gives δ_{n_P n_P'}
# for its two plaquettes; the plaquettes are connected, hence all n_P are equal and
#     Z = Σ_{n∈ℤ} I_n(β)^V.                                           (1)
# Then ⟨cos θ_P⟩ = (1/V) ∂_β log Z with I_n' = (I_{n-1} + I_{n+1})/2, and a Wilson loop enclosing
# A plaquettes shifts their representation by one (e^{iφ} e^{β cos φ} = Σ_n I_{n-1} e^{inφ}):
#     ⟨W_A⟩ = Σ_n I_n^{V-A} I_{n-1}^A / Z.                              (2)
#
# Topological charge Q = (1/2π) Σ_P wrap(θ_P). Weight each plaquette by e^{iθφ/2π} with
# φ = wrap(θ_P) ∈ [-π, π): the weight f(φ) = e^{β cos φ + iθφ/2π} is a function on the circle
# with Fourier coefficients c_n(θ) = ∫_{-π}^{π} dφ/(2π) e^{β cos φ} e^{i(θ/2π - n)φ}; the same
# link integrals as in (1) then give (n → -n)
#     Z(θ) = ∫ dU e^{-S + iθQ} = Σ_n g_n(t)^V,   t = θ/2π,
#     g_n(t) = ∫ dφ/(2π) e^{β cos φ} e^{i(n+t)φ}.
# (Equivalently: the unwrapped plaquette angles sum to 0 on the torus, so Σ_P wrap(θ_P) = 2πQ
# and the sum over n is the Fourier representation of that constraint.) g_n is real (the
# integrand's odd part integrates to zero), g_n(0) = I_n, g_n'(0) = -A_n, g_n''(0) = -B_n with
#     A_n = ∫ dφ/(2π) e^{β cos φ} φ sin(nφ),   B_n = ∫ dφ/(2π) e^{β cos φ} φ² cos(nφ).
# Z(θ) is even in θ, so ⟨Q²⟩ = -∂²_θ log Z(θ)|_0 = -Z''(0)/Z(0) and, with d/dθ = (1/2π) d/dt,
#     χ_t = ⟨Q²⟩/V = (1/4π²) Σ_n [I_n^{V-1} B_n - (V-1) I_n^{V-2} A_n²] / Σ_n I_n^V.    (3)
# A_n and B_n follow exactly from the Fourier series φ = 2 Σ_k (-1)^{k+1} sin(kφ)/k and
# φ² = π²/3 + 4 Σ_k (-1)^k cos(kφ)/k² on (-π, π) (Parseval; I_k decays faster than any power):
#     A_n = Σ_{k≥1} (-1)^{k+1}/k · (I_{|k-n|} - I_{k+n}),
#     B_n = (π²/3) I_n + 2 Σ_{k≥1} (-1)^k/k² · (I_{|k-n|} + I_{k+n}).
# Only the n = 0 term survives as V → ∞ (|I_n| < I_0 for n ≠ 0, β > 0):
#     ⟨cos θ_P⟩ → I_1/I_0,   χ_t → B_0/(4π² I_0) = ⟨φ²⟩_β/(4π²),   ⟨W_A⟩ → (I_1/I_0)^A,
# the last being the area law with string tension -log(I_1/I_0). At β = 0, χ_t = 1/12 in every
# volume with V >= 3. Every I_n is evaluated as ive(n, β) = e^{-β} I_n(β): the common factors
# e^{-β} cancel in ratios and are restored in log Z.
#
# References: C. Bonati, P. Rossi, arXiv:1901.09830, Phys. Rev. D 99 (2019) 054503 (U(N) and
# U(1) partition function and topological susceptibility at finite volume and spacing);
# T. G. Kovács, E. T. Tomboulis, Z. Schram, hep-th/9505005; J.-M. Drouffe, J.-B. Zuber,
# Phys. Rep. 102 (1983) 1 (character expansion); G. Kanwar et al., arXiv:2003.06413.
# ---------------------------------------------------------------------------------------------

# Bessel ratios I_n/I_0 below this are dropped; every term kept is multiplied by at least
# (I_n/I_0)^2, so the truncation error is far below double precision.
_U1_CUTOFF = 1e-40


#: Largest ``β`` accepted: the Bessel tables grow as ``√β`` (χ_t's moment sums as ``β``), and
#: at ``β = 10⁴`` the theory is the classical vacuum to ``1 - ⟨cos θ_P⟩ ≈ 5·10⁻⁵``.
BETA_MAX = 1e4
#: Largest ``(q_max + 1)(V + 1)``: the terms :func:`u1_charge_distribution` sums.
CHARGE_TERMS_MAX = 2**24


def _u1_validate(beta: float, L: int | Sequence[int]) -> tuple[float, int]:
    """Validate ``beta`` (finite, >= 0) and a 2D lattice; return ``(beta, V)``."""
    beta, shape = _u1_validate_shape(beta, L)
    return beta, shape[0] * shape[1]


def _u1_validate_shape(beta: float, L: int | Sequence[int]) -> tuple[float, tuple[int, int]]:
    """Validate ``beta`` (finite, in ``[0, BETA_MAX]``) and a 2D lattice ``L``."""
    beta = _args.coupling("beta", beta, high=BETA_MAX, why=" (the U(1) references)")
    return beta, _args.lattice("L", L, dim=2)


def _u1_bessel(beta: float) -> tuple[np.ndarray, int]:
    """A table of ``ive(m, β)``, ``m = 0, 1, …`` (at least ``3 n_max + 2`` entries), and the
    cut ``n_max`` with ``I_m/I_0 < _U1_CUTOFF`` for ``m >= n_max`` (so sums over
    ``|n| <= n_max`` are exact in float64)."""
    n_max = 16 + int(min(beta, 16 * math.sqrt(beta)) + 12 * math.sqrt(beta))
    while True:
        i_n = ive(np.arange(3 * n_max + 2), beta)
        above = np.nonzero(i_n[: n_max + 1] >= _U1_CUTOFF * i_n[0])[0]
        if above[-1] < n_max:
            return i_n, int(above[-1]) + 1
        n_max *= 2


def _u1_phi_moments(
    i_n: np.ndarray, n_max: int, n_top: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``A_n`` and ``B_n`` for ``n = 0, …, n_top`` (default ``n_max``, at most
    ``n_max + 1``) from the Bessel table (same scaling)."""
    k = np.arange(1, 2 * n_max + 1)  # I_{|k-n|} is negligible beyond k = 2 n_max >= n + n_max
    n = np.arange((n_max if n_top is None else n_top) + 1)[:, None]
    lower, upper = i_n[np.abs(k - n)], i_n[k + n]  # (n_top + 1, 2 n_max) each
    A = ((-1.0) ** (k + 1) / k * (lower - upper)).sum(axis=1)
    B = math.pi**2 / 3 * i_n[: n.size] + 2 * ((-1.0) ** k / k**2 * (lower + upper)).sum(axis=1)
    return A, B


def _sum_over_z(terms: np.ndarray) -> float:
    """``Σ_{n∈ℤ} t_n`` from ``t_0, …, t_N`` of a sequence even in ``n``."""
    return float(terms[0] + 2.0 * terms[1:].sum())


def u1_log_z(beta: float, L: int | Sequence[int]) -> float:
    """Exact ``log Z`` of 2D U(1) Wilson gauge theory on a periodic lattice.

    ``Z = ∫ Π_links dθ/(2π) e^{β Σ_P cos θ_P} = Σ_{n∈ℤ} I_n(β)^V``: the Haar measure is
    normalised to one per link, so ``Z(β = 0) = 1``, and ``Z`` is the integral that
    :class:`lqft_lab.actions.U1WilsonAction` defines (``S = -β Σ_P cos θ_P``). A flow's
    free-energy estimate ``log ⟨e^{-S}/q⟩`` targets this number when ``q`` is normalised
    against the same measure (the uniform density on ``[-π, π)`` per link is ``(2π)^{-1}``
    there, i.e. 1 in these units).

    Args:
        beta: inverse coupling ``β >= 0``.
        L: lattice extent (``L × L``) or extents ``(L0, L1)``, each >= 2; only ``V`` matters.

    Returns:
        ``log Z`` as a float, accurate to about ``1e-13`` relative.

    Raises:
        TypeError: for a ``beta`` that is not a real number, an ``L`` that is neither an
            integer nor a sequence.
        ValueError: for ``β`` outside ``[0, 1e4]`` or non-finite, a bad lattice.

    References:
        C. Bonati, P. Rossi, arXiv:1901.09830; J.-M. Drouffe, J.-B. Zuber, Phys. Rep. 102 (1983) 1.

    Example:
        >>> u1_log_z(0.0, 4)
        0.0
    """
    beta, V = _u1_validate(beta, L)
    i_n, n_max = _u1_bessel(beta)
    r = i_n[: n_max + 1] / i_n[0]  # I_n / I_0
    # log Z = V β + V log ive_0 + log Σ_n (I_n/I_0)^V
    return V * beta + V * math.log(i_n[0]) + math.log(_sum_over_z(r**V))


def u1_plaquette(beta: float, L: int | Sequence[int]) -> float:
    """Exact average plaquette ``⟨cos θ_P⟩ = (1/V) ∂_β log Z`` in finite volume.

    ``⟨cos θ_P⟩ = Σ_n I_n^{V-1} (I_{n-1} + I_{n+1})/2 / Σ_n I_n^V``; tends to
    :func:`u1_plaquette_infinite_volume` as ``V → ∞``.

    Args and raises as for :func:`u1_log_z`.
    """
    beta, V = _u1_validate(beta, L)
    i_n, n_max = _u1_bessel(beta)
    n = np.arange(n_max + 1)
    r = i_n[: n_max + 1] / i_n[0]
    dr = (i_n[np.abs(n - 1)] + i_n[n + 1]) / (2 * i_n[0])  # I_n'/I_0, with I_{-1} = I_1
    return _sum_over_z(r ** (V - 1) * dr) / _sum_over_z(r**V)


def u1_energy_variance(beta: float, L: int | Sequence[int]) -> float:
    """Exact variance of the energy ``E = Σ_P cos θ_P`` in finite volume, ``∂²_β log Z``
    (so ``V ∂_β ⟨cos θ_P⟩``).

    ``∂²_β Σ_n I_n^V = Σ_n [V(V-1) I_n^{V-2} I_n'² + V I_n^{V-1} I_n'']`` with
    ``I_n' = (I_{n-1} + I_{n+1})/2`` and ``I_n'' = (I_{n-2} + 2I_n + I_{n+2})/4``. It sets the
    acceptance of replica-exchange swaps between neighbouring ``β``
    (:func:`u1_swap_acceptance`).

    Args and raises as for :func:`u1_log_z`.
    """
    beta, V = _u1_validate(beta, L)
    i_n, n_max = _u1_bessel(beta)
    n = np.arange(n_max + 1)
    r = i_n[: n_max + 1] / i_n[0]
    dr = (i_n[np.abs(n - 1)] + i_n[n + 1]) / (2 * i_n[0])
    d2r = (i_n[np.abs(n - 2)] + 2 * i_n[n] + i_n[n + 2]) / (4 * i_n[0])
    z = _sum_over_z(r**V)
    mean = V * _sum_over_z(r ** (V - 1) * dr) / z
    second = _sum_over_z(V * (V - 1) * r ** (V - 2) * dr**2 + V * r ** (V - 1) * d2r) / z
    return second - mean**2


def u1_swap_acceptance(beta_a: float, beta_b: float, L: int | Sequence[int]) -> float:
    """Predicted acceptance of plain replica-exchange swaps between ``β_a`` and ``β_b``.

    A swap is accepted with ``min(1, e^r)``, ``r = (β_b - β_a)(E_a - E_b)`` with ``E_a``,
    ``E_b`` the energies of independent configurations at the two couplings. For a Gaussian
    ``r`` the symmetry ``P(r) e^r = P(-r)`` of an involutive swap fixes its mean at
    ``-σ²/2``, and the acceptance is ``erfc(σ / (2√2))`` with
    ``σ² = (β_b - β_a)² [Var_a E + Var_b E]`` (:func:`u1_energy_variance`). Good to about
    0.02 where ``E`` is nearly Gaussian (moderate ``β`` and ``V``).

    Args:
        beta_a, beta_b: the two couplings, ``>= 0``.
        L: the lattice, as for :func:`u1_log_z`.

    Returns:
        The predicted acceptance in ``(0, 1]``.

    Raises:
        TypeError, ValueError: for couplings outside ``[0, 1e4]`` (naming them) or a bad
            lattice.

    References:
        Hukushima, Nemoto, J. Phys. Soc. Jpn. 65 (1996) 1604 (replica exchange); Abbott et
        al., arXiv:2404.11674.
    """
    beta_a = _args.coupling("beta_a", beta_a, high=BETA_MAX, why=" (the U(1) references)")
    beta_b = _args.coupling("beta_b", beta_b, high=BETA_MAX, why=" (the U(1) references)")
    variance = u1_energy_variance(beta_a, L) + u1_energy_variance(beta_b, L)
    sigma = abs(beta_b - beta_a) * math.sqrt(max(variance, 0.0))
    return math.erfc(sigma / (2 * math.sqrt(2)))


def u1_plaquette_infinite_volume(beta: float) -> float:
    """``⟨cos θ_P⟩ = I_1(β)/I_0(β)`` in infinite volume.

    Raises:
        TypeError, ValueError: for a bad ``beta``, as for :func:`u1_log_z`.
    """
    beta, _ = _u1_validate(beta, 2)
    return float(ive(1, beta) / ive(0, beta))


def u1_wilson_loop(beta: float, L: int | Sequence[int], R: int, T: int) -> float:
    """Exact ``⟨cos W⟩`` of an ``R × T`` rectangular Wilson loop in finite volume.

    ``⟨W⟩ = Σ_n I_n^{V-A} I_{n-1}^A / Σ_n I_n^V`` with ``A = R T`` enclosed plaquettes; it
    tends to ``(I_1/I_0)^A`` (area law) as ``V → ∞``. ``R`` runs along direction 1 and ``T``
    along direction 0, as in :func:`lqft_lab.observables.wilson_loop`.

    Args:
        beta, L: as for :func:`u1_log_z`.
        R: ``1 <= R <= L1``.
        T: ``1 <= T <= L0``.

    Raises:
        TypeError, ValueError: for bad couplings or lattices (as for :func:`u1_log_z`), and
            for ``R`` or ``T`` that are not integers in range.
    """
    beta, (L0, L1) = _u1_validate_shape(beta, L)
    V = L0 * L1
    R = checks.integer("R", R, low=1, high=L1)
    T = checks.integer("T", T, low=1, high=L0)
    A = R * T
    i_n, n_max = _u1_bessel(beta)
    n = np.arange(-n_max, n_max + 1)
    r = i_n[np.abs(n)] / i_n[0]
    r_shift = i_n[np.abs(n - 1)] / i_n[0]
    return float((r ** (V - A) * r_shift**A).sum() / (r**V).sum())


def u1_topological_susceptibility(beta: float, L: int | Sequence[int]) -> float:
    """Exact ``χ_t = ⟨Q²⟩/V`` of the geometric charge ``Q = (1/2π) Σ_P wrap(θ_P)``.

    From the θ-vacuum partition function ``Z(θ) = Σ_n g_n(θ/2π)^V`` with
    ``g_n(t) = ∫_{-π}^{π} dφ/(2π) e^{β cos φ} e^{i(n+t)φ}``:

        χ_t = (1/4π²) Σ_n [I_n^{V-1} B_n - (V-1) I_n^{V-2} A_n²] / Σ_n I_n^V,

    ``A_n = ∫ dφ/(2π) e^{β cos φ} φ sin nφ``, ``B_n = ∫ dφ/(2π) e^{β cos φ} φ² cos nφ``,
    both summed exactly as Bessel series (derivation in the comment block above
    :func:`u1_log_z`). ``χ_t = 1/12`` at ``β = 0`` and tends to
    :func:`u1_topological_susceptibility_infinite_volume` as ``V → ∞``.

    Accuracy: absolute, about ``1e-16`` (relative ``1e-13`` wherever ``χ_t`` is not tiny).
    When the charge is frozen by the finite volume (roughly ``V ≲ 2β``, e.g. ``L = 2`` at
    ``β >= 8``) the true ``χ_t`` falls below that absolute error, the ``n`` terms cancel
    to rounding, and the result is rounding noise clipped at 0.

    Args and raises as for :func:`u1_log_z`.

    References:
        C. Bonati, P. Rossi, arXiv:1901.09830; G. Kanwar et al., arXiv:2003.06413.
    """
    beta, V = _u1_validate(beta, L)
    i_n, n_max = _u1_bessel(beta)
    A, B = _u1_phi_moments(i_n, n_max)
    r = i_n[: n_max + 1] / i_n[0]
    a, b = A / i_n[0], B / i_n[0]
    numerator = _sum_over_z(r ** (V - 1) * b - (V - 1) * r ** (V - 2) * a**2)
    # the n ≠ 0 terms cancel the n = 0 term almost completely when topology is frozen
    # (V ≲ 2β): there the rounding noise, ~1e-17, can be negative; χ_t >= 0 exactly
    return max(numerator / _sum_over_z(r**V) / (4 * math.pi**2), 0.0)


def u1_topological_susceptibility_infinite_volume(beta: float) -> float:
    """``χ_t = ⟨φ²⟩_β / (4π²)`` with ``φ ∈ [-π, π)`` distributed as ``e^{β cos φ}``.

    The ``V → ∞`` limit of :func:`u1_topological_susceptibility` (only the ``n = 0`` term
    survives); ``1/12`` at ``β = 0`` and ``≈ 1/(4π² β)`` for large ``β``.

    References:
        C. Bonati, P. Rossi, arXiv:1901.09830, section on the U(1) theory.

    Raises:
        TypeError, ValueError: for a bad ``beta``, as for :func:`u1_log_z`.
    """
    beta, _ = _u1_validate(beta, 2)
    i_n, n_max = _u1_bessel(beta)
    _, B = _u1_phi_moments(i_n, n_max)
    return float(B[0] / i_n[0]) / (4 * math.pi**2)


@dataclass(frozen=True)
class DefectReferences:
    """Exact values of the 2D U(1) torus with a defect (:func:`u1_defect_references`).

    Attributes:
        log_z: ``log Z`` (Haar measure normalised to one per link).
        plaquette: ``⟨cos θ_P⟩`` averaged over all ``V`` plaquettes (what
            :func:`~lqft_lab.observables.plaquette` measures).
        plaquette_bulk: ``⟨cos θ_P⟩`` of one plaquette off the defect (NaN if there is none).
        plaquette_defect: ``⟨cos θ_P⟩`` of one defect plaquette (NaN for ``d = 0``).
        chi_t: the topological susceptibility ``⟨Q²⟩/V`` of the geometric charge.
    """

    log_z: float
    plaquette: float
    plaquette_bulk: float
    plaquette_defect: float
    chi_t: float


def _u1_tables(beta: float, n_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``I_n/I_0``, ``I_n'/I_0``, ``A_n/I_0`` and ``B_n/I_0`` at ``β``, ``n = 0, …, n_max``."""
    i_n = ive(np.arange(3 * n_max + 2), beta)
    n = np.arange(n_max + 1)
    A, B = _u1_phi_moments(i_n, n_max)
    d = (i_n[np.abs(n - 1)] + i_n[n + 1]) / 2
    return i_n[: n_max + 1] / i_n[0], d / i_n[0], A / i_n[0], B / i_n[0]


def u1_defect_references(beta: float, c: float, d: int, L: int | Sequence[int]) -> DefectReferences:
    """Exact references of the torus whose ``d`` defect plaquettes carry coupling ``cβ``.

    The plaquettes of the 2D torus are independent angles but for ``Σ_P wrap(θ_P) = 2πQ``,
    whatever their couplings, so the character expansion of :func:`u1_log_z` holds with one
    Bessel factor per plaquette: ``Z = Σ_n I_n(β)^{V-d} I_n(cβ)^d``. Plaquette averages
    replace one factor by its derivative, and ``⟨(Σ_P φ_P)²⟩ = 4π² V χ_t`` sums the ``B_n``
    moment of one plaquette and the ``A_n`` moments of pairs (:func:`u1_topological_
    susceptibility`, here with two kinds of plaquettes). This is the ladder of parallel
    tempering on boundary conditions (Hasenbusch, arXiv:1706.04443): ``c = 1`` is the
    periodic theory, ``c = 0`` cuts the torus open along the defect.

    Args:
        beta: the bulk coupling, in ``[0, 1e4]``.
        c: the defect's relative coupling, in ``[0, 1]``.
        d: defect plaquettes, ``0 <= d <= V``.
        L: the lattice, as for :func:`u1_log_z`.

    Returns:
        A :class:`DefectReferences`.

    Raises:
        TypeError, ValueError: naming the argument.

    Example:
        >>> u1_defect_references(6.0, 1.0, 4, 8).plaquette == u1_plaquette(6.0, 8)
        True
    """
    beta, V = _u1_validate(beta, L)
    c = _args.coupling("c", c, high=1.0)
    d = checks.integer("d", d, low=0, high=V)
    n_max = max(_u1_bessel(beta)[1], _u1_bessel(c * beta)[1])
    r1, d1, a1, b1 = _u1_tables(beta, n_max)
    r2, d2, a2, b2 = _u1_tables(c * beta, n_max)
    m = V - d  # bulk plaquettes

    def power(r, k):  # r**k with 0**0 = 1 and no negative powers of a vanishing r
        return r**k if k > 0 else np.ones_like(r)

    both = power(r1, m) * power(r2, d)
    z = _sum_over_z(both)
    log_z = m * (beta + math.log(ive(0, beta))) + d * (c * beta + math.log(ive(0, c * beta)))
    log_z += math.log(z)
    bulk = _sum_over_z(power(r1, m - 1) * d1 * power(r2, d)) / z if m else math.nan
    defect = _sum_over_z(power(r1, m) * power(r2, d - 1) * d2) / z if d else math.nan
    plaquette = ((m * bulk if m else 0.0) + (d * defect if d else 0.0)) / V
    squares = m * power(r1, m - 1) * b1 * power(r2, d) + d * power(r1, m) * power(r2, d - 1) * b2
    pairs = (
        m * (m - 1) * power(r1, m - 2) * a1**2 * power(r2, d)
        + 2 * m * d * power(r1, m - 1) * a1 * power(r2, d - 1) * a2
        + d * (d - 1) * power(r1, m) * power(r2, d - 2) * a2**2
    )
    chi_t = max(_sum_over_z(squares - pairs) / z / (4 * math.pi**2 * V), 0.0)
    return DefectReferences(log_z, plaquette, bulk, defect, chi_t)


def _u1_g_scaled(nu: np.ndarray, beta: float) -> np.ndarray:
    """``e^{-β} g(ν) = e^{-β} ∫_{-π}^{π} dφ/(2π) e^{β cos φ} cos νφ`` for real ``ν >= 0``.

    Schläfli's integral, ``I_ν(β) = (1/π)∫_0^π e^{β cos φ} cos νφ dφ
    - (sin νπ/π) ∫_0^∞ e^{-β cosh t - νt} dt`` (DLMF 10.32.4), turns it into ``ive(ν, β)``
    plus a remainder that vanishes at integer ``ν`` (where ``g(n) = I_n(β)``) and is at most
    ``e^{-2β}/(πν)`` in size.
    """
    out = ive(nu, beta)
    frac = nu != np.round(nu)
    if frac.any():
        v = nu[frac]
        if beta == 0:
            rest = 1 / v
        else:

            def integrand(t):
                with np.errstate(over="ignore"):  # cosh(t) = inf far out: the integrand is 0
                    return np.exp(-beta * (1 + np.cosh(t)) - v * t)

            rest, _ = quad_vec(integrand, 0, np.inf, epsabs=1e-300, epsrel=1e-13)
        out[frac] += np.sin(np.pi * v) / np.pi * rest
    return out


def u1_charge_distribution(
    beta: float, L: int | Sequence[int], q_max: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution ``P(Q)`` of the geometric topological charge in finite volume.

    Fourier-inverting ``Z(θ) = Σ_n g_n(θ/2π)^V`` (comment block above :func:`u1_log_z`):
    the sum over ``n`` and the integral over ``t = θ/2π ∈ [0, 1)`` join into one integral,

        P(Q) = (1/Z) ∫_ℝ dν g(ν)^V cos 2πνQ,    g(ν) = ∫_{-π}^{π} dφ/(2π) e^{β cos φ} cos νφ,

    i.e. ``2π`` times the density at ``2πQ`` of the sum of ``V`` independent angles, each
    distributed as ``e^{β cos φ}`` on ``[-π, π)``: the plaquettes of the torus are independent
    but for ``Σ_P wrap(θ_P) = 2πQ``. ``g(ν)^V`` is the Fourier transform of a density that
    vanishes outside ``[-Vπ, Vπ]``, so the trapezoidal rule with step ``1/(V + 1)`` in ``ν``
    is exact (its aliases fall outside that support); the sum stops where ``|g(ν)/g(0)|^V``
    is negligible. ``Z = Σ_n I_n^V`` is computed separately, so ``Σ_Q P(Q) = 1`` and
    ``Σ_Q Q² P(Q) = V χ_t`` (:func:`u1_topological_susceptibility`) are checks, not inputs.

    Args:
        beta, L: as for :func:`u1_log_z`.
        q_max: return ``|Q| <= q_max``; default ``⌊V/2⌋``, every charge the lattice allows.

    Returns:
        ``(Q, P)``: integer charges ``-q_max, …, q_max`` and their probabilities (float64).
        ``g(ν)`` is accurate to about ``1e-14`` relative and enters as its ``V``-th power,
        so ``P`` is accurate to about ``V · 1e-13`` absolute (``3e-11`` at ``L = 16``); far
        in the tails, where ``P`` is smaller than that, the values are rounding noise.

    Raises:
        TypeError, ValueError: for bad couplings or lattices, as for :func:`u1_log_z`.
        ValueError: for a ``q_max`` that is not a non-negative integer, or when
            ``(q_max + 1)(V + 1) > 2**24`` (the cosine sum would take minutes; pass a
            smaller ``q_max``).

    References:
        C. Bonati, P. Rossi, arXiv:1901.09830 (the θ-dependence this inverts);
        DLMF 10.32.4 (Schläfli's integral for ``I_ν`` of real order).

    Example:
        >>> Q, P = u1_charge_distribution(6.0, 8, q_max=2)
        >>> P.round(4).tolist()
        [0.0009, 0.1359, 0.7263, 0.1359, 0.0009]
    """
    beta, V = _u1_validate(beta, L)
    if q_max is None:
        q_max = V // 2
    if isinstance(q_max, bool) or not isinstance(q_max, (int, np.integer)) or q_max < 0:
        raise ValueError(f"q_max must be a non-negative integer, got {q_max!r}")
    if (int(q_max) + 1) * (V + 1) > CHARGE_TERMS_MAX:
        raise ValueError(
            f"L = {L!r} ({V} plaquettes) with q_max = {q_max} (default V // 2) needs "
            f"(q_max + 1)(V + 1) = {(int(q_max) + 1) * (V + 1)} cosine terms, more than "
            f"{CHARGE_TERMS_MAX}: pass a smaller q_max or a smaller lattice"
        )
    i_n, n_max = _u1_bessel(beta)
    z = _sum_over_z((i_n[: n_max + 1] / i_n[0]) ** V)  # Z / (e^β I_0)^V
    # |g(ν)| <= ive(N, β) + e^{-2β}/(πN) for ν >= N: stop where the tail is below 1e-15
    n_cut = 2
    while True:
        bound = (ive(n_cut, beta) + math.exp(-2 * beta) / (math.pi * n_cut)) / i_n[0]
        if n_cut * bound**V < 1e-15 * (V - 1):
            break
        n_cut *= 2
    m = V + 1  # trapezoid step 1/m in ν
    nu = np.arange(n_cut * m + 1) / m
    terms = (_u1_g_scaled(nu, beta) / i_n[0]) ** V  # (g(ν)/g(0))^V, even in ν
    weights = np.full(nu.shape, 2.0 / m)
    weights[0] = 1.0 / m
    q = np.arange(int(q_max) + 1)
    p = np.clip(np.cos(2 * np.pi * np.outer(q, nu)) @ (weights * terms) / z, 0.0, None)
    return np.arange(-int(q_max), int(q_max) + 1), np.concatenate([p[:0:-1], p])  # P(-Q) = P(Q)
