"""Replica exchange on 2D U(1) (notebook 05): plain swaps are the textbook algorithm, the
swap identities hold for plain and flowed swaps, the per-pair acceptance matches the erfc
prediction from the exact energy variances, and every rung samples its own exact theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lqft_lab.actions import U1DefectAction, U1WilsonAction
from lqft_lab.analysis import gamma_method
from lqft_lab.exact import (
    u1_charge_distribution,
    u1_defect_references,
    u1_plaquette,
    u1_swap_acceptance,
)
from lqft_lab.exact.u1 import u1_topological_susceptibility
from lqft_lab.flows import build_u1_flow
from lqft_lab.observables import plaquette, topological_charge
from lqft_lab.samplers import IdentityMap, ReplicaExchange, U1Heatbath, sample_u1_exact
from lqft_lab.studies.replica_exchange import (
    identity_flow,
    run_ladder,
    swap_log_ratios,
    train_replica_map,
)

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def ladder(betas, maps=None):
    actions = [U1WilsonAction(b) for b in betas]
    return ReplicaExchange(actions, [U1Heatbath(a) for a in actions], maps)


def energy(theta):
    return -U1WilsonAction(1.0)(theta)  # Σ_P cos θ_P


def test_identity_maps_are_plain_replica_exchange_step_by_step():
    """The same random stream through a textbook implementation (heatbath sweeps rung by
    rung, then swaps of the pairs of this step's parity accepted with
    ``r = (β_{i+1} - β_i)(E_i - E_{i+1})``) gives the same chain, to rounding, whether the
    maps are ``None`` or :class:`IdentityMap`."""
    betas = [3.0, 2.5, 2.0, 1.5]
    x0 = sample_u1_exact(8, 4, 2.0, torch.Generator().manual_seed(0), dtype=F64)
    chains = {}
    for maps in (None, [IdentityMap()] * 3):
        rex, gen = ladder(betas, maps), torch.Generator().manual_seed(1)
        state, walkers = rex.init(x0), []
        for _ in range(12):
            state, _ = rex.step(state, gen)
            walkers.append(state.walker)
        chains[maps is None] = ([r.x for r in state.rungs], walkers)

    samplers = [U1Heatbath(U1WilsonAction(b)) for b in betas]
    gen = torch.Generator().manual_seed(1)
    x = [x0.clone() for _ in betas]
    for step in range(12):
        x = [s.step(s.init(xi), gen)[0].x for s, xi in zip(samplers, x, strict=True)]
        for i in range(step % 2, len(betas) - 1, 2):
            r = (betas[i + 1] - betas[i]) * (energy(x[i]) - energy(x[i + 1]))
            u = torch.rand(r.shape, generator=gen, dtype=r.dtype)
            ok = (torch.log(u) < r)[:, None, None, None]
            x[i], x[i + 1] = torch.where(ok, x[i + 1], x[i]), torch.where(ok, x[i], x[i + 1])
    for rungs, _ in chains.values():
        for got, expected in zip(rungs, x, strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    for a, b in zip(chains[True][1], chains[False][1], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(chains[True][1][-1], chains[True][1][0])  # walkers moved


def _flow_map(L, seed):
    """A generic gauge-equivariant U(1) bijection: an untrained flow, weights perturbed."""
    model = build_u1_flow(L, n_layers=4, hidden=(4,), seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.flow


@pytest.mark.parametrize("mapped", [False, True])
def test_swap_identities_hold(mapped):
    """``⟨e^r⟩ = 1`` and ``⟨min(1, e^r)⟩ = 2 Prob(r > 0)`` for swaps of independent exact
    draws of the two rungs (β = 4 and 4.5 at L = 8), with the identity and with a flow map
    (its Jacobians enter ``r``), each within 4 standard errors of 4096 draws. A wrong sign of
    either log-Jacobian breaks both for the flow."""
    betas, L, n = [4.0, 4.5], 8, 4096
    rex = ladder(betas, [_flow_map(L, seed=3) if mapped else None])
    gen = torch.Generator().manual_seed(4)
    lower = sample_u1_exact(n, L, betas[0], gen, dtype=F64)
    upper = sample_u1_exact(n, L, betas[1], gen, dtype=F64)
    with torch.no_grad():
        r, _, _ = rex.log_ratio(0, lower, upper)
    w = r.exp()
    assert abs(w.mean().item() - 1) < 4 * w.std().item() / math.sqrt(n), w.mean()
    diff = r.exp().clamp(max=1) - 2 * (r > 0).to(F64)
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n), diff.mean()
    acceptance = w.clamp(max=1).mean().item()
    assert 0.05 < acceptance < 0.95, acceptance  # a swap that sometimes fails: the test has power
    if mapped:  # the map changes r: not the plain swap in disguise
        plain, _, _ = ladder(betas).log_ratio(0, lower, upper)
        assert (r - plain).abs().max() > 0.1


@pytest.mark.parametrize("L, betas", [(8, [6.0, 5.5, 5.0]), (16, [6.0, 6.5])])
def test_plain_acceptance_matches_the_erfc_prediction(L, betas):
    """Per pair, the chain's mean ``min(1, e^r)`` within 0.02 of
    ``erfc(σ/2√2)``, ``σ² = Δβ² (Var E_i + Var E_{i+1})`` from the exact variances (the
    Gaussian approximation's own error is about 0.01 here)."""
    rex = ladder(betas)
    gen = torch.Generator().manual_seed(5)
    x0 = [sample_u1_exact(64, L, b, gen, dtype=F64) for b in betas]  # start in equilibrium
    state = rex.init(x0)
    rows = []
    with torch.no_grad():
        for _ in range(80):
            state, info = rex.step(state, gen)
            rows.append(info.log_ratio)
    r = torch.stack(rows)  # (T, R - 1, B)
    for i in range(len(betas) - 1):
        ri = r[:, i][~torch.isnan(r[:, i])]
        measured = ri.exp().clamp(max=1).mean().item()
        predicted = u1_swap_acceptance(betas[i], betas[i + 1], L)
        assert abs(measured - predicted) < 0.02, (L, i, measured, predicted)


@pytest.mark.slow
def test_every_rung_samples_its_exact_theory():
    """A β ladder 6 → 2 at L = 8 (nine rungs, heatbath, 64 ladders × 300 steps): every rung's
    ⟨cos θ_P⟩ within 4σ of the exact value (Γ-method, ladders as replicas); the physical
    rung's χ_t within 4σ and its P(Q) passing a χ² test (p > 0.001) against the exact
    distribution. The walkers complete round trips."""
    betas = [6.0 - 0.5 * k for k in range(9)]
    L = 8
    observables = {"plaquette": plaquette, "Q": lambda t: topological_charge(t).round()}
    x0 = torch.zeros(64, 2, L, L, dtype=F64)
    run = run_ladder(ladder(betas), x0, 300, torch.Generator().manual_seed(6), observables, 50)
    plaq = run.observables["plaquette"]  # (T, R, B)
    for i, beta in enumerate(betas):
        est = gamma_method(plaq[:, i].numpy(), warn=False)
        z = (est.value - u1_plaquette(beta, L)) / est.error
        assert abs(z) < 4, (beta, est.value, est.error, z)
    gaps = run.identity_gaps()  # ⟨e^r⟩ - 1 and acceptance - 2 Prob(r > 0), per pair
    assert gaps.abs().max() < 0.1, gaps
    charge = run.observables["Q"][:, 0]
    Q = charge  # (T, B)
    est = gamma_method((Q**2 / L**2).numpy(), warn=False)
    z = (est.value - u1_topological_susceptibility(betas[0], L)) / est.error
    assert abs(z) < 4, (est.value, est.error, z)
    q_values, p_exact = u1_charge_distribution(betas[0], L)
    counts = np.array([(Q == q).sum().item() for q in q_values], dtype=float)
    n_eff = Q.numel() / (2 * est.tau_int)  # thin the counts to independent samples
    expected = p_exact * n_eff
    keep = expected > 5
    observed = counts[keep] * n_eff / Q.numel()
    chi2 = (((observed - expected[keep]) ** 2) / expected[keep]).sum()
    p = stats.chi2.sf(chi2, keep.sum() - 1)
    assert p > 1e-3, (chi2, keep.sum(), p)
    assert run.round_trips.sum() > 64, run.round_trips.sum()
    positions = run.positions(0)  # walker 0 visits both ends
    assert positions.min() == 0 and positions.max() == len(betas) - 1


# --- defect ladders: parallel tempering on boundary conditions ----------------------------


def test_defect_action_force_and_its_periodic_limit():
    """The analytic force of the weighted action against autograd; ``c = 1`` is the Wilson
    action whatever ``d``."""
    theta = (
        2 * math.pi * torch.rand(3, 2, 8, 6, generator=torch.Generator().manual_seed(7), dtype=F64)
    )
    action = U1DefectAction(3.0, 0.3, 5)
    torch.testing.assert_close(
        action.force(theta), action.autograd_force(theta), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(U1DefectAction(3.0, 1.0, 5)(theta), U1WilsonAction(3.0)(theta))
    assert (action(theta) - U1WilsonAction(3.0)(theta)).abs().min() > 1e-3


@pytest.mark.slow
def test_every_rung_of_a_defect_ladder_samples_its_exact_theory():
    """β = 6 at L = 8 with a defect of d = 4 plaquettes, c = 1, 6/7, …, 0 (eight rungs,
    heatbath, random translations of the physical rung, 64 ladders × 300 steps): every
    rung's ⟨cos θ_P⟩ and χ_t within 4σ of :func:`u1_defect_references`; the swaps accept
    (the notes predict about 0.46 per pair for this ladder)."""
    beta, L, d = 6.0, 8, 4
    cs = [1 - k / 7 for k in range(8)]
    actions = [U1DefectAction(beta, c, d) for c in cs]
    rex = ReplicaExchange(actions, [U1Heatbath(a) for a in actions], translate=True)
    gen = torch.Generator().manual_seed(8)
    state = rex.init(torch.zeros(64, 2, L, L, dtype=F64))
    plaq, q2, swaps = [], [], []
    with torch.no_grad():
        for step in range(350):
            state, info = rex.step(state, gen)
            if step >= 50:
                plaq.append(torch.stack([plaquette(r.x) for r in state.rungs]))
                q2.append(
                    torch.stack([topological_charge(r.x).round() ** 2 / L**2 for r in state.rungs])
                )
                swaps.append(info.log_ratio.exp().clamp(max=1))
    plaq, q2, swaps = torch.stack(plaq), torch.stack(q2), torch.stack(swaps)
    for i, c in enumerate(cs):
        ref = u1_defect_references(beta, c, d, L)
        for series, exact in ((plaq[:, i], ref.plaquette), (q2[:, i], ref.chi_t)):
            est = gamma_method(series.numpy(), warn=False)
            z = (est.value - exact) / est.error
            assert abs(z) < 4, (c, est.value, est.error, exact, z)
    per_pair = torch.nanmean(swaps, dim=(0, 2))
    assert per_pair.min() > 0.2, per_pair


# --- maps between rungs (T-REX) --------------------------------------------------------------


def test_identity_flow_starts_as_the_identity():
    theta = sample_u1_exact(3, 8, 4.0, torch.Generator().manual_seed(10), dtype=F64)
    flow = identity_flow(8, n_layers=4, hidden=(4,))
    y, logJ = flow.forward(theta)
    torch.testing.assert_close(y, theta, rtol=0, atol=1e-12)
    torch.testing.assert_close(logJ, torch.zeros(3, dtype=F64), rtol=0, atol=1e-12)


def test_a_trained_map_raises_the_swap_acceptance():
    """T-REX between β = 4 and 5 at L = 8: plain swaps accept 0.32 (erfc prediction; 0.34
    measured on these 2048 pairs of exact draws); a map trained for 100 steps on exact
    draws of β = 4 accepts at least 0.15 more on the same pairs (measured after 200 steps:
    0.33 → 0.69), and its swaps still satisfy both identities within 4σ."""
    L, a, b = 8, 4.0, 5.0
    source, target = U1WilsonAction(a), U1WilsonAction(b)
    flow = identity_flow(L, n_layers=8, hidden=(8, 8))
    draw = lambda n, g: sample_u1_exact(n, L, a, g, dtype=F64)  # noqa: E731
    train_replica_map(flow, source, target, draw, n_steps=100, batch_size=64, lr=3e-3, seed=1)
    gen = torch.Generator().manual_seed(11)
    lower, upper = draw(2048, gen), sample_u1_exact(2048, L, b, gen, dtype=F64)
    plain = swap_log_ratios(ladder([a, b]), 0, lower, upper)
    mapped = swap_log_ratios(ladder([a, b], [flow]), 0, lower, upper)
    acc_plain, acc_mapped = (r.exp().clamp(max=1).mean().item() for r in (plain, mapped))
    err = plain.exp().clamp(max=1).std().item() / math.sqrt(2048)
    # the erfc prediction's Gaussian approximation (about 0.01 here) and 3 standard errors
    assert abs(acc_plain - u1_swap_acceptance(a, b, L)) < 0.02 + 3 * err, (acc_plain, err)
    assert acc_mapped > acc_plain + 0.15, (acc_plain, acc_mapped)
    w = mapped.exp()
    assert abs(w.mean().item() - 1) < 4 * w.std().item() / math.sqrt(2048), w.mean()
    diff = w.clamp(max=1) - 2 * (mapped > 0).to(F64)
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(2048), diff.mean()
