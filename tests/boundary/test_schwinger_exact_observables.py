"""Boundary tests of the Schwinger-model references (:mod:`lqft_lab.exact.schwinger`) and
fermion observables (:mod:`lqft_lab.observables.fermion`): bad input is refused by name,
edge-case input gives finite results (see harness.py for the contract).
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import torch
from hypothesis import given

from lqft_lab.exact import schwinger
from lqft_lab.exact.schwinger import (
    ReweightedReference,
    Schwinger2x2,
    free_condensate,
    free_log_det,
    free_pion_correlator,
    free_propagator,
    free_spectrum,
    reweighted_reference,
    schwinger_2x2,
)
from lqft_lab.observables import (
    chiral_condensate,
    lowest_eigenvalues,
    pion_correlator,
    plaquette,
    schwinger_observables,
    stochastic_condensate,
)

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    refused_or_finite,
    refuses,
)

FERMION = [
    "chiral_condensate",
    "stochastic_condensate",
    "pion_correlator",
    "lowest_eigenvalues",
    "schwinger_observables",
]
COVERED = {
    *(f"lqft_lab.exact.schwinger.{name}" for name in schwinger.__all__),
    *(f"lqft_lab.observables.{name}" for name in FERMION),
}

FREE = [free_spectrum, free_log_det, free_propagator, free_condensate, free_pion_correlator]
THETA = (
    torch.rand(2, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
) * math.pi
#: κ outside ``[0, 1)`` (1 itself included) and things that are not real numbers.
bad_kappa = st.one_of(bad_reals(low=0, high=1), st.just(1.0))
not_bools = st.sampled_from([0, 1, "yes", None, 1.0])
SMALL_OBS = {"plaquette": plaquette}


def _fermion_calls(theta, kappa=0.2, **kw):
    """Every fermion observable as a call of ``(theta, kappa)``."""
    gen = torch.Generator().manual_seed(0)
    return [
        lambda: chiral_condensate(theta, kappa, **kw),
        lambda: chiral_condensate(theta, kappa, n_noise=2, generator=gen, **kw),
        lambda: stochastic_condensate(theta, kappa, 2, generator=gen, **kw),
        lambda: pion_correlator(theta, kappa, **kw),
        lambda: lowest_eigenvalues(theta, kappa, 2, **kw),
    ]


# --- free fermions ------------------------------------------------------------------------


@BOUNDARY
@given(L=bad_integers(low=2), which=st.sampled_from(["L0", "L1"]))
def test_free_references_refuse_bad_extents(L, which):
    args = {"L0": 4, "L1": 4, which: L}
    for fn in FREE:
        refuses(fn, which, args["L0"], args["L1"], 0.2)


@BOUNDARY
@given(kappa=bad_kappa)
def test_free_references_refuse_bad_kappa(kappa):
    for fn in FREE:
        refuses(fn, "kappa", 4, 4, kappa)


@BOUNDARY
@given(antiperiodic=not_bools)
def test_free_references_refuse_bad_switches(antiperiodic):
    for fn in FREE:
        refuses(fn, "antiperiodic", 4, 4, 0.2, antiperiodic)


def test_free_references_refuse_huge_lattices():
    for fn in FREE:
        refuses(fn, "L0", 2**11, 2**10 + 1, 0.2)


@BOUNDARY
@given(
    L0=st.integers(2, 9),
    L1=st.integers(2, 9),
    kappa=st.floats(0, 1, exclude_max=True),
    antiperiodic=st.booleans(),
)
def test_free_references_are_finite_or_refuse_kappa(L0, L1, kappa, antiperiodic):
    for fn in FREE:
        refused_or_finite(fn, "kappa", L0, L1, kappa, antiperiodic)


# --- the 2×2 integral ---------------------------------------------------------------------


@BOUNDARY
@given(beta=st.one_of(bad_reals(low=0), st.just(2e4)))
def test_2x2_refuses_bad_beta(beta):
    refuses(schwinger_2x2, "beta", beta, 0.2)


@BOUNDARY
@given(kappa=bad_kappa)
def test_2x2_refuses_bad_kappa(kappa):
    refuses(schwinger_2x2, "kappa", 1.0, kappa)


@BOUNDARY
@given(refine=bad_integers(low=1, high=4))
def test_2x2_refuses_bad_refine(refine):
    refuses(schwinger_2x2, "refine", 1.0, 0.2, refine=refine)


@BOUNDARY
@given(
    beta=st.one_of(st.floats(0, 20), st.sampled_from([0.0, 1e3, 1e4])),
    kappa=st.one_of(st.floats(0, 1, exclude_max=True), st.sampled_from([0.0, 0.999])),
    antiperiodic=st.booleans(),
)
def test_2x2_is_finite_at_any_coupling(beta, kappa, antiperiodic):
    result = refused_or_finite(schwinger_2x2, "kappa", beta, kappa, antiperiodic=antiperiodic)
    if result is not None:
        assert isinstance(result, Schwinger2x2)
        assert -1 <= result.plaquette <= 1 + 1e-12
        assert np.all(result.pion_correlator >= 0)


# --- reweighted exact draws ---------------------------------------------------------------


def _reweighted(**overrides):
    args = dict(beta=1.0, kappa=0.2, L=2, n_samples=8, observables=SMALL_OBS, generator=None)
    args.update(overrides)
    return reweighted_reference(**args)


@BOUNDARY
@given(
    which=st.sampled_from(["beta", "kappa", "L", "n_samples", "chunk_size"]),
    data=st.data(),
)
def test_reweighting_refuses_bad_arguments(which, data):
    bad = {
        "beta": st.one_of(bad_reals(low=0), st.just(2e4)),
        "kappa": bad_kappa,
        "L": st.one_of(bad_integers(low=2), st.just(17), st.just((4, 128))),
        "n_samples": bad_integers(low=2),
        "chunk_size": bad_integers(low=1),
    }[which]
    refuses(lambda **kw: _reweighted(**kw), which, **{which: data.draw(bad)})


@BOUNDARY
@given(
    observables=st.sampled_from(
        [
            [plaquette],
            "plaquette",
            {"p": 1.0},
            {"p": lambda theta: plaquette(theta)[:1]},
            {"p": lambda theta: plaquette(theta).tolist()},
            {"p": lambda theta: plaquette(theta) * math.nan},
        ]
    )
)
def test_reweighting_refuses_bad_observables(observables):
    refuses(lambda: _reweighted(observables=observables), "observables")


@BOUNDARY
@given(generator=st.sampled_from([0, "seed", np.random.default_rng(0)]))
def test_reweighting_refuses_bad_generators(generator):
    refuses(lambda: _reweighted(generator=generator), "generator")


@BOUNDARY
@given(
    beta=st.floats(0, 10),
    kappa=st.floats(0, 1, exclude_max=True),
    L=st.sampled_from([2, 3, (2, 4), (4, 2)]),
    chunk_size=st.integers(1, 16),
)
def test_reweighting_is_finite(beta, kappa, L, chunk_size):
    gen = torch.Generator().manual_seed(0)
    result = refused_or_finite(
        lambda: _reweighted(beta=beta, kappa=kappa, L=L, chunk_size=chunk_size, generator=gen),
        "kappa",
    )
    if result is not None:
        assert isinstance(result, ReweightedReference)
        assert 0 < result.ess <= 1 and result.n_samples == 8


# --- fermion observables ------------------------------------------------------------------


@BOUNDARY
@given(theta=bad_fields(THETA))
def test_fermion_observables_refuse_bad_links(theta):
    for call in _fermion_calls(theta):
        refuses(call, "theta")


@BOUNDARY
@given(kappa=bad_kappa)
def test_fermion_observables_refuse_bad_kappa(kappa):
    for call in _fermion_calls(THETA, kappa):
        refuses(call, "kappa")
    refuses(schwinger_observables, "kappa", kappa)


@BOUNDARY
@given(antiperiodic=not_bools)
def test_fermion_observables_refuse_bad_switches(antiperiodic):
    for call in _fermion_calls(THETA, antiperiodic=antiperiodic):
        refuses(call, "antiperiodic")


@BOUNDARY
@given(n_noise=bad_integers(low=1))
def test_stochastic_condensate_refuses_bad_n_noise(n_noise):
    refuses(stochastic_condensate, "n_noise", THETA, 0.2, n_noise)
    if n_noise is not None:  # None asks chiral_condensate for the exact trace
        refuses(chiral_condensate, "n_noise", THETA, 0.2, n_noise=n_noise)


@BOUNDARY
@given(
    which=st.sampled_from(["noise", "solver", "generator"]),
    value=st.sampled_from(["Z2", "cholesky", 1, None, 0.5, torch.float64]),
)
def test_stochastic_condensate_refuses_bad_options(which, value):
    if which == "generator" and value is None:
        return  # None is the default generator
    refuses(stochastic_condensate, which, THETA, 0.2, 2, **{which: value})


@BOUNDARY
@given(k=st.one_of(bad_integers(low=1, high=64)), order=st.just("abs"))
def test_lowest_eigenvalues_refuses_bad_k(k, order):
    refuses(lowest_eigenvalues, "k", THETA, 0.2, k, order=order)


@BOUNDARY
@given(order=st.sampled_from(["ABS", "imag", 1, None]))
def test_lowest_eigenvalues_refuses_bad_order(order):
    refuses(lowest_eigenvalues, "order", THETA, 0.2, 2, order=order)


@BOUNDARY
@given(times=st.sampled_from([1, "1", [1.5], [-1], [True], None]))
def test_schwinger_observables_refuse_bad_times(times):
    refuses(schwinger_observables, "times", 0.2, times)


@BOUNDARY
@given(
    spread=st.sampled_from([0.0, 1e-8, 1.0, 1e3]),
    kappa=st.sampled_from([0.0, 0.125, 0.2499, 0.5, 0.999]),
    antiperiodic=st.booleans(),
    shape=st.sampled_from([(1, 2, 2, 2), (2, 2, 4, 2), (1, 2, 3, 5)]),
    single=st.booleans(),
)
def test_fermion_observables_are_finite_on_edge_links(spread, kappa, antiperiodic, shape, single):
    gen = torch.Generator().manual_seed(1)
    theta = spread * (2 * torch.rand(shape, dtype=torch.float64, generator=gen) - 1)
    theta = theta.float() if single else theta
    for call in _fermion_calls(theta, kappa, antiperiodic=antiperiodic):
        try:
            result = call()
        except ValueError as err:  # an exactly singular D, or CG on a zero mode
            assert "kappa" in str(err) or "conjugate gradient" in str(err), err
            continue
        except RuntimeError as err:  # CGNotConverged names its tolerance, not an argument
            assert "conjugate gradient" in str(err), err
            continue
        assert_finite(result)
    for fn in schwinger_observables(kappa, times=(0, 1), antiperiodic=antiperiodic).values():
        refused_or_finite(fn, "kappa", theta)
