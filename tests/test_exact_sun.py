"""Exact SU(N) references in lqft_lab.exact.sun against checks that do not use their formulas.

* Characters: the Weyl determinant ratio at generic phases, SU(2)'s ``sin((λ+1)θ)/sin θ``,
  ``χ(1) = d_λ``, orthonormality under the Haar eigenphase density (test's own grid).
* Character coefficients ``f_λ`` against the Bessel-determinant formula
  ``Σ_q det[I_{λ_j+q-j+k}(β/N)]`` and SU(2)'s closed forms (``I_2/I_1``, ``2 I_1(β)/β``).
* 2D lattice: SU(2) against ``Z = Σ_n (2 I_n(β)/β)^{n_P}``, finite differences of
  ``log Z``, the large-volume and small-β limits, and reweighted Haar Monte Carlo on 2×2
  tori with an independent sampler (``scipy.stats.unitary_group``).
* Single-matrix targets: grid doubling, reweighted Haar Monte Carlo (``log Z``,
  ``⟨(1/N) Re tr U⟩`` and the pooled eigenphase histogram, χ² with a covariance estimated
  from the samples), the analytic Haar one-phase marginal and scipy quadrature.
* Bad input.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from scipy import integrate, special, stats

from lqft_lab.exact.sun import (
    _default_n_grid,
    haar_eigenphase_density,
    irrep_dimension,
    single_matrix_eigenphase_histogram,
    single_matrix_log_density,
    single_matrix_log_z,
    single_matrix_mean_trace,
    sun_character_coefficient,
    sun_lattice_log_z,
    sun_plaquette,
    sun_plaquette_infinite_volume,
    sun_wilson_loop_infinite_volume,
    vandermonde_sq,
    weyl_character,
)

BOYDA = [(0.98, -0.63, -0.21), (0.17, -0.65, 1.22), (1.0, 0.0, 0.0)]  # arXiv:2008.05456


# --- independent references -------------------------------------------------------------


def _torus_grid(N: int, n: int) -> np.ndarray:
    """All ``n^{N-1}`` trapezoid points of the maximal torus, ``(n^{N-1}, N)``."""
    axes = np.meshgrid(*[2 * np.pi * np.arange(n) / n] * (N - 1), indexing="ij")
    free = np.stack([a.ravel() for a in axes], axis=-1)
    return np.concatenate([free, -free.sum(-1, keepdims=True)], axis=-1)


def _haar_average(values: np.ndarray, N: int, n: int) -> complex:
    """``∫ dU f`` from ``f`` on :func:`_torus_grid` (exact for trig polynomials of degree < n)."""
    theta = _torus_grid(N, n)
    return (values * haar_eigenphase_density(theta)).sum() * (2 * np.pi / n) ** (N - 1)


def _weyl_ratio(lam: tuple[int, ...], theta: np.ndarray) -> np.ndarray:
    N = theta.shape[-1]
    k = np.arange(N)
    num = np.linalg.det(np.exp(1j * theta[..., :, None] * (np.array(lam) + N - 1 - k)))
    den = np.linalg.det(np.exp(1j * theta[..., :, None] * (N - 1 - k)))
    return num / den


def _bessel_coefficient(N: int, beta: float, lam: tuple[int, ...], q_max: int = 40) -> float:
    """``f_λ = Σ_q det[I_{λ_j+q-j+k}(β/N)]`` (Bars; Gross–Witten with the det U = 1 sum)."""
    j = np.arange(1, N + 1)[:, None]
    k = np.arange(1, N + 1)[None, :]
    lam_col = np.array(lam)[:, None]
    orders = [lam_col + q - j + k for q in range(-q_max, q_max + 1)]
    return float(sum(np.linalg.det(special.iv(o, beta / N)) for o in orders))


def _haar_sun(N: int, size: int, seed: int) -> np.ndarray:
    """Haar SU(N) matrices ``(size, N, N)``: scipy's U(N) sampler times ``det^{-1/N}``."""
    u = stats.unitary_group.rvs(N, size=size, random_state=seed)
    return u * (np.linalg.det(u) ** (-1.0 / N))[:, None, None]


