"""Samplers of links and pseudofermions together (notebook 04, part 2): with the exact
conditional the joint weights are the marginal ones; the odd sites' auxiliary field keeps
the even/odd target proper; joint flow-MH, MH-within-Gibbs and joint flow-MH with the exact
conditional reproduce the (det D)²-reweighted exact draws at 4×4."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import PseudofermionAction, SchwingerAction
from lqft_lab.actions.cg import CGNotConverged
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.schwinger import reweighted_reference
from lqft_lab.flows import build_u1_flow
from lqft_lab.flows.pseudofermion import PseudofermionFlow
from lqft_lab.samplers import run_chain
from lqft_lab.samplers.joint_pseudofermion import (
    ExactPseudofermionConditional,
    GibbsFlowMetropolis,
    JointFlowMetropolis,
    joint_action,
)
from lqft_lab.studies.schwinger import chain_observables, shipped_schwinger_flow
from lqft_lab.studies.schwinger.joint import joint_ess, train_pseudofermion_flow
from lqft_lab.studies.schwinger.scaling import PARTS, proposal_costs

pytestmark = pytest.mark.usefixtures("one_thread")

BETA, KAPPA, L = 2.0, 0.24, 4


@pytest.fixture(scope="module")
def gauge_flow():
    return shipped_schwinger_flow(BETA, KAPPA, L).model  # marginal ESS 0.49 when saved


@pytest.mark.parametrize("even_odd", [False, True])
def test_exact_conditional_makes_the_joint_weights_the_marginal_ones(gauge_flow, even_odd):
    """``log w(θ, φ) = log w(θ) + 2V log π`` for every draw, whatever ``φ``: the joint
    sampler with the exact conditional is part 1's marginal flow-MH."""
    action = PseudofermionAction(BETA, KAPPA, even_odd=even_odd)
    conditional = ExactPseudofermionConditional(action)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        theta, logq_theta = gauge_flow.sample(32, generator=gen)
        phi, logq_phi = conditional.sample(theta, gen)
        joint = -joint_action(action, theta, phi) - logq_theta - logq_phi
        marginal = -SchwingerAction(BETA, KAPPA)(theta) - logq_theta
    torch.testing.assert_close(
        joint - marginal, torch.full_like(joint, 2 * L * L * math.log(math.pi)), rtol=0, atol=1e-9
    )
    torch.testing.assert_close(conditional.log_prob(theta, phi), logq_phi, rtol=0, atol=1e-9)
    if even_odd:  # the odd sites carry the auxiliary CN(0, 1) field: |φ_o|² ≈ V per draw
        odd = 1 - action.dirac.parity_mask(L, L)
        mean = (odd * phi.abs() ** 2).flatten(1).sum(dim=1).mean().item()
        assert abs(mean - L * L) < 4 * L / math.sqrt(32), mean  # σ(|φ_o|²) = sqrt(V)


def test_joint_ess_equals_the_marginal_one_with_the_exact_conditional_only(gauge_flow):
    """On the same links, the exact conditional's joint ESS is the marginal ESS to rounding;
    an untrained pseudofermion flow's is far lower (Jensen: it cannot be higher in
    expectation; at 0.49 against a few percent, 1024 draws leave no doubt)."""
    action = PseudofermionAction(BETA, KAPPA, even_odd=True)
    conditionals = {
        "exact": ExactPseudofermionConditional(action),
        "flow": PseudofermionFlow((L, L), n_blocks=1, hidden=(4,), init_kappa=KAPPA),
    }
    result = joint_ess(gauge_flow, conditionals, action, 1024, torch.Generator().manual_seed(6))
    assert result["exact"] == pytest.approx(result["marginal"], abs=1e-12)
    assert result["marginal"] > 0.35 and result["flow"] < 0.5 * result["marginal"], result


