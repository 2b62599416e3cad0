"""SU(N) HMC: reversibility, ΔH ∝ ε², links stay in SU(N), gauge covariance, exact plaquette.

Exact anchor: the finite-volume plaquette of the 2D Wilson action
(:func:`lqft_lab.exact.sun.sun_plaquette`, character expansion). Statistical checks use fixed
seeds and 4σ with σ from the Γ-method over all chains as replicas.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import SingleMatrixAction, SUNWilsonAction, sun_gauge_transform
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.sun import sun_plaquette
from lqft_lab.groups.sun import dagger, haar, random_algebra, unitarity_violation
from lqft_lab.observables.gauge_sun import sun_mean_plaquette
from lqft_lab.samplers import (
    SUNHMC,
    run_chain,
    sun_kinetic_energy,
    sun_leapfrog,
    sun_omelyan,
)

INTEGRATORS = {"leapfrog": sun_leapfrog, "omelyan": sun_omelyan}
C128 = torch.complex128

pytestmark = pytest.mark.usefixtures("one_thread")


def _hot(N, shape=(4, 4), batch=4, seed=0, dtype=C128):
    """Haar-random links ``(B, 2, L0, L1, N, N)``."""
    g = torch.Generator().manual_seed(seed)
    return haar((batch, 2, *shape), N, dtype=dtype, generator=g)


def _momenta(U, seed):
    g = torch.Generator().manual_seed(seed)
    return random_algebra(U.shape[:-2], U.shape[-1], dtype=U.dtype, generator=g)


def _hamiltonian(action, U, X):
    return sun_kinetic_energy(X) + action(U)


def test_kinetic_energy_is_minus_trace_x_squared():
    X = _momenta(_hot(3), seed=1)
    tr = torch.diagonal(X @ X, dim1=-2, dim2=-1).sum(-1)  # (B, 2, L0, L1)
    torch.testing.assert_close(sun_kinetic_energy(X), -tr.real.flatten(1).sum(1))
    # -tr X² = ½ Σ p_a² with N² - 1 unit Gaussians p_a: ⟨K⟩ = (N² - 1)/2 per link
    X = _momenta(_hot(3, batch=64), seed=2)
    K_link = sun_kinetic_energy(X.reshape(-1, 1, 3, 3))  # (links,): i.i.d. ½χ²₈
    mean, err = float(K_link.mean()), float(K_link.std()) / math.sqrt(K_link.numel())
    assert abs(mean - 4.0) < 4 * err, (mean, err)
    assert float(K_link.var()) == pytest.approx(4.0, rel=0.15)  # Var ½χ²₈ = 4; σ_rel ≈ 6%


@pytest.mark.parametrize("N", [2, 3])
@pytest.mark.parametrize("name", INTEGRATORS)
def test_integrator_is_reversible(name, N):
    action = SUNWilsonAction(beta=4.0, N=N)
    U0 = _hot(N, seed=3)
    X0 = _momenta(U0, seed=4)
    U1, X1 = INTEGRATORS[name](U0, X0, action.force, 0.1, 20)
    assert float((U1 - U0).abs().max()) > 0.5  # it did move
    U2, X2 = INTEGRATORS[name](U1, -X1, action.force, 0.1, 20)
    torch.testing.assert_close(U2, U0, rtol=0, atol=1e-10)
    torch.testing.assert_close(-X2, X0, rtol=0, atol=1e-10)


def _rms_delta_H(name, N, eps_values, trajectory_length=1.0):
    action = SUNWilsonAction(beta=4.0, N=N)
    U = _hot(N, batch=16, seed=5)
    X = _momenta(U, seed=6)
    H0 = _hamiltonian(action, U, X)
    rms = []
    for eps in eps_values:
        U1, X1 = INTEGRATORS[name](U, X, action.force, eps, round(trajectory_length / eps))
        rms.append(float((_hamiltonian(action, U1, X1) - H0).pow(2).mean().sqrt()))
    return np.array(rms)


EPS = np.array([0.2, 0.1, 0.05, 0.025])


@pytest.mark.parametrize("N", [2, 3])
@pytest.mark.parametrize("name", INTEGRATORS)
def test_energy_violation_scales_as_step_size_squared(name, N):
    rms = _rms_delta_H(name, N, EPS)
    slope = np.polyfit(np.log(EPS), np.log(rms), 1)[0]
    # Deterministic (fixed seed), not statistical: ΔH = c₂ ε² + O(ε⁴) at fixed trajectory
    # length; ±0.25 allows for the ε⁴ term at ε = 0.2. A first-order bug (e.g. a wrong force
    # sign or a missing half kick) gives about 1, a wrong force no decrease at all.
    assert abs(slope - 2.0) < 0.25, (name, N, slope, rms)


def test_omelyan_beats_leapfrog_at_equal_step_size():
    ratio = _rms_delta_H("omelyan", 3, EPS) / _rms_delta_H("leapfrog", 3, EPS)
    assert np.all(ratio < 0.3), ratio


@pytest.mark.parametrize("name", INTEGRATORS)
def test_links_stay_in_sun_along_a_trajectory(name):
    action = SUNWilsonAction(beta=4.0, N=3)
    U0 = _hot(3, seed=7)
    assert float(unitarity_violation(U0).max()) < 1e-13
    U1, X1 = INTEGRATORS[name](U0, _momenta(U0, seed=8), action.force, 0.05, 20)
    assert float(unitarity_violation(U1).max()) < 1e-10
    # momenta stay in su(N): anti-Hermitian and traceless
    torch.testing.assert_close(dagger(X1), -X1, rtol=0, atol=1e-12)
    trace = torch.diagonal(X1, dim1=-2, dim2=-1).sum(-1)
    assert float(trace.abs().max()) < 1e-12


@pytest.mark.parametrize("name", INTEGRATORS)
def test_trajectory_is_gauge_covariant(name):
    """With ``U → Ω U Ω'†`` and ``X(x) → Ω(x) X Ω(x)†`` the trajectory is the transformed one."""
    N = 3
    action = SUNWilsonAction(beta=4.0, N=N)
    U0 = _hot(N, seed=9)
    X0 = _momenta(U0, seed=10)
    B, _, L0, L1 = U0.shape[:4]
    omega = haar((B, L0, L1), N, dtype=C128, generator=torch.Generator().manual_seed(11))
    om = omega.unsqueeze(1)  # (B, 1, L0, L1, N, N): the same Ω(x) for both directions
    U1, X1 = INTEGRATORS[name](U0, X0, action.force, 0.1, 10)
    U1g, X1g = INTEGRATORS[name](
        sun_gauge_transform(U0, omega), om @ X0 @ dagger(om), action.force, 0.1, 10
    )
    torch.testing.assert_close(U1g, sun_gauge_transform(U1, omega), rtol=0, atol=1e-10)
    torch.testing.assert_close(X1g, om @ X1 @ dagger(om), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.complex64, C128])