def _haar_eigenphases(N: int, size: int, seed: int) -> np.ndarray:
    return np.angle(np.linalg.eigvals(_haar_sun(N, size, seed)))  # (size, N) in (-π, π]


def _reweighted(w: np.ndarray, obs: np.ndarray) -> tuple[float, float]:
    """Ratio estimator ``Σ w O / Σ w`` and its delta-method standard error."""
    mean = (w * obs).sum() / w.sum()
    z = w * (obs - mean) / w.mean()
    return float(mean), float(z.std(ddof=1) / math.sqrt(w.size))


def _histogram_chi2(counts: np.ndarray, w: np.ndarray, p: np.ndarray) -> float:
    """p-value of the pooled, reweighted histogram ``counts (S, B)`` against ``p (B,)``.

    Bins of one matrix are correlated (the phases repel and sum to 0), so the covariance of
    the per-matrix bin fractions is estimated from the samples (delta method for the
    weights). The fractions sum to one, and for SU(2) mirror bins hold the same count
    (phases ±φ), so χ² is taken in the eigenbasis of the covariance over its nonzero
    eigenvalues, with that many degrees of freedom.
    """
    frac = counts / counts.sum(axis=1, keepdims=True)
    p_hat = (w[:, None] * frac).sum(0) / w.sum()
    z = w[:, None] * (frac - p_hat) / w.mean()
    eigval, eigvec = np.linalg.eigh(z.T @ z / (w.size * (w.size - 1)))
    keep = eigval > 1e-9 * eigval.max()
    d = eigvec[:, keep].T @ (p_hat - p)
    return float(stats.chi2.sf((d**2 / eigval[keep]).sum(), keep.sum()))


