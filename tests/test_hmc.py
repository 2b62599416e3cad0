"""HMC and its integrators: reversibility, ΔH ∝ ε², Creutz's identity ⟨e^{-ΔH}⟩ = 1, forces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions.phi4 import Phi4Action
from lqft_lab.analysis import gamma_method
from lqft_lab.samplers import HMC, OMELYAN_LAMBDA, leapfrog, omelyan

INTEGRATORS = {"leapfrog": leapfrog, "omelyan": omelyan}
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _hamiltonian(action, x, p):
    return 0.5 * p.pow(2).flatten(1).sum(dim=1) + action(x)


def _exact_free_field(shape, m2, n, generator):
    """iid draws from e^{-φᵀKφ}: Gaussian with covariance (2K)⁻¹, K built site by site."""
    V = math.prod(shape)
    basis = torch.eye(V, dtype=F64).reshape(V, *shape)  # (V, *shape): unit fields
    K = (2 * len(shape) + m2) * basis - Phi4Action.neighbour_sum(basis)  # K e_i, rows
    chol = torch.linalg.cholesky(torch.linalg.inv(2 * K.reshape(V, V)))
    z = torch.randn(n, V, generator=generator, dtype=F64)
    return (z @ chol.T).reshape(n, *shape)


def test_omelyan_lambda_is_the_minimum_norm_value():
    # Omelyan et al. (2003): λ = 1/2 - (2√326 + 36)^{1/3}/12 + 1/(6 (2√326 + 36)^{1/3})
    c = (2 * math.sqrt(326) + 36) ** (1 / 3)
    assert OMELYAN_LAMBDA == pytest.approx(0.5 - c / 12 + 1 / (6 * c), abs=1e-15)


@pytest.mark.parametrize("name", INTEGRATORS)
def test_integrator_is_reversible(name):
    integrate = INTEGRATORS[name]
    action = Phi4Action(m2=-1.0, lam=0.5)  # anharmonic, so the test is not trivially linear
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 6, 6, generator=g, dtype=F64)
    p0 = torch.randn(8, 6, 6, generator=g, dtype=F64)
    x1, p1 = integrate(x0, p0, action.force, 0.05, 25)
    assert (x1 - x0).abs().max() > 0.1  # it did move
    x2, p2 = integrate(x1, -p1, action.force, 0.05, 25)
    torch.testing.assert_close(x2, x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(-p2, p0, rtol=0, atol=1e-10)


def _rms_delta_H(name, eps_values, trajectory_length=1.0):
    action = Phi4Action(m2=-1.0, lam=0.5)
    g = torch.Generator().manual_seed(2)
    x = 0.7 * torch.randn(64, 6, 6, generator=g, dtype=F64)
    p = torch.randn(64, 6, 6, generator=g, dtype=F64)
    H0 = _hamiltonian(action, x, p)
    rms = []
    for eps in eps_values:
        n_steps = round(trajectory_length / eps)
        x1, p1 = INTEGRATORS[name](x, p, action.force, eps, n_steps)
        rms.append(float((_hamiltonian(action, x1, p1) - H0).pow(2).mean().sqrt()))
    return np.array(rms)


EPS = np.array([0.1, 0.05, 0.025, 0.0125])


@pytest.mark.parametrize("name", INTEGRATORS)
def test_energy_violation_scales_as_step_size_squared(name):
    rms = _rms_delta_H(name, EPS)
    slope = np.polyfit(np.log(EPS), np.log(rms), 1)[0]
    # Deterministic (fixed seed), not statistical. At fixed trajectory length both schemes
    # have ΔH = c₂ ε² + O(ε⁴); the ±0.25 allows for the ε⁴ term at the largest ε (measured
    # slopes: 2.02 leapfrog, 2.09 Omelyan). A first- or third-order bug gives 1 or 3+.
    assert abs(slope - 2.0) < 0.25, (name, slope, rms)


def test_omelyan_beats_leapfrog_at_equal_step_size():
    ratio = _rms_delta_H("omelyan", EPS) / _rms_delta_H("leapfrog", EPS)
    # measured ≈ 0.02 here; the minimum-norm scheme must be much better at every ε
    assert np.all(ratio < 0.2), ratio


# Acceptance ≈ 0.82 and 0.88. Closer to leapfrog's stability limit ε ω_max = 2
# (ω_max = √34 here) e^{-ΔH} grows a heavy tail and std/√n stops being an honest error.
@pytest.mark.parametrize(("name", "eps", "n_steps"), [("leapfrog", 0.25, 4), ("omelyan", 0.5, 2)])
def test_creutz_identity_free_field(name, eps, n_steps):
    """⟨e^{-ΔH}⟩ = 1 over equilibrium configurations (Creutz, PRD 38 (1988) 1228)."""
    m2, shape, n = 1.0, (4, 4), 8192
    g = torch.Generator().manual_seed(3)
    hmc = HMC(Phi4Action(m2=m2, lam=0.0), eps, n_steps, integrator=name)
    state = hmc.init(_exact_free_field(shape, m2, n, g))  # iid exact draws: no burn-in
    _, info = hmc.step(state, g)
    w = torch.exp(-info.delta_H)
    mean, err = float(w.mean()), float(w.std() / math.sqrt(n))  # iid: naive error is honest
    assert 0.5 < float(info.accept_prob.mean()) < 0.95  # ΔH is not negligible here
    assert abs(mean - 1.0) < 4 * err, (mean, err)
    assert float(info.delta_H.mean()) > 0  # ⟨ΔH⟩ ≥ 0 by Jensen


def test_creutz_identity_interacting_chain():
    g = torch.Generator().manual_seed(4)
    hmc = HMC(Phi4Action(m2=-1.0, lam=0.5), 0.25, 4, integrator="leapfrog", jitter=0.2)
    state = hmc.init(torch.zeros(32, 4, 4, dtype=F64))
    rows = []
    for t in range(600):
        state, info = hmc.step(state, g)
        if t >= 100:
            rows.append(torch.exp(-info.delta_H))
    res = gamma_method(torch.stack(rows).numpy())  # (T, B) chains; autocorrelation-aware
    assert abs(res.value - 1.0) < 4 * res.error, res


def test_hmc_force_matches_autograd_and_finite_differences():
    action = Phi4Action(m2=-0.5, lam=0.8)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 4, 6, generator=g, dtype=F64)
    hmc = HMC(action, 0.1, 3)
    torch.testing.assert_close(hmc.force(x), action.autograd_force(x), rtol=1e-12, atol=1e-12)

    class NoForce:  # an action without an analytic force: HMC falls back to autograd
        def __call__(self, phi):
            return action(phi)

    torch.testing.assert_close(HMC(NoForce(), 0.1, 3).force(x), action.force(x))
    v = torch.randn(x.shape, generator=g, dtype=F64)
    h = 1e-5
    fd = (action(x + h * v) - action(x - h * v)) / (2 * h)  # directional dS/dx · v
    torch.testing.assert_close(fd, -(hmc.force(x) * v).flatten(1).sum(1), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_hmc_step_contract(integrator):
    action = Phi4Action(m2=-1.0, lam=0.5)
    hmc = HMC(action, 0.2, 5, integrator=integrator, jitter=0.1)
    x0 = torch.randn(16, 4, 4, generator=torch.Generator().manual_seed(6), dtype=F64)
    state = hmc.init(x0)
    x_before = state.x.clone()
    new, info = hmc.step(state, torch.Generator().manual_seed(7))
    torch.testing.assert_close(state.x, x_before)  # input state untouched
    assert info.accepted.dtype == torch.bool and info.accepted.shape == (16,)
    torch.testing.assert_close(info.accept_prob, torch.exp(-info.delta_H).clamp(max=1))
    torch.testing.assert_close(new.S, action(new.x))  # cached action is the action
    moved = (new.x != state.x).flatten(1).any(1)
    assert torch.equal(moved, info.accepted)
    again, _ = hmc.step(state, torch.Generator().manual_seed(7))
    assert torch.equal(again.x, new.x)  # same seed, same trajectory


def test_small_step_size_accepts_everything():
    hmc = HMC(Phi4Action(m2=-1.0, lam=0.5), 1e-3, 20, integrator="omelyan")
    state = hmc.init(torch.randn(64, 4, 4, generator=torch.Generator().manual_seed(8), dtype=F64))
    _, info = hmc.step(state, torch.Generator().manual_seed(9))
    assert bool(info.accepted.all())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_size": 0.0, "n_steps": 5},
        {"step_size": -0.1, "n_steps": 5},
        {"step_size": float("nan"), "n_steps": 5},
        {"step_size": 0.1, "n_steps": 0},
        {"step_size": 0.1, "n_steps": 2.5},
        {"step_size": 0.1, "n_steps": 5, "integrator": "rk4"},
        {"step_size": 0.1, "n_steps": 5, "jitter": 1.0},
    ],
)
def test_hmc_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        HMC(Phi4Action(m2=1.0, lam=0.0), **kwargs)


@pytest.mark.parametrize("name", INTEGRATORS)
def test_integrators_reject_bad_parameters(name):
    x = torch.zeros(2, 4, 4)
    with pytest.raises(ValueError, match="step_size"):
        INTEGRATORS[name](x, x, lambda y: -y, -0.1, 3)
    with pytest.raises(ValueError, match="n_steps"):
        INTEGRATORS[name](x, x, lambda y: -y, 0.1, 0)
