"""Boundary tests of the fermion code: the Wilson–Dirac operator and its helpers, the
exact-determinant action, conjugate gradient, pseudofermions and pseudofermion HMC.

Bad arguments are refused where they enter, naming the argument; edge-case good ones give
finite (and, where known, correct) results. Tiny lattices (2×2, 4×4), one or two samples.
As for every action, the operator and the actions check kinds, dtypes and shapes but not
values (NaN in, NaN out); the samplers' ``init`` and CG's right-hand side refuse NaN.
"""

from __future__ import annotations

import dataclasses
import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from lqft_lab.actions import (
    CGNotConverged,
    CGResult,
    PseudofermionAction,
    SchwingerAction,
    WilsonDirac,
    check_fermion,
    conjugate_gradient,
    gamma_matrices,
    kappa_from_mass,
    mass_from_kappa,
)
from lqft_lab.samplers import (
    PseudofermionHMC,
    PseudofermionHMCInfo,
    PseudofermionHMCState,
    run_chain,
)

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    expect_error_naming,
    refused_or_finite,
    refuses,
)

COVERED = {
    *(
        f"lqft_lab.actions.{name}"
        for name in [
            "WilsonDirac",
            "gamma_matrices",
            "kappa_from_mass",
            "mass_from_kappa",
            "check_fermion",
            "SchwingerAction",
            "conjugate_gradient",
            "CGResult",
            "CGNotConverged",
            "PseudofermionAction",
        ]
    ),
    "lqft_lab.samplers.PseudofermionHMC",
    "lqft_lab.samplers.PseudofermionHMCState",
    "lqft_lab.samplers.PseudofermionHMCInfo",
}

# complex32 fields are drawn to be refused; torch warns on creating them
pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")

F64, C128 = torch.float64, torch.complex128
THETA = torch.linspace(-3.0, 3.0, 32, dtype=F64).reshape(1, 2, 4, 4)
PSI = torch.linspace(-1.0, 1.0, 32, dtype=F64).reshape(1, 4, 4, 2).to(C128) * (1 + 0.5j)
D = WilsonDirac(0.2)
PF = PseudofermionAction(beta=1.0, kappa=0.2)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def wrong_kind(like: torch.Tensor) -> st.SearchStrategy:
    """``bad_fields`` without poisoned copies (operators and actions leave values alone)."""

    def same_kind(x) -> bool:
        return isinstance(x, torch.Tensor) and x.dtype == like.dtype and x.shape == like.shape

    return bad_fields(like).filter(lambda x: not same_kind(x))


# ---------------------------------------------------------------- couplings and helpers


@BOUNDARY
@given(m0=bad_reals(low=-2, low_open=True))
def test_kappa_from_mass_refuses_bad_masses(m0):
    refuses(kappa_from_mass, "m0", m0)


@BOUNDARY
@given(kappa=bad_reals(low=0, low_open=True))
def test_mass_from_kappa_refuses_bad_kappa(kappa):
    refuses(mass_from_kappa, "kappa", kappa)


@BOUNDARY
@given(m0=st.floats(-1.99, 1e6))
def test_kappa_and_mass_round_trip(m0):
    kappa = kappa_from_mass(m0)
    assert 0 < kappa < 1 / 0.02 and math.isfinite(mass_from_kappa(kappa))


@BOUNDARY
@given(kappa=bad_reals(low=0, high=1))
def test_operators_and_actions_refuse_bad_kappa(kappa):
    refuses(WilsonDirac, "kappa", kappa)
    refuses(SchwingerAction, "kappa", 1.0, kappa)
    refuses(PseudofermionAction, "kappa", 1.0, kappa)


def test_kappa_one_and_bad_switches_are_refused():
    refuses(WilsonDirac, "kappa", 1.0)
    refuses(WilsonDirac, "antiperiodic", 0.2, antiperiodic="no")
    refuses(SchwingerAction, "beta", -1.0, 0.2)
    refuses(PseudofermionAction, "even_odd", 1.0, 0.2, even_odd=1)
    refuses(PseudofermionAction, "max_iter", 1.0, 0.2, max_iter=0)


@BOUNDARY
@given(tol=bad_reals(low=0, high=1))
def test_tolerances_must_lie_in_the_unit_interval(tol):
    refuses(PseudofermionAction, "tol", 1.0, 0.2, tol=tol)
    if tol is not None:  # None is force_tol's default: the energies' tol
        refuses(PseudofermionAction, "force_tol", 1.0, 0.2, force_tol=tol)
    refuses(conjugate_gradient, "tol", lambda v: v, PSI, tol=tol)