@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_sampler_contract(integrator, dtype):
    action = SUNWilsonAction(beta=4.0, N=3)
    eps = {"leapfrog": 0.7, "omelyan": 1.2}[integrator]  # large: some trajectories rejected
    hmc = SUNHMC(action, eps, 2, integrator=integrator, jitter=0.1)
    state = hmc.init(_hot(3, batch=16, seed=12, dtype=dtype))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = state.x
    x_before = state.x.clone()
    new, info = hmc.step(state, torch.Generator().manual_seed(13))
    torch.testing.assert_close(state.x, x_before)  # the input state is not modified
    assert new.x.dtype == dtype and new.x.shape == x_before.shape
    assert info.accepted.dtype == torch.bool and info.accepted.shape == (16,)
    assert 0 < int(info.accepted.sum()) < 16  # the test below sees both outcomes
    torch.testing.assert_close(info.accept_prob, torch.exp(-info.delta_H).clamp(max=1))
    torch.testing.assert_close(new.S, action(new.x))  # the cached action is the action
    moved = (new.x != state.x).flatten(1).any(1)
    assert torch.equal(moved, info.accepted)
    again, _ = hmc.step(state, torch.Generator().manual_seed(13))
    assert torch.equal(again.x, new.x)  # reproducible from the generator alone
    assert repr(hmc) == (
        f"SUNHMC(SUNWilsonAction(beta=4.0, N=3), step_size={eps}, n_steps=2, "
        f"integrator={integrator!r}, jitter=0.1)"
    )


