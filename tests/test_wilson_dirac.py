"""The Wilson–Dirac operator against exact statements: free spectrum (plane waves),
γ5-hermiticity, dense vs matrix-free, gauge covariance, even/odd determinant identity,
hopping expansion; and the exact-determinant ``SchwingerAction`` (κ = 0 limit, force).

Conventions: ``lqft_lab/actions/wilson_dirac.py`` and ``../shared/notes/04-schwinger.md``.
"""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import (
    GAMMA,
    SchwingerAction,
    U1WilsonAction,
    WilsonDirac,
    check_fermion,
    gamma_matrices,
    gauge_transform,
    kappa_from_mass,
    mass_from_kappa,
    plaquette_angles,
)

pytestmark = pytest.mark.usefixtures("one_thread")

F64, C128 = torch.float64, torch.complex128


def random_links(B, L0, L1, seed, scale=math.pi):
    g = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(B, 2, L0, L1, generator=g, dtype=F64) - 1)


def random_fermion(B, L0, L1, seed, dtype=C128):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L0, L1, 2, generator=g, dtype=dtype)


def momentum_matrix(kappa, p0, p1):
    """``D(p) = 1 - 2κ Σ cos p_mu + i Σ γ_mu 2κ sin p_mu``, the free operator on e^{ip·x} u."""
    a = 1 - 2 * kappa * (math.cos(p0) + math.cos(p1))
    eye = torch.eye(2, dtype=C128)
    return a * eye + 2j * kappa * (math.sin(p0) * GAMMA[0] + math.sin(p1) * GAMMA[1])


# ----------------------------------------------------------------------- conventions


def test_gamma_matrices_satisfy_the_clifford_algebra():
    g0, g1, g5 = gamma_matrices()
    eye = torch.eye(2, dtype=C128)
    for a in (g0, g1):
        torch.testing.assert_close(a @ a, eye, rtol=0, atol=0)
    torch.testing.assert_close(g0 @ g1 + g1 @ g0, 0 * eye, rtol=0, atol=0)
    torch.testing.assert_close(g5, -1j * g0 @ g1, rtol=0, atol=0)
    assert gamma_matrices(torch.complex64).dtype == torch.complex64


def test_kappa_and_mass_are_inverse():
    assert kappa_from_mass(0.0) == 0.25  # the free critical point
    for m0 in (-0.5, 0.0, 0.3, 2.0):
        assert mass_from_kappa(kappa_from_mass(m0)) == pytest.approx(m0, abs=1e-14)


# ------------------------------------------------------------------------ free field


@pytest.mark.parametrize("antiperiodic", [True, False])
@pytest.mark.parametrize("L0, L1", [(4, 4), (6, 4)])
def test_free_operator_on_plane_waves_is_the_momentum_matrix(antiperiodic, L0, L1):
    """``D e^{ip·x} u = e^{ip·x} D(p) u`` with ``p0 = 2π(n + ½)/L0`` (antiperiodic) or
    ``2πn/L0``: the plane waves span the field space, so the spectrum is that of the
    ``D(p)``, ``a(p) ± i 2κ sqrt(Σ sin² p_mu)``. (Dense ``eigvals`` of the degenerate free D
    is good only to ~5e-8, too coarse for this 1e-12 check.)"""
    kappa = 0.23
    D = WilsonDirac(kappa, antiperiodic=antiperiodic)
    theta = torch.zeros(1, 2, L0, L1, dtype=F64)
    x0 = torch.arange(L0, dtype=F64)[:, None]
    x1 = torch.arange(L1, dtype=F64)[None, :]
    shift0 = 0.5 if antiperiodic else 0.0
    worst = 0.0
    for n0 in range(L0):
        for n1 in range(L1):
            p0, p1 = 2 * math.pi * (n0 + shift0) / L0, 2 * math.pi * n1 / L1
            wave = torch.exp(1j * (p0 * x0 + p1 * x1))  # (L0, L1)
            Dp = momentum_matrix(kappa, p0, p1)
            for u in torch.eye(2, dtype=C128):
                psi = (wave[..., None] * u)[None]  # (1, L0, L1, 2)
                want = wave[..., None] * (Dp @ u)
                worst = max(worst, float((D.apply(theta, psi)[0] - want).abs().max()))
            # the momentum matrix's eigenvalues are a ± i|b|
            a = 1 - 2 * kappa * (math.cos(p0) + math.cos(p1))
            b = 2 * kappa * math.sqrt(math.sin(p0) ** 2 + math.sin(p1) ** 2)
            ev = torch.linalg.eigvals(Dp)
            ev = ev[torch.argsort(ev.imag)]
            torch.testing.assert_close(
                ev, torch.tensor([a - 1j * b, a + 1j * b], dtype=C128), atol=1e-14, rtol=0
            )
    assert worst < 1e-12, worst


