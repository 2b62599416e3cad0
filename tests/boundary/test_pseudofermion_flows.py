"""Boundary tests of notebook 04's part 2 and of its cost bill: the pseudofermion flow and its
layers, the joint samplers, joint training, and the seconds-per-independent-sample table.

Bad input is refused by name before anything is built, trained or sampled; a valid call on
the tiniest lattice returns finite numbers (see harness.py for the contract).
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from lqft_lab.actions import PseudofermionAction
from lqft_lab.flows import (
    CovariantCouplingLayer,
    HopLayer,
    PseudofermionFlow,
    PseudofermionFlowConfig,
    SpinScaleLayer,
    build_u1_flow,
    dirac_dagger_hops,
)
from lqft_lab.io import load_checkpoint, save_checkpoint
from lqft_lab.samplers import (
    Chain,
    ExactPseudofermionConditional,
    GibbsFlowMetropolis,
    JointFlowMetropolis,
    JointInfo,
    JointState,
    joint_action,
)
from lqft_lab.studies.schwinger import (
    ProposalCost,
    SamplerCost,
    cost_table,
    joint_ess,
    plot_parallel_transport,
    plot_proposal_costs,
    proposal_cost_table,
    proposal_costs,
    sampler_costs,
    shipped_pseudofermion_flow,
    train_pseudofermion_flow,
)

from .harness import BOUNDARY, HALF, assert_finite, bad_integers, bad_reals, refuses

COVERED = {
    "lqft_lab.flows.PseudofermionFlow",
    "lqft_lab.flows.HopLayer",
    "lqft_lab.flows.SpinScaleLayer",
    "lqft_lab.flows.CovariantCouplingLayer",
    "lqft_lab.flows.PseudofermionFlowConfig",
    "lqft_lab.flows.dirac_dagger_hops",
    "lqft_lab.samplers.JointFlowMetropolis",
    "lqft_lab.samplers.GibbsFlowMetropolis",
    "lqft_lab.samplers.ExactPseudofermionConditional",
    "lqft_lab.samplers.JointState",
    "lqft_lab.samplers.JointInfo",
    "lqft_lab.samplers.joint_action",
    "lqft_lab.studies.schwinger.train_pseudofermion_flow",
    "lqft_lab.studies.schwinger.joint_ess",
    "lqft_lab.studies.schwinger.plot_parallel_transport",
    "lqft_lab.studies.schwinger.SamplerCost",
    "lqft_lab.studies.schwinger.sampler_costs",
    "lqft_lab.studies.schwinger.cost_table",
    "lqft_lab.studies.schwinger.shipped_pseudofermion_flow",
    "lqft_lab.studies.schwinger.ProposalCost",
    "lqft_lab.studies.schwinger.proposal_costs",
    "lqft_lab.studies.schwinger.plot_proposal_costs",
    "lqft_lab.studies.schwinger.proposal_cost_table",
}

F64, C128 = torch.float64, torch.complex128
L = 4
THETA = torch.linspace(-3.0, 3.0, 2 * 2 * L * L, dtype=F64).reshape(2, 2, L, L)
PHI = torch.linspace(-1.0, 1.0, 2 * L * L * 2, dtype=F64).reshape(2, L, L, 2).to(C128) * (1 + 0.5j)
ACTION = PseudofermionAction(1.0, 0.2, even_odd=True)


@pytest.fixture(scope="module")
def gauge_flow():
    return build_u1_flow(L, n_layers=1, hidden=(2,), seed=0).double()


@pytest.fixture(scope="module")
def pf_flow():
    return PseudofermionFlow((L, L), n_blocks=1, hidden=(2,), init_kappa=0.2)


# ============================================================== the flow and its layers


@pytest.mark.parametrize("shape", [(3, 4), (4,), (4, 4, 4), (0, 4), "44", None])
def test_pseudofermion_flow_refuses_a_bad_lattice(shape):
    refuses(PseudofermionFlow, "lattice_shape", shape)


@BOUNDARY
@given(n=bad_integers(low=1))
def test_pseudofermion_flow_refuses_bad_blocks(n):
    refuses(PseudofermionFlow, "n_blocks", (L, L), n_blocks=n)


def test_pseudofermion_flow_refuses_bad_options():
    refuses(PseudofermionFlow, "init_kappa", (L, L), init_kappa=1.5)
    refuses(PseudofermionFlow, "dtype", (L, L), dtype=torch.float16)
    refuses(PseudofermionFlow, "hidden", (L, L), hidden="8")
    refuses(PseudofermionFlow, "antiperiodic", (L, L), antiperiodic=1)
    refuses(HopLayer, "parity", 2)
    refuses(HopLayer, "coefficients", 0, coefficients=torch.zeros(4, 2))
    refuses(SpinScaleLayer, "hidden", hidden=(0,))
    refuses(PseudofermionFlow, "couplings", (L, L), couplings=-1)
    refuses(PseudofermionFlow, "kernel_size", (L, L), kernel_size=2)
    refuses(CovariantCouplingLayer, "parity", -1)
    refuses(CovariantCouplingLayer, "antiperiodic", 0, antiperiodic="yes")
    refuses(PseudofermionFlowConfig, "L0", 0, 4)
    refuses(PseudofermionFlowConfig, "lattice_shape", 4, 5)
    refuses(PseudofermionFlowConfig, "couplings", 4, 4, couplings=1.5)
    refuses(PseudofermionFlow.from_config, "config", {"L0": 4, "L1": 4})
    refuses(dirac_dagger_hops, "kappa", math.nan)


def test_pseudofermion_flow_checkpoints_round_trip(tmp_path):
    """Saved and loaded with its architecture and action checked; another target's action
    (plain against even/odd pseudofermions) is refused by name."""
    flow = PseudofermionFlow((L, 6), n_blocks=1, hidden=(2,), couplings=1, init_kappa=0.2)
    path = save_checkpoint(tmp_path / "pf.safetensors", flow, ACTION, steps=1)
    loaded, meta = load_checkpoint(path, action=ACTION, architecture=flow.config)
    assert meta["kind"] == "pseudofermion" and not loaded.training
    theta, chi = THETA[:, :, :, :2].repeat(1, 1, 1, 3), PHI[:, :, :2].repeat(1, 1, 3, 1)
    torch.testing.assert_close(loaded(chi, theta), flow(chi, theta), rtol=0, atol=0)
    with pytest.raises(ValueError, match="even_odd"):
        load_checkpoint(path, action=PseudofermionAction(1.0, 0.2))


def test_pseudofermion_flow_refuses_bad_fields_and_is_finite(pf_flow):
    refuses(pf_flow.sample, "theta", THETA[:, :, :2])  # another lattice
    refuses(pf_flow.sample, "theta", THETA.float())
    refuses(pf_flow.sample, "theta", "links")
    refuses(pf_flow.log_prob, "phi", THETA, PHI[:, :2])
    refuses(pf_flow.log_prob, "phi", THETA, PHI.real)
    refuses(pf_flow, "chi", PHI.to(torch.complex64), THETA)
    phi, logq = pf_flow.sample(THETA, torch.Generator().manual_seed(0))
    assert_finite((phi, logq, pf_flow.log_prob(THETA, phi)))


@pytest.mark.parametrize("dtype", HALF)
def test_pseudofermion_flow_refuses_half_links(pf_flow, dtype):
    refuses(pf_flow.sample, "theta", THETA.to(dtype))


# ============================================================== samplers


def test_joint_samplers_refuse_bad_parts(gauge_flow, pf_flow):
    refuses(JointFlowMetropolis, "action", gauge_flow, pf_flow, "action")
    refuses(JointFlowMetropolis, "gauge_model", object(), pf_flow, ACTION)
    refuses(JointFlowMetropolis, "fermion_model", gauge_flow, object(), ACTION)
    refuses(JointFlowMetropolis, "batch_size", gauge_flow, pf_flow, ACTION, batch_size=0)
    refuses(GibbsFlowMetropolis, "action", gauge_flow, None)
    refuses(GibbsFlowMetropolis, "batch_size", gauge_flow, ACTION, batch_size=1.5)
    refuses(ExactPseudofermionConditional, "action", "pf")


def test_joint_samplers_refuse_bad_starts_and_are_finite(gauge_flow, pf_flow):
    joint = JointFlowMetropolis(gauge_flow, pf_flow, ACTION, batch_size=2)
    gibbs = GibbsFlowMetropolis(gauge_flow, ACTION, batch_size=2)
    refuses(joint.init, "x", THETA)  # not a pair
    refuses(joint.init, "theta", (THETA.clone().fill_(math.nan), PHI))
    refuses(joint.init, "phi", (THETA, PHI[:1]))
    refuses(joint.init, "phi", (THETA, torch.full_like(PHI, math.inf)))
    refuses(joint.init, "generator", None, generator=3)
    refuses(gibbs.init, "x", THETA[0])
    refuses(gibbs.init, "generator", THETA, generator="seed")
    gen = torch.Generator().manual_seed(1)
    for sampler, start in ((joint, (THETA, PHI)), (gibbs, THETA), (joint, None), (gibbs, None)):
        state = sampler.init(start, generator=gen)
        state, info = sampler.step(state, gen)
        assert isinstance(state, JointState) and isinstance(info, JointInfo)
        assert_finite((state.logp, state.logq, info.logw, state.x, state.phi))


def test_exact_conditional_and_joint_action_are_finite():
    conditional = ExactPseudofermionConditional(ACTION)
    phi, logq = conditional.sample(THETA, torch.Generator().manual_seed(2))
    assert_finite((phi, logq, conditional.log_prob(THETA, phi), joint_action(ACTION, THETA, phi)))
    refuses(conditional.sample, "theta", THETA[0])
    refuses(joint_action, "phi", ACTION, THETA, PHI[..., :1])


# ============================================================== training


@pytest.mark.parametrize(
    "argument, value",
    [
        ("n_steps", 0),
        ("batch_size", 1),
        ("lr", -1e-3),
        ("lr", math.inf),
        ("train_gauge", "no"),
        ("seed", -1),
        ("log_every", 0),
        ("callback", 3),
        ("progress", None),
    ],
)
def test_train_pseudofermion_flow_refuses_bad_keywords(gauge_flow, pf_flow, argument, value):
    refuses(train_pseudofermion_flow, argument, gauge_flow, pf_flow, ACTION, **{argument: value})


def test_train_pseudofermion_flow_refuses_bad_objects_and_is_finite(gauge_flow):
    flow = PseudofermionFlow((L, L), n_blocks=1, hidden=(2,))
    refuses(train_pseudofermion_flow, "fermion_flow", gauge_flow, object(), ACTION)
    refuses(train_pseudofermion_flow, "action", gauge_flow, flow, "S")
    seen = []
    history = train_pseudofermion_flow(
        gauge_flow,
        flow,
        ACTION,
        n_steps=2,
        batch_size=2,
        log_every=1,
        callback=lambda step, entry: seen.append((step, entry)),
    )
    assert len(history) == 2 and seen == [(e["step"], e) for e in history]
    assert_finite(history)


def test_joint_ess_refuses_bad_input_and_is_finite(gauge_flow, pf_flow):
    conditionals = {"flow": pf_flow, "exact": ExactPseudofermionConditional(ACTION)}
    refuses(joint_ess, "action", gauge_flow, conditionals, "S", 8)
    refuses(joint_ess, "conditionals", gauge_flow, [pf_flow], ACTION, 8)
    refuses(joint_ess, "n_samples", gauge_flow, conditionals, ACTION, 1)
    refuses(joint_ess, "batch_size", gauge_flow, conditionals, ACTION, 8, batch_size=0)
    result = joint_ess(gauge_flow, conditionals, ACTION, 8, torch.Generator().manual_seed(3))
    assert set(result) == {"marginal", "flow", "exact"}
    assert_finite(result)


@pytest.mark.parametrize("L", [3, 4.5, "4"])
def test_plot_parallel_transport_refuses_a_bad_lattice(L):
    refuses(plot_parallel_transport, "L", None, L)


def test_plot_parallel_transport_draws():
    import matplotlib.pyplot as plt

    ax = plot_parallel_transport()
    assert len(ax.patches) + len(ax.texts) >= 4  # the four transports and their labels
    plt.close(ax.figure)


# ============================================================== costs


def _chain(T=8, B=2):
    data = torch.linspace(0.0, 1.0, T * B, dtype=F64).reshape(T, B).sin()
    return Chain(observables={"x": data}, accepted=torch.ones(T, B, dtype=F64), final=None)


@BOUNDARY
@given(seconds=bad_reals(low=0), thermalize=bad_integers(low=0))
def test_sampler_costs_refuse_bad_numbers(seconds, thermalize):
    refuses(sampler_costs, "seconds", {"a": _chain()}, {"a": seconds}, 0, ["x"])
    refuses(sampler_costs, "thermalize", {"a": _chain()}, {"a": 1.0}, thermalize, ["x"])


def test_sampler_costs_refuse_bad_objects_and_are_finite():
    refuses(sampler_costs, "chains", {"a": 1}, {"a": 1.0}, 0, ["x"])
    refuses(sampler_costs, "seconds", {"a": _chain()}, [1.0], 0, ["x"])
    refuses(sampler_costs, "observables", {"a": _chain()}, {"a": 1.0}, 0, [])
    refuses(sampler_costs, "observables", {"a": _chain()}, {"a": 1.0}, 0, "x")
    (cost,) = sampler_costs({"a": _chain()}, {"a": 1.0}, 3, ["x"])
    assert isinstance(cost, SamplerCost)
    assert_finite((cost.seconds_per_step, cost.cost_per_independent_sample("x")))
    refuses(cost_table, "costs", [1])
    refuses(cost_table, "baseline", [cost], baseline="b")
    assert "| a |" in cost_table([cost], baseline="a")


@given(name=st.text(min_size=1, max_size=5).filter(lambda s: s != "x"))
@BOUNDARY
def test_cost_per_independent_sample_names_the_missing_observable(name):
    (cost,) = sampler_costs({"a": _chain()}, {"a": 1.0}, 0, ["x"])
    with pytest.raises(KeyError, match="no τ_int"):
        cost.cost_per_independent_sample(name)


# ============================================================== shipped flows, proposal costs


def test_shipped_pseudofermion_flow_refuses_bad_input():
    refuses(shipped_pseudofermion_flow, "kappa", 1.0, 1.5, 8)
    refuses(shipped_pseudofermion_flow, "L", 1.0, 0.2, 0)
    refuses(shipped_pseudofermion_flow, "even_odd", 1.0, 0.2, 8, even_odd=None)
    refuses(shipped_pseudofermion_flow, "device", 1.0, 0.2, 8, device="nowhere")
    assert shipped_pseudofermion_flow(1.0, 0.123, 8) is None  # nothing ships there


@pytest.mark.parametrize("Ls", [[], [6], "48", [4, 512], None, [4.5]])
def test_proposal_costs_refuse_bad_lattices(Ls):
    refuses(proposal_costs, "Ls", Ls, 1.0, 0.2)


def test_proposal_costs_refuse_bad_options_and_are_finite():
    refuses(proposal_costs, "kappa", [4], 1.0, -0.1)
    refuses(proposal_costs, "batch", [4], 1.0, 0.2, batch=0)
    refuses(proposal_costs, "repeats", [4], 1.0, 0.2, repeats=1.5)
    refuses(proposal_costs, "n_md", [4], 1.0, 0.2, n_md=0)
    refuses(proposal_costs, "step_size", [4], 1.0, 0.2, step_size=-1.0)
    refuses(proposal_costs, "tol", [4], 1.0, 0.2, tol=2.0)
    refuses(proposal_costs, "max_iter", [4], 1.0, 0.2, max_iter=0)
    refuses(proposal_costs, "device", [4], 1.0, 0.2, device="nowhere")
    refuses(proposal_costs, "progress", [4], 1.0, 0.2, progress="yes")
    (row,) = proposal_costs([4], 1.0, 0.2, batch=1, repeats=1, n_layers=1, hidden=(2,), n_md=1)
    assert isinstance(row, ProposalCost)
    assert_finite((torch.tensor(list(row.seconds.values())), torch.tensor(row.cg_iterations)))
    refuses(plot_proposal_costs, "rows", [])
    refuses(plot_proposal_costs, "rows", ["row"])
    assert plot_proposal_costs([row]) is not None
    refuses(proposal_cost_table, "rows", ())
    assert proposal_cost_table([row]).count("\n") == 2  # header, rule, one row
