"""Replica exchange on 2D U(1) (notebook 05): plain swaps are the textbook algorithm, the
swap identities hold for plain and flowed swaps, the per-pair acceptance matches the erfc
prediction from the exact energy variances, every rung samples its own exact theory, maps
between defect rungs (DR-REX) need to see the defect, and the bill is honest about frozen
charges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lqft_lab.actions import U1DefectAction, U1WilsonAction, plaquette_angles
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
    LadderRun,
    bill_row,
    bill_table,
    chain_bill,
    defect_context,
    exact_draw,
    identity_flow,
    pair_names,
    run_ladder,
    swap_log_ratios,
    train_replica_map,
)
from lqft_lab.studies.u1 import shipped_u1_flow

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
    assert run.identity_pulls().abs().max() < 4, run.identity_pulls()
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


# --- DR-REX: maps between defect rungs ----------------------------------------------------------


def test_exact_draw_follows_the_rung():
    """Draws of a defect rung have the defect's exact plaquette on the defect and the bulk's
    off it (4σ of 4000 independent draws); a Wilson rung's are the torus's."""
    L, beta, n = 8, 6.0, 4000
    gen = torch.Generator().manual_seed(12)
    defect = U1DefectAction(beta, 0.2, 4)
    cos = torch.cos(plaquette_angles(exact_draw(defect, L)(n, gen)))
    ref = u1_defect_references(beta, 0.2, 4, L)
    on = torch.zeros(L, L, dtype=torch.bool)
    on[0, :4] = True
    for values, exact in ((cos[:, on].mean(1), ref.plaquette_defect),
                          (cos[:, ~on].mean(1), ref.plaquette_bulk)):  # fmt: skip
        assert abs(values.mean() - exact) < 4 * values.std() / math.sqrt(n), (values.mean(), exact)
    wilson = plaquette(exact_draw(U1WilsonAction(beta), L)(n, gen))
    assert abs(wilson.mean() - u1_plaquette(beta, L)) < 4 * wilson.std() / math.sqrt(n)
    with pytest.raises(TypeError, match="action"):
        exact_draw(lambda x: x, L)


@pytest.mark.slow
def test_a_drrex_map_needs_to_know_where_the_defect_is():
    """The last pair of a 4-rung defect ladder (β = 6, L = 8, d = 4, c = 1/3 → 0): plain swaps
    accept about 0.09. Two maps trained alike for 100 steps on exact draws of the c = 1/3 rung,
    one whose conditioners see the defect's indicator and one that does not: measured (2048
    pairs of exact draws) 0.20 against 0.10, plain 0.09. The test asks the context map for 0.05
    more than plain swaps and 0.03 more than the blind map, and checks both swap identities
    for it."""
    L, beta, d, n = 8, 6.0, 4, 2048
    source, target = U1DefectAction(beta, 1 / 3, d), U1DefectAction(beta, 0.0, d)
    draw = exact_draw(source, L)
    gen = torch.Generator().manual_seed(13)
    lower, upper = draw(n, gen), exact_draw(target, L)(n, gen)
    rex = ReplicaExchange([source, target], [U1Heatbath(source), U1Heatbath(target)])
    plain = swap_log_ratios(rex, 0, lower, upper)
    acceptance = {"plain": plain.exp().clamp(max=1).mean().item()}
    ratios = {}
    for name, context in (("context", defect_context(d, L)), ("blind", None)):
        flow = identity_flow(L, n_layers=8, seed=2, context=context)
        train_replica_map(flow, source, target, draw, n_steps=100, lr=3e-3, seed=2)
        mapped = ReplicaExchange([source, target], [U1Heatbath(source), U1Heatbath(target)], [flow])
        ratios[name] = swap_log_ratios(mapped, 0, lower, upper)
        acceptance[name] = ratios[name].exp().clamp(max=1).mean().item()
    assert acceptance["context"] > acceptance["plain"] + 0.05, acceptance
    assert acceptance["context"] > acceptance["blind"] + 0.03, acceptance
    r = ratios["context"]
    w = r.exp()
    assert abs(w.mean().item() - 1) < 4 * w.std().item() / math.sqrt(n), w.mean()
    diff = w.clamp(max=1) - 2 * (r > 0).to(F64)
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n), diff.mean()


# --- the records of a ladder and the bill ----------------------------------------------------


def _fake_run(log_ratio):
    T, P, B = log_ratio.shape
    return LadderRun({}, log_ratio, torch.zeros(T, P + 1, B), torch.zeros(B), 1.0, None, T)


def test_identity_pulls_find_a_swap_that_is_not_an_involution():
    """Gaussian ``r`` with mean ``-σ²/2`` satisfies ``P(r) e^r = P(-r)``: both pulls stay
    within 4. The same spread with mean 0 (what a wrong Jacobian sign can do) violates both
    identities by many σ."""
    gen = torch.Generator().manual_seed(14)
    sigma = 1.0
    noise = sigma * torch.randn(400, 2, 16, generator=gen, dtype=F64)
    noise[1::2, 0] = math.nan  # each pair is attempted every other step
    noise[0::2, 1] = math.nan
    good = _fake_run(noise - sigma**2 / 2).identity_pulls()
    bad = _fake_run(noise).identity_pulls()
    assert good.abs().max() < 4, good
    assert (bad.abs() > 6).all(), bad


def test_live_summaries_carry_each_pair():
    seen = []
    betas = [2.0, 1.5, 1.0]
    run_ladder(ladder(betas), torch.zeros(4, 2, 4, 4, dtype=F64), 20,
               torch.Generator().manual_seed(15), callback=lambda t, s: seen.append(s),
               callback_every=10)  # fmt: skip
    assert len(seen) == 2
    assert pair_names(3) == ["swap 0↔1", "swap 1↔2"]
    for name in pair_names(3):
        assert 0 <= seen[-1][name] <= 1, seen[-1]


def test_a_frozen_charge_is_billed_as_a_lower_bound():
    """A charge that never changed has no measurable τ_int: the run length stands in for it
    as a lower bound, and the table says so; a charge drawn afresh every step has
    τ_int ≈ 1/2."""
    gen = torch.Generator().manual_seed(16)
    frozen = bill_row("frozen", 1, torch.ones(300, 8), 0.01)
    moving = bill_row("moving", 1, torch.randint(-2, 3, (300, 8), generator=gen), 0.01)
    assert frozen.lower_bound and frozen.tau_int == 300
    assert not moving.lower_bound and abs(moving.tau_int - 0.5) < 0.15, moving.tau_int
    table = bill_table([frozen, moving], baseline="frozen")
    assert "| frozen | 1 | — | ≥ 300.0 |" in table
    assert "| ≥ " in table.splitlines()[-1]  # moving against a lower-bound baseline: ≥ gain


def test_chain_bill_runs_notebook_02s_methods():
    """HMC alone without a flow; with the shipped L = 8, β = 6 flow also flow-MH (which moves
    Q: its τ_int is measurable) and flow-MH with heatbath sweeps."""
    rows = chain_bill(6.0, 8, 4, 10, seed=0)
    assert [r.method for r in rows] == ["HMC"]
    shipped = shipped_u1_flow(6.0, 8)
    rows = chain_bill(6.0, 8, 8, 40, model=shipped.model, thermalize=5, seed=0)
    assert [r.method for r in rows] == ["HMC", "flow-MH", "flow-MH + heatbath"]
    assert all(r.seconds_per_step > 0 and r.cost > 0 for r in rows)
    assert 0 < rows[1].acceptance < 1 and not rows[1].lower_bound
