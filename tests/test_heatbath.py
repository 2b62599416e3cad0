"""U(1) heatbath and overrelaxation: von Mises draws, staples, link groups, exact 2D results.

Exact anchors: the von Mises CDF by numerical integration and ``⟨cos θ⟩ = I₁(κ)/I₀(κ)``; the
finite-volume plaquette and topological susceptibility of :mod:`lqft_lab.exact`. Statistical
checks use fixed seeds, KS p-values, and 4σ with σ from the Γ-method over all chains.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from lqft_lab.actions import U1WilsonAction, plaquette_angles, wrap_angle
from lqft_lab.actions.phi4 import Phi4Action
from lqft_lab.analysis import gamma_method
from lqft_lab.exact import u1_plaquette, u1_topological_susceptibility
from lqft_lab.observables import plaquette, topological_charge
from lqft_lab.samplers import (
    U1Heatbath,
    heatbath,
    link_groups,
    run_chain,
    sample_von_mises,
    u1_staples,
)

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def _links(shape, batch=3, seed=0, dtype=F64):
    """Hot links ``(B, 2, L0, L1)``, uniform in ``[-π, π)``."""
    g = torch.Generator().manual_seed(seed)
    return math.pi * (2 * torch.rand(batch, 2, *shape, generator=g, dtype=dtype) - 1)


def _von_mises_cdf(kappa):
    """CDF on ``[-π, π]`` of ``∝ exp(κ cos θ)`` by the trapezoidal rule on 2²⁰ intervals."""
    grid = np.linspace(-math.pi, math.pi, 2**20 + 1)
    # e^{κ(cos θ - 1)}: the e^{κ} factor cancels in the normalisation and would overflow
    density = np.exp(kappa * (np.cos(grid) - 1))
    cumulative = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    # the quadrature is right: its total is 2π I₀(κ) e^{-κ} (trapezoid error ~ 1e-11 here)
    assert cumulative[-1] == pytest.approx(2 * math.pi * special.i0e(kappa), rel=1e-9)
    return lambda theta: np.interp(theta, grid, cumulative / cumulative[-1])


# ------------------------------------------------------------------------------ von Mises


@pytest.mark.parametrize("kappa", [0.0, 0.3, 2.0, 20.0])
def test_von_mises_matches_exact_distribution(kappa):
    n = 200_000
    g = torch.Generator().manual_seed(int(10 * kappa) + 1)
    theta = sample_von_mises(torch.full((n,), kappa, dtype=F64), generator=g).numpy()
    assert theta.min() >= -math.pi and theta.max() < math.pi
    assert stats.kstest(theta, _von_mises_cdf(kappa)).pvalue > 0.01
    # the KS test has power: the same draws are rejected against a 20% larger κ
    assert stats.kstest(theta, _von_mises_cdf(1.2 * kappa + 0.05)).pvalue < 1e-6
    cos = np.cos(theta)  # i.i.d. draws: σ = sd/√n
    exact = special.i1e(kappa) / special.i0e(kappa)
    assert abs(cos.mean() - exact) < 4 * cos.std() / math.sqrt(n), (cos.mean(), exact)


def test_von_mises_batched_locations_and_dtypes():
    g = torch.Generator().manual_seed(3)
    kappa = torch.tensor([[0.0], [1.0], [5.0]], dtype=F64).expand(3, 50_000)  # (3, n)
    loc = torch.tensor([[3.0], [-2.0], [math.pi - 0.1]], dtype=F64)  # (3, 1): broadcast
    theta = sample_von_mises(kappa, loc, generator=g)
    assert theta.shape == (3, 50_000) and theta.dtype == F64
    assert bool((theta >= -math.pi).all() and (theta < math.pi).all())
    mean_cos = torch.cos(theta - loc).mean(dim=1)
    exact = torch.tensor([special.i1e(k) / special.i0e(k) for k in (0.0, 1.0, 5.0)], dtype=F64)
    torch.testing.assert_close(mean_cos, exact, atol=0.01, rtol=0)  # σ <= 0.0032
    assert abs(torch.sin(theta - loc).mean(dim=1)).max() < 0.015  # symmetric about loc
    # reproducible from the generator alone; float32 stays float32
    again = sample_von_mises(kappa, loc, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, theta)
    single = sample_von_mises(torch.full((1000,), 2.0), generator=g)
    assert single.dtype == torch.float32 and bool(torch.isfinite(single).all())


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_von_mises_extreme_concentrations(dtype):
    g = torch.Generator().manual_seed(4)
    n = 20_000
    for kappa in [1e4, 1e6]:  # width 1/√κ: Var θ ≈ 1/κ to O(1/κ²), rel. error √(2/n) = 1%
        theta = sample_von_mises(torch.full((n,), kappa, dtype=dtype), generator=g)
        assert float(theta.double().pow(2).mean() * kappa) == pytest.approx(1.0, abs=0.04)
    huge = torch.finfo(dtype).max / 4  # no overflow in the envelope
    theta = sample_von_mises(torch.full((n,), huge, dtype=dtype), generator=g)
    assert bool(torch.isfinite(theta).all()) and float(theta.abs().max()) < 1e-6
    tiny = torch.finfo(dtype).tiny
    for kappa in [tiny, 4 * math.sqrt(tiny)]:  # uniform draws / rejection: no 1/κ overflow
        theta = sample_von_mises(torch.full((n,), kappa, dtype=dtype), generator=g)
        assert bool(torch.isfinite(theta).all())
        assert float(theta.abs().mean()) == pytest.approx(math.pi / 2, abs=0.05)


@pytest.mark.parametrize("kappa", [1.0, 2.0, 20.0])
def test_von_mises_rounds_after_the_first_are_exact(kappa):
    """One candidate per element leaves 13-34% of them without a draw after the first round
    (Best & Fisher accept 0.66-0.87 here); the further rounds must draw those from the same
    law. The same seed without further rounds tells which elements they were.
    """
    n, seed = 100_000, int(10 * kappa) + 21
    kappa_t = torch.full((n,), kappa, dtype=F64)
    _, first = heatbath._von_mises_centred(kappa_t, torch.Generator().manual_seed(seed), 1, False)
    left = ~first
    assert 0.1 < float(left.double().mean()) < 0.35
    theta, done = heatbath._von_mises_centred(kappa_t, torch.Generator().manual_seed(seed), 1)
    assert bool(done.all())
    theta = theta.numpy()
    law = stats.vonmises(kappa).cdf
    assert stats.kstest(theta, law).pvalue > 0.01
    assert stats.kstest(theta[left.numpy()], law).pvalue > 0.01  # the late draws alone
    assert stats.kstest(theta, stats.vonmises(1.2 * kappa).cdf).pvalue < 1e-6  # power


def test_von_mises_rejects_bad_kappa():
    for kappa in [torch.tensor([-0.1]), torch.tensor([float("nan")]), torch.tensor([math.inf])]:
        with pytest.raises(ValueError, match="kappa"):
            sample_von_mises(kappa)
    with pytest.raises(TypeError, match="kappa"):
        sample_von_mises(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="kappa"):
        sample_von_mises(2.0)


# ------------------------------------------------------------------------ staples and groups


def test_staples_give_the_local_action():
    """Changing one link ``θ_l → t`` changes ``S`` by ``-βk [cos(t - φ₀) - cos(θ_l - φ₀)]``."""
    beta, shape = 1.3, (4, 6)
    action = U1WilsonAction(beta)
    theta = _links(shape, batch=2, seed=5)  # (B, 2, L0, L1)
    k, phi0 = u1_staples(theta)
    assert k.shape == theta.shape and phi0.shape == theta.shape
    assert bool((k >= 0).all() and (k <= 2 + 1e-12).all())
    n_links = theta[0].numel()
    new = _links((n_links,), batch=1, seed=6)[0, 0]  # one new angle per link, (n_links,)
    # (n_links, B, 2, L0, L1): configuration l has link l (in every chain) set to new[l]
    changed = theta.unsqueeze(0).repeat(n_links, 1, 1, 1, 1)
    for link in range(n_links):
        changed[link].view(theta.shape[0], -1)[:, link] = new[link]  # same link, all chains
    dS = action(changed.flatten(0, 1)).view(n_links, 2) - action(theta)  # (n_links, B)
    t_old = theta.flatten(1).T  # (n_links, B)
    kl, pl = k.flatten(1).T, phi0.flatten(1).T
    expected = -beta * kl * (torch.cos(new[:, None] - pl) - torch.cos(t_old - pl))
    torch.testing.assert_close(dS, expected, atol=1e-12, rtol=0)


def _plaquette_links(shape):
    """Explicit incidence: the four links ``(mu, x0, x1)`` of each plaquette."""
    L0, L1 = shape
    return [
        {
            (0, y0, y1),
            (1, (y0 + 1) % L0, y1),
            (0, y0, (y1 + 1) % L1),
            (1, y0, y1),
        }
        for y0 in range(L0)
        for y1 in range(L1)
    ]


@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (4, 6), (6, 2)])
def test_link_groups_partition_links_without_shared_plaquettes(shape):
    groups = link_groups(shape)
    assert groups.shape == (4, 2, *shape) and groups.dtype == torch.bool
    assert torch.equal(groups.sum(dim=0), torch.ones(2, *shape, dtype=torch.long))  # partition
    plaquettes = _plaquette_links(shape)
    assert all(len(p) == 4 for p in plaquettes)  # four distinct links each (L >= 2)
    for group in groups:
        members = {tuple(i) for i in group.nonzero().tolist()}
        assert len(members) == shape[0] * shape[1] // 2
        # no plaquette holds two members, so no member is in another member's staple
        assert max(len(p & members) for p in plaquettes) == 1


@pytest.mark.parametrize("shape", [(2, 2), (4, 6), (6, 2)])
def test_sweeps_index_the_link_groups_as_strided_slices(shape):
    for g, mask in enumerate(link_groups(shape)):
        mu, sites = heatbath._group_sites(g)
        picked = torch.zeros(1, 2, *shape, dtype=torch.bool)
        picked[:, mu][sites] = True
        assert torch.equal(picked[0], mask), g


def test_link_groups_need_even_extents():
    for shape in [(3, 4), (4, 5), (5, 5)]:
        with pytest.raises(ValueError, match="even"):
            link_groups(shape)
    with pytest.raises(ValueError, match="even"):
        link_groups((4, 4, 4))
    # the reason: on an odd extent the two direction-0 links of a boundary plaquette have
    # the same parity of x_1 (x_1 = L1 - 1 and 0)
    assert {(0, 0, 2), (0, 0, 0)} <= _plaquette_links((3, 3))[2]


# --------------------------------------------------------------------------- overrelaxation


def test_overrelaxation_preserves_the_action_and_permutes_plaquettes():
    """In 2D the reflection of a link swaps its two plaquette angles (mod 2π), so an
    overrelaxation sweep permutes the plaquettes: ``S`` and ``Q`` are unchanged exactly.
    """
    action = U1WilsonAction(1.7)
    sampler = U1Heatbath(action)
    theta = _links((4, 6), batch=4, seed=7)
    x = theta
    for _ in range(3):
        x = sampler.overrelax_sweep(x)
        torch.testing.assert_close(action(x), action(theta), atol=1e-12, rtol=0)
        torch.testing.assert_close(
            torch.sort(wrap_angle(plaquette_angles(x)).flatten(1)).values,
            torch.sort(wrap_angle(plaquette_angles(theta)).flatten(1)).values,
            atol=1e-12,
            rtol=0,
        )
        torch.testing.assert_close(topological_charge(x), topological_charge(theta))
    assert float(wrap_angle(x - theta).abs().max()) > 1.0  # the links did move
    assert bool((x >= -math.pi).all() and (x < math.pi).all())


def test_overrelaxation_is_an_involution():
    """Each group reflection is its own inverse (its staples do not involve the group), so a
    sweep is undone by the sweep in reverse group order. Two *forward* sweeps are not the
    identity: the four group reflections do not commute.
    """
    sampler = U1Heatbath(U1WilsonAction(1.0))
    theta = _links((4, 6), batch=4, seed=8)
    forward = sampler.overrelax_sweep(theta)
    back = sampler.overrelax_sweep(forward, reverse=True)
    torch.testing.assert_close(
        wrap_angle(back - theta), torch.zeros_like(theta), atol=1e-12, rtol=0
    )
    twice = sampler.overrelax_sweep(forward)
    assert float(wrap_angle(twice - theta).abs().max()) > 1.0


# ----------------------------------------------------------------------------- the sampler


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_sampler_contract(dtype):
    action = U1WilsonAction(2.0)
    sampler = U1Heatbath(action, n_overrelax=2)
    state = sampler.init(_links((4, 6), batch=8, seed=9, dtype=dtype))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = state.x
    x_before = state.x.clone()
    new, info = sampler.step(state, torch.Generator().manual_seed(10))
    torch.testing.assert_close(state.x, x_before)  # the input state is not modified
    assert new.x.shape == (8, 2, 4, 6) and new.x.dtype == dtype
    assert bool((new.x >= -math.pi).all() and (new.x < math.pi).all())
    assert info.accepted.shape == (8,) and info.accepted.dtype == torch.bool
    assert bool(info.accepted.all())
    torch.testing.assert_close(new.S, action(new.x))
    again, _ = sampler.step(state, torch.Generator().manual_seed(10))
    assert torch.equal(again.x, new.x)  # reproducible from the generator alone
    chain = run_chain(U1Heatbath(action, n_overrelax=0), x_before, 4, torch.Generator())
    assert chain.acceptance == 1.0
    assert repr(sampler) == "U1Heatbath(U1WilsonAction(beta=2.0), n_overrelax=2)"


# Γ-method errors with the chains as replicas. β = 3 on 16 or 24 sites is the hard case:
# ⟨Q²⟩ ≈ 0.1-0.2, so Q² has a relative spread of about 3 per sample and τ_int ≈ 2.5 sweeps
# (the plaquette: ≈ 0.85). Overrelaxation does not help here, as it only permutes plaquettes.
# More chains cost little (sweeps are overhead-bound), so β = 3 runs 512 of them.
PHYSICS = [
    # (shape, beta, chains, sweeps after 50 thermalisation sweeps from a hot start)
    ((4, 4), 1.0, 64, 300),
    ((4, 6), 1.0, 64, 300),
    ((4, 4), 3.0, 512, 300),
    ((4, 6), 3.0, 512, 200),
]


def _check_exact_plaquette_and_chi_t(shape, beta, chains, sweeps, n_overrelax=1):
    V = shape[0] * shape[1]
    observables = {
        "plaquette": plaquette,
        "chi_t": lambda theta: topological_charge(theta) ** 2 / V,
    }
    exact = {
        "plaquette": u1_plaquette(beta, shape),
        "chi_t": u1_topological_susceptibility(beta, shape),
    }
    chain = run_chain(
        U1Heatbath(U1WilsonAction(beta), n_overrelax=n_overrelax),
        _links(shape, batch=chains, seed=11),
        sweeps,
        torch.Generator().manual_seed(12),
        observables,
        thermalize=50,
    )
    for name, value in exact.items():
        res = gamma_method(chain.observables[name].numpy())  # (T, B): chains as replicas
        assert res.window_converged, name
        # power: 4σ is under 8% of the value (the plaquette's is under 1%)
        assert res.error < 0.02 * value, (name, res.error, value)
        assert abs(res.value - value) < 4 * res.error, (name, res.value, res.error, value)


@pytest.mark.parametrize(("shape", "beta", "chains", "sweeps"), PHYSICS)
def test_heatbath_reproduces_exact_plaquette_and_chi_t(shape, beta, chains, sweeps):
    _check_exact_plaquette_and_chi_t(shape, beta, chains, sweeps)


@pytest.mark.parametrize(("shape", "beta", "chains", "sweeps"), [PHYSICS[0], PHYSICS[2]])
def test_links_left_without_a_draw_keep_the_chain_exact(shape, beta, chains, sweeps, monkeypatch):
    """A GPU sweep leaves a link whose 16 candidates were all rejected (<= 5e-8 of them) as it
    was. Here every link gets one candidate, so 10-30% of them stay put in each sweep, and the
    chain must still reproduce the exact plaquette and χ_t (heatbath only, so that
    overrelaxation cannot hide a bias).
    """
    monkeypatch.setattr(heatbath, "_draw_plan", lambda device, n: (1, False))
    sampler = U1Heatbath(U1WilsonAction(beta), n_overrelax=0)
    theta = _links(shape, batch=chains, seed=13)
    new = sampler.heatbath_sweep(theta, torch.Generator().manual_seed(14))
    kept = float((wrap_angle(new - theta).abs() < 1e-12).double().mean())
    assert 0.1 < kept < 0.35, kept
    _check_exact_plaquette_and_chi_t(shape, beta, chains, sweeps, n_overrelax=0)


def test_a_sweep_off_the_cpu_asks_the_host_nothing(gpu_plan_step):
    """What tests/test_gpu.py checks on CUDA, on the CPU: with the plan of a GPU (16 candidates,
    no further rounds) a step calls no op that would make a GPU wait for the host.
    """
    sampler = U1Heatbath(U1WilsonAction(2.0), n_overrelax=1)
    state = sampler.init(_links((4, 6), batch=4, seed=15))
    new = gpu_plan_step(heatbath, sampler, state, seed=16)
    assert bool(torch.isfinite(new.x).all()) and float(wrap_angle(new.x - state.x).abs().min()) > 0


# ------------------------------------------------------------------------------ bad input


def test_bad_input():
    action = U1WilsonAction(1.0)
    sampler = U1Heatbath(action)
    for shape in [(2, 2, 5, 4), (2, 2, 4, 3), (2, 2, 5, 5)]:
        with pytest.raises(ValueError, match="even"):
            sampler.init(torch.zeros(shape))
        with pytest.raises(ValueError, match="even"):
            run_chain(sampler, torch.zeros(shape), 3)
    for shape in [(2, 3, 4, 4), (2, 4, 4), (2, 2, 4, 4, 2)]:
        with pytest.raises(ValueError, match=r"\(B, 2, L0, L1\)"):
            sampler.init(torch.zeros(shape))
    with pytest.raises(ValueError, match="link angles"):
        sampler.init(None)
    with pytest.raises(ValueError, match="float"):
        sampler.init(torch.zeros(2, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="finite"):
        sampler.init(torch.full((2, 2, 4, 4), math.nan))
    with pytest.raises(TypeError, match="U1WilsonAction"):
        U1Heatbath(Phi4Action(m2=1.0, lam=0.0))
    for n_overrelax in [-1, 1.5, True, "1"]:
        with pytest.raises(ValueError, match="n_overrelax"):
            U1Heatbath(action, n_overrelax=n_overrelax)
