"""Pseudofermions: the heatbath (⟨S_pf⟩ = 2V), S_pf and its analytic force against dense
solves, autograd and finite differences; pseudofermion HMC and exact-determinant HMC
(reversibility, ΔH ∝ ε², Creutz's ⟨e^{-ΔH}⟩ = 1).

Statistical checks use fixed seeds and 4σ with σ from the Γ-method (or the sample std of
independent draws). The comparisons with exact Nf = 2 plaquettes live with
``lqft_lab.exact.schwinger``'s tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import PseudofermionAction, SchwingerAction, U1WilsonAction
from lqft_lab.analysis import gamma_method
from lqft_lab.observables import plaquette
from lqft_lab.samplers import (
    HMC,
    PseudofermionHMC,
    PseudofermionHMCInfo,
    PseudofermionHMCState,
    leapfrog,
    run_chain,
    sample_u1_exact,
)

pytestmark = pytest.mark.usefixtures("one_thread")

F64, C128 = torch.float64, torch.complex128


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_links(B, L, seed, scale=math.pi):
    return scale * (2 * torch.rand(B, 2, L, L, generator=gen(seed), dtype=F64) - 1)


def dense_fermion_action(action, theta, phi):
    """``φ† (D†D)^{-1} φ`` (even sites and ``M†M`` with even/odd) by a dense solve."""
    B, _, L0, L1 = theta.shape
    if action.even_odd:
        M = action.dirac.dense_schur(theta)
        keep = action.dirac.parity_mask(L0, L1).expand(L0, L1, 2).reshape(-1).bool()
        v = phi.reshape(B, -1)[:, keep]
    else:
        M = action.dirac.dense(theta)
        v = phi.reshape(B, -1)
    x = torch.linalg.solve(M.mH @ M, v[..., None])[..., 0]
    return (v.conj() * x).real.sum(dim=1)


# ----------------------------------------------------------------------------- heatbath


@pytest.mark.parametrize("even_odd", [False, True])
def test_heatbath_gives_the_expected_fermion_action(even_odd):
    """``⟨φ†(D†D)^{-1}φ⟩ = 2V`` (``V`` even/odd) over independent heatbath draws at fixed
    links; drawing ``N(0, 1)`` per real component (twice the variance) would give 4V."""
    L, n = 4, 2000
    action = PseudofermionAction(beta=1.0, kappa=0.25, even_odd=even_odd)
    theta = random_links(4, L, seed=1).repeat(n // 4, 1, 1, 1)  # 4 configurations, 500 each
    # Seed 3, not 2: with seed 2 torch.randn's own χ†χ over these 2000 draws is 3.9σ low
    # (checked on the raw draws, before any D); S_pf = χ†χ exactly, so it inherited that.
    phi = action.heatbath(theta, gen(3))
    S = action.fermion_action(theta, phi).numpy()
    expected = action.n_components(theta)
    assert expected == (L * L if even_odd else 2 * L * L)
    mean, sigma = S.mean(), S.std(ddof=1) / math.sqrt(n)
    assert abs(mean - expected) < 4 * sigma, (mean, sigma, expected)
    assert abs(2 * mean - expected) > 20 * sigma  # the test can tell a factor 2
    if even_odd:
        odd = 1 - action.dirac.parity_mask(L, L)
        assert float((odd * phi).abs().max()) == 0
    print(f"even_odd={even_odd}: <S_pf> = {mean:.2f} ± {sigma:.2f} (expected {expected})")


def test_heatbath_action_is_chi_squared_exactly():
    action = PseudofermionAction(beta=1.0, kappa=0.26)
    theta = random_links(3, 4, seed=3)
    phi, S_pf = action._heatbath(theta, gen(4))
    torch.testing.assert_close(action.fermion_action(theta, phi), S_pf, rtol=1e-9, atol=0)
    torch.testing.assert_close(
        action.fermion_action(theta, phi),
        dense_fermion_action(action, theta, phi),
        rtol=1e-9,
        atol=0,
    )
    assert action.last_iterations.shape == (3,) and bool((action.last_iterations > 0).all())
    # reproducible from the generator
    torch.testing.assert_close(action.heatbath(theta, gen(4)), phi, rtol=0, atol=0)


# ------------------------------------------------------------------------------- force


def test_force_is_minus_the_gradient_of_the_norm_at_fixed_solution():
    """``∂S_pf/∂θ = -∂_θ ‖D(θ) X‖²`` at fixed ``X = (D†D)^{-1}φ`` (since
    ``d(D†D) = dD†·D + D†·dD``), by autograd."""
    action = PseudofermionAction(beta=1.0, kappa=0.27)
    theta = random_links(2, 4, seed=5)
    phi = action.heatbath(theta, gen(6))
    X = action.solve(theta, phi).x.detach()
    y = theta.clone().requires_grad_(True)
    DX = action.dirac._apply(action.dirac.links(y), X)
    (grad,) = torch.autograd.grad(-(DX.conj() * DX).real.sum(), y)  # ∂S_pf/∂θ
    F_pf = action.force(theta, phi) - action.gauge.force(theta)
    torch.testing.assert_close(F_pf, -grad, rtol=0, atol=1e-11)


@pytest.mark.parametrize("even_odd", [False, True])
@pytest.mark.parametrize("antiperiodic", [True, False])
def test_force_matches_finite_differences_of_the_full_action(even_odd, antiperiodic):
    action = PseudofermionAction(beta=1.3, kappa=0.26, even_odd=even_odd, antiperiodic=antiperiodic)
    theta = random_links(2, 4, seed=7)
    phi = action.heatbath(theta, gen(8))
    F = action.force(theta, phi)

    def S(th):  # dense, independent of CG
        return U1WilsonAction(1.3)(th) + dense_fermion_action(action, th, phi)

    h = 1e-6
    fd = torch.zeros_like(theta)
    for i in range(theta[0].numel()):
        e = torch.zeros(theta[0].numel(), dtype=F64)
        e[i] = h
        e = e.reshape(theta.shape[1:])
        fd.view(2, -1)[:, i] = -(S(theta + e) - S(theta - e)) / (2 * h)
    assert float((F - fd).abs().max()) < 1e-7 * max(1.0, float(F.abs().max()))
    torch.testing.assert_close(action(theta, phi), S(theta), rtol=1e-9, atol=0)


@pytest.mark.parametrize("even_odd", [False, True])
@pytest.mark.parametrize("L", [2, 4])
def test_fermion_action_gradients_through_cg_match_dense_autograd(even_odd, L):
    """``fermion_action`` is differentiable without backpropagating through CG (the
    backward pass reuses ``X``): its gradients in ``θ`` and in the complex ``φ`` equal
    autograd's through a dense solve, and so does the full action's (gauge part included).
    ``φ`` is a generic field, not a heatbath draw, so that its odd sites are nonzero too."""
    action = PseudofermionAction(beta=1.1, kappa=0.26, even_odd=even_odd)
    theta = random_links(3, L, seed=20)
    phi = torch.randn(3, L, L, 2, generator=gen(21), dtype=torch.complex128)
    grads = {}
    for name, fn in (
        ("cg", action.fermion_action),
        ("dense", lambda t, p: dense_fermion_action(action, t, p)),
    ):
        t, p = theta.clone().requires_grad_(True), phi.clone().requires_grad_(True)
        S = fn(t, p)
        w = torch.arange(1.0, 4.0, dtype=F64)  # a weighted sum: per-sample gradients differ
        grads[name] = (S.detach(), *torch.autograd.grad((w * S).sum(), (t, p)))
    for cg, dense in zip(grads["cg"], grads["dense"], strict=True):
        torch.testing.assert_close(cg, dense, rtol=1e-8, atol=1e-9)
    assert grads["cg"][2].abs().max() > 0.1  # ∂S/∂φ* is there ...
    if even_odd:  # ... on the even sites only
        odd = 1 - action.dirac.parity_mask(L, L)
        assert float((odd * grads["cg"][2]).abs().max()) == 0.0
    t = theta.clone().requires_grad_(True)
    (g_full,) = torch.autograd.grad(action(t, phi).sum(), t)
    torch.testing.assert_close(g_full, -action.force(theta, phi), rtol=1e-10, atol=1e-11)


def test_float32_links_are_solved_in_double_precision():
    action = PseudofermionAction(beta=1.0, kappa=0.25)
    theta = random_links(2, 4, seed=9)
    phi = action.heatbath(theta.float(), gen(10))
    assert phi.dtype == torch.complex64
    S32 = action(theta.float(), phi)
    assert S32.dtype == torch.float32 and action.force(theta.float(), phi).dtype == torch.float32
    S64 = action(theta, phi.to(C128))
    torch.testing.assert_close(S32.double(), S64, rtol=1e-4, atol=0)


# ------------------------------------------------------------------ pseudofermion HMC


@pytest.fixture(scope="module")
def pf_setup():
    action = PseudofermionAction(beta=1.0, kappa=0.24)
    theta = random_links(4, 4, seed=11, scale=1.0)
    phi = action.heatbath(theta, gen(12))
    p = torch.randn(theta.shape, generator=gen(13), dtype=F64)
    return action, theta, phi, p


def _H(action, theta, phi, p):
    return 0.5 * p.pow(2).flatten(1).sum(1) + action(theta, phi)


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_pseudofermion_hmc_is_reversible(pf_setup, integrator):
    action, theta, phi, p = pf_setup
    hmc = PseudofermionHMC(action, step_size=0.1, n_steps=10, integrator=integrator)
    x1, p1, iterations = hmc.integrate(theta, p, phi)
    assert float((x1 - theta).abs().max()) > 0.3  # it moved
    x2, p2, _ = hmc.integrate(x1, -p1, phi)
    torch.testing.assert_close(x2, theta, rtol=0, atol=1e-9)
    torch.testing.assert_close(-p2, p, rtol=0, atol=1e-9)
    n_forces = 11 if integrator == "leapfrog" else 21
    assert bool((iterations >= n_forces).all())


def test_a_looser_force_tolerance_keeps_the_trajectory_reversible(pf_setup):
    """``force_tol`` loosens only the forces' solves: CG from a zero start makes the force a
    deterministic function of the links, so the trajectory is still reversible to rounding;
    the energies (``tol``) are untouched, and the forces change by about the tolerance."""
    action, theta, phi, p = pf_setup
    loose = PseudofermionAction(action.beta, action.kappa, force_tol=1e-6)
    assert loose.tol == action.tol and loose.force_tol == 1e-6
    F_strict, F_loose = action.force(theta, phi), loose.force(theta, phi)
    assert 0 < float((F_loose - F_strict).abs().max()) < 1e-4 * float(F_strict.abs().max())
    assert loose.last_iterations.sum() < action.solve(theta, phi).iterations.sum()
    torch.testing.assert_close(loose(theta, phi), action(theta, phi), rtol=0, atol=0)
    hmc = PseudofermionHMC(loose, step_size=0.1, n_steps=10)
    x1, p1, _ = hmc.integrate(theta, p, phi)
    x2, p2, _ = hmc.integrate(x1, -p1, phi)
    torch.testing.assert_close(x2, theta, rtol=0, atol=1e-9)
    torch.testing.assert_close(-p2, p, rtol=0, atol=1e-9)


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_pseudofermion_hmc_energy_error_scales_as_eps_squared(pf_setup, integrator):
    action, theta, phi, p = pf_setup
    H0 = _H(action, theta, phi, p)
    rms = []
    for n_steps in (8, 16):
        hmc = PseudofermionHMC(
            action, step_size=1.0 / n_steps, n_steps=n_steps, integrator=integrator
        )
        x1, p1, _ = hmc.integrate(theta, p, phi)
        rms.append(float((_H(action, x1, phi, p1) - H0).pow(2).mean().sqrt()))
    ratio = rms[0] / rms[1]
    print(f"{integrator}: rms ΔH {rms}, ratio {ratio:.2f} (4 for ε²)")
    assert 3.0 < ratio < 5.0


def _creutz(chain_info_dH):
    """Γ-method mean and error of ``e^{-ΔH}`` from ``(T, B)`` trajectories."""
    res = gamma_method(np.exp(-chain_info_dH))
    return res.value, res.error


def _run_trajectories(sampler, n_therm, n, seed, B=16, L=4, beta=1.0):
    """Chains started from exact pure-gauge draws (close to the Nf = 2 target at small
    κ, so a few trajectories thermalise them), then ``n`` measured trajectories."""
    g = gen(seed)
    state = sampler.init(sample_u1_exact(B, L, beta, g, dtype=F64))
    for _ in range(n_therm):
        state, _ = sampler.step(state, g)
    dH, acc = [], []
    for _ in range(n):
        state, info = sampler.step(state, g)
        dH.append(info.delta_H)
        acc.append(info.accepted)
    return state, info, torch.stack(dH).numpy(), torch.stack(acc).double().mean().item()


def test_pseudofermion_hmc_satisfies_creutz_identity():
    action = PseudofermionAction(beta=1.0, kappa=0.24)
    hmc = PseudofermionHMC(action, step_size=0.2, n_steps=5)
    state, info, dH, acc = _run_trajectories(hmc, n_therm=4, n=25, seed=14)
    assert isinstance(state, PseudofermionHMCState) and isinstance(info, PseudofermionHMCInfo)
    assert info.cg_iterations.shape == (16,) and bool((info.cg_iterations > 0).all())
    mean, err = _creutz(dH)
    print(f"pseudofermion HMC: <exp(-dH)> = {mean:.4f} ± {err:.4f}, acceptance {acc:.2f}")
    assert abs(mean - 1) < 4 * err
    assert 0.3 < acc < 0.99  # ΔH is not trivially zero
    assert err < 0.05


def test_even_odd_pseudofermion_hmc_satisfies_creutz_identity():
    action = PseudofermionAction(beta=1.0, kappa=0.24, even_odd=True)
    hmc = PseudofermionHMC(action, step_size=0.25, n_steps=4)
    state, info, dH, acc = _run_trajectories(hmc, n_therm=4, n=25, seed=15)
    mean, err = _creutz(dH)
    print(f"even/odd pseudofermion HMC: <exp(-dH)> = {mean:.4f} ± {err:.4f}, acc {acc:.2f}")
    assert abs(mean - 1) < 4 * err
    assert 0.3 < acc < 0.99
    assert float(info.S_pf.mean()) == pytest.approx(16, rel=0.3)  # ⟨χ†χ⟩ = V = 16


def test_pseudofermion_hmc_runs_under_run_chain_and_refuses_bad_links():
    hmc = PseudofermionHMC(PseudofermionAction(1.0, 0.2), step_size=0.2, n_steps=4)
    chain = run_chain(hmc, torch.zeros(2, 2, 4, 4, dtype=F64), 3, gen(16), {"plaquette": plaquette})
    assert chain.observables["plaquette"].shape == (3, 2)
    chain = run_chain(hmc, chain.final, 2, gen(17))  # continues from a state
    for bad in (math.nan, math.inf):
        x = torch.zeros(2, 2, 4, 4, dtype=F64)
        x[1, 0, 2, 3] = bad
        with pytest.raises(ValueError, match=r"\bx\b"):
            hmc.init(x)
        with pytest.raises(ValueError, match=r"\bx\b"):
            run_chain(hmc, x, 1)


# ------------------------------------------------------------- exact-determinant HMC


def test_exact_determinant_hmc_is_reversible():
    action = SchwingerAction(beta=1.0, kappa=0.26)
    x0 = random_links(4, 4, seed=18, scale=1.0)
    p0 = torch.randn(x0.shape, generator=gen(19), dtype=F64)
    x1, p1 = leapfrog(x0, p0, action.force, 0.1, 10)
    assert float((x1 - x0).abs().max()) > 0.3
    x2, p2 = leapfrog(x1, -p1, action.force, 0.1, 10)
    torch.testing.assert_close(x2, x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(-p2, p0, rtol=0, atol=1e-10)


def test_exact_determinant_hmc_satisfies_creutz_identity():
    hmc = HMC(SchwingerAction(beta=1.0, kappa=0.24), step_size=0.2, n_steps=5)
    _, _, dH, acc = _run_trajectories(hmc, n_therm=4, n=25, seed=20)
    mean, err = _creutz(dH)
    print(f"exact-determinant HMC: <exp(-dH)> = {mean:.4f} ± {err:.4f}, acceptance {acc:.2f}")
    assert abs(mean - 1) < 4 * err
    assert 0.3 < acc < 0.99
