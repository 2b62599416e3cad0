"""Boundary tests of :mod:`lqft_lab.samplers`: bad arguments are refused where they enter,
naming the argument; edge-case good ones give finite (and, where known, correct) results.

Tiny lattices (L = 2..4), two or three chains, a step or two: the module runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from lqft_lab.actions import Phi4Action, SUNWilsonAction, U1WilsonAction
from lqft_lab.actions.u1 import plaquette_angles, wrap_angle
from lqft_lab.flows import build_real_nvp, build_u1_flow
from lqft_lab.groups.sun import haar, random_algebra
from lqft_lab.samplers import (
    HMC,
    SUNHMC,
    Chain,
    FieldState,
    FlowMCMCInfo,
    FlowMCMCState,
    FlowMetropolis,
    FlowMetropolisWithLocal,
    HMCInfo,
    LocalMetropolis,
    LocalMetropolisInfo,
    SUNHeatbath,
    SUNHeatbathInfo,
    U1Heatbath,
    U1HeatbathInfo,
    independence_metropolis,
    leapfrog,
    link_groups,
    metropolis_accept,
    omelyan,
    run_chain,
    sample_su2_heatbath,
    sample_u1_exact,
    sample_von_mises,
    sun_kinetic_energy,
    sun_leapfrog,
    sun_omelyan,
    u1_links_from_plaquettes,
    u1_staples,
)

from .harness import (
    BOUNDARY,
    HALF,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    expect_error_naming,
    non_finite,
    not_integers,
    poisoned,
    refused_or_finite,
    refuses,
)

COVERED = {
    f"lqft_lab.samplers.{name}"
    for name in [
        "metropolis_accept",
        "sample_u1_exact",
        "u1_links_from_plaquettes",
        "FieldState",
        "Chain",
        "run_chain",
        "HMC",
        "HMCInfo",
        "leapfrog",
        "omelyan",
        "LocalMetropolis",
        "LocalMetropolisInfo",
        "FlowMetropolis",
        "FlowMetropolisWithLocal",
        "FlowMCMCState",
        "FlowMCMCInfo",
        "independence_metropolis",
        "U1Heatbath",
        "U1HeatbathInfo",
        "sample_von_mises",
        "u1_staples",
        "link_groups",
        "SUNHMC",
        "sun_leapfrog",
        "sun_omelyan",
        "sun_kinetic_energy",
        "SUNHeatbath",
        "SUNHeatbathInfo",
        "sample_su2_heatbath",
    ]
}

F64, C128 = torch.float64, torch.complex128
PHI4 = Phi4Action(m2=1.0, lam=0.5)
U1 = U1WilsonAction(beta=1.0)
SU2 = SUNWilsonAction(beta=1.0, N=2)
X = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=F64)  # φ⁴ fields
THETA = (2 * torch.rand(2, 2, 4, 4, generator=torch.Generator().manual_seed(1), dtype=F64) - 1) * 3
# SU(2) links; contiguous, so that harness.poisoned's reshape(-1) writes into the copy
U = haar((2, 2, 2, 2), 2, dtype=C128, generator=torch.Generator().manual_seed(2)).contiguous()
torch.manual_seed(0)  # weight init of the tiny flows only; every draw has its own generator
REAL_NVP = build_real_nvp(L=4, n_layers=2, hidden=(4,)).double()
U1_FLOW = build_u1_flow(4, n_layers=2, hidden=(4,), seed=0).double()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def field_of_fewer_lattice_axes(like: torch.Tensor, f) -> bool:
    """``like[0]`` is a legitimate batch of a lower-dimensional lattice for samplers that
    take any lattice (HMC and local Metropolis of φ⁴): not a bad field there."""
    return isinstance(f, torch.Tensor) and f.dim() == like.dim() - 1 and f.dtype == like.dtype


bad_phi4_fields = bad_fields(X).filter(lambda f: not field_of_fewer_lattice_axes(X, f))
MOMENTA = random_algebra(
    U.shape[:-2], 2, dtype=C128, generator=torch.Generator().manual_seed(3)
).contiguous()
# SU(N) HMC and its integrators take matrices (B, ..., N, N) of any layout
bad_matrices = bad_fields(U).filter(lambda f: not field_of_fewer_lattice_axes(U, f))
bad_momenta = bad_fields(MOMENTA).filter(lambda f: not field_of_fewer_lattice_axes(MOMENTA, f))
positive_counts = st.integers(1, 3)
bad_generators = st.sampled_from(["seed", 3, 1.5, [1]])


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_regression_hmc_refuses_a_non_finite_starting_field(bad):
    x = X.clone()
    x[1, 2, 3] = bad
    with expect_error_naming("x"):
        HMC(PHI4, 0.1, 3).init(x)
    with expect_error_naming("x"):
        run_chain(HMC(PHI4, 0.1, 3), x, 2)  # the initial field of run_chain


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_regression_local_metropolis_refuses_a_non_finite_starting_field(bad):
    x = X.clone()
    x[0, 0, 0] = bad
    with expect_error_naming("x"):
        LocalMetropolis(PHI4).init(x)
    with expect_error_naming("x"):
        run_chain(LocalMetropolis(PHI4), x, 2)


def test_regression_a_field_whose_action_overflows_is_refused_at_init():
    x = torch.full((2, 4, 4), 1e10)  # finite, but λφ⁴ overflows float32: the chain never moves
    for sampler in (HMC(PHI4, 0.1, 3), LocalMetropolis(PHI4)):
        err = refuses(sampler.init, "x", x)
        assert "non-finite action" in str(err)


def test_regression_sample_u1_exact_refuses_integer_dtypes():
    for dtype in (torch.int64, torch.int32, torch.bool):
        err = refuses(sample_u1_exact, "dtype", 2, 4, 1.0, dtype=dtype)
        assert "float32 or float64" in str(err)
    theta = sample_u1_exact(2, 4, 1.0, gen(), dtype=F64)
    assert theta.dtype == F64 and theta.is_floating_point()


def test_regression_flow_metropolis_refuses_a_u1_flow_with_a_phi4_action():
    err = refuses(FlowMetropolis, ("model", "action"), U1_FLOW, PHI4, batch_size=2)
    assert "U(1) link angles" in str(err) and "scalar" in str(err)
    refuses(FlowMetropolis, ("model", "action"), REAL_NVP, U1, batch_size=2)  # and the reverse
    refuses(FlowMetropolis, ("model", "action"), REAL_NVP, SU2, batch_size=2)
    refuses(FlowMetropolisWithLocal, ("model", "action"), U1_FLOW, PHI4, U1Heatbath(U1))
    # the matching pairs run
    for model, action in ((U1_FLOW, U1), (REAL_NVP, PHI4)):
        state = FlowMetropolis(model, action, batch_size=2).init(None, gen())
        assert_finite(state)


def test_regression_the_flow_check_moves_no_random_stream():
    before = torch.random.get_rng_state()
    FlowMetropolis(U1_FLOW, U1, batch_size=2)
    assert torch.equal(before, torch.random.get_rng_state())


def test_regression_sampler_numbers_are_checked():
    # True was an integer and a number to the old checks: a step size of 1, one hit, ...
    for call, name in [
        (lambda: HMC(PHI4, True, 3), "step_size"),
        (lambda: HMC(PHI4, 0.1, True), "n_steps"),
        (lambda: HMC(PHI4, 0.1, 3, jitter=True), "jitter"),
        (lambda: LocalMetropolis(PHI4, delta=True), "delta"),
        (lambda: SUNHMC(SU2, True, 3), "step_size"),
        (lambda: run_chain(HMC(PHI4, 0.1, 3), X, 10**0, thermalize=1.0), "thermalize"),
        (lambda: run_chain(HMC(PHI4, 0.1, 3), X, 2.0), "n_steps"),
        (lambda: HMC(PHI4, 0.1, 3, integrator="Leapfrog"), "integrator"),
    ]:
        refuses(call, name)


@pytest.mark.parametrize("half", HALF)
def test_regression_half_precision_fields_are_refused_with_one_message(half):
    messages = {
        refuses(HMC(PHI4, 0.1, 2).init, "x", X.to(half)),
        refuses(LocalMetropolis(PHI4).init, "x", X.to(half)),
        refuses(FlowMetropolis(REAL_NVP, PHI4, 2).init, "x", X.to(half)),
        refuses(U1Heatbath(U1).init, "theta", THETA.to(half)),
        refuses(run_chain, "x", HMC(PHI4, 0.1, 2), X.to(half), 2),
    }
    # the same sentence about half precision (what else is accepted depends on the sampler)
    texts = {str(m).split(", got ", 1)[1] for m in messages}
    assert len(texts) == 1 and "half precision is not supported" in texts.pop()


def test_regression_complex_half_links_are_refused_with_the_same_message():
    half = U.to(torch.complex32)
    for call in (SUNHMC(SU2, 0.1, 2).init, SUNHeatbath(SU2).init):
        assert "half precision is not supported" in str(refuses(call, "U", half))


# ------------------------------------------------------------------------------------ HMC


@BOUNDARY
@given(step_size=bad_reals(low=0, low_open=True))
def test_hmc_refuses_bad_step_sizes(step_size):
    refuses(HMC, "step_size", PHI4, step_size, 3)
    refuses(SUNHMC, "step_size", SU2, step_size, 3)


@BOUNDARY
@given(n_steps=bad_integers(low=1))
def test_hmc_refuses_bad_n_steps(n_steps):
    refuses(HMC, "n_steps", PHI4, 0.1, n_steps)
    refuses(SUNHMC, "n_steps", SU2, 0.1, n_steps)


@BOUNDARY
@given(jitter=st.one_of(bad_reals(low=0, high=1), st.just(1.0)))
def test_hmc_refuses_bad_jitter(jitter):
    refuses(HMC, "jitter", PHI4, 0.1, 3, jitter=jitter)
    refuses(SUNHMC, "jitter", SU2, 0.1, 3, jitter=jitter)


@BOUNDARY
@given(integrator=st.one_of(st.text(max_size=8), st.none(), st.integers(), st.just(["omelyan"])))
def test_hmc_refuses_unknown_integrators(integrator):
    if integrator in ("leapfrog", "omelyan"):
        return
    refuses(HMC, "integrator", PHI4, 0.1, 3, integrator=integrator)
    refuses(SUNHMC, "integrator", SU2, 0.1, 3, integrator=integrator)


def test_hmc_refuses_an_action_that_is_not_callable():
    refuses(HMC, "action", "phi4", 0.1, 3)
    refuses(SUNHMC, "action", PHI4, 0.1, 3)  # no N: not an SU(N) action


@BOUNDARY
@given(x=bad_phi4_fields)
def test_hmc_init_refuses_bad_fields(x):
    refuses(HMC(PHI4, 0.1, 3).init, "x", x)


def test_hmc_init_refuses_fields_the_action_cannot_score():
    refuses(HMC(U1, 0.1, 3).init, "x", X)  # φ⁴-shaped fields for the U(1) action
    refuses(HMC(PHI4, 0.1, 3).init, "generator", X, "seed")


@BOUNDARY
@given(
    step_size=st.floats(1e-8, 1e8),
    n_steps=positive_counts,
    integrator=st.sampled_from(["leapfrog", "omelyan"]),
    jitter=st.floats(0, 0.99),
)
def test_hmc_runs_finite_at_edge_parameters(step_size, n_steps, integrator, jitter):
    hmc = HMC(PHI4, step_size, n_steps, integrator=integrator, jitter=jitter)
    state, info = hmc.step(hmc.init(X), gen())
    assert isinstance(state, FieldState) and isinstance(info, HMCInfo)
    assert_finite(state)  # a diverged trajectory is rejected: the chain stays where it was
    assert_finite(info.accept_prob)
    assert bool(((info.accept_prob >= 0) & (info.accept_prob <= 1)).all())
    torch.testing.assert_close(state.S, PHI4(state.x))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = X


# --------------------------------------------------------------------------- integrators


@BOUNDARY
@given(
    integrator=st.sampled_from([leapfrog, omelyan]),
    step_size=bad_reals(low=0, low_open=True),
    n_steps=bad_integers(low=1),
)
def test_integrators_refuse_bad_steps(integrator, step_size, n_steps):
    refuses(integrator, "step_size", X, X, lambda y: -y, step_size, 3)
    refuses(integrator, "n_steps", X, X, lambda y: -y, 0.1, n_steps)


@BOUNDARY
@given(integrator=st.sampled_from([leapfrog, omelyan]), bad=bad_fields(X))
def test_integrators_refuse_bad_positions_and_momenta(integrator, bad):
    refuses(integrator, ("x", "p"), bad, X, lambda y: -y, 0.1, 3)
    refuses(integrator, "p", X, bad, lambda y: -y, 0.1, 3)


def test_integrators_refuse_a_force_that_is_not_callable():
    for integrator in (leapfrog, omelyan):
        refuses(integrator, "force_fn", X, X, "force", 0.1, 3)


@BOUNDARY
@given(
    integrator=st.sampled_from([leapfrog, omelyan]),
    step_size=st.floats(1e-6, 1e6),
    n_steps=positive_counts,
)
def test_integrators_are_finite_or_say_the_trajectory_diverged(integrator, step_size, n_steps):
    """A harmonic force; beyond ε = 2 the trajectory grows, and may overflow: refused then."""
    result = refused_or_finite(integrator, "step_size", X, X, lambda y: -y, step_size, n_steps)
    if result is not None and step_size < 0.05:
        x, p = result
        H0, H1 = (X**2 + X**2).sum() / 2, (x**2 + p**2).sum() / 2  # energy, O(ε²) error
        assert float(abs(H1 - H0) / H0) < step_size**2


def test_integrators_refuse_a_diverging_trajectory():
    err = refuses(leapfrog, "step_size", X, X, lambda y: y**5, 10.0, 5)
    assert "diverged" in str(err)


# ------------------------------------------------------------------------ SU(N) HMC


@BOUNDARY
@given(links=bad_matrices)
def test_sunhmc_init_refuses_bad_links(links):
    refuses(SUNHMC(SU2, 0.1, 2).init, "U", links)


def test_sunhmc_init_refuses_nan_and_non_unitary_links():
    refuses(SUNHMC(SU2, 0.1, 2).init, "U", 2 * U)
    refuses(SUNHMC(SU2, 0.1, 2).init, "U", torch.full_like(U, complex(math.nan, 0)))


@BOUNDARY
@given(
    integrator=st.sampled_from([sun_leapfrog, sun_omelyan]),
    links=bad_matrices,
    momenta=bad_momenta,
)
def test_sun_integrators_refuse_bad_links_and_momenta(integrator, links, momenta):
    refuses(integrator, "U", links, MOMENTA, SU2.force, 0.1, 2)
    refuses(integrator, "X", U, momenta, SU2.force, 0.1, 2)


@BOUNDARY
@given(
    integrator=st.sampled_from([sun_leapfrog, sun_omelyan]),
    step_size=st.one_of(bad_reals(low=0, low_open=True), st.floats(1e-4, 1.0)),
    n_steps=st.one_of(bad_integers(low=1), positive_counts),
)
def test_sun_integrators_steps(integrator, step_size, n_steps):
    X0 = random_algebra(U.shape[:-2], 2, dtype=C128, generator=gen(4))
    result = refused_or_finite(
        integrator, ("step_size", "n_steps"), U, X0, SU2.force, step_size, n_steps
    )
    if result is not None:
        U1_, X1 = result
        eye = torch.eye(2, dtype=C128)
        torch.testing.assert_close(U1_ @ U1_.conj().transpose(-1, -2), eye.expand_as(U1_))
    refuses(integrator, "force_fn", U, X0, None, 0.1, 2)


@BOUNDARY
@given(momenta=bad_momenta)
def test_sun_kinetic_energy_refuses_bad_momenta(momenta):
    refuses(sun_kinetic_energy, "X", momenta)


def test_sun_kinetic_energy_is_minus_the_trace_of_x_squared():
    X0 = random_algebra((3, 2, 2), 3, dtype=C128, generator=gen(6))
    K = sun_kinetic_energy(X0)
    expected = -torch.einsum("...ij,...ji->...", X0, X0).real.flatten(1).sum(1)
    torch.testing.assert_close(K, expected)
    assert_finite(K)


@BOUNDARY
@given(step_size=st.floats(1e-6, 1e3), jitter=st.floats(0, 0.99))
def test_sunhmc_runs_finite_at_edge_parameters(step_size, jitter):
    hmc = SUNHMC(SU2, step_size, 2, integrator="omelyan", jitter=jitter)
    state, info = hmc.step(hmc.init(U), gen())
    assert_finite(state)
    assert_finite(info.accept_prob)


# ------------------------------------------------------------------- local Metropolis


@BOUNDARY
@given(delta=bad_reals(low=0, low_open=True), n_hits=bad_integers(low=1))
def test_local_metropolis_refuses_bad_parameters(delta, n_hits):
    refuses(LocalMetropolis, "delta", PHI4, delta=delta)
    refuses(LocalMetropolis, "n_hits", PHI4, n_hits=n_hits)


def test_local_metropolis_refuses_actions_without_local_updates_and_odd_lattices():
    refuses(LocalMetropolis, "action", U1)
    refuses(LocalMetropolis(PHI4).init, "x", torch.zeros(2, 4, 5, dtype=F64))


@BOUNDARY
@given(x=bad_phi4_fields)
def test_local_metropolis_init_refuses_bad_fields(x):
    refuses(LocalMetropolis(PHI4).init, "x", x)


@BOUNDARY
@given(delta=st.floats(1e-8, 1e8), n_hits=positive_counts)
def test_local_metropolis_runs_finite_at_edge_parameters(delta, n_hits):
    sampler = LocalMetropolis(PHI4, delta=delta, n_hits=n_hits)
    state, info = sampler.step(sampler.init(X), gen())
    assert isinstance(info, LocalMetropolisInfo)
    assert_finite(state)
    assert bool(((info.accepted >= 0) & (info.accepted <= 1)).all())
    torch.testing.assert_close(state.S, PHI4(state.x))


# ------------------------------------------------------------------ flow Metropolis


@BOUNDARY
@given(batch_size=bad_integers(low=1), prefetch=bad_integers(low=1))
def test_flow_metropolis_refuses_bad_counts(batch_size, prefetch):
    refuses(FlowMetropolis, "batch_size", REAL_NVP, PHI4, batch_size=batch_size)
    refuses(FlowMetropolis, "prefetch", REAL_NVP, PHI4, prefetch=prefetch)


def test_flow_metropolis_refuses_things_that_are_not_models_or_actions():
    refuses(FlowMetropolis, "model", object(), PHI4)
    refuses(FlowMetropolis, "action", REAL_NVP, 3.0)


@BOUNDARY
@given(x=bad_fields(X))
def test_flow_metropolis_init_refuses_bad_fields(x):
    refuses(FlowMetropolis(REAL_NVP, PHI4, batch_size=2).init, "x", x)


def test_flow_metropolis_init_refuses_fields_unlike_the_model():
    sampler = FlowMetropolis(REAL_NVP, PHI4, batch_size=2)
    assert "lattice" in str(refuses(sampler.init, "x", torch.zeros(2, 6, 6, dtype=F64)))
    refuses(sampler.init, "x", X.float())  # a float64 model
    refuses(sampler.init, "generator", None, "seed")


@BOUNDARY
@given(batch_size=positive_counts, prefetch=positive_counts, start=st.booleans())
def test_flow_metropolis_runs_finite(batch_size, prefetch, start):
    sampler = FlowMetropolis(REAL_NVP, PHI4, batch_size=batch_size, prefetch=prefetch)
    state = sampler.init(X[:1].expand(batch_size, 4, 4) if start else None, gen())
    state, info = sampler.step(state, gen(1))
    assert isinstance(state, FlowMCMCState) and isinstance(info, FlowMCMCInfo)
    assert_finite(state)
    assert_finite(state.logw)
    assert_finite(info)


@BOUNDARY
@given(n_local=bad_integers(low=1))
def test_flow_metropolis_with_local_refuses_bad_arguments(n_local):
    refuses(FlowMetropolisWithLocal, "n_local", U1_FLOW, U1, U1Heatbath(U1), n_local=n_local)
    refuses(FlowMetropolisWithLocal, "local", U1_FLOW, U1, "heatbath")
    refuses(FlowMetropolisWithLocal, "batch_size", U1_FLOW, U1, U1Heatbath(U1), batch_size=0)


def test_flow_metropolis_with_local_runs_finite():
    sampler = FlowMetropolisWithLocal(U1_FLOW, U1, U1Heatbath(U1), n_local=2, batch_size=2)
    chain = run_chain(sampler, None, 2, gen(), {"S": U1})
    assert_finite(chain)
    torch.testing.assert_close(chain.final.logq, U1_FLOW.log_prob(chain.final.x).detach())


# --------------------------------------------------------------- independence Metropolis


LOGW = torch.randn(6, generator=gen(7), dtype=F64)


@BOUNDARY
@given(kind=st.sampled_from(["list", "half", "integer", "2d", "0d", "empty"]), which=st.booleans())
def test_independence_metropolis_refuses_bad_weights(kind, which):
    bad = {
        "list": LOGW.tolist(),
        "half": LOGW.half(),
        "integer": LOGW.long(),
        "2d": LOGW.view(2, 3),
        "0d": LOGW[0],
        "empty": LOGW[:0],
    }[kind]
    args = (bad, LOGW) if which else (LOGW, bad)
    refuses(independence_metropolis, ("logp", "logq"), *args)


@BOUNDARY
@given(logp=poisoned(LOGW))
def test_independence_metropolis_never_moves_to_a_nan_weight(logp):
    index, accepted = refused_or_finite(independence_metropolis, "logp", logp, LOGW * 0, gen())
    nan = torch.isnan(logp)
    moved = index != 0
    assert not bool(nan[index[moved]].any()), "the chain moved onto a NaN weight"
    if bool(nan[0]) and not bool(nan[1:].all()):  # a NaN start is left at the first weight
        first = int((~nan[1:]).nonzero()[0]) + 1
        assert int(index[first]) == first


def test_independence_metropolis_refuses_bad_generators():
    refuses(independence_metropolis, "generator", LOGW, LOGW, "seed")


# -------------------------------------------------------------------- metropolis_accept


@BOUNDARY
@given(log_ratio=st.one_of(st.just([0.0]), st.just(0.5), st.sampled_from(HALF), st.just("x")))
def test_metropolis_accept_refuses_bad_log_ratios(log_ratio):
    if isinstance(log_ratio, torch.dtype):
        log_ratio = torch.zeros(3, dtype=log_ratio)
    refuses(metropolis_accept, "log_ratio", log_ratio)


@BOUNDARY
@given(generator=bad_generators)
def test_metropolis_accept_refuses_bad_generators(generator):
    refuses(metropolis_accept, "generator", torch.zeros(3), generator)


def test_metropolis_accept_rejects_nan_and_accepts_inf():
    log_ratio = torch.tensor([math.nan, math.inf, -math.inf, 0.0])
    accepted = metropolis_accept(log_ratio, gen())
    assert accepted.tolist() == [False, True, False, True]


# ------------------------------------------------------------------------ heatbaths


@BOUNDARY
@given(
    draw=st.sampled_from([sample_von_mises, sample_su2_heatbath]),
    kappa=st.one_of(
        st.builds(
            lambda v: torch.tensor([1.0, v]), st.one_of(non_finite, st.floats(max_value=-1e-9))
        ),
        st.sampled_from(HALF).map(lambda d: torch.ones(3, dtype=d)),
        st.just(torch.ones(3, dtype=torch.int64)),
        st.just([1.0]),
        st.just(1.0),
    ),
)
def test_heatbath_draws_refuse_bad_kappa(draw, kappa):
    refuses(draw, "kappa", kappa)


@BOUNDARY
@given(draw=st.sampled_from([sample_von_mises, sample_su2_heatbath]), generator=bad_generators)
def test_heatbath_draws_refuse_bad_generators(draw, generator):
    refuses(draw, "generator", torch.ones(3), generator=generator)


@BOUNDARY
@given(
    loc=st.one_of(
        non_finite, st.just("0"), st.just(torch.zeros(4)), st.just(torch.tensor([math.nan]))
    )
)
def test_von_mises_refuses_bad_loc(loc):
    refuses(sample_von_mises, "loc", torch.ones(3), loc)


@BOUNDARY
@given(kappa=st.lists(st.floats(0, 1e300), min_size=0, max_size=4), loc=st.floats(-10, 10))
def test_heatbath_draws_are_finite_and_in_range_at_any_kappa(kappa, loc):
    k = torch.tensor(kappa, dtype=F64)
    theta = sample_von_mises(k, loc, gen())
    assert theta.shape == k.shape
    assert_finite(theta)
    assert bool(((theta >= -math.pi) & (theta < math.pi)).all())
    a0, s = sample_su2_heatbath(k, gen())
    assert_finite((a0, s))
    assert bool((a0.abs() <= 1).all())
    torch.testing.assert_close(0.5 * torch.einsum("...ii->...", s).real, a0)


@BOUNDARY
@given(theta=bad_fields(THETA))
def test_u1_staples_and_sweeps_refuse_bad_links(theta):
    refuses(u1_staples, "theta", theta)
    sampler = U1Heatbath(U1)
    refuses(sampler.init, "theta", theta)
    refuses(sampler.heatbath_sweep, "theta", theta)
    refuses(sampler.overrelax_sweep, "theta", theta)


def test_u1_staples_are_finite_and_bounded():
    k, phi0 = u1_staples(THETA)
    assert_finite((k, phi0))
    assert bool(((k >= 0) & (k <= 2 + 1e-12)).all())


@BOUNDARY
@given(
    shape=st.one_of(
        st.just(4),
        st.just("44"),
        st.just((4, 5)),
        st.just((4, 4, 4)),
        st.just((0, 4)),
        st.just((4.0, 4)),
        st.none(),
    )
)
def test_link_groups_refuses_bad_shapes(shape):
    refuses(link_groups, "shape", shape)


def test_link_groups_partition_the_links():
    groups = link_groups((2, 4))
    assert groups.shape == (4, 2, 2, 4)
    assert torch.equal(groups.sum(0), torch.ones(2, 2, 4, dtype=torch.long))
    refuses(link_groups, "device", (2, 4), device="nowhere")


@BOUNDARY
@given(n_overrelax=bad_integers(low=0))
def test_heatbaths_refuse_bad_n_overrelax(n_overrelax):
    refuses(U1Heatbath, "n_overrelax", U1, n_overrelax=n_overrelax)
    refuses(SUNHeatbath, "n_overrelax", SU2, n_overrelax=n_overrelax)


def test_heatbaths_refuse_other_actions_and_bad_sweep_arguments():
    refuses(U1Heatbath, "U1WilsonAction", PHI4)
    refuses(SUNHeatbath, "SUNWilsonAction", U1)
    refuses(U1Heatbath(U1).overrelax_sweep, "reverse", THETA, reverse="yes")
    refuses(SUNHeatbath(SU2).overrelax_sweep, "reverse", U, reverse=1)
    refuses(U1Heatbath(U1).heatbath_sweep, "generator", THETA, "seed")


@BOUNDARY
@given(links=bad_fields(U))
def test_sun_heatbath_refuses_bad_links(links):
    sampler = SUNHeatbath(SU2)
    refuses(sampler.init, "U", links)
    refuses(sampler.heatbath_sweep, "U", links)
    refuses(sampler.overrelax_sweep, "U", links)


@BOUNDARY
@given(n_overrelax=st.integers(0, 2))
def test_heatbaths_run_finite(n_overrelax):
    for sampler, x in ((U1Heatbath(U1, n_overrelax), THETA), (SUNHeatbath(SU2, n_overrelax), U)):
        state, info = sampler.step(sampler.init(x), gen())
        assert isinstance(info, (U1HeatbathInfo, SUNHeatbathInfo))
        assert_finite(state)
        assert bool(info.accepted.all())
        torch.testing.assert_close(state.S, sampler.action(state.x))


# --------------------------------------------------------------------- exact U(1) draws


@BOUNDARY
@given(batch_size=bad_integers(low=1))
def test_sample_u1_exact_refuses_bad_batch_sizes(batch_size):
    refuses(sample_u1_exact, "batch_size", batch_size, 4, 1.0)


@BOUNDARY
@given(L=st.one_of(bad_integers(low=2), st.just((4, 4, 4)), st.just("4")))
def test_sample_u1_exact_refuses_bad_lattices(L):
    refuses(sample_u1_exact, "L", 2, L, 1.0)


@BOUNDARY
@given(beta=bad_reals(low=0))
def test_sample_u1_exact_refuses_bad_beta(beta):
    refuses(sample_u1_exact, "beta", 2, 4, beta)


@BOUNDARY
@given(
    dtype=st.one_of(
        st.sampled_from([torch.int64, torch.complex64, *HALF]), st.just("float32"), st.none()
    )
)
def test_sample_u1_exact_refuses_bad_dtypes(dtype):
    refuses(sample_u1_exact, "dtype", 2, 4, 1.0, dtype=dtype)


@BOUNDARY
@given(device=st.one_of(st.just("nowhere"), st.just(3.5), st.just([0])), generator=bad_generators)
def test_sample_u1_exact_refuses_bad_devices_and_generators(device, generator):
    refuses(sample_u1_exact, "device", 2, 4, 1.0, device=device)
    refuses(sample_u1_exact, "generator", 2, 4, 1.0, generator)


@BOUNDARY
@given(
    beta=st.floats(0, 1e4),  # lqft_lab.exact's U(1) checks refuse β above 10⁴
    L=st.sampled_from([2, 3, (2, 4)]),
    dtype=st.sampled_from([torch.float32, F64]),
)
def test_sample_u1_exact_is_finite_at_any_beta(beta, L, dtype):
    theta = sample_u1_exact(2, L, beta, gen(), dtype=dtype)
    assert theta.dtype == dtype
    assert_finite(theta)
    assert bool(((theta >= -math.pi) & (theta < math.pi)).all())


@BOUNDARY
@given(plaquettes=bad_fields(torch.zeros(2, 4, 4, dtype=F64)))
def test_u1_links_from_plaquettes_refuses_bad_plaquettes(plaquettes):
    refuses(u1_links_from_plaquettes, "plaquettes", plaquettes)


@BOUNDARY
@given(polyakov=bad_fields(torch.zeros(2, 2, dtype=F64)))
def test_u1_links_from_plaquettes_refuses_bad_polyakov_loops(polyakov):
    refuses(u1_links_from_plaquettes, "polyakov", torch.zeros(2, 4, 4, dtype=F64), polyakov)


def test_u1_links_from_plaquettes_reproduces_the_plaquettes():
    theta = sample_u1_exact(3, (4, 6), 2.0, gen(8), dtype=F64)
    plaquettes = wrap_angle(plaquette_angles(theta))
    links = u1_links_from_plaquettes(plaquettes)
    assert_finite(links)
    torch.testing.assert_close(wrap_angle(plaquette_angles(links) - plaquettes), 0 * plaquettes)


# ---------------------------------------------------------------------------- run_chain


@BOUNDARY
@given(argument=st.sampled_from(["n_steps", "every", "callback_every"]), value=bad_integers(low=1))
def test_run_chain_refuses_bad_counts(argument, value):
    kwargs = {"n_steps": 2, argument: value}
    refuses(run_chain, argument, HMC(PHI4, 0.1, 2), X, **kwargs)


@BOUNDARY
@given(thermalize=bad_integers(low=0))
def test_run_chain_refuses_bad_thermalize(thermalize):
    refuses(run_chain, "thermalize", HMC(PHI4, 0.1, 2), X, 2, thermalize=thermalize)


@BOUNDARY
@given(x0=bad_phi4_fields)
def test_run_chain_refuses_bad_initial_fields(x0):
    refuses(run_chain, ("x", "x0"), HMC(PHI4, 0.1, 2), x0, 2)


def test_run_chain_refuses_bad_samplers_states_and_options():
    hmc = HMC(PHI4, 0.1, 2)
    refuses(run_chain, "sampler", "hmc", X, 2)
    refuses(run_chain, "observables", hmc, X, 2, observables=[len])
    refuses(run_chain, "callback", hmc, X, 2, callback="print")
    refuses(run_chain, "progress", hmc, X, 2, progress="yes")
    refuses(run_chain, "generator", hmc, X, 2, generator=7)
    flow_state = FlowMetropolis(REAL_NVP, PHI4, 2).init(None, gen())
    refuses(run_chain, "x0", hmc, flow_state, 2)  # a state of another sampler
    refuses(run_chain, "x0", hmc, FieldState(x=X.clone().fill_(math.nan), S=PHI4(X)), 2)
    with pytest.raises(ValueError, match="every"):
        run_chain(hmc, X, 2, every=3)


@BOUNDARY
@given(
    n_steps=st.integers(1, 3),
    thermalize=st.integers(0, 2),
    every=st.integers(1, 3),
    sampler=st.sampled_from(["hmc", "local", "flow"]),
)
def test_run_chain_returns_a_finite_chain(n_steps, thermalize, every, sampler):
    every = min(every, n_steps)
    made = {
        "hmc": lambda: (HMC(PHI4, 0.2, 2), X),
        "local": lambda: (LocalMetropolis(PHI4), X),
        "flow": lambda: (FlowMetropolis(REAL_NVP, PHI4, 2), None),
    }[sampler]
    chosen, x0 = made()
    reports = []
    chain = run_chain(
        chosen,
        x0,
        n_steps,
        gen(),
        {"phi2": lambda x: (x**2).flatten(1).mean(1)},
        thermalize=thermalize,
        every=every,
        callback=lambda step, summary: reports.append(summary),
    )
    assert isinstance(chain, Chain)
    assert_finite(chain)
    assert chain.observables["phi2"].shape == (n_steps // every, 2)
    assert 0 <= chain.acceptance <= 1 and math.isfinite(chain.acceptance)
    assert reports and all(math.isfinite(v) for r in reports for v in r.values())
    again = run_chain(chosen, chain.final, 1, gen(1))  # continuing from the final state
    assert_finite(again.final)


@BOUNDARY
@given(x0=st.one_of(st.just(3), st.just("zeros"), not_integers))
def test_run_chain_refuses_x0_that_is_neither_fields_nor_a_state(x0):
    if x0 is None:  # None starts samplers that can start themselves; HMC cannot
        with pytest.raises((TypeError, ValueError)):
            run_chain(HMC(PHI4, 0.1, 2), x0, 2)
        return
    refuses(run_chain, ("x", "x0"), HMC(PHI4, 0.1, 2), x0, 2)