@pytest.mark.parametrize(
    "dtype, device, argument",
    [(torch.float64, None, "dtype"), (torch.complex32, None, "dtype"), ("c128", None, "dtype"),
     (C128, "gpu9", "device"), (C128, 3, "device")],
)  # fmt: skip
def test_gamma_matrices_refuse_bad_dtypes_and_devices(dtype, device, argument):
    refuses(gamma_matrices, argument, dtype, device)


def test_gamma_matrices_on_good_arguments():
    assert gamma_matrices(torch.complex64, "cpu").shape == (3, 2, 2)


# ----------------------------------------------------------------------- fields


@BOUNDARY
@given(theta=wrong_kind(THETA))
def test_operator_and_actions_refuse_bad_links(theta):
    refuses(D.apply, "theta", theta, PSI)
    refuses(D.apply_dagger, "theta", theta, PSI)
    refuses(D.apply_normal, "theta", theta, PSI)
    refuses(D.apply_schur, "theta", theta, PSI)
    refuses(D.dense, "theta", theta)
    refuses(D.log_abs_det, "theta", theta)
    refuses(check_fermion, "theta", PSI, theta)
    refuses(SchwingerAction(1.0, 0.2), "theta", theta)
    refuses(PF.heatbath, "theta", theta)
    refuses(PF, "theta", theta, PSI)


@BOUNDARY
@given(psi=wrong_kind(PSI))
def test_operator_and_actions_refuse_bad_fermions(psi):
    refuses(D.apply, "psi", THETA, psi)
    refuses(D.apply_schur_dagger, "psi", THETA, psi)
    refuses(check_fermion, "chi", psi, THETA, "chi")
    refuses(PF.fermion_action, "phi", THETA, psi)
    refuses(PF.force, "phi", THETA, psi)
    refuses(PF.solve, "phi", THETA, psi)


def test_fermions_must_match_the_links_precision_and_batch():
    refuses(D.apply, "psi", THETA.float(), PSI)  # complex128 with float32 links
    refuses(D.apply, "psi", THETA.expand(2, -1, -1, -1), PSI)  # batch 1 for links of 2
    refuses(PF.heatbath, "generator", THETA, "seed")


@BOUNDARY
@given(
    kappa=st.floats(0, 0.99),
    antiperiodic=st.booleans(),
    scale=st.floats(0, 100),
    L=st.sampled_from([(2, 2), (2, 4), (4, 2)]),
)
def test_operator_and_schwinger_action_are_finite_on_edge_links(kappa, antiperiodic, scale, L):
    theta = scale * torch.linspace(-1, 1, 2 * L[0] * L[1], dtype=F64).reshape(1, 2, *L)
    psi = torch.ones(1, *L, 2, dtype=C128)
    op = WilsonDirac(kappa, antiperiodic=antiperiodic)
    for out in (op.apply(theta, psi), op.apply_dagger(theta, psi), op.dense(theta)):
        assert_finite(out)
    S = refused_or_finite(SchwingerAction(1.0, kappa, antiperiodic=antiperiodic), "theta", theta)
    det = torch.linalg.det(op.dense(theta))
    if float(det.abs()) > 1e-300:  # log|det| is finite exactly when det is not zero
        assert S is not None and bool(torch.isfinite(S).all())


def test_nan_links_come_back_as_nan():
    theta = THETA.clone()
    theta[0, 0, 1, 1] = math.nan
    assert bool(torch.isnan(D.apply(theta, PSI)).any())


# ------------------------------------------------------------------ conjugate gradient


def normal(theta=THETA, kappa=0.2):
    op = WilsonDirac(kappa)
    U = op.links(theta)
    return lambda v: op._apply_dagger(U, op._apply(U, v))


def other_batched_fields(f) -> bool:
    """A field with an axis fewer or more is still a batch ``(B, ...)`` CG can solve."""
    return isinstance(f, torch.Tensor) and f.dtype == PSI.dtype and f.dim() != PSI.dim()


@BOUNDARY
@given(b=bad_fields(PSI).filter(lambda f: not other_batched_fields(f)))
def test_cg_refuses_bad_right_hand_sides(b):
    refuses(conjugate_gradient, "b", lambda v: 2 * v, b)


def test_cg_solves_any_batched_shape():
    for b in (PSI[0], PSI[..., None], PSI.real):
        result = conjugate_gradient(lambda v: 2 * v, b)
        torch.testing.assert_close(result.x, b / 2)
    refuses(conjugate_gradient, "b", lambda v: v, PSI[0, 0, 0])  # (2,) is one unbatched vector