def test_joint_action_adds_the_odd_sites_only_with_even_odd():
    gen = torch.Generator().manual_seed(1)
    theta = torch.rand(2, 2, L, L, generator=gen, dtype=torch.float64)
    phi = torch.randn(2, L, L, 2, generator=gen, dtype=torch.complex128)
    plain, eo = PseudofermionAction(BETA, KAPPA), PseudofermionAction(BETA, KAPPA, even_odd=True)
    torch.testing.assert_close(joint_action(plain, theta, phi), plain(theta, phi))
    odd = 1 - eo.dirac.parity_mask(L, L)
    expected = eo(theta, phi) + (odd * phi.abs() ** 2).flatten(1).sum(dim=1)
    torch.testing.assert_close(joint_action(eo, theta, phi), expected)


def test_joint_training_lowers_the_loss_and_stays_above_its_bound(gauge_flow):
    """On 1024 fresh joint draws with the same links, the trained pseudofermion flow's loss
    is below the untrained one's (its start, the hops of D†, is deterministic) and not
    below the exact conditional's (the loss is KL(q‖p) - log Z: with the exact conditional
    only the gauge flow's KL is left); both by more than 3 standard errors."""
    action = PseudofermionAction(BETA, KAPPA, even_odd=True)
    flow = PseudofermionFlow((L, L), n_blocks=2, hidden=(8,), init_kappa=KAPPA)
    untrained = PseudofermionFlow((L, L), n_blocks=2, hidden=(8,), init_kappa=KAPPA)
    history = train_pseudofermion_flow(
        gauge_flow, flow, action, n_steps=60, batch_size=64, lr=3e-3, log_every=20
    )
    assert len(history) == 3 and history[-1]["cg_iterations"] > 0
    gen = torch.Generator().manual_seed(2)
    losses = {}
    with torch.no_grad():
        theta, logq_theta = gauge_flow.sample(1024, generator=gen)
        models = {"exact": ExactPseudofermionConditional(action), "trained": flow}
        for name, model in {**models, "untrained": untrained}.items():
            phi, logq_phi = model.sample(theta, gen)
            losses[name] = (logq_theta + logq_phi + joint_action(action, theta, phi)).double()

    def gap(a, b):  # mean difference and its standard error
        diff = losses[a].mean().item() - losses[b].mean().item()
        err = math.hypot(*(losses[k].std().item() / math.sqrt(1024) for k in (a, b)))
        return diff, err

    above, err = gap("trained", "exact")
    assert above > -3 * err, (above, err)  # KL(q(φ|θ) ‖ p(φ|θ)) >= 0
    gained, err = gap("untrained", "trained")
    assert gained > 3 * err, (gained, err)


def _reference():
    names = ("plaquette", "condensate")
    obs = {k: v for k, v in chain_observables(KAPPA).items() if k in names}
    ref = reweighted_reference(BETA, KAPPA, L, 8192, obs, torch.Generator().manual_seed(3))
    return obs, ref


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["joint_flow", "gibbs", "joint_exact"])
def test_joint_samplers_reproduce_the_reweighted_exact_draws(gauge_flow, kind):
    """Each of the three samplers of part 2 within 4σ of the (det D)²-reweighted exact
    draws at 4×4 for the plaquette and the condensate. Even/odd pseudofermions: plain ones
    make MH-within-Gibbs accept almost nothing at this point (``S_pf`` of an independent
    proposal against the current ``φ`` is far heavier-tailed)."""
    obs, ref = _reference()
    action = PseudofermionAction(BETA, KAPPA, even_odd=True)
    if kind == "joint_flow":
        flow = PseudofermionFlow((L, L), n_blocks=2, hidden=(8,), init_kappa=KAPPA)
        train_pseudofermion_flow(gauge_flow, flow, action, n_steps=100, lr=3e-3, seed=4)
        sampler = JointFlowMetropolis(gauge_flow, flow, action, batch_size=64)
    elif kind == "gibbs":
        sampler = GibbsFlowMetropolis(gauge_flow, action, batch_size=64)
    else:
        conditional = ExactPseudofermionConditional(action)
        sampler = JointFlowMetropolis(gauge_flow, conditional, action, batch_size=64)
    chain = run_chain(sampler, None, 250, torch.Generator().manual_seed(5), obs, thermalize=20)
    assert chain.acceptance > 0.05, chain.acceptance
    for name, series in chain.observables.items():
        estimate = gamma_method(series.double().numpy(), warn=False)
        sigma = math.hypot(estimate.error, ref.errors[name])
        z = (estimate.value - ref.values[name]) / sigma
        assert abs(z) < 4, (kind, name, estimate.value, estimate.error, ref.values[name], z)
        assert estimate.error < 0.01 * abs(estimate.value)  # the test has power


