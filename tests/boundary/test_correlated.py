"""Boundary tests of notebook 06's pieces: the exact β-derivatives, the estimators of
``d⟨O⟩/dβ``, the loop field of the Stein estimator, and the study's functions.

Bad couplings, lattices, arrays, steps and coefficients are refused by name; edge inputs
that are accepted give finite numbers."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given

from lqft_lab.analysis import (
    DerivativeEstimate,
    covariance_derivative,
    flowed_difference,
    independent_difference,
    reweighted_difference,
    stein_derivative,
)
from lqft_lab.exact import u1_derivatives
from lqft_lab.flows.u1 import LoopField, SteinFeatures
from lqft_lab.studies import correlated

from .harness import BOUNDARY, assert_finite, bad_reals, refused_or_finite, refuses

COVERED = {
    *(f"lqft_lab.exact.u1_derivatives.{name}" for name in u1_derivatives.__all__),
    *(
        f"lqft_lab.analysis.{name}"
        for name in [
            "DerivativeEstimate",
            "independent_difference",
            "covariance_derivative",
            "reweighted_difference",
            "flowed_difference",
            "stein_derivative",
        ]
    ),
    "lqft_lab.flows.u1.LoopField",
    "lqft_lab.flows.u1.SteinFeatures",
    *(
        f"lqft_lab.studies.correlated.{name}"
        for name in correlated.__all__
        if callable(getattr(correlated, name))
    ),
}

DERIVATIVES = [getattr(u1_derivatives, name) for name in u1_derivatives.__all__]
bad_u1_beta = st.one_of(bad_reals(low=0), st.floats(1e4, 1e300, exclude_min=True))


@BOUNDARY
@given(beta=bad_u1_beta)
def test_exact_derivatives_refuse_bad_beta(beta):
    for fn in DERIVATIVES:
        refuses(fn, "beta", beta, 4)


@BOUNDARY
@given(L=st.one_of(st.integers(max_value=1), st.just((4, 4, 4)), st.just("8"), st.none()))
def test_exact_derivatives_refuse_bad_lattices(L):
    for fn in DERIVATIVES:
        refuses(fn, "L", 1.0, L)


@BOUNDARY
@given(beta=st.sampled_from([0.0, 1e-300, 0.5, 30.0, 1e3, 1e4]), L=st.sampled_from([2, 3, 64]))
def test_exact_derivatives_are_finite_at_the_edges(beta, L):
    for fn in DERIVATIVES:
        assert_finite(refused_or_finite(fn, "beta", beta, L))
    assert u1_derivatives.u1_plaquette_derivative(beta, L) >= 0  # Var(E)/V


arrays = st.sampled_from(
    [
        [1.0, 2.0, math.nan, 4.0, 5.0],
        [1.0, 2.0],  # too few for the Γ-method
        np.zeros((5, 2, 2)),
        "abc",
        None,
    ]
)


@BOUNDARY
@given(bad=arrays)
def test_estimators_refuse_bad_arrays(bad):
    good = np.linspace(0.0, 1.0, 16)
    refuses(covariance_derivative, ("o", "data"), bad, good)
    refuses(covariance_derivative, ("e", "data"), good, bad)
    refuses(reweighted_difference, ("o", "data"), bad, good, 0.1)
    refuses(independent_difference, ("o_plus", "data"), bad, good, 0.1)
    refuses(stein_derivative, ("grad_term", "data"), good, good, bad)
    refuses(flowed_difference, ("log_w_minus", "data"), good, good, good, bad, 0.1)


@BOUNDARY
@given(delta=bad_reals(low=0))
def test_estimators_refuse_bad_delta(delta):
    good = np.linspace(0.0, 1.0, 16)
    refuses(reweighted_difference, "delta", good, good, delta)
    refuses(independent_difference, "delta", good, good, delta)
    refuses(flowed_difference, "delta", good, good, good, good, delta)


def test_estimators_at_the_edges():
    constant = np.ones(16)
    ramp = np.linspace(0.0, 1.0, 16)
    zero = covariance_derivative(constant, ramp)
    assert zero.value == 0 and zero.error == 0 and zero.pull(0.0) == 0.0
    assert math.isinf(zero.pull(1.0))
    refuses(zero.pull, "exact", math.nan)
    # huge log-weights (one configuration carries all weight) stay finite
    result = flowed_difference(ramp, 1e300 * ramp, ramp, -1e300 * ramp, 0.1)
    assert_finite(result.value)
    assert result.ess == pytest.approx(1 / 16)
    refuses(flowed_difference, "log_w_plus", ramp, ramp + math.inf, ramp, ramp, 0.1)
    refuses(covariance_derivative, "e", ramp, np.ones(17))
    assert isinstance(zero, DerivativeEstimate)


@BOUNDARY
@given(
    loops=st.sampled_from([(), ((0, 1),), ((1,),), "11", ((1, 2), (2, 1)), ((1.5, 1),)]),
)
def test_loop_field_refuses_bad_loops(loops):
    refuses(LoopField, ("loops", "loop extent", "loop", "repeated"), loops=loops)


@BOUNDARY
@given(harmonics=st.sampled_from([(), (0,), (1, 1), (-2,), (1.5,), "2"]))
def test_loop_field_refuses_bad_harmonics(harmonics):
    refuses(LoopField, ("harmonic", "harmonics", "repeated"), harmonics=harmonics)


def test_loop_field_refuses_bad_links_and_coefficients():
    field = LoopField()
    theta = torch.zeros(2, 2, 8, 8, dtype=torch.float64)
    refuses(field.features, "theta", torch.zeros(2, 8, 8), 1.0)
    refuses(field.features, "theta", torch.zeros(2, 2, 8, 8, dtype=torch.int64), 1.0)
    refuses(field.features, "lattice", torch.zeros(1, 2, 2, 2, dtype=torch.float64), 1.0)
    refuses(field.features, "beta", theta, -1.0)
    refuses(field.features, "chunk", theta, 1.0, chunk=0)
    refuses(field.divergence, "coefficients", theta, [1.0, math.nan, 0, 0, 0, 0])
    refuses(field.divergence, "coefficients", theta, [1.0])
    features = field.features(theta, 2.0)
    assert isinstance(features, SteinFeatures)
    refuses(features.residual, "coefficients", np.ones(3))
    refuses(field.fit, "observable", torch.zeros(3), features)
    refuses(field.fit, "gradient", torch.zeros(2), features, torch.zeros(2, 3))
    refuses(field.fit, "ridge", torch.zeros(2), features, None, -1.0)
    # a cold configuration: every feature finite, the divergence exactly -Σ perimeters·S̃
    assert_finite(features.residual(np.ones(6)))
    assert_finite(field.divergence(theta, np.ones(6)))


def test_study_refuses_bad_arguments():
    refuses(correlated.CorrelatedSizes, "draws", draws=10)
    refuses(correlated.CorrelatedSizes, "delta", delta=0.0)
    refuses(correlated.CorrelatedSizes, "betas[0]", betas=(-1.0,))
    refuses(correlated.CorrelatedSizes.for_mode, "mode", "slow")
    refuses(correlated.train_fh_maps, "beta - delta", 0.1, 0.25, 8)
    refuses(correlated.train_fh_maps, "L", 6.0, 0.25, 2)
    refuses(correlated.train_fh_maps, "device", 6.0, 0.25, 8, device="tpu")
    refuses(correlated.fh_estimates, "n_draws", 6.0, 8, 10)
    refuses(correlated.fh_estimates, "maps", 6.0, 8, 128, maps="yes")
    refuses(correlated.fh_estimates, "loop_field", 6.0, 8, 128, loop_field=3)
    refuses(correlated.reweighting_overlap, "deltas", 6.0, 8, "0.1")
    refuses(correlated.plaquette_transport, "beta_new", 6.0, -1.0, [0.0])
    refuses(correlated.fh_chain_estimates, "chains, sweeps", 6.0, 8, 0, 10, np.zeros(6))
    refuses(correlated.fh_chain_estimates, "chains, sweeps", 6.0, 8, 2, 3, np.zeros(6))
    refuses(correlated.fh_chain_estimates, "coefficients", 6.0, 8, 2, 10, [math.nan] * 6)
    refuses(correlated.fh_chain_estimates, "thermalize", 6.0, 8, 2, 10, np.zeros(6), thermalize=-1)
    refuses(correlated.exact_draws, "n", 0, 8, 6.0, torch.Generator())
    refuses(correlated.exact_draws, "L", 4, 1, 6.0, torch.Generator())
    refuses(correlated.exact_draws, "beta", 4, 8, -6.0, torch.Generator())
    result = correlated.fh_estimates(6.0, 8, 64, train_draws=64, methods=("covariance",))
    refuses(correlated.estimates_table, "observable", result, "mass")
    refuses(correlated.variance_table, "observable", [result], "mass")
    refuses(correlated.cost_table, "relative_error", result, "plaquette", 0.0)
    refuses(correlated.variance_series, "observable", [result], "mass", 6.0)
    assert_finite(correlated.pulls(result))
    assert_finite(correlated.variance_ratios(result, "plaquette"))
    assert isinstance(result, correlated.FHResult)
    maps = correlated.train_fh_maps(6.0, 0.25, 8, n_steps=1, batch_size=2)
    assert isinstance(maps, correlated.FHMaps)