@BOUNDARY
@given(max_iter=bad_integers(low=1).filter(lambda v: v is not None))  # None: the default
def test_cg_refuses_bad_max_iter(max_iter):
    refuses(conjugate_gradient, "max_iter", normal(), PSI, max_iter=max_iter)


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"x0": PSI[..., :1]}, "x0"), ({"x0": PSI.to(torch.complex64)}, "x0"),
     ({"x0": [0.0]}, "x0"), ({"raise_on_failure": "yes"}, "raise_on_failure")],
)  # fmt: skip
def test_cg_refuses_bad_options(kwargs, argument):
    refuses(conjugate_gradient, argument, normal(), PSI, **kwargs)


def test_cg_refuses_bad_operators():
    refuses(conjugate_gradient, "apply_A", "D†D", PSI)
    refuses(conjugate_gradient, "apply_A", lambda v: v[..., :1], PSI)  # changes the shape
    refuses(conjugate_gradient, "apply_A", lambda v: -v, PSI)  # negative definite


@BOUNDARY
@given(
    tol=st.floats(1e-12, 0.99),
    max_iter=st.integers(1, 80),
    scale=st.sampled_from([0.0, 1e-150, 1.0, 1e150]),
)
def test_cg_result_is_finite_or_says_it_did_not_converge(tol, max_iter, scale):
    b = scale * PSI
    try:
        result = conjugate_gradient(normal(), b, tol=tol, max_iter=max_iter)
    except CGNotConverged as err:
        result = err.result
        assert not bool(result.converged.all()) and "max_iter" in str(err)
    assert isinstance(result, CGResult)
    assert_finite(result)
    assert bool((result.iterations <= max_iter).all())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.x = b


def test_cg_not_converged_carries_the_result():
    with pytest.raises(CGNotConverged) as err:
        conjugate_gradient(normal(kappa=0.3), PSI, max_iter=1)
    assert isinstance(err.value, RuntimeError) and err.value.result.iterations.tolist() == [1]
    assert CGResult(PSI, *([torch.zeros(1)] * 3)).x is PSI


# --------------------------------------------------------------- pseudofermion HMC


@BOUNDARY
@given(step_size=bad_reals(low=0, low_open=True), n_steps=bad_integers(low=1))
def test_pseudofermion_hmc_refuses_bad_trajectories(step_size, n_steps):
    refuses(PseudofermionHMC, "step_size", PF, step_size, 3)
    refuses(PseudofermionHMC, "n_steps", PF, 0.1, n_steps)


def test_pseudofermion_hmc_refuses_bad_options():
    refuses(PseudofermionHMC, "action", SchwingerAction(1.0, 0.2), 0.1, 3)
    refuses(PseudofermionHMC, "integrator", PF, 0.1, 3, integrator="euler")
    refuses(PseudofermionHMC, "jitter", PF, 0.1, 3, jitter=1.0)


@BOUNDARY
@given(x=bad_fields(THETA))
def test_pseudofermion_hmc_refuses_bad_starting_links(x):
    hmc = PseudofermionHMC(PF, 0.1, 2)
    refuses(hmc.init, "x", x)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_regression_pseudofermion_hmc_refuses_non_finite_links(bad):
    x = THETA.clone()
    x[0, 1, 2, 3] = bad
    with expect_error_naming("x"):
        PseudofermionHMC(PF, 0.1, 2).init(x)
    with expect_error_naming("x"):
        run_chain(PseudofermionHMC(PF, 0.1, 2), x, 1)


@BOUNDARY
@given(
    step_size=st.floats(1e-6, 3.0),
    n_steps=st.integers(1, 3),
    integrator=st.sampled_from(["leapfrog", "omelyan"]),
    even_odd=st.booleans(),
)
def test_pseudofermion_hmc_steps_are_finite(step_size, n_steps, integrator, even_odd):
    action = PseudofermionAction(1.0, 0.2, even_odd=even_odd)
    hmc = PseudofermionHMC(action, step_size, n_steps, integrator=integrator, jitter=0.1)
    state, info = hmc.step(hmc.init(THETA), gen())
    assert isinstance(state, PseudofermionHMCState) and isinstance(info, PseudofermionHMCInfo)
    assert_finite(state)
    assert_finite(info)
    torch.testing.assert_close(state.S_gauge, action.gauge(state.x))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = THETA


def test_pseudofermion_hmc_integrate_checks_its_inputs():
    hmc = PseudofermionHMC(PF, 0.1, 2)
    phi = PF.heatbath(THETA, gen())
    refuses(hmc.integrate, "p", THETA, THETA[..., :2], phi)
    refuses(hmc.integrate, "phi", THETA, THETA, phi.to(torch.complex64))