def test_with_the_exact_conditional_the_joint_gradient_is_the_marginal_one():
    """Training the gauge flow on the joint target (``train_gauge``) with ``φ = D†χ``:
    ``S_pf(θ, D†(θ)χ) = χ†χ`` for every ``θ``, so its gradient through the CG solve (the
    force and ``∂S_pf/∂φ* = X``, :meth:`PseudofermionAction.fermion_action`) must cancel the
    path through ``φ(θ)`` exactly, leaving ``-∇ log det D†D``: the marginal reverse-KL
    gradient of part 1, through ``slogdet``. Equal to the CG tolerance, parameter by
    parameter, on the same draws."""
    model = build_u1_flow(L, n_layers=2, hidden=(4,), seed=0).double()
    randomize = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a generic point of parameter space, not the identity flow
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=randomize, dtype=p.dtype))
    action = PseudofermionAction(BETA, KAPPA, even_odd=True, tol=1e-12)
    conditional = ExactPseudofermionConditional(action)

    def gradient(joint):
        model.zero_grad()
        gen = torch.Generator().manual_seed(2)
        theta, logq_theta = model.sample(16, generator=gen)
        if joint:
            phi, logq_phi = conditional.sample(theta, gen)
            loss = (logq_theta + logq_phi + joint_action(action, theta, phi)).mean()
        else:
            loss = (logq_theta + SchwingerAction(BETA, KAPPA)(theta)).mean()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()]), loss.item()

    g_joint, loss_joint = gradient(joint=True)
    g_marginal, loss_marginal = gradient(joint=False)
    assert loss_joint == pytest.approx(loss_marginal - 2 * L * L * math.log(math.pi), abs=1e-9)
    assert g_marginal.abs().max() > 0.1  # a gradient worth comparing
    torch.testing.assert_close(g_joint, g_marginal, rtol=1e-7, atol=1e-8)


def test_joint_training_of_both_flows_lowers_the_marginal_kl():
    """From an identity gauge flow (``q(θ)`` uniform) and the ``D†`` start of ``q(φ | θ)``,
    ``train_gauge=True`` on the joint target alone (CG solves, no determinant) lowers the
    gauge flow's reverse KL to the marginal ``e^{-S_g} det(D†D)``, measured with the dense
    determinant on 1024 fresh draws, by more than 3 standard errors. (That the gauge
    gradient is the marginal one is the exact-conditional test above; whether 150 steps
    resolve the determinant's tilt of the links is another matter: at this point even
    marginal training through ``slogdet`` does not resolve it in 400 steps.)"""
    gauge = build_u1_flow(L, n_layers=4, hidden=(8,), seed=0).double()
    action = PseudofermionAction(BETA, KAPPA, even_odd=True)
    flow = PseudofermionFlow((L, L), n_blocks=1, hidden=(8,), init_kappa=KAPPA)
    marginal = SchwingerAction(BETA, KAPPA)

    def losses():
        with torch.no_grad():
            theta, logq = gauge.sample(1024, generator=torch.Generator().manual_seed(3))
            return logq + marginal(theta)

    before = losses()
    history = train_pseudofermion_flow(
        gauge, flow, action, n_steps=150, batch_size=64, lr=3e-3, train_gauge=True, seed=4
    )
    assert not gauge.training and not flow.training
    after = losses()
    drop = (before.mean() - after.mean()).item()
    assert drop > 3 * math.hypot(before.std(), after.std()) / math.sqrt(1024), drop
    assert history[-1]["loss"] < history[0]["loss"] - 3 * history[0]["loss_err"], history