def test_antiperiodic_free_operator_has_no_zero_mode_at_the_critical_point():
    """At κ = 1/4 the periodic operator has the zero mode p = 0; antiperiodic time removes it."""
    theta = torch.zeros(1, 2, 4, 4, dtype=F64)
    periodic = torch.linalg.svdvals(WilsonDirac(0.25, antiperiodic=False).dense(theta))
    anti = torch.linalg.svdvals(WilsonDirac(0.25).dense(theta))
    assert periodic.min() < 1e-12 and anti.min() > 0.05


def test_constant_links_shift_the_momenta():
    """Links ``e^{iα_mu}`` act on plane waves as ``p_mu → p_mu + α_mu``."""
    kappa, L = 0.2, 4
    alpha = (0.3, -0.7)
    theta = torch.empty(1, 2, L, L, dtype=F64)
    theta[:, 0], theta[:, 1] = alpha
    x = torch.arange(L, dtype=F64)
    p0, p1 = 2 * math.pi * 1.5 / L, 2 * math.pi * 3 / L
    wave = torch.exp(1j * (p0 * x[:, None] + p1 * x[None, :]))
    u = torch.tensor([0.6, 0.8j], dtype=C128)
    want = wave[..., None] * (momentum_matrix(kappa, p0 + alpha[0], p1 + alpha[1]) @ u)
    got = WilsonDirac(kappa).apply(theta, (wave[..., None] * u)[None])[0]
    torch.testing.assert_close(got, want, atol=1e-13, rtol=0)


# ------------------------------------------------------------------ random links


@pytest.fixture(scope="module")
def links():
    return random_links(3, 4, 4, seed=1)


@pytest.mark.parametrize("antiperiodic", [True, False])
def test_apply_dagger_and_normal_match_the_dense_matrix(links, antiperiodic):
    D = WilsonDirac(0.27, antiperiodic=antiperiodic)
    psi = random_fermion(3, 4, 4, seed=2)
    dense = D.dense(links)  # (B, 2V, 2V)
    flat = psi.reshape(3, -1, 1)
    torch.testing.assert_close(
        D.apply(links, psi).reshape(3, -1), (dense @ flat)[..., 0], atol=1e-14, rtol=0
    )
    torch.testing.assert_close(
        D.apply_dagger(links, psi).reshape(3, -1), (dense.mH @ flat)[..., 0], atol=1e-14, rtol=0
    )
    torch.testing.assert_close(
        D.apply_normal(links, psi).reshape(3, -1),
        (dense.mH @ dense @ flat)[..., 0],
        atol=1e-13,
        rtol=0,
    )


def test_gamma5_hermiticity(links):
    dense = WilsonDirac(0.27).dense(links)
    V = 16
    g5 = torch.diag(torch.tensor([1.0, -1.0], dtype=C128).repeat(V))  # γ5 on every site
    torch.testing.assert_close(g5 @ dense @ g5, dense.mH, atol=1e-15, rtol=0)
    assert (dense - dense.mH).abs().max() > 0.1  # D itself is not Hermitian


def test_determinant_is_real_and_gauge_invariant(links):
    D = WilsonDirac(0.26)
    det = torch.linalg.det(D.dense(links))
    assert float((det.imag / det.real).abs().max()) < 1e-12
    g = torch.Generator().manual_seed(3)
    alpha = 2 * math.pi * torch.rand(3, 4, 4, generator=g, dtype=F64)
    det_g = torch.linalg.det(D.dense(gauge_transform(links, alpha)))
    torch.testing.assert_close(det_g, det, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        D.log_abs_det(gauge_transform(links, alpha)), det.abs().log(), rtol=0, atol=1e-12
    )


def test_operator_is_gauge_covariant(links):
    """``D[θ^g] (e^{iα} ψ) = e^{iα} D[θ] ψ`` with ``θ^g = α(x) + θ - α(x + mû)``."""
    D = WilsonDirac(0.27)
    psi = random_fermion(3, 4, 4, seed=4)
    g = torch.Generator().manual_seed(5)
    alpha = 2 * math.pi * torch.rand(3, 4, 4, generator=g, dtype=F64)
    phase = torch.polar(torch.ones_like(alpha), alpha)[..., None]  # (B, L0, L1, 1)
    got = D.apply(gauge_transform(links, alpha), phase * psi)
    torch.testing.assert_close(got, phase * D.apply(links, psi), atol=1e-14, rtol=0)