@pytest.mark.parametrize(("dtype", "tol"), [(C128, 1e-12), (torch.complex64, 5e-6)])
def test_links_stay_in_sun_over_many_trajectories(dtype, tol):
    """complex64 needs the re-projection of :mod:`lqft_lab.samplers.hmc_sun`: without it the
    violation grows by ``~8e-7`` per 10-step trajectory, past ``tol`` within 10 of them.
    """
    hmc = SUNHMC(SUNWilsonAction(beta=4.0, N=3), 0.1, 10)
    chain = run_chain(hmc, _hot(3, (2, 2), batch=8, seed=14, dtype=dtype), 60, torch.Generator())
    assert chain.acceptance > 0.5
    assert float(unitarity_violation(chain.final.x).max()) < tol


# Γ-method errors with chains as replicas. Acceptance ≈ 0.9, τ_int of the plaquette ≈ 1
# trajectory; σ ≈ 1e-3 (under 0.4% of the value), so 4σ resolves a 1.5% bias.
PHYSICS = [
    # (N, beta, integrator, step_size, n_steps, chains, trajectories after 20 thermalisation)
    (2, 2.0, "omelyan", 0.5, 2, 64, 120),
    (3, 4.0, "omelyan", 0.5, 2, 64, 120),
]


@pytest.mark.parametrize(("N", "beta", "integrator", "eps", "n_steps", "chains", "n"), PHYSICS)
def test_hmc_reproduces_exact_plaquette(N, beta, integrator, eps, n_steps, chains, n):
    L = 4
    hmc = SUNHMC(SUNWilsonAction(beta, N), eps, n_steps, integrator=integrator, jitter=0.1)
    chain = run_chain(
        hmc,
        _hot(N, (L, L), batch=chains, seed=15 + N),
        n,
        torch.Generator().manual_seed(16 + N),
        {"plaquette": sun_mean_plaquette},
        thermalize=20,
    )
    assert chain.acceptance > 0.8
    exact = sun_plaquette(N, beta, L)
    res = gamma_method(chain.observables["plaquette"].numpy())  # (T, B): chains as replicas
    assert res.window_converged
    assert res.error < 0.004 * exact, (res.error, exact)  # the test has power
    assert abs(res.value - exact) < 4 * res.error, (res.value, res.error, exact)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_size": 0.0, "n_steps": 5},
        {"step_size": -0.1, "n_steps": 5},
        {"step_size": float("nan"), "n_steps": 5},
        {"step_size": math.inf, "n_steps": 5},
        {"step_size": "0.1", "n_steps": 5},
        {"step_size": 0.1, "n_steps": 0},
        {"step_size": 0.1, "n_steps": 2.5},
        {"step_size": 0.1, "n_steps": 5, "integrator": "rk4"},
        {"step_size": 0.1, "n_steps": 5, "jitter": 1.0},
    ],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        SUNHMC(SUNWilsonAction(beta=1.0, N=3), **kwargs)


def test_rejects_bad_links_and_actions():
    hmc = SUNHMC(SUNWilsonAction(beta=1.0, N=3), 0.1, 5)
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        hmc.init(_hot(2))  # 2x2 links for an SU(3) action
    with pytest.raises(ValueError, match="complex"):
        hmc.init(torch.zeros(2, 2, 4, 4, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        hmc.init(2 * _hot(3))  # unitary up to a factor: not in SU(3)
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        hmc.init(torch.full((2, 2, 4, 4, 3, 3), math.nan, dtype=C128))
    with pytest.raises(ValueError, match="batch"):
        hmc.init(torch.eye(3, dtype=C128))
    with pytest.raises(ValueError, match="starting links"):
        hmc.init(None)
    with pytest.raises(TypeError, match="force"):
        SUNHMC(SingleMatrixAction(beta=1.0, coeffs=(1.0,), N=3), 0.1, 5)  # has no force
    for integrate in INTEGRATORS.values():
        U = _hot(3)
        with pytest.raises(ValueError, match="step_size"):
            integrate(U, _momenta(U, 0), SUNWilsonAction(1.0, 3).force, -0.1, 3)
        with pytest.raises(ValueError, match="n_steps"):
            integrate(U, _momenta(U, 0), SUNWilsonAction(1.0, 3).force, 0.1, 0)