def test_proposal_costs_time_every_part_on_the_same_links():
    """Every part is timed and positive; a pseudofermion-HMC trajectory (``n_md + 1``
    solves and forces) costs more than one solve; the proposals are the sums of their
    parts; the solve's iterations are those of a converged CG on these links."""
    rows = proposal_costs([4, 8], BETA, KAPPA, repeats=1, n_md=3, step_size=0.2)
    assert [r.L for r in rows] == [4, 8]
    for r in rows:
        assert set(r.seconds) == set(PARTS) and all(0 < t < 60 for t in r.seconds.values())
        assert r.seconds["pf_hmc_trajectory"] > r.seconds["cg_solve"]
        assert r.joint_proposal == pytest.approx(
            r.seconds["gauge_flow"] + r.seconds["pseudofermion_flow"] + r.seconds["cg_solve"]
        )
        assert r.marginal_proposal == pytest.approx(
            r.seconds["gauge_flow"] + r.seconds["dense_det"]
        )
        assert 1 <= r.cg_iterations <= 2 * r.L**2  # CG on V unknowns (even sites, 2 spins)


@pytest.mark.parametrize("even_odd", [False, True])
def test_dense_fermion_action_is_exact_where_cg_cannot_converge(even_odd):
    """A uniform time-like background ``θ_0 = π/L`` cancels the antiperiodic boundary, so
    at ``κ = (1 - 10⁻⁶)/4`` the free Wilson operator has a singular value of 10⁻⁶ and
    ``cond(D†D) ~ 10¹⁴``. For a generic ``φ``, CG on ``D†D`` stagnates far above its
    tolerance and says so; the dense solve with ``D†`` agrees with the SVD's
    ``Σ_k |(V†φ)_k|²/σ_k²`` to 1e-8. On a second, generic configuration the two solvers
    agree with each other."""
    Lz, kappa = 8, 0.25 * (1 - 1e-6)
    action = PseudofermionAction(BETA, kappa, even_odd=even_odd)
    gen = torch.Generator().manual_seed(3)
    theta = torch.zeros(2, 2, Lz, Lz, dtype=torch.float64)
    theta[:, 0] = math.pi / Lz
    theta[1] += 0.3 * torch.randn(2, Lz, Lz, generator=gen, dtype=torch.float64)
    phi = torch.randn(2, Lz, Lz, 2, generator=gen, dtype=torch.complex128)
    vectors = phi.reshape(2, -1)
    if even_odd:
        phi = phi * action.dirac.parity_mask(Lz, Lz)
        op = action.dirac.dense_schur(theta)
        vectors = phi.reshape(2, -1)[:, action.dirac.even_sites(Lz, Lz)]
    else:
        op = action.dirac.dense(theta)
    _, sigma, vh = torch.linalg.svd(op)
    assert sigma[0].min() < 2e-6  # the near-zero mode is there
    reference = ((vh @ vectors[..., None]).squeeze(-1).abs() ** 2 / sigma**2).sum(-1)
    dense = action.dense_fermion_action(theta, phi)
    torch.testing.assert_close(dense, reference, rtol=1e-8, atol=0)
    with pytest.raises(CGNotConverged, match="stagnated"):
        action.fermion_action(theta[:1], phi[:1])
    torch.testing.assert_close(
        action.fermion_action(theta[1:], phi[1:]), dense[1:], rtol=1e-8, atol=0
    )
    torch.testing.assert_close(
        joint_action(action, theta[1:], phi[1:], dense=True),
        joint_action(action, theta[1:], phi[1:]),
    )