def test_even_odd_determinant_identity_and_schur_adjoint():
    theta = random_links(2, 6, 6, seed=6)
    D = WilsonDirac(0.27)
    det = torch.linalg.det(D.dense(theta))
    det_schur = torch.linalg.det(D.dense_schur(theta))
    torch.testing.assert_close(det_schur, det, rtol=1e-11, atol=0)
    torch.testing.assert_close(D.log_abs_det(theta), det.abs().log(), rtol=0, atol=1e-11)
    # apply_schur against its dense form, and the dagger as the adjoint
    even = D.parity_mask(6, 6).expand(6, 6, 2).reshape(-1).bool()
    a, b = random_fermion(2, 6, 6, seed=7), random_fermion(2, 6, 6, seed=8)
    Mb = D.apply_schur(theta, b)
    torch.testing.assert_close(
        Mb.reshape(2, -1)[:, even],
        (D.dense_schur(theta) @ b.reshape(2, -1)[:, even, None])[..., 0],
        atol=1e-14,
        rtol=0,
    )
    assert Mb.reshape(2, -1)[:, ~even].abs().max() == 0  # zero on odd sites
    a_e = a * D.parity_mask(6, 6)
    lhs = (a_e.conj() * Mb).sum(dim=(1, 2, 3))
    rhs = (D.apply_schur_dagger(theta, a).conj() * b).sum(dim=(1, 2, 3))
    torch.testing.assert_close(lhs, rhs, atol=1e-13, rtol=0)


def test_hopping_expansion_of_the_determinant():
    """``log det D = 8κ⁴ Σ cos θ_P + O(κ⁶)`` at L = 6 (no winding loops below length 6):
    the remainder, divided by κ⁶, stays bounded as κ halves."""
    theta = random_links(2, 6, 6, seed=9, scale=0.8)
    sum_cos = torch.cos(plaquette_angles(theta)).flatten(1).sum(dim=1)
    rest = {}
    for kappa in (0.04, 0.02):
        log_det = WilsonDirac(kappa).log_abs_det(theta)
        leading = 8 * kappa**4 * sum_cos
        torch.testing.assert_close(log_det, leading, rtol=0.02, atol=0)
        rest[kappa] = (log_det - leading) / kappa**6
    # O(κ⁶): the rescaled remainder barely moves between κ = 0.04 and 0.02
    torch.testing.assert_close(rest[0.02], rest[0.04], rtol=0.02, atol=0)


def test_kappa_zero_is_the_identity_and_pure_gauge():
    theta = random_links(2, 4, 4, seed=10)
    dense = WilsonDirac(0.0).dense(theta)
    torch.testing.assert_close(dense, torch.eye(32, dtype=C128).expand(2, -1, -1), rtol=0, atol=0)
    torch.testing.assert_close(SchwingerAction(1.3, 0.0)(theta), U1WilsonAction(1.3)(theta))
    torch.testing.assert_close(
        SchwingerAction(1.3, 0.0).force(theta), U1WilsonAction(1.3).force(theta)
    )


def test_schwinger_action_is_gauge_minus_twice_log_det():
    theta = random_links(2, 4, 4, seed=11)
    action = SchwingerAction(beta=2.0, kappa=0.26)
    det = torch.linalg.det(WilsonDirac(0.26).dense(theta)).real
    torch.testing.assert_close(
        action(theta), U1WilsonAction(2.0)(theta) - torch.log(det**2), rtol=0, atol=1e-11
    )
    assert action.beta == 2.0 and action.kappa == 0.26 and "SchwingerAction" in repr(action)


def test_schwinger_force_matches_finite_differences():
    theta = random_links(2, 4, 4, seed=12)
    action = SchwingerAction(beta=1.5, kappa=0.27)
    F = action.force(theta)
    h = 1e-6
    worst = 0.0
    for index in [(0, 0, 0), (0, 3, 3), (1, 2, 1), (1, 0, 3)]:  # incl. time-boundary links
        e = torch.zeros_like(theta)
        e[(slice(None), *index)] = h
        fd = -(action(theta + e) - action(theta - e)) / (2 * h)
        worst = max(worst, float((F[(slice(None), *index)] - fd).abs().max()))
    assert worst < 1e-7, worst


def test_float32_links_give_complex64_fields():
    theta = random_links(2, 4, 4, seed=13)
    psi = random_fermion(2, 4, 4, seed=14)
    D = WilsonDirac(0.25)
    out32 = D.apply(theta.float(), psi.to(torch.complex64))
    assert out32.dtype == torch.complex64 and D.dense(theta.float()).dtype == torch.complex64
    torch.testing.assert_close(out32.to(C128), D.apply(theta, psi), atol=1e-5, rtol=0)
    assert D.apply_schur(theta.float(), psi.to(torch.complex64)).dtype == torch.complex64
    with pytest.raises(ValueError, match="psi"):
        D.apply(theta.float(), psi)  # complex128 field with float32 links
    check_fermion(psi, theta)  # fits: no error
