"""Boundary tests of notebook 04's flow pieces: the score-function surrogate, the gradient
choice of ``TrainConfig``, and the Schwinger study's training and flow-MH compositions.

Bad input is refused by name before anything is built, trained or sampled; a valid call on
the tiniest lattice returns finite numbers (see harness.py for the contract).
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from lqft_lab.actions import Phi4Action
from lqft_lab.actions.schwinger import SchwingerAction
from lqft_lab.flows import build_real_nvp, build_u1_flow
from lqft_lab.samplers import HMC, Chain
from lqft_lab.studies.schwinger import (
    Comparison,
    KappaScan,
    SchwingerSizes,
    chain_observables,
    compare_samplers,
    comparison_table,
    flow_mh_chain,
    kappa_scan,
    run_hmc_chain,
    shipped_schwinger_flow,
    train_schwinger_flow,
    uniform_flux,
)
from lqft_lab.train import GRADIENTS, TrainConfig, Trainer, score_surrogate

from .harness import (
    BOUNDARY,
    HALF,
    INTEGER_DTYPES,
    assert_finite,
    bad_integers,
    bad_reals,
    not_integers,
    refused_or_finite,
    refuses,
)

COVERED = {
    "lqft_lab.train.score_surrogate",
    "lqft_lab.studies.schwinger.train_schwinger_flow",
    "lqft_lab.studies.schwinger.shipped_schwinger_flow",
    "lqft_lab.studies.schwinger.flow_mh_chain",
    "lqft_lab.studies.schwinger.SchwingerSizes",
    "lqft_lab.studies.schwinger.chain_observables",
    "lqft_lab.studies.schwinger.run_hmc_chain",
    "lqft_lab.studies.schwinger.uniform_flux",
    "lqft_lab.studies.schwinger.KappaScan",
    "lqft_lab.studies.schwinger.kappa_scan",
    "lqft_lab.studies.schwinger.Comparison",
    "lqft_lab.studies.schwinger.compare_samplers",
    "lqft_lab.studies.schwinger.comparison_table",
}

ACTION = SchwingerAction(1.0, 0.2)


@pytest.fixture(scope="module")
def u1_flow():
    return build_u1_flow(4, n_layers=1, hidden=(2,), seed=0).double()


# ============================================================== score_surrogate

not_tensors = st.one_of(st.none(), st.floats(), st.just([0.0, 1.0]), st.text(max_size=3))


@BOUNDARY
@given(bad=not_tensors, which=st.sampled_from(["logq", "logp"]))
def test_score_surrogate_refuses_what_is_not_a_tensor(bad, which):
    good = torch.zeros(4, dtype=torch.float64)
    args = {"logq": good, "logp": good, which: bad}
    refuses(score_surrogate, which, **args)


@BOUNDARY
@given(
    kind=st.sampled_from(["2d", "scalar", "short", "mismatch", "half", "integer"]),
    which=st.sampled_from(["logq", "logp"]),
)
def test_score_surrogate_refuses_bad_shapes_and_dtypes(kind, which):
    good = torch.zeros(4, dtype=torch.float64)
    bad = {
        "2d": torch.zeros(4, 1, dtype=torch.float64),
        "scalar": torch.tensor(0.0, dtype=torch.float64),
        "short": torch.zeros(1, dtype=torch.float64),
        "mismatch": torch.zeros(3, dtype=torch.float64),
        "half": torch.zeros(4, dtype=HALF[0]),
        "integer": torch.zeros(4, dtype=INTEGER_DTYPES[0]),
    }[kind]
    if kind == "short":  # B = 1: no other draw for the leave-one-out baseline
        refuses(score_surrogate, ("logq", "logp"), bad, bad)
        return
    names = ("logq", "logp") if kind == "mismatch" else which
    args = {"logq": good, "logp": good, which: bad}
    refuses(score_surrogate, names, **args)


@BOUNDARY
@given(
    values=st.lists(
        st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=2,
        max_size=16,
    )
)
def test_score_surrogate_is_finite_on_finite_input(values):
    logq = torch.tensor([v[0] for v in values], dtype=torch.float64, requires_grad=True)
    logp = torch.tensor([v[1] for v in values], dtype=torch.float64)
    result = refused_or_finite(score_surrogate, "logq", logq, logp)
    assert result is not None and result.shape == ()
    (grad,) = torch.autograd.grad(result, logq)
    assert_finite(grad)
    # d surrogate / d logq_i is the advantage / B, whose sum is zero (the baseline's job)
    assert abs(grad.sum().item()) <= 1e-9 * (1 + grad.abs().sum().item())


# ============================================================== TrainConfig.gradient


@BOUNDARY
@given(
    gradient=st.one_of(
        st.text(max_size=8).filter(lambda s: s not in GRADIENTS),
        st.sampled_from([None, 1, True, ["score"]]),
    )
)
def test_train_config_refuses_an_unknown_gradient(gradient):
    err = refuses(TrainConfig, "gradient", gradient=gradient)
    assert isinstance(err, ValueError)


def test_train_config_refuses_what_the_score_estimator_cannot_do():
    refuses(TrainConfig, "batch_size", gradient="score", batch_size=1)
    refuses(TrainConfig, "cuda_graph", gradient="score", cuda_graph=True)
    assert TrainConfig(gradient="score", batch_size=2).gradient == "score"


def test_the_score_trainer_refuses_a_model_without_log_prob():
    class SampleOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def sample(self, n, generator=None):
            return self.w + torch.zeros(n, 2, 2), torch.zeros(n)

    refuses(Trainer, "model", SampleOnly(), Phi4Action(1.0, 0.0), TrainConfig(gradient="score"))
    Trainer(SampleOnly(), Phi4Action(1.0, 0.0), TrainConfig())  # the default does not need it


# ============================================================== train_schwinger_flow


@BOUNDARY
@given(beta=bad_reals(low=0), kappa=bad_reals(low=0, high=1), n=bad_integers(low=1))
def test_train_schwinger_flow_refuses_before_building(beta, kappa, n):
    refuses(train_schwinger_flow, "beta", beta, 0.2, 4)
    refuses(train_schwinger_flow, "kappa", 1.0, kappa, 4)
    refuses(train_schwinger_flow, "n_steps", 1.0, 0.2, 4, n_steps=n)
    refuses(train_schwinger_flow, "n_layers", 1.0, 0.2, 4, n_layers=n)
    refuses(train_schwinger_flow, "batch_size", 1.0, 0.2, 4, batch_size=n)


@BOUNDARY
@given(L=st.one_of(bad_integers(low=4), st.sampled_from([6, 10])))
def test_train_schwinger_flow_refuses_a_bad_lattice(L):
    refuses(train_schwinger_flow, "L", 1.0, 0.2, L)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("hidden", 8),
        ("hidden", (0,)),
        ("kernel", "affine"),
        ("lr", -1e-3),
        ("lr", math.nan),
        ("gradient", "reinforce"),
        ("seed", -1),
        ("seed", 1.5),
        ("device", "tpu"),
        ("device", 3),
        ("dtype", torch.float16),
        ("dtype", torch.int64),
        ("dtype", "float64"),
        ("progress", 1),
    ],
)
def test_train_schwinger_flow_refuses_bad_keywords(argument, value):
    refuses(train_schwinger_flow, argument, 1.0, 0.2, 4, n_steps=1, **{argument: value})


@pytest.mark.parametrize(
    "model",
    [build_u1_flow(8, n_layers=2, hidden=(4,), seed=0), torch.nn.Linear(2, 2), "u1_L8_b2"],
    ids=["other lattice", "not a flow", "a name"],
)
def test_train_schwinger_flow_refuses_a_model_for_other_links(model):
    refuses(train_schwinger_flow, "model", 1.0, 0.2, 4, n_steps=1, model=model)


def test_train_schwinger_flow_refuses_a_score_batch_of_one():
    refuses(train_schwinger_flow, "batch_size", 1.0, 0.2, 4, gradient="score", batch_size=1)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_train_schwinger_flow_is_finite_on_the_tiniest_run(gradient):
    model, history = train_schwinger_flow(
        1.0, 0.2, 4, n_layers=1, hidden=(2,), n_steps=1, batch_size=2, gradient=gradient
    )
    assert_finite(history)
    assert len(history) == 1 and not model.training


# ============================================================== flow_mh_chain


@BOUNDARY
@given(n=bad_integers(low=2), batch=bad_integers(low=1), therm=not_integers)
def test_flow_mh_chain_refuses_bad_counts(u1_flow, n, batch, therm):
    refuses(flow_mh_chain, "n_steps", u1_flow, ACTION, n, 2)
    refuses(flow_mh_chain, "batch_size", u1_flow, ACTION, 2, batch)
    if therm is not None:  # None means "the default"
        refuses(flow_mh_chain, "thermalize", u1_flow, ACTION, 2, 2, thermalize=therm)


def test_flow_mh_chain_refuses_bad_objects(u1_flow):
    refuses(flow_mh_chain, "model", "flow", ACTION, 2, 2)
    refuses(flow_mh_chain, "model", build_real_nvp(L=4, n_layers=1, hidden=(2,)), ACTION, 2, 2)
    refuses(flow_mh_chain, "action", u1_flow, "S", 2, 2)
    refuses(flow_mh_chain, "action", u1_flow, Phi4Action(1.0, 0.0), 2, 2)
    refuses(flow_mh_chain, "generator", u1_flow, ACTION, 2, 2, 0)
    refuses(flow_mh_chain, "thermalize", u1_flow, ACTION, 2, 2, thermalize=-1)
    refuses(flow_mh_chain, "progress", u1_flow, ACTION, 2, 2, progress="no")


def test_flow_mh_chain_is_finite_on_a_tiny_run(u1_flow):
    chain = flow_mh_chain(u1_flow, ACTION, 2, 2, torch.Generator().manual_seed(0), thermalize=0)
    assert_finite(chain.observables)
    assert_finite(chain.accepted)


def test_flow_mh_chain_refuses_bad_observables_and_callback(u1_flow):
    refuses(flow_mh_chain, "observables", u1_flow, ACTION, 2, 2, observables=[plaquette_fn])
    refuses(flow_mh_chain, "callback", u1_flow, ACTION, 2, 2, callback="print")


def plaquette_fn(theta):
    return theta.cos().mean(dim=(1, 2, 3))


# ============================================================== SchwingerSizes


@pytest.mark.parametrize(
    "field, value",
    [
        ("hmc", (0, 10)),
        ("flow", 10),
        ("pf_hmc", (4, 2)),
        ("step_size", 0.0),
        ("lr", math.nan),
        ("n_md", 0),
        ("thermalize", -1),
        ("ess_samples", 4095),
        ("reference_samples", 1),
        ("scan_L", 1),
        ("train_steps", 1.5),
        ("integrator", "euler"),
        ("even_odd", 1),
        ("cg_max_iter", 0),
        ("pf_check_samples", 1),
        ("joint", (4, 1)),
        ("cg_tol", 1.0),
        ("flow_thermalize", -1),
        ("cg_force_tol", 0.0),
        ("joint_train_steps", 0),
        ("joint_blocks", 1.0),
        ("joint_lr", 0.0),
        ("joint_ess_samples", 100),
        ("joint_couplings", -1),
        ("scaling_L", (8,)),
        ("scaling_L", (4, 6)),
        ("scaling_L", "48"),
    ],
)
def test_schwinger_sizes_refuse_what_no_run_can_use(field, value):
    refuses(SchwingerSizes, field, **{field: value})
    refuses(SchwingerSizes.for_mode, field, "full", **{field: value})  # as a change, too


def test_schwinger_sizes_for_mode_refuses_a_change_of_no_field():
    refuses(SchwingerSizes.for_mode, "chains", "fast", chains=4)


@BOUNDARY
@given(mode=st.one_of(st.text(max_size=6), st.none(), st.integers()))
def test_schwinger_sizes_for_mode_refuses_other_modes(mode):
    if mode in ("fast", "full"):
        assert isinstance(SchwingerSizes.for_mode(mode), SchwingerSizes)
    else:
        refuses(SchwingerSizes.for_mode, "mode", mode)


# ============================================================== chain_observables, run_hmc_chain


@BOUNDARY
@given(kappa=bad_reals(low=0, high=1))
def test_chain_observables_refuse_a_bad_kappa(kappa):
    refuses(chain_observables, "kappa", kappa)


def test_run_hmc_chain_refuses_bad_objects_and_is_finite_on_a_tiny_run():
    x0 = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    hmc = HMC(SchwingerAction(1.0, 0.1), 0.2, 2)
    refuses(run_hmc_chain, "sampler", "hmc", x0, 2)
    refuses(run_hmc_chain, "observables", hmc, x0, 2, None, [plaquette_fn])
    refuses(run_hmc_chain, "n_steps", hmc, x0, 0)
    refuses(run_hmc_chain, ("x0", "x"), hmc, torch.full_like(x0, math.nan), 2)
    chain = run_hmc_chain(hmc, x0, 2, torch.Generator().manual_seed(0), {"p": plaquette_fn})
    assert_finite(chain.observables)


# ============================================================== uniform_flux, kappa_scan


@BOUNDARY
@given(L=bad_integers(low=2), charge=not_integers)
def test_uniform_flux_refuses_bad_arguments(L, charge):
    refuses(uniform_flux, "L", L)
    if charge is not None:
        refuses(uniform_flux, "charge", 4, charge)


@BOUNDARY
@given(L=st.integers(2, 6), charge=st.integers(-20, 20))
def test_uniform_flux_is_finite_or_refused(L, charge):
    theta = refused_or_finite(uniform_flux, "charge", L, charge)
    if theta is not None:
        assert theta.shape == (1, 2, L, L)


def test_uniform_flux_refuses_a_bad_dtype():
    refuses(uniform_flux, "dtype", 4, 1, dtype=torch.int64)


@BOUNDARY
@given(kappa=bad_reals(low=0, high=1))
def test_kappa_scan_refuses_bad_kappas(kappa):
    theta = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    refuses(kappa_scan, "kappas", theta, [0.1, kappa])


def test_kappa_scan_refuses_bad_links_and_is_finite():
    theta = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    refuses(kappa_scan, "kappas", theta, 0.1)
    refuses(kappa_scan, "kappas", theta, [])
    refuses(kappa_scan, "theta", torch.full_like(theta, math.nan), [0.1])
    refuses(kappa_scan, "theta", torch.zeros(2, 2, 2), [0.1])
    refuses(kappa_scan, "antiperiodic", theta, [0.1], antiperiodic=1)
    scan = kappa_scan(uniform_flux(4, 1), [0.0, 0.2])
    assert isinstance(scan, KappaScan)
    assert_finite([scan.min_real_part, scan.sign_det, scan.log_abs_det])


# ============================================================== compare_samplers, comparison_table


def _chain(n=8):
    data = torch.linspace(0, 1, 2 * n, dtype=torch.float64).reshape(n, 2)
    return Chain(observables={"x": data}, accepted=torch.ones(n, 2), final=None)


@BOUNDARY
@given(value=bad_reals(), error=bad_reals(low=0))
def test_compare_samplers_refuses_bad_references(value, error):
    refuses(compare_samplers, "reference", {"a": _chain()}, {"x": (value, 0.1)})
    refuses(compare_samplers, "reference", {"a": _chain()}, {"x": (0.5, error)})


def test_compare_samplers_refuses_bad_objects_and_is_finite():
    refuses(compare_samplers, "chains", {"a": 1}, {"x": (0.0, 0.1)})
    refuses(compare_samplers, "chains", [], {"x": (0.0, 0.1)})
    refuses(compare_samplers, "reference", {"a": _chain()}, {"x": "0"})
    refuses(compare_samplers, "reference", {"a": _chain()}, None)
    rows = compare_samplers({"a": _chain()}, {"x": (0.5, 0.1)})
    assert isinstance(rows[0], Comparison)
    assert_finite([r.pull for r in rows])
    refuses(comparison_table, "rows", [1])
    refuses(comparison_table, "reference_name", rows, 3)
    assert "| a | x |" in comparison_table(rows)


@BOUNDARY
@given(beta=bad_reals(low=0), kappa=bad_reals(low=0, high=1), L=bad_integers(low=1))
def test_shipped_schwinger_flow_refuses_bad_points(beta, kappa, L):
    refuses(shipped_schwinger_flow, "beta", beta, 0.24, 8)
    refuses(shipped_schwinger_flow, "kappa", 2.0, kappa, 8)
    refuses(shipped_schwinger_flow, "L", 2.0, 0.24, L)
    refuses(shipped_schwinger_flow, "device", 2.0, 0.24, 8, device="tpu")


def test_shipped_schwinger_flow_is_none_where_none_ships():
    assert shipped_schwinger_flow(2.0, 0.123, 8) is None
    assert shipped_schwinger_flow(0.0, 0.0, 3) is None
