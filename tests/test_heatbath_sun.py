"""SU(N) Cabibbo–Marinari heatbath and overrelaxation: SU(2) draws, invariances, exact plaquette.

Exact anchors: the density ``∝ √(1 - a₀²) e^{κ a₀}`` of the SU(2) heatbath, integrated
numerically for KS tests, and the finite-volume plaquette of the 2D Wilson action
(:func:`lqft_lab.exact.sun.sun_plaquette`). Statistical checks use fixed seeds, KS p-values,
and 4σ with σ from the Γ-method over all chains as replicas.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from lqft_lab.actions import SUNWilsonAction, U1WilsonAction
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.sun import sun_plaquette
from lqft_lab.groups.sun import haar, unitarity_violation
from lqft_lab.observables.gauge_sun import sun_mean_plaquette
from lqft_lab.samplers import SUNHeatbath, heatbath_sun, run_chain, sample_su2_heatbath

F64, C128 = torch.float64, torch.complex128

pytestmark = pytest.mark.usefixtures("one_thread")


def _hot(N, shape=(4, 4), batch=4, seed=0, dtype=C128):
    """Haar-random links ``(B, 2, L0, L1, N, N)``."""
    g = torch.Generator().manual_seed(seed)
    return haar((batch, 2, *shape), N, dtype=dtype, generator=g)


def _a0_cdf(kappa):
    """CDF on ``[-1, 1]`` of ``∝ √(1 - a₀²) e^{κ a₀}`` by the trapezoidal rule on 2²⁰ intervals."""
    grid = np.linspace(-1.0, 1.0, 2**20 + 1)
    # e^{κ(a₀ - 1)}: the e^{κ} factor cancels in the normalisation and would overflow
    density = np.sqrt(np.clip(1 - grid**2, 0, None)) * np.exp(kappa * (grid - 1))
    cumulative = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    # the quadrature is right: its total is π I₁(κ)/κ e^{-κ} (π/2 at κ = 0). The √ endpoint
    # singularities limit the trapezoid rule to O(h^{3/2}) (relative 1e-7 at κ = 30, where the
    # mass sits near a₀ = 1), far below the KS resolution 1/√n ≈ 3e-3
    total = math.pi / 2 if kappa == 0 else math.pi * special.i1e(kappa) / kappa
    assert cumulative[-1] == pytest.approx(total, rel=1e-6)
    return lambda a0: np.interp(a0, grid, cumulative / cumulative[-1])


# ---------------------------------------------------------------------- SU(2) heatbath draws


# κ = 1.7 and 1.8 straddle the switch from Creutz's to Kennedy–Pendleton's proposal (1.75)
@pytest.mark.parametrize("kappa", [0.0, 0.4, 1.7, 1.8, 4.0, 30.0])
def test_su2_heatbath_matches_exact_distribution(kappa):
    n = 100_000
    g = torch.Generator().manual_seed(int(10 * kappa) + 1)
    a0, s = sample_su2_heatbath(torch.full((n,), kappa, dtype=F64), generator=g)
    assert a0.shape == (n,) and s.shape == (n, 2, 2) and s.dtype == C128
    assert stats.kstest(a0.numpy(), _a0_cdf(kappa)).pvalue > 0.01
    # the KS test has power: the same draws are rejected against a 20% larger κ
    assert stats.kstest(a0.numpy(), _a0_cdf(1.2 * kappa + 0.1)).pvalue < 1e-6
    # s is in SU(2) with ½ tr s = a₀, and its axis â is uniform: ⟨a_i⟩ = 0 and
    # ⟨a_i² - |a|²/3⟩ = 0 for each of a_i = Im s₀₀, Im s₀₁, Re s₀₁
    assert float(unitarity_violation(s).max()) < 1e-14
    torch.testing.assert_close(torch.diagonal(s, dim1=-2, dim2=-1).sum(-1).real / 2, a0)
    a = torch.stack([s[:, 0, 0].imag, s[:, 0, 1].imag, s[:, 0, 1].real], dim=1).numpy()
    err = a.std(axis=0) / math.sqrt(n)  # i.i.d. draws: σ = sd/√n
    assert np.all(np.abs(a.mean(axis=0)) < 4 * err), (a.mean(axis=0), err)
    d = a**2 - (a**2).sum(axis=1, keepdims=True) / 3  # (n, 3)
    assert np.all(np.abs(d.mean(axis=0)) < 4 * d.std(axis=0) / math.sqrt(n)), d.mean(axis=0)


def test_su2_heatbath_dtypes_and_extremes():
    g = torch.Generator().manual_seed(2)
    a0, s = sample_su2_heatbath(torch.full((3, 1000), 2.0), generator=g)  # float32 κ
    assert a0.dtype == torch.float32 and s.dtype == torch.complex64 and s.shape == (3, 1000, 2, 2)
    again, _ = sample_su2_heatbath(torch.full((3, 1000), 2.0), torch.Generator().manual_seed(2))
    assert torch.equal(again, a0)  # reproducible from the generator alone
    for dtype in (torch.float32, F64):
        for kappa in [1e6, torch.finfo(dtype).max / 4]:  # 1 - a₀ ~ 3/(2κ), no overflow
            a0, s = sample_su2_heatbath(torch.full((2000,), kappa, dtype=dtype), generator=g)
            assert bool(torch.isfinite(s).all())
            if kappa == 1e6:  # ⟨1 - a₀⟩ = 3/(2κ) + O(κ⁻²) for the Γ(3/2, 1/κ) tail
                assert float((1 - a0.double()).mean() * kappa) == pytest.approx(1.5, rel=0.1)
        tiny = torch.finfo(dtype).tiny  # κ below √tiny: Haar draws, ⟨a₀⟩ = 0
        a0, _ = sample_su2_heatbath(torch.full((20_000,), tiny, dtype=dtype), generator=g)
        assert bool(torch.isfinite(a0).all()) and abs(float(a0.mean())) < 0.02


# Creutz's proposal at κ = 0.4 (22% rejected), Kennedy–Pendleton's at κ = 4 (12% rejected)
@pytest.mark.parametrize("kappa", [0.4, 4.0])
def test_su2_rounds_after_the_first_are_exact(kappa):
    """With one candidate per link some are left after the first round; the further rounds
    must draw those from the same law. The same seed without further rounds tells which.
    """
    n, seed = 100_000, int(10 * kappa) + 31
    kappa_t = torch.full((n,), kappa, dtype=F64)
    _, first = heatbath_sun._su2_delta(kappa_t, torch.Generator().manual_seed(seed), 1, False)
    left = (~first).numpy()
    assert 0.05 < left.mean() < 0.3
    delta, done = heatbath_sun._su2_delta(kappa_t, torch.Generator().manual_seed(seed), 1)
    assert bool(done.all())
    a0 = 1 - delta.numpy()
    assert stats.kstest(a0, _a0_cdf(kappa)).pvalue > 0.01
    assert stats.kstest(a0[left], _a0_cdf(kappa)).pvalue > 0.01  # the late draws alone
    assert stats.kstest(a0, _a0_cdf(1.2 * kappa + 0.1)).pvalue < 1e-6  # power


def test_su2_heatbath_rejects_bad_kappa():
    for kappa in [torch.tensor([-0.1]), torch.tensor([math.nan]), torch.tensor([math.inf])]:
        with pytest.raises(ValueError, match="kappa"):
            sample_su2_heatbath(kappa)
    with pytest.raises(TypeError, match="kappa"):
        sample_su2_heatbath(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="kappa"):
        sample_su2_heatbath(2.0)


# --------------------------------------------------------------------------- overrelaxation


@pytest.mark.parametrize("N", [2, 3])
def test_overrelaxation_preserves_the_action_and_sun(N):
    action = SUNWilsonAction(beta=4.0, N=N)
    sampler = SUNHeatbath(action)
    U = _hot(N, (4, 6), seed=3)
    x = U
    for _ in range(3):
        x = sampler.overrelax_sweep(x)
        torch.testing.assert_close(action(x), action(U), rtol=0, atol=1e-10)
        assert float(unitarity_violation(x).max()) < 1e-13
    assert float((x - U).abs().max()) > 0.5  # the links did move


@pytest.mark.parametrize("N", [2, 3])
def test_overrelaxation_is_an_involution(N):
    """Each subgroup reflection is its own inverse, so a sweep is undone by the sweep in
    reverse order; two forward sweeps are not the identity (the reflections do not commute).
    """
    sampler = SUNHeatbath(SUNWilsonAction(beta=1.0, N=N))
    U = _hot(N, (4, 6), seed=4)
    forward = sampler.overrelax_sweep(U)
    torch.testing.assert_close(
        sampler.overrelax_sweep(forward, reverse=True), U, rtol=0, atol=1e-12
    )
    assert float((sampler.overrelax_sweep(forward) - U).abs().max()) > 0.5


# ----------------------------------------------------------------------------- the sampler


@pytest.mark.parametrize("dtype", [torch.complex64, C128])
def test_sampler_contract(dtype):
    action = SUNWilsonAction(beta=4.0, N=3)
    sampler = SUNHeatbath(action, n_overrelax=2)
    state = sampler.init(_hot(3, (4, 6), batch=8, seed=5, dtype=dtype))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = state.x
    x_before = state.x.clone()
    new, info = sampler.step(state, torch.Generator().manual_seed(6))
    torch.testing.assert_close(state.x, x_before)  # the input state is not modified
    assert new.x.shape == (8, 2, 4, 6, 3, 3) and new.x.dtype == dtype
    assert info.accepted.shape == (8,) and info.accepted.dtype == torch.bool
    assert bool(info.accepted.all())
    torch.testing.assert_close(new.S, action(new.x))
    again, _ = sampler.step(state, torch.Generator().manual_seed(6))
    assert torch.equal(again.x, new.x)  # reproducible from the generator alone
    assert repr(sampler) == "SUNHeatbath(SUNWilsonAction(beta=4.0, N=3), n_overrelax=2)"
    cold = torch.eye(3, dtype=dtype).expand(2, 2, 4, 4, 3, 3)  # staples ∝ 1: k = 2 everywhere
    moved = sampler.heatbath_sweep(cold, torch.Generator().manual_seed(7))
    assert float((moved - cold).abs().flatten(-2).amax(-1).min()) > 0  # every link moved


@pytest.mark.parametrize(("dtype", "tol"), [(C128, 1e-13), (torch.complex64, 3e-6)])
def test_links_stay_in_sun_over_many_sweeps(dtype, tol):
    """complex64 needs the re-projection of :mod:`lqft_lab.samplers.heatbath_sun`: without it
    the violation here is 1.4e-5 after the 80 steps (measured), with it about 1e-6.
    """
    sampler = SUNHeatbath(SUNWilsonAction(beta=4.0, N=3), n_overrelax=2)
    chain = run_chain(sampler, _hot(3, (2, 2), batch=8, seed=8, dtype=dtype), 80)
    assert float(unitarity_violation(chain.final.x).max()) < tol


# Γ-method errors with the chains as replicas; τ_int of the plaquette ≈ 0.5 sweeps (in 2D the
# plaquettes are nearly independent). σ ≈ 6e-4, under 0.2% of the value.
PHYSICS = [
    # (N, beta, n_overrelax, chains, sweeps after 20 thermalisation sweeps from a hot start)
    (2, 2.0, 1, 64, 150),
    (3, 4.0, 1, 64, 150),
    (3, 4.0, 0, 64, 100),
]


def _check_exact_plaquette(N, beta, n_overrelax, chains, sweeps):
    L = 4
    chain = run_chain(
        SUNHeatbath(SUNWilsonAction(beta, N), n_overrelax=n_overrelax),
        _hot(N, (L, L), batch=chains, seed=9 + N),
        sweeps,
        torch.Generator().manual_seed(10 + N + n_overrelax),
        {"plaquette": sun_mean_plaquette},
        thermalize=20,
    )
    exact = sun_plaquette(N, beta, L)
    res = gamma_method(chain.observables["plaquette"].numpy())  # (T, B): chains as replicas
    assert res.window_converged
    assert res.error < 0.004 * exact, (res.error, exact)  # the test has power
    assert abs(res.value - exact) < 4 * res.error, (res.value, res.error, exact)


@pytest.mark.parametrize(("N", "beta", "n_overrelax", "chains", "sweeps"), PHYSICS)
def test_heatbath_reproduces_exact_plaquette(N, beta, n_overrelax, chains, sweeps):
    _check_exact_plaquette(N, beta, n_overrelax, chains, sweeps)


@pytest.mark.parametrize(("N", "beta", "n_overrelax", "chains", "sweeps"), PHYSICS[::2])
def test_links_left_without_a_draw_keep_the_chain_exact(
    N, beta, n_overrelax, chains, sweeps, monkeypatch
):
    """A GPU sweep leaves a subgroup factor whose 16 candidates were all rejected (<= 4e-9 of
    them) at ``R = 1``. Here every factor gets one candidate, so in SU(2) 5-30% of the links
    stay put in each sweep, and the chain must still reproduce the exact plaquette.
    """
    monkeypatch.setattr(heatbath_sun, "_draw_plan", lambda device, n: (1, False))
    sampler = SUNHeatbath(SUNWilsonAction(2.0, 2), n_overrelax=0)
    U = _hot(2, batch=64, seed=12)
    new = sampler.heatbath_sweep(U, torch.Generator().manual_seed(13))
    kept = float(((new - U).abs().flatten(-2).amax(-1) == 0).double().mean())
    assert 0.05 < kept < 0.3, kept
    _check_exact_plaquette(N, beta, n_overrelax, chains, sweeps)


def test_a_sweep_off_the_cpu_asks_the_host_nothing(gpu_plan_step):
    """What tests/test_gpu.py checks on CUDA, on the CPU: with the plan of a GPU (16 candidates,
    no further rounds) a complex128 step calls no op that would make a GPU wait for the host.
    """
    sampler = SUNHeatbath(SUNWilsonAction(4.0, 3), n_overrelax=1)
    state = sampler.init(_hot(3, (4, 6), seed=14))
    new = gpu_plan_step(heatbath_sun, sampler, state, seed=15)
    assert float(unitarity_violation(new.x).max()) < 1e-13


# ------------------------------------------------------------------------------ bad input


def test_bad_input():
    sampler = SUNHeatbath(SUNWilsonAction(beta=1.0, N=3))
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        sampler.init(_hot(2))  # 2x2 links for an SU(3) action
    with pytest.raises(ValueError, match="complex"):
        sampler.init(torch.zeros(2, 2, 4, 4, 3, 3, dtype=F64))
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        sampler.init(2 * _hot(3))  # not in SU(3)
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        sampler.init(torch.full((2, 2, 4, 4, 3, 3), math.nan, dtype=C128))
    for shape in [(3, 4), (4, 5)]:
        with pytest.raises(ValueError, match="even"):
            sampler.init(_hot(3, shape))
    with pytest.raises(ValueError, match=r"\(B, 2, L0, L1, N, N\)"):
        sampler.init(haar((2, 3, 4, 4), 3))
    with pytest.raises(ValueError, match="starting links"):
        sampler.init(None)
    with pytest.raises(TypeError, match="SUNWilsonAction"):
        SUNHeatbath(U1WilsonAction(1.0))
    for n_overrelax in [-1, 1.5, True, "1"]:
        with pytest.raises(ValueError, match="n_overrelax"):
            SUNHeatbath(SUNWilsonAction(beta=1.0, N=3), n_overrelax=n_overrelax)