def _pooled_counts(theta: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-matrix bin counts ``(S, B)`` of the phases ``theta (S, N)``."""
    bins = np.clip(np.digitize(theta, edges) - 1, 0, edges.size - 2)  # (S, N)
    return (bins[..., None] == np.arange(edges.size - 1)).sum(axis=1)


# --- eigenphases, Haar measure and characters -------------------------------------------


def test_vandermonde_matches_product():
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, size=(5, 7, 4))
    z = np.exp(1j * theta)
    direct = np.ones((5, 7))
    for i in range(4):
        for j in range(i + 1, 4):
            direct *= np.abs(z[..., i] - z[..., j]) ** 2
    np.testing.assert_allclose(vandermonde_sq(theta), direct, rtol=1e-12)


@pytest.mark.parametrize("N, n", [(2, 16), (3, 16), (4, 12)])
def test_haar_density_normalised(N, n):
    assert _haar_average(np.ones(n ** (N - 1)), N, n) == pytest.approx(1.0, abs=1e-13)


def test_irrep_dimensions():
    assert [irrep_dimension((k, 0)) for k in range(5)] == [1, 2, 3, 4, 5]
    su3 = {(1, 0, 0): 3, (1, 1, 0): 3, (2, 0, 0): 6, (2, 1, 0): 8, (3, 0, 0): 10, (2, 2): 6}
    for lam, d in su3.items():
        assert irrep_dimension(lam, N=3) == d
    assert irrep_dimension((1, 1, 0, 0)) == 6
    assert irrep_dimension((2, 1, 1), N=3) == 3  # same irrep as (1, 0, 0)


@pytest.mark.parametrize(
    "lam", [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 2, 1), (2, 1, 0, 0)]
)
def test_character_at_identity_and_weyl_ratio(lam):
    N = len(lam)
    assert weyl_character(lam, np.zeros(N)) == pytest.approx(irrep_dimension(lam), abs=1e-10)
    rng = np.random.default_rng(1)
    free = rng.uniform(0, 2 * np.pi, size=(50, N - 1))
    theta = np.concatenate([free, -free.sum(-1, keepdims=True)], axis=-1)
    np.testing.assert_allclose(weyl_character(lam, theta), _weyl_ratio(lam, theta), rtol=1e-10)


def test_su2_character_closed_form():
    phi = np.linspace(0.1, 3.0, 17)
    theta = np.stack([phi, -phi], axis=-1)
    for k in range(6):
        expected = np.sin((k + 1) * phi) / np.sin(phi)
        np.testing.assert_allclose(weyl_character((k,), theta).real, expected, atol=1e-12)


@pytest.mark.parametrize("N", [2, 3])
def test_characters_orthonormal(N):
    irreps = [(k,) + (0,) * (N - 1) for k in range(4)]
    if N == 3:
        irreps += [(1, 1, 0), (2, 1, 0), (2, 2, 0)]
    n = 24
    chars = [weyl_character(lam, _torus_grid(N, n)) for lam in irreps]
    gram = np.array([[_haar_average(a * b.conj(), N, n) for b in chars] for a in chars])
    np.testing.assert_allclose(gram, np.eye(len(irreps)), atol=1e-12)


# --- character coefficients and infinite volume -----------------------------------------


@pytest.mark.parametrize("beta", [0.5, 4.0, 9.0])
@pytest.mark.parametrize(
    "lam",
    [
        (0, 0),
        (1, 0),
        (2, 0),
        (5, 0),
        (0, 0, 0),
        (1, 0, 0),
        (1, 1, 0),
        (2, 1, 0),
        (3, 0, 0),
        (4, 2, 0),
    ],
)
def test_character_coefficient_matches_bessel_determinant(lam, beta):
    N = len(lam)
    f = sun_character_coefficient(N, beta, lam)
    f0 = _bessel_coefficient(N, beta, (0,) * N)
    assert f == pytest.approx(_bessel_coefficient(N, beta, lam), rel=1e-10, abs=1e-14 * f0)


@pytest.mark.parametrize("beta", [0.3, 2.0, 9.0, 15.0])
def test_su2_closed_forms(beta):
    assert sun_character_coefficient(2, beta, (0,)) == pytest.approx(
        2 * special.iv(1, beta) / beta, rel=1e-12
    )
    for k in range(1, 5):
        expected = (k + 1) * 2 * special.iv(k + 1, beta) / beta
        assert sun_character_coefficient(2, beta, (k,)) == pytest.approx(expected, rel=1e-10)
    ratio = special.iv(2, beta) / special.iv(1, beta)
    assert sun_plaquette_infinite_volume(2, beta) == pytest.approx(ratio, rel=1e-10, abs=1e-14)
    assert single_matrix_log_z(2, beta, [1.0]) == pytest.approx(
        math.log(2 * special.iv(1, beta) / beta), abs=1e-12
    )


@pytest.mark.parametrize("N", [2, 3, 4])
def test_wilson_loop_area_law(N):
    plaq = sun_plaquette_infinite_volume(N, 5.0)
    assert sun_wilson_loop_infinite_volume(N, 5.0, 1) == pytest.approx(plaq, rel=1e-12)
    assert sun_wilson_loop_infinite_volume(N, 5.0, 3) == pytest.approx(plaq**3, rel=1e-12)
    assert plaq == pytest.approx(single_matrix_mean_trace(N, 5.0, [1.0]), rel=1e-12)


@pytest.mark.parametrize("N", [2, 3, 4])
def test_small_beta_slope(N):
    # ⟨(1/N) Re tr U⟩ ≈ (β/N²) ⟨(Re tr U)²⟩_Haar: 1 for SU(2) (tr U real), 1/2 for N >= 3
    slope = 1 / 4 if N == 2 else 1 / (2 * N**2)
    beta = 1e-5
    assert sun_plaquette_infinite_volume(N, beta) / beta == pytest.approx(slope, rel=1e-4)
    assert sun_plaquette(N, beta, 2) / beta == pytest.approx(slope, rel=1e-4)
    assert sun_plaquette(N, 0.0, 3) == pytest.approx(0.0, abs=1e-15)  # Haar ⟨tr U⟩ = 0
    assert sun_lattice_log_z(N, 0.0, (2, 3)) == pytest.approx(0.0, abs=1e-13)


# --- 2D lattice ---------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.5, 2.0, 9.0])
@pytest.mark.parametrize("L", [2, (2, 3), 5])
def test_su2_lattice_closed_form(beta, L):
    # f_λ/d_λ = 2 I_{λ+1}(β)/β for SU(2), so Z = Σ_{n>=1} (2 I_n(β)/β)^{n_P}
    n_p = L * L if isinstance(L, int) else L[0] * L[1]
    n = np.arange(1, 80)
    g = 2 * special.ive(n, beta) / beta  # e^{-β} 2 I_n/β
    dg = (special.ive(n - 1, beta) + special.ive(n + 1, beta)) / beta - g / beta
    log_z = n_p * beta + math.log((g**n_p).sum())
    assert sun_lattice_log_z(2, beta, L) == pytest.approx(log_z, rel=1e-12)
    plaq = (g ** (n_p - 1) * dg).sum() / (g**n_p).sum()
    assert sun_plaquette(2, beta, L) == pytest.approx(plaq, rel=1e-11)


@pytest.mark.parametrize("N, beta, L", [(3, 1.0, 2), (3, 6.0, (2, 3)), (4, 3.0, 2)])
def test_plaquette_is_derivative_of_log_z(N, beta, L):
    n_p = L * L if isinstance(L, int) else L[0] * L[1]
    h = 1e-4
    # 4th-order central difference: truncation ~h⁴ f⁽⁵⁾, rounding ~1e-16 log Z / h
    d = (
        -sun_lattice_log_z(N, beta + 2 * h, L)
        + 8 * sun_lattice_log_z(N, beta + h, L)
        - 8 * sun_lattice_log_z(N, beta - h, L)
        + sun_lattice_log_z(N, beta - 2 * h, L)
    ) / (12 * h * n_p)
    assert sun_plaquette(N, beta, L) == pytest.approx(d, abs=1e-9)


def test_large_volume_limit():
    inf = sun_plaquette_infinite_volume(3, 4.0)
    assert abs(sun_plaquette(3, 4.0, 16) - inf) < 1e-8
    assert abs(sun_plaquette(3, 4.0, 2) - inf) > 1e-3  # the small torus is visibly different
    assert sun_lattice_log_z(3, 4.0, 16) / 256 == pytest.approx(
        math.log(sun_character_coefficient(3, 4.0, (0, 0))), rel=1e-10
    )


def _lattice_mc(N: int, beta: float, n_cfg: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Haar links on the 2×2 torus: per configuration ``S`` and ``(1/N n_P) Σ_P Re tr U_P``."""
    u = _haar_sun(N, 8 * n_cfg, seed).reshape(n_cfg, 2, 2, 2, N, N)  # (B, mu, x0, x1, N, N)
    u0, u1 = u[:, 0], u[:, 1]  # (B, x0, x1, N, N); x + μ̂ is a roll by -1 along axis 1 + μ
    u0_dag, u1_dag = (np.conj(np.swapaxes(v, -1, -2)) for v in (u0, u1))
    # U_P(x) = U_0(x) U_1(x+0̂) U_0(x+1̂)† U_1(x)†
    u_p = u0 @ np.roll(u1, -1, axis=1) @ np.roll(u0_dag, -1, axis=2) @ u1_dag
    re_tr = np.trace(u_p, axis1=-2, axis2=-1).real.reshape(n_cfg, 4)
    return -beta / N * re_tr.sum(1), re_tr.mean(1) / N


@pytest.mark.parametrize("N, beta, n_cfg", [(2, 1.0, 100_000), (3, 3.0, 50_000)])
def test_lattice_reweighted_haar_monte_carlo(N, beta, n_cfg):
    action, plaq = _lattice_mc(N, beta, n_cfg, seed=2024 + N)
    w = np.exp(-action)
    z, z_err = w.mean(), w.std(ddof=1) / math.sqrt(n_cfg)
    assert abs(math.exp(sun_lattice_log_z(N, beta, 2)) - z) < 4 * z_err
    mean, err = _reweighted(w, plaq)
    assert abs(sun_plaquette(N, beta, 2) - mean) < 4 * err


# --- single-matrix targets ----------------------------------------------------------------


@pytest.mark.parametrize("N", [2, 3])
@pytest.mark.parametrize("beta, c", [(9.0, c) for c in BOYDA] + [(12.0, (2.0, -2.0, 2.0))])
def test_single_matrix_grid_doubling(N, beta, c):
    n = _default_n_grid(N, beta, c, extra=1)
    log_z = single_matrix_log_z(N, beta, c)
    assert abs(single_matrix_log_z(N, beta, c, n_grid=2 * n) - log_z) < 1e-10 * abs(log_z)
    assert single_matrix_mean_trace(N, beta, c, n_grid=2 * n) == pytest.approx(
        single_matrix_mean_trace(N, beta, c), abs=1e-12
    )
    # the doubling check can fail: a coarse grid is visibly wrong
    assert abs(single_matrix_log_z(N, beta, c, n_grid=8) - log_z) > 1e-6


def test_single_matrix_log_density_normalised():
    for N, n in [(2, 256), (3, 192)]:
        theta = _torus_grid(N, n)
        logp = single_matrix_log_density(theta, N, 9.0, BOYDA[1])
        assert _haar_average(np.exp(logp), N, n).real == pytest.approx(1.0, abs=1e-12)
    x = np.array([[0.3, -0.3], [1.0, -1.0]])
    expected = 9.0 / 2 * (np.cos(x) + np.cos(2 * x) * 0.5).sum(-1) - single_matrix_log_z(
        2, 9.0, (1.0, 0.5)
    )
    np.testing.assert_allclose(single_matrix_log_density(x, 2, 9.0, [1.0, 0.5]), expected)


def test_single_matrix_beta_zero():
    assert single_matrix_log_z(3, 0.0, BOYDA[0]) == pytest.approx(0.0, abs=1e-14)
    assert single_matrix_mean_trace(3, 0.0, BOYDA[0]) == pytest.approx(0.0, abs=1e-14)


def test_single_matrix_reweighted_haar_monte_carlo():
    N, beta, c = 3, 2.0, BOYDA[0]
    theta = _haar_eigenphases(N, 200_000, seed=11)
    k = np.arange(1, 4)
    power_sums = np.exp(1j * theta[..., None] * k).sum(axis=1)  # tr U^k, (S, 3)
    w = np.exp(beta / N * (power_sums @ np.array(c)).real)
    z, z_err = w.mean(), w.std(ddof=1) / math.sqrt(w.size)
    assert abs(math.exp(single_matrix_log_z(N, beta, c)) - z) < 4 * z_err
    mean, err = _reweighted(w, power_sums[:, 0].real / N)
    assert abs(single_matrix_mean_trace(N, beta, c) - mean) < 4 * err
    assert abs(mean) > 20 * err  # the target's trace is far from the Haar value 0
    edges = np.linspace(-np.pi, np.pi, 25)
    counts = _pooled_counts(theta, edges)
    p = single_matrix_eigenphase_histogram(N, beta, c, edges)
    assert _histogram_chi2(counts, w, p) > 0.01
    p_haar = single_matrix_eigenphase_histogram(N, 0.0, c, edges)
    assert _histogram_chi2(counts, w, p_haar) < 1e-6  # power: Haar bins are rejected


@pytest.mark.parametrize("N", [2, 3])
def test_haar_eigenphase_histogram_monte_carlo(N):
    edges = np.linspace(-np.pi, np.pi, 25)
    counts = _pooled_counts(_haar_eigenphases(N, 200_000, seed=7 + N), edges)
    w = np.ones(counts.shape[0])
    assert (
        _histogram_chi2(counts, w, single_matrix_eigenphase_histogram(N, 0.0, [1.0], edges)) > 0.01
    )
    uniform = np.diff(edges) / (2 * np.pi)
    assert _histogram_chi2(counts, w, uniform) < 1e-6  # power: level repulsion is seen


@pytest.mark.parametrize("N", [2, 3, 4])
def test_haar_eigenphase_histogram_analytic(N):
    # Haar: ⟨tr U^m⟩ = (-1)^{N-1} for m = ±N, 0 for other m ≠ 0 (only (1^N) is a singlet hook),
    # so one phase has density (1/2π)(1 + (2/N)(-1)^{N-1} cos Nφ)
    edges = np.array([-np.pi, -2.0, -0.5, 0.0, 0.3, 1.7, np.pi])
    a, b = edges[:-1], edges[1:]
    expected = (b - a) / (2 * np.pi) + (-1) ** (N - 1) * (np.sin(N * b) - np.sin(N * a)) / (
        np.pi * N**2
    )
    hist = single_matrix_eigenphase_histogram(N, 0.0, [0.5, 1.0], edges)
    np.testing.assert_allclose(hist, expected, atol=1e-13)
    assert hist.sum() == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("N, c", [(2, BOYDA[0]), (2, BOYDA[1]), (3, BOYDA[1])])
def test_eigenphase_histogram_against_quadrature(N, c):
    beta = 9.0
    edges = np.linspace(-np.pi, np.pi, 9)
    hist = single_matrix_eigenphase_histogram(N, beta, c, edges)
    norm = math.factorial(N) * (2 * np.pi) ** (N - 1)
    inner = _torus_grid(N - 1, 192) if N > 2 else np.zeros((1, 0))  # trapezoid over θ_2

    def density(phi: float) -> float:
        free = np.concatenate([np.full((inner.shape[0], 1), phi), inner[:, : N - 2]], axis=1)
        theta = np.concatenate([free, -free.sum(-1, keepdims=True)], axis=1)
        logp = single_matrix_log_density(theta, N, beta, c)
        dens = vandermonde_sq(theta) * np.exp(logp) / norm
        return float(dens.mean() * (2 * np.pi) ** (N - 2))

    ref = [integrate.quad(density, lo, hi, epsabs=1e-12)[0] for lo, hi in pairwise(edges)]
    np.testing.assert_allclose(hist, ref, atol=1e-9)


def test_histogram_edges_outside_range_get_nothing():
    edges = np.array([-4.0, -np.pi, 0.0, np.pi, 4.0])
    hist = single_matrix_eigenphase_histogram(2, 3.0, [1.0], edges)
    assert hist[0] == 0.0 and hist[-1] == 0.0
    assert hist.sum() == pytest.approx(1.0, abs=1e-13)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: single_matrix_log_z(1, 1.0, [1.0]), "N must be an integer >= 2"),
        (lambda: single_matrix_log_z(2.5, 1.0, [1.0]), "N must be an integer >= 2"),
        (lambda: single_matrix_log_z(3, -1.0, [1.0]), "beta must be finite and >= 0"),
        (lambda: single_matrix_log_z(3, math.nan, [1.0]), "beta must be finite and >= 0"),
        (lambda: single_matrix_log_z(3, 1.0, []), "coeffs must be a non-empty 1D"),
        (lambda: single_matrix_log_z(3, 1.0, [[1.0]]), "coeffs must be a non-empty 1D"),
        (lambda: single_matrix_log_z(3, 1.0, [math.inf]), "coeffs must be finite"),
        (lambda: single_matrix_log_z(3, 1.0, [1.0], n_grid=2), "n_grid must be an integer"),
        (
            lambda: single_matrix_log_density(np.zeros((4, 2)), 3, 1.0, [1.0]),
            r"shape \(\.\.\., 3\)",
        ),
        (lambda: single_matrix_eigenphase_histogram(3, 1.0, [1.0], [0.0, -1.0]), "increasing"),
        (lambda: haar_eigenphase_density(np.array([0.3, 0.4])), "sum to 0 mod 2π"),
        (lambda: irrep_dimension((1, 2, 0)), "non-increasing"),
        (lambda: irrep_dimension((1, 0, -1)), "non-increasing and >= 0"),
        (lambda: weyl_character((1, 0, 0, 0, 0), np.zeros(3)), "need 3 or 2 entries"),
        (lambda: sun_lattice_log_z(3, 1.0, 1), "integer >= 2"),
        (lambda: sun_plaquette(3, 1.0, (2, 2, 2)), "2D lattice"),
        (lambda: sun_plaquette(3, -0.5, 4), "beta must be finite"),
        (lambda: sun_wilson_loop_infinite_volume(3, 1.0, 0), "area must be an integer >= 1"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
