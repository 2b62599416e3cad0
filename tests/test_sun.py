"""SU(N) toolkit, 2D SU(N) Wilson action and its observables.

* Haar sampling against the Weyl density (χ² on the alcove), the SU(2) eigenphase law (KS)
  and the SU(3) trace moments E[tr U] = 0, E|tr U|² = 1, E[(tr U)³] = 1, E|tr U|⁴ = 2.
* Canonical eigenphases, rebuild, projections, exp map and the Gaussian algebra.
* The action: force against finite differences along the exp map, staples, gauge
  invariance; observables against the U(1) ones on diagonally embedded fields.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lqft_lab.actions import (
    SingleMatrixAction,
    SUNWilsonAction,
    random_sun_gauge_transform,
    sun_gauge_transform,
    sun_plaquettes,
    sun_staples,
)
from lqft_lab.groups.sun import (
    alcove_gaps,
    eigenphases,
    eigenphases_from_gaps,
    expm,
    from_eigenphases,
    haar,
    log_vandermonde_sq,
    project_algebra,
    project_sun,
    random_algebra,
    spectral_decomposition,
    unitarity_violation,
)
from lqft_lab.observables import sun_mean_plaquette, sun_wilson_loop, wilson_loop

C128 = torch.complex128
pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _trace(M: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(M, dim1=-2, dim2=-1).sum(-1)


# --- Haar measure ------------------------------------------------------------------------


@pytest.mark.parametrize("N", [2, 3, 4])
def test_haar_is_special_unitary(N):
    U = haar(500, N, generator=_gen(0))
    assert U.shape == (500, N, N) and U.dtype == C128
    assert unitarity_violation(U).max() < 1e-12
    U32 = haar((3, 2), N, dtype=torch.complex64, generator=_gen(1))
    assert U32.shape == (3, 2, N, N) and unitarity_violation(U32).max() < 1e-5


def test_haar_su2_eigenphase_law():
    """SU(2): the canonical phase θ ∈ [0, π] has density (2/π) sin²θ (Weyl), KS p > 0.01."""
    theta, _ = spectral_decomposition(haar(20000, 2, generator=_gen(2)))
    t = theta[:, 0].numpy()

    def cdf(x):  # ∫_0^x (2/π) sin² = (x - sin x cos x)/π
        return (x - np.sin(x) * np.cos(x)) / np.pi

    assert stats.kstest(t, cdf).pvalue > 0.01


def test_haar_su3_weyl_density_chi2():
    """SU(3): histogram of the alcove gaps (g1, g2) against |Δ|² integrated over each bin."""
    n, k = 40000, 6
    theta, _ = spectral_decomposition(haar(n, 3, generator=_gen(3)))
    g = alcove_gaps(theta)[:, :2].numpy()
    edges = np.linspace(0, 2 * np.pi, k + 1)
    observed, _, _ = np.histogram2d(g[:, 0], g[:, 1], bins=[edges, edges])
    # expected: |Δ|² on a fine midpoint grid of the (g1, g2) square, zero outside the simplex
    m = 60 * k
    c = (np.arange(m) + 0.5) * (2 * np.pi / m)
    g1, g2 = np.meshgrid(c, c, indexing="ij")
    inside = g1 + g2 < 2 * np.pi
    th = eigenphases_from_gaps(torch.tensor(np.stack([g1, g2, 2 * np.pi - g1 - g2], -1)))
    w = np.where(inside, np.exp(log_vandermonde_sq(th).numpy()), 0.0)
    expected = w.reshape(k, m // k, k, m // k).sum(axis=(1, 3))
    expected = n * expected / expected.sum()
    keep = expected > 5
    assert keep.sum() >= 12 and observed[~keep].sum() < 0.01 * n
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 0.01


def test_haar_su3_trace_moments():
    """E[tr U] = 0, E|tr U|² = 1, E[(tr U)³] = 1 (the baryon singlet), E|tr U|⁴ = 2; 5σ."""
    t = _trace(haar(100000, 3, generator=_gen(4))).numpy()
    for values, exact in [
        (t, 0.0),
        (np.abs(t) ** 2, 1.0),
        (t**3, 1.0),
        (np.abs(t) ** 4, 2.0),
    ]:
        mean = values.mean()
        err = np.sqrt((np.abs(values - mean) ** 2).mean() / len(values))
        assert abs(mean - exact) < 5 * err


def test_haar_is_reproducible_and_rejects_bad_input():
    assert torch.equal(haar(4, 3, generator=_gen(5)), haar(4, 3, generator=_gen(5)))
    with pytest.raises(ValueError, match="N must be"):
        haar(4, 1)
    with pytest.raises(ValueError, match="dtype"):
        haar(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="complex"):
        eigenphases(torch.eye(3))
    with pytest.raises(ValueError, match="shape"):
        eigenphases(torch.ones(3, 2, 3, dtype=C128))


# --- eigenvalue picture ------------------------------------------------------------------


@pytest.mark.parametrize("N", [2, 3, 4])
def test_spectral_decomposition_is_canonical_and_rebuilds(N):
    U = haar(2000, N, generator=_gen(6))
    theta, V = spectral_decomposition(U)
    assert (from_eigenphases(theta, V) - U).abs().max() < 1e-10
    assert theta.sum(-1).abs().max() < 1e-12
    assert (theta[:, :-1] >= theta[:, 1:]).all()
    assert (theta[:, 0] - theta[:, -1] <= 2 * math.pi + 1e-12).all()
    g = alcove_gaps(theta)
    assert (g >= -1e-12).all() and torch.allclose(g.sum(-1), torch.full_like(g[:, 0], 2 * math.pi))
    assert torch.allclose(eigenphases_from_gaps(g), theta, atol=1e-12)
    # a class function: conjugation leaves the canonical phases unchanged
    W = haar(2000, N, generator=_gen(7))
    theta_c, _ = spectral_decomposition(W @ U @ W.mH)
    assert torch.allclose(theta_c, theta, atol=1e-9)


def test_su2_closed_form_decomposition_matches_eig():
    U = haar(2000, 2, generator=_gen(10))
    theta, V = spectral_decomposition(U)  # the closed form
    phases = torch.sort(torch.angle(torch.linalg.eigvals(U)), dim=-1, descending=True).values
    assert (theta - phases).abs().max() < 1e-12
    assert (V @ V.mH - torch.eye(2, dtype=V.dtype)).abs().max() < 1e-12
    assert (U @ V - V * torch.exp(1j * theta)[:, None, :]).abs().max() < 1e-12
    # the centre (|a| = 0) and the charts' seams (n₃ = 0, n₃ = -1)
    special = torch.tensor(
        [[[1, 0], [0, 1]], [[-1, 0], [0, -1]], [[0, -1], [1, 0]], [[-1j, 0], [0, 1j]]],
        dtype=C128,
    )
    theta, V = spectral_decomposition(special)
    assert (from_eigenphases(theta, V) - special).abs().max() < 1e-15
    expected = torch.tensor([0, math.pi, math.pi / 2, math.pi / 2], dtype=torch.float64)
    assert torch.allclose(theta[:, 0], expected)


def test_log_vandermonde_matches_the_product():
    theta, _ = spectral_decomposition(haar(50, 3, generator=_gen(8)))
    z = torch.exp(1j * theta)
    direct = torch.ones(50, dtype=torch.float64)
    for i in range(3):
        for j in range(i + 1, 3):
            direct = direct * (z[:, i] - z[:, j]).abs() ** 2
    assert torch.allclose(log_vandermonde_sq(theta), direct.log(), atol=1e-12)


@pytest.mark.parametrize("N", [2, 3])
def test_algebra_projection_exp_map_and_momenta(N):
    M = torch.randn(100, N, N, dtype=C128, generator=_gen(9))
    X = project_algebra(M)
    assert torch.allclose(X, -X.mH) and _trace(X).abs().max() < 1e-12
    assert torch.allclose(project_algebra(X), X)
    assert unitarity_violation(expm(X)).max() < 1e-12
    # E[-tr X²] = (N² - 1)/2 for X = iΣ p_a T_a with p_a ~ N(0, 1)
    P = random_algebra(40000, N, generator=_gen(10))
    k = -_trace(P @ P).real
    assert abs(k.mean() - (N * N - 1) / 2) < 5 * k.std() / math.sqrt(len(k))
    # projection to the group fixes group elements and repairs a perturbed one
    U = haar(10, N, generator=_gen(11))
    assert torch.allclose(project_sun(U), U, atol=1e-12)
    assert unitarity_violation(project_sun(U + 1e-3 * M[:10])).max() < 1e-12


# --- the action --------------------------------------------------------------------------


@pytest.mark.parametrize("N", [2, 3])
def test_force_matches_finite_differences_along_the_exp_map(N):
    action = SUNWilsonAction(beta=2.5, N=N)
    U = haar((3, 2, 4, 4), N, generator=_gen(12))
    X = random_algebra((3, 2, 4, 4), N, generator=_gen(13))
    eps = 1e-5
    fd = (action(expm(eps * X) @ U) - action(expm(-eps * X) @ U)) / (2 * eps)
    analytic = 2 * torch.einsum("bmxyij,bmxyji->b", action.force(U), X).real
    assert torch.allclose(fd, analytic, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("N", [2, 3])
def test_staples_plaquettes_and_gauge_invariance(N):
    U = haar((2, 2, 4, 6), N, generator=_gen(14))
    re_tr_p = _trace(sun_plaquettes(U)).real.sum((1, 2))
    for mu in (0, 1):  # each plaquette holds two links of direction mu, once each
        re_tr_ua = _trace(U[:, mu] @ sun_staples(U, mu)).real.sum((1, 2))
        assert torch.allclose(re_tr_ua, 2 * re_tr_p)
    action = SUNWilsonAction(beta=1.5, N=N)
    V = random_sun_gauge_transform(U, generator=_gen(15))
    assert unitarity_violation(V).max() < 1e-12
    assert torch.allclose(action(V), action(U), atol=1e-10)
    assert torch.allclose(sun_wilson_loop(V, 2, 3), sun_wilson_loop(U, 2, 3), atol=1e-12)
    cold = torch.eye(N, dtype=C128).expand(2, 2, 4, 6, N, N)
    assert torch.allclose(action(cold), torch.full((2,), -1.5 * 24, dtype=torch.float64))
    assert torch.allclose(sun_mean_plaquette(U), action(U) / (-1.5 * 24))


def test_gauge_transform_and_action_reject_bad_input():
    U = haar((2, 2, 4, 4), 3, generator=_gen(16))
    with pytest.raises(ValueError, match="omega"):
        sun_gauge_transform(U, haar((3, 4, 4), 3))
    with pytest.raises(ValueError, match="SU\\(2\\)"):
        SUNWilsonAction(1.0, 2)(U)
    with pytest.raises(ValueError, match="beta"):
        SUNWilsonAction(-1.0, 3)
    with pytest.raises(ValueError, match="links"):
        SUNWilsonAction(1.0, 3)(U[:, 0])
    with pytest.raises(ValueError, match="mu"):
        sun_staples(U, 2)


def test_observables_agree_with_u1_on_diagonal_embeddings():
    """SU(2) links diag(e^{iθ}, e^{-iθ}) give (1/2) Re tr W = cos(loop angle) exactly."""
    theta = 2 * math.pi * torch.rand(3, 2, 6, 4, generator=_gen(17), dtype=torch.float64)
    phases = torch.stack([theta, -theta], dim=-1)  # (B, 2, L0, L1, 2)
    U = torch.diag_embed(torch.exp(1j * phases))
    for R, T in [(1, 1), (2, 3), (4, 6)]:
        assert torch.allclose(sun_wilson_loop(U, R, T), wilson_loop(theta, R, T), atol=1e-12)


def test_single_matrix_action_from_trace_and_from_eigenphases():
    action = SingleMatrixAction(9.0, (0.17, -0.65, 1.22), N=3)
    U = haar(64, 3, generator=_gen(18))
    assert torch.allclose(action(U), action.from_eigenphases(eigenphases(U)), atol=1e-10)
    with pytest.raises(ValueError, match="coeffs"):
        SingleMatrixAction(9.0, (), N=3)
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        action(haar(4, 2))
