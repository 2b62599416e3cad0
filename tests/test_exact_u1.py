"""Exact 2D U(1) results in lqft_lab.exact against checks that do not use their formulas.

* L = 2, gauge fixed: the 5 remaining link integrals by the periodic trapezoid rule, with
  U1WilsonAction itself as the integrand (exponentially convergent: the aliasing error of
  a 16-point rule is of order I_16(2β) ~ 1e-13 at β = 1).
* L = 2 and 3: exact Haar sampling (uniform links), 10⁶ configurations, reweighted by
  e^{-S}: log Z, plaquette, Wilson loops and ⟨Q²⟩ within 4σ.
* The θ-vacuum integrals by scipy quadrature, and a finite-difference θ-derivative.
* The charge distribution P(Q): normalised against Z and with second moment V χ_t (both
  computed independently of it), the Irwin–Hall law at β = 0 in exact rationals, and the
  reweighted Haar samples.
* Derivative, infinite-volume and β = 0 limits, and bad input.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy import integrate, special

from lqft_lab.actions import U1WilsonAction
from lqft_lab.exact import (
    u1_charge_distribution,
    u1_defect_references,
    u1_energy_variance,
    u1_log_z,
    u1_plaquette,
    u1_plaquette_infinite_volume,
    u1_swap_acceptance,
    u1_topological_susceptibility,
    u1_topological_susceptibility_infinite_volume,
    u1_wilson_loop,
)
from lqft_lab.observables import plaquette, topological_charge, wilson_loop

F64 = torch.float64
BETAS = [0.5, 1.0]

pytestmark = pytest.mark.usefixtures("one_thread")


# --- independent references -------------------------------------------------------------


def _gauge_fixed_grid_l2(beta: float, n: int = 16) -> dict[str, float]:
    """``Z``, ``⟨cos θ_P⟩`` and ``⟨W(1×2)⟩`` on the 2×2 torus by an ``n⁵``-point product rule.

    Maximal-tree gauge: ``θ_0(0,0) = θ_1(0,0) = θ_1(1,0) = 0`` (a tree through all 4 sites;
    the Faddeev-Popov factor of a tree gauge on a compact group is 1). The other 5 links
    run over the periodic grid ``2π k/n``; the trapezoid rule for a periodic analytic
    integrand is exact up to aliasing at frequency ``n``.
    """
    grid = 2 * math.pi * torch.arange(n, dtype=F64) / n
    free = [(0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1)]  # (mu, x0, x1)
    action = U1WilsonAction(beta)
    total = {"Z": 0.0, "plaq": 0.0, "w12": 0.0}
    rest = torch.cartesian_prod(*[grid] * 4)  # (n⁴, 4): chunk over the first free link
    for first in grid:
        theta = torch.zeros(rest.shape[0], 2, 2, 2, dtype=F64)
        theta[(slice(None), *free[0])] = first
        for j, link in enumerate(free[1:]):
            theta[(slice(None), *link)] = rest[:, j]
        w = torch.exp(-action(theta))
        total["Z"] += w.sum().item()
        total["plaq"] += (w * plaquette(theta)).sum().item()
        total["w12"] += (w * wilson_loop(theta, 1, 2)).sum().item()
    Z = total["Z"] / n**5
    return {
        "Z": Z,
        "plaq": total["plaq"] / total["Z"],
        "w12": total["w12"] / total["Z"],
    }


@pytest.fixture(scope="module")
def haar_samples():
    """Per-configuration sums for 10⁶ Haar-random (uniform) link configurations, L = 2, 3."""
    g = torch.Generator().manual_seed(2024)
    out = {}
    for L in (2, 3):
        parts = {"sum_cos": [], "Q": [], "w12": [], "w22": []}
        for _ in range(4):  # 4 × 250 000 configurations
            theta = 2 * math.pi * torch.rand(250_000, 2, L, L, generator=g, dtype=F64) - math.pi
            parts["sum_cos"].append(plaquette(theta) * L * L)
            parts["Q"].append(topological_charge(theta))
            parts["w12"].append(wilson_loop(theta, 1, 2))
            parts["w22"].append(wilson_loop(theta, 2, 2))
        out[L] = {k: torch.cat(v).numpy() for k, v in parts.items()}
    return out


def _reweighted(w: np.ndarray, obs: np.ndarray) -> tuple[float, float]:
    """Self-normalised ``Σ w O / Σ w`` and its delta-method error (iid samples)."""
    mean = np.sum(w * obs) / np.sum(w)
    err = math.sqrt(np.mean(w**2 * (obs - mean) ** 2) / len(w)) / np.mean(w)
    return float(mean), float(err)


def _cos_sin_quad(f, omega: float, kind: str) -> float:
    """``∫_{-π}^{π} dφ/(2π) f(φ) cos(ωφ)`` (or ``sin``) by QUADPACK's QAWO for oscillatory
    weights (absolute tolerance 1e-13; tighter ones only trigger roundoff warnings)."""
    value, _ = integrate.quad(
        f, -math.pi, math.pi, weight=kind, wvar=omega, epsabs=1e-13, epsrel=1e-11, limit=200
    )
    return value / (2 * math.pi)


def _theta_moments_by_quadrature(beta: float, n: int) -> tuple[float, float, float]:
    """``(I_n, A_n, B_n) e^{-β}`` by quadrature of their defining integrals."""

    def weight(p):
        return math.exp(beta * (math.cos(p) - 1))

    i_n = _cos_sin_quad(weight, n, "cos")
    a_n = _cos_sin_quad(lambda p: weight(p) * p, n, "sin")
    b_n = _cos_sin_quad(lambda p: weight(p) * p * p, n, "cos")
    return i_n, a_n, b_n


# --- (i) brute force on tiny lattices -----------------------------------------------------


@pytest.mark.parametrize("beta", BETAS)
def test_gauge_fixed_integration_l2(beta):
    ref = _gauge_fixed_grid_l2(beta)
    assert u1_log_z(beta, 2) == pytest.approx(math.log(ref["Z"]), abs=1e-12)
    assert u1_plaquette(beta, 2) == pytest.approx(ref["plaq"], abs=1e-12)
    assert u1_wilson_loop(beta, 2, 1, 2) == pytest.approx(ref["w12"], abs=1e-12)


@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("beta", BETAS)
def test_haar_monte_carlo(haar_samples, L, beta):
    s = haar_samples[L]
    V = L * L
    w = np.exp(beta * s["sum_cos"])  # e^{-S}
    n = len(w)
    # Z = E_Haar[e^{-S}]
    z, z_err = w.mean(), w.std() / math.sqrt(n)
    assert abs(math.exp(u1_log_z(beta, L)) - z) < 4 * z_err
    checks = {
        "plaq": (s["sum_cos"] / V, u1_plaquette(beta, L)),
        "chi_t": (s["Q"] ** 2 / V, u1_topological_susceptibility(beta, L)),
        "w12": (s["w12"], u1_wilson_loop(beta, L, 1, 2)),
    }
    if L == 3:  # on the 2×2 torus the 2×2 loop is the whole lattice: identically 1
        checks["w22"] = (s["w22"], u1_wilson_loop(beta, L, 2, 2))
    charges, prob = u1_charge_distribution(beta, L, q_max=1)  # |Q| = 2 has P ~ 1e-5 at most
    for q, p in zip(charges, prob, strict=True):
        checks[f"P(Q={q})"] = ((np.round(s["Q"]) == q).astype(float), p)
    for name, (obs, exact) in checks.items():
        mean, err = _reweighted(w, obs)
        assert abs(mean - exact) < 4 * err, (name, mean, err, exact)
    # the check has power: at L = 2 the finite-volume χ_t is many σ from its V → ∞ limit
    if L == 2:
        mean, err = _reweighted(w, s["Q"] ** 2 / V)
        assert abs(u1_topological_susceptibility_infinite_volume(beta) - mean) > 20 * err


@pytest.mark.parametrize("L", [2, 3, (3, 5), 8, 16])
@pytest.mark.parametrize("beta", [0.5, 2.0, 6.0])
def test_charge_distribution_moments(beta, L):
    """Σ_Q P(Q) = 1 and Σ_Q Q² P(Q) = V χ_t, with Z and χ_t from their own Bessel series."""
    V = math.prod((L, L) if isinstance(L, int) else L)
    charges, prob = u1_charge_distribution(beta, L)
    assert charges.tolist() == list(range(-(V // 2), V // 2 + 1))
    tol = 1e-13 * V  # g(ν) to ~1e-14 relative, raised to the V-th power
    assert prob.sum() == pytest.approx(1.0, abs=tol)
    # far in the tails P is below the accuracy: there it is rounding noise (clipped at 0),
    # which the Q² weight would blow up; the true tail beyond 8 standard deviations is < 1e-14
    q2 = V * u1_topological_susceptibility(beta, L)
    bulk = np.abs(charges) <= 8 * math.sqrt(q2) + 4
    assert np.all(prob[~bulk] < tol)
    assert (charges[bulk] ** 2 * prob[bulk]).sum() == pytest.approx(q2, abs=tol)
    # a smaller q_max returns the same numbers for the charges it keeps
    few_q, few_p = u1_charge_distribution(beta, L, q_max=1)
    np.testing.assert_array_equal(few_q, [-1, 0, 1])
    np.testing.assert_allclose(few_p, prob[V // 2 - 1 : V // 2 + 2], rtol=0, atol=1e-15)


@pytest.mark.parametrize("L", [2, 3, (2, 5), 4])
def test_charge_distribution_at_strong_coupling_is_irwin_hall(L):
    """At β = 0 the V wrapped plaquettes are uniform on [-π, π) but for Σ = 2πQ, so
    P(Q) is the Irwin–Hall density of V uniforms on [0, 1) at Q + V/2 (exact rationals)."""
    V = math.prod((L, L) if isinstance(L, int) else L)
    charges, prob = u1_charge_distribution(0.0, L)

    def irwin_hall(x: Fraction) -> Fraction:
        k_max = math.floor(x)
        terms = ((-1) ** k * math.comb(V, k) * (x - k) ** (V - 1) for k in range(k_max + 1))
        return sum(terms, Fraction(0)) / math.factorial(V - 1)

    expected = [float(irwin_hall(Fraction(int(q)) + Fraction(V, 2))) for q in charges]
    np.testing.assert_allclose(prob, expected, rtol=0, atol=1e-14)


def test_charge_distribution_freezes_and_spreads():
    # weak coupling in a small box: every configuration has Q = 0
    _, prob = u1_charge_distribution(50.0, 4, q_max=1)
    assert prob[1] == pytest.approx(1.0, abs=1e-12) and prob[0] < 1e-12
    # P(0) falls with the volume at fixed β as the charge spreads
    p0 = [u1_charge_distribution(6.0, L, q_max=0)[1][0] for L in (4, 8, 16)]
    assert p0[0] > p0[1] > p0[2] > 0.3


@pytest.mark.parametrize("q_max", [-1, 1.5, True])
def test_charge_distribution_bad_q_max_raises(q_max):
    with pytest.raises(ValueError, match="q_max"):
        u1_charge_distribution(1.0, 4, q_max=q_max)


# --- (ii) derivatives ---------------------------------------------------------------------


@pytest.mark.parametrize("L", [2, 4, (3, 5), 16])
@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5, 8.0])
def test_plaquette_is_derivative_of_log_z(beta, L):
    V = math.prod((L, L) if isinstance(L, int) else L)
    h = 1e-4
    fd = (u1_log_z(beta + h, L) - u1_log_z(beta - h, L)) / (2 * h * V)
    assert u1_plaquette(beta, L) == pytest.approx(fd, abs=1e-7)


@pytest.mark.parametrize("beta", [0.7, 2.0, 6.0])
def test_theta_integrals_by_quadrature(beta):
    """χ_t of eq. (3) with A_n, B_n, I_n from quadrature instead of the Bessel series."""
    ns = range(0, 14)
    mom = np.array([_theta_moments_by_quadrature(beta, n) for n in ns])  # (n, 3)
    np.testing.assert_allclose(mom[:, 0], special.ive(np.arange(14), beta), atol=1e-14)
    for L in (2, 3, 6):
        V = L * L
        i_n, a_n, b_n = mom.T
        terms = i_n ** (V - 1) * b_n - (V - 1) * i_n ** (V - 2) * a_n**2
        num = terms[0] + 2 * terms[1:].sum()  # even in n
        den = i_n[0] ** V + 2 * (i_n[1:] ** V).sum()
        chi = num / den / (4 * math.pi**2)
        assert u1_topological_susceptibility(beta, L) == pytest.approx(chi, rel=1e-9, abs=1e-14)
    chi_inf = mom[0, 2] / mom[0, 0] / (4 * math.pi**2)
    assert u1_topological_susceptibility_infinite_volume(beta) == pytest.approx(chi_inf, rel=1e-10)


@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("L", [2, 3])
def test_chi_t_is_second_theta_derivative(beta, L):
    """⟨Q²⟩ = -∂²_θ log Z(θ) by finite differences of Z(θ) = Σ_n g_n(θ/2π)^V (quadrature)."""
    V = L * L

    def log_z_theta(t):
        def g(n):  # g_n(t) = ∫ dφ/(2π) e^{β cos φ} cos((n + t)φ), times e^{-β}
            return _cos_sin_quad(lambda p: math.exp(beta * (math.cos(p) - 1)), n + t, "cos")

        return math.log(sum(g(n) ** V for n in range(-14, 15)))

    def second_difference(h):  # in t = θ/2π: error h² f⁗/12 + O(h⁴), rounding ~1e-13/h²
        return (log_z_theta(h) - 2 * log_z_theta(0.0) + log_z_theta(-h)) / h**2

    d2 = (4 * second_difference(2e-3) - second_difference(4e-3)) / 3  # Richardson: O(h⁴)
    chi = -d2 / (4 * math.pi**2) / V
    assert u1_topological_susceptibility(beta, L) == pytest.approx(chi, rel=1e-7)


# --- (iii), (iv) limits -------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_infinite_volume_plaquette_and_area_law(beta):
    ratio = u1_plaquette_infinite_volume(beta)
    num, _ = integrate.quad(lambda p: math.cos(p) * math.exp(beta * math.cos(p)), -math.pi, math.pi)
    den, _ = integrate.quad(lambda p: math.exp(beta * math.cos(p)), -math.pi, math.pi)
    assert ratio == pytest.approx(num / den, rel=1e-12)
    # the finite-volume correction ~ (I_1/I_0)^V decreases monotonically while resolvable
    gaps = [abs(u1_plaquette(beta, L) - ratio) for L in (2, 3, 4)]
    assert all(a > b > 1e-12 for a, b in zip(gaps, gaps[1:], strict=False))
    assert u1_plaquette(beta, 32) == pytest.approx(ratio, abs=1e-13)
    for R, T in [(1, 1), (2, 3), (4, 4)]:
        assert u1_wilson_loop(beta, 32, R, T) == pytest.approx(ratio ** (R * T), abs=1e-13)
    assert u1_wilson_loop(beta, 3, 1, 1) == pytest.approx(u1_plaquette(beta, 3), abs=1e-15)
    assert u1_wilson_loop(beta, (3, 4), 4, 3) == pytest.approx(1.0, abs=1e-14)  # whole torus


def test_infinite_volume_topological_susceptibility():
    """χ_t(V → ∞) = ⟨φ²⟩_β / 4π² (Bonati & Rossi, arXiv:1901.09830, U(1) section)."""
    betas = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    chi_inf = [u1_topological_susceptibility_infinite_volume(b) for b in betas]
    assert chi_inf[0] == pytest.approx(1 / 12, abs=1e-15)  # uniform φ: ⟨φ²⟩ = π²/3
    assert all(c > 0 for c in chi_inf)
    assert all(a > b for a, b in zip(chi_inf, chi_inf[1:], strict=False))
    # Gaussian regime: ⟨φ²⟩ = 1/β + 1/(2β²) + O(β⁻³)
    b = 200.0
    approx = (1 / b + 1 / (2 * b**2)) / (4 * math.pi**2)
    assert u1_topological_susceptibility_infinite_volume(b) == pytest.approx(approx, rel=1e-4)
    for beta in (0.5, 1.0, 2.0):
        assert u1_topological_susceptibility(beta, 32) == pytest.approx(
            u1_topological_susceptibility_infinite_volume(beta), rel=1e-12
        )
    # at β = 5 the approach is visible and monotone from below (topological suppression)
    finite = [u1_topological_susceptibility(5.0, L) for L in (2, 4, 8, 16, 32)]
    assert all(a < b for a, b in zip(finite, finite[1:], strict=False))
    assert finite[-1] == pytest.approx(u1_topological_susceptibility_infinite_volume(5.0))


@pytest.mark.parametrize("L", [2, 3, (2, 5), 7])
def test_strong_coupling_values(L):
    # β = 0: Haar links; Z = 1, ⟨cos θ_P⟩ = 0 and, for V >= 3, the V wrapped plaquette
    # angles are pairwise independent and uniform, so ⟨Q²⟩ = V · (1/12).
    assert u1_log_z(0.0, L) == 0.0
    assert u1_plaquette(0.0, L) == 0.0
    assert u1_topological_susceptibility(0.0, L) == pytest.approx(1 / 12, abs=1e-15)


def test_volume_dependence_only_through_v():
    assert u1_log_z(1.3, (2, 8)) == pytest.approx(u1_log_z(1.3, 4), abs=1e-13)
    assert u1_topological_susceptibility(1.3, (4, 9)) == pytest.approx(
        u1_topological_susceptibility(1.3, 6), abs=1e-15
    )


def test_large_beta_is_finite():
    for beta in (50.0, 500.0):
        assert math.isfinite(u1_log_z(beta, 8))
        assert 0.99 < u1_plaquette(beta, 8) < 1.0
        chi = u1_topological_susceptibility(beta, 8)
        assert 0 <= chi < u1_topological_susceptibility_infinite_volume(beta)


# --- (v) bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [-0.5, float("nan"), float("inf")])
def test_bad_beta_raises(beta):
    for fn in (u1_log_z, u1_plaquette, u1_topological_susceptibility, u1_charge_distribution):
        with pytest.raises(ValueError, match="beta"):
            fn(beta, 4)
    for fn in (u1_plaquette_infinite_volume, u1_topological_susceptibility_infinite_volume):
        with pytest.raises(ValueError, match="beta"):
            fn(beta)


def test_bad_lattice_and_loop_raise():
    with pytest.raises(ValueError, match=">= 2"):
        u1_log_z(1.0, 1)
    with pytest.raises(ValueError, match="2D"):
        u1_plaquette(1.0, (4, 4, 4))
    with pytest.raises(TypeError, match="beta"):
        u1_log_z("1.0", 4)
    with pytest.raises(ValueError, match="R must"):
        u1_wilson_loop(1.0, (4, 6), 7, 1)
    with pytest.raises(ValueError, match="T must"):
        u1_wilson_loop(1.0, (4, 6), 1, 5)


@pytest.mark.parametrize("beta, L", [(2.0, 8), (4.0, 16), (6.0, 8), (6.0, (8, 12))])
def test_energy_variance_is_the_derivative_of_the_plaquette(beta, L):
    """``Var E = V ∂_β⟨cos θ_P⟩``: the closed form against a central difference of
    :func:`u1_plaquette` (step 1e-4, truncation error ~1e-9 relative)."""
    V = L * L if isinstance(L, int) else L[0] * L[1]
    h = 1e-4
    derivative = V * (u1_plaquette(beta + h, L) - u1_plaquette(beta - h, L)) / (2 * h)
    assert u1_energy_variance(beta, L) == pytest.approx(derivative, rel=1e-7)


def test_swap_acceptance_prediction_matches_the_independent_table():
    """The erfc prediction of plain replica-exchange acceptance against the table derived
    independently for the notebook (shared notes, 'Replica exchange with maps'), to its two
    printed digits; and it falls with the volume."""
    table = {
        (6.0, 6.5): (0.73, 0.50, 0.18),
        (4.0, 4.5): (0.60, 0.30, 0.04),
        (2.0, 2.5): (0.30, 0.04, 0.0),
    }
    for (a, b), row in table.items():
        got = [u1_swap_acceptance(a, b, L) for L in (8, 16, 32)]
        assert got == pytest.approx(row, abs=0.006), (a, b, got)
        assert got[0] > got[1] > got[2]
    assert u1_swap_acceptance(3.0, 3.0, 8) == 1.0


@pytest.mark.parametrize("L, d", [(8, 4), (16, 1), ((8, 12), 12)])
def test_defect_references_reduce_to_the_torus_and_to_their_derivatives(L, d):
    """``c = 1`` (and ``d = 0``) is the periodic torus, to rounding; ``∂_c log Z`` is
    ``β d ⟨cos θ_P⟩_defect`` and ``∂_β log Z`` the energy of the weighted action (central
    differences, step 1e-5); ``c = 0`` frees the defect plaquettes, so the bulk plaquette is
    the infinite-volume one and χ_t the sum of independent plaquette angles."""
    beta = 5.0
    torus = u1_defect_references(beta, 1.0, d, L)
    assert torus.plaquette == pytest.approx(u1_plaquette(beta, L), rel=1e-13)
    assert torus.chi_t == pytest.approx(u1_topological_susceptibility(beta, L), rel=1e-10)
    assert torus.log_z == pytest.approx(u1_log_z(beta, L), rel=1e-13)
    assert u1_defect_references(beta, 0.3, 0, L).plaquette == pytest.approx(torus.plaquette)
    c, h = 0.4, 1e-5
    ref = u1_defect_references(beta, c, d, L)
    V = L * L if isinstance(L, int) else L[0] * L[1]
    dc = (
        u1_defect_references(beta, c + h, d, L).log_z
        - u1_defect_references(beta, c - h, d, L).log_z
    ) / (2 * h)
    assert dc == pytest.approx(beta * d * ref.plaquette_defect, rel=1e-6)
    db = (
        u1_defect_references(beta + h, c, d, L).log_z
        - u1_defect_references(beta - h, c, d, L).log_z
    ) / (2 * h)
    assert db == pytest.approx(
        (V - d) * ref.plaquette_bulk + c * d * ref.plaquette_defect, rel=1e-6
    )
    assert ref.plaquette == pytest.approx(
        ((V - d) * ref.plaquette_bulk + d * ref.plaquette_defect) / V
    )
    # c = 0: a single free plaquette is still tied to the others by Σ_P θ_P = 2πQ, which
    # leaves it ⟨cos θ⟩ = (I_1/I_0)^{V-1}; two or more free ones average to zero exactly
    open_ = u1_defect_references(beta, 0.0, d, L)
    tied = (special.ive(1, beta) / special.ive(0, beta)) ** (V - 1) if d == 1 else 0.0
    assert open_.plaquette_defect == pytest.approx(tied, rel=1e-9, abs=1e-300)
    assert open_.plaquette_bulk == pytest.approx(u1_plaquette_infinite_volume(beta), rel=1e-12)
    phi2 = 4 * math.pi**2 * u1_topological_susceptibility_infinite_volume(beta)  # ⟨φ²⟩_β
    expected = ((V - d) * phi2 + d * math.pi**2 / 3) / (4 * math.pi**2 * V)
    # the closed form drops the same tie, pair terms of order (I_1/I_0)^{V-2} ~ 1e-13 at
    # d = 1, V = 256 (exactly zero for d >= 2): 1e-9 relative leaves room for that alone
    assert open_.chi_t == pytest.approx(expected, rel=1e-9)
