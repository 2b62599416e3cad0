"""Estimators of ``d⟨O⟩/dβ`` (:mod:`lqft_lab.analysis.derivatives`) and the loop field of
the Stein estimator (:mod:`lqft_lab.flows.u1.linearized`), on exact independent draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import U1WilsonAction, random_gauge_transform
from lqft_lab.analysis import (
    covariance_derivative,
    flowed_difference,
    independent_difference,
    reweighted_difference,
    stein_derivative,
)
from lqft_lab.exact import u1_energy_variance, u1_plaquette, u1_plaquette_derivative
from lqft_lab.flows.u1 import LoopField
from lqft_lab.observables import plaquette
from lqft_lab.samplers import sample_u1_exact
from lqft_lab.studies.replica_exchange import identity_flow

pytestmark = pytest.mark.usefixtures("one_thread")


def draws(n, L, beta, seed):
    return sample_u1_exact(n, L, beta, torch.Generator().manual_seed(seed), dtype=torch.float64)


def energy(theta):
    return -U1WilsonAction(1.0)(theta)


@pytest.mark.parametrize("beta, L", [(4.0, 8), (4.0, 16), (6.0, 8), (6.0, 16)])
def test_every_estimator_is_unbiased_on_exact_draws(beta, L):
    """Each estimator within 3σ of its exact target on independent exact draws: the
    derivative for Cov and Stein, the central difference quotient for the finite-δ ones
    (their O(δ²) gap to the derivative is 2e-5 here, about 0.1σ). The flowed estimator
    with maps is tested in tests/test_correlated_study.py."""
    n, delta = 4096, 0.25
    theta = draws(n, L, beta, seed=int(10 * beta) + L)
    o, e = plaquette(theta), energy(theta)
    derivative = u1_plaquette_derivative(beta, L)
    quotient = (u1_plaquette(beta + delta, L) - u1_plaquette(beta - delta, L)) / (2 * delta)
    plus, minus = (plaquette(draws(n // 2, L, beta + s * delta, seed=L + s)) for s in (1, -1))
    field = LoopField()
    train = draws(2048, L, beta, seed=99)
    c = field.fit(plaquette(train), field.features(train, beta), "plaquette")
    features = field.features(theta, beta)
    estimates = {
        "independent": (independent_difference(plus, minus, delta), quotient),
        "covariance": (covariance_derivative(o, e), derivative),
        "reweighted": (reweighted_difference(o, e, delta), quotient),
        "stein": (
            stein_derivative(o, features.residual(c), features.plaquette_gradient(c)),
            derivative,
        ),
    }
    for name, (estimate, target) in estimates.items():
        assert abs(estimate.pull(target)) < 3, (name, estimate, target)
        assert estimate.n_configs == n and 0.3 < estimate.tau_int < 0.8, (name, estimate)
    # the noise: Cov's variance per configuration is Var[(O - Ō)(E - Ē)] = (κ₄ + 2κ₂²)/V²
    # with the cumulants κ_n = ∂ⁿ_β log Z of E (κ₄ by a central difference of κ₂), within
    # 4σ of its estimated error; the fitted loop field removes most of it
    cov = estimates["covariance"][0]
    h = 1e-3
    kappa2 = u1_energy_variance(beta, L)
    kappa4 = (u1_energy_variance(beta + h, L) - 2 * kappa2 + u1_energy_variance(beta - h, L)) / h**2
    expected = (kappa4 + 2 * kappa2**2) / L**4
    assert abs(cov.variance - expected) < 4 * cov.variance_error, (cov, expected)
    assert estimates["stein"][0].variance < cov.variance / 5


def test_identity_maps_reproduce_reweighting_exactly():
    """The flowed estimator with identity maps (a T-REX map before training) is reweighting,
    configuration by configuration: value, error and ESS agree to rounding."""
    beta, delta, L = 6.0, 0.3, 8
    theta = draws(1024, L, beta, seed=1)
    flow = identity_flow(L, n_layers=2)
    source = U1WilsonAction(beta)
    parts = []
    with torch.no_grad():
        for sign in (1, -1):
            y, log_j = flow.forward(theta)
            log_w = source(theta) - U1WilsonAction(beta + sign * delta)(y) + log_j
            parts += [plaquette(y), log_w]
    flowed = flowed_difference(*parts, delta)
    reweighted = reweighted_difference(plaquette(theta), energy(theta), delta)
    assert flowed.value == pytest.approx(reweighted.value, abs=1e-12)
    assert flowed.error == pytest.approx(reweighted.error, rel=1e-9)
    assert flowed.ess == pytest.approx(reweighted.ess, rel=1e-12)


def test_stein_with_zero_field_is_the_covariance():
    theta = draws(512, 8, 5.0, seed=2)
    field = LoopField()
    features = field.features(theta, 5.0)
    zero = np.zeros(field.n_terms)
    o = plaquette(theta)
    stein = stein_derivative(o, features.residual(zero), features.plaquette_gradient(zero))
    cov = covariance_derivative(o, energy(theta))
    assert stein.value == pytest.approx(cov.value, abs=1e-14)
    assert stein.error == pytest.approx(cov.error, rel=1e-9)
    assert torch.equal(features.energy, energy(theta))


def test_divergence_against_the_autograd_jacobian():
    """``∇·v`` in closed form against the trace of the full Jacobian of ``v`` (L = 4: 32
    links), for random coefficients on random links."""
    field = LoopField(loops=((1, 1), (1, 2), (2, 2), (1, 3)), harmonics=(1, 2, 3))
    gen = torch.Generator().manual_seed(5)
    theta = (torch.rand(3, 2, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    c = torch.randn(field.n_terms, generator=gen, dtype=torch.float64).numpy()
    for b in range(3):
        jac = torch.autograd.functional.jacobian(lambda x: field(x[None], c)[0], theta[b])
        trace = jac.reshape(32, 32).diagonal().sum()
        assert field.divergence(theta[b : b + 1], c)[0].item() == pytest.approx(
            trace.item(), abs=1e-10
        )


def test_features_are_the_gradients_dot_products_and_the_field_is_gauge_covariant():
    field = LoopField()
    gen = torch.Generator().manual_seed(6)
    theta = (torch.rand(4, 2, 6, 6, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    features = field.features(theta, 3.0, chunk=3)  # chunks split the batch 3 + 1
    grad_e = U1WilsonAction(1.0).force(theta)  # ∇E = -∇S at β = 1
    expected = (field.gradients(theta) * grad_e[:, None]).flatten(2).sum(2)
    torch.testing.assert_close(features.grad_energy, expected, rtol=1e-12, atol=1e-12)
    c = torch.randn(field.n_terms, generator=gen, dtype=torch.float64).numpy()
    # R = E + β ∇E·v + ∇·v, assembled as the chain study assembles it: E + β V (∇O·v) + ∇·v
    energy = -U1WilsonAction(1.0)(theta)
    assembled = energy + 3.0 * 36 * features.plaquette_gradient(c) + field.divergence(theta, c)
    torch.testing.assert_close(features.residual(c), assembled, rtol=1e-12, atol=1e-12)
    gauged = random_gauge_transform(theta, generator=gen)
    torch.testing.assert_close(field(gauged, c), field(theta, c), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        field.divergence(gauged, c), field.divergence(theta, c), rtol=1e-10, atol=1e-10
    )


def test_chains_are_analysed_with_their_autocorrelation():
    """Each draw repeated 8 times is a chain with τ_int ≈ 4: the Γ-method error of the
    covariance stays that of the distinct draws, where a naive error would be √8 smaller."""
    theta = draws(2048, 8, 4.0, seed=7)
    o, e = plaquette(theta), energy(theta)
    once = covariance_derivative(o, e)

    def as_chains(x):  # 4 chains of 512 distinct draws, each held for 8 steps: (4096, 4)
        return x.reshape(4, 512).repeat_interleave(8, dim=1).T

    repeated = covariance_derivative(as_chains(o), as_chains(e))
    # the value differs only by the Γ-method's O(1/N) bias correction over replicas
    assert repeated.value == pytest.approx(once.value, rel=1e-3)
    assert repeated.error == pytest.approx(once.error, rel=0.25)
    assert repeated.tau_int > 2.5


def test_fitting_on_training_draws_helps_on_fresh_ones():
    field = LoopField(loops=((1, 1),), harmonics=(1,))
    beta, L = 6.0, 8
    train, test = draws(2048, L, beta, seed=8), draws(2048, L, beta, seed=9)
    c = field.fit(plaquette(train), field.features(train, beta), "plaquette")
    assert c.shape == (1,) and c[0] > 0
    features = field.features(test, beta)
    o = plaquette(test)
    fitted = stein_derivative(o, features.residual(c), features.plaquette_gradient(c))
    assert fitted.variance < covariance_derivative(o, energy(test)).variance / 3


def test_bad_input_is_refused():
    o = torch.zeros(16)
    with pytest.raises(ValueError, match="delta"):
        reweighted_difference(o, o, 0.0)
    with pytest.raises(ValueError, match="same|shape"):
        covariance_derivative(torch.zeros(16), torch.zeros(17))
    with pytest.raises(ValueError, match="log_w_plus"):
        flowed_difference(o, o + math.nan, o, o, 0.1)
    with pytest.raises(ValueError, match="at least 3"):
        LoopField(loops=((1, 2),)).features(torch.zeros(1, 2, 2, 2), 1.0)
    with pytest.raises(ValueError, match="coefficients"):
        LoopField().divergence(torch.zeros(1, 2, 8, 8), [1.0])
    with pytest.raises(ValueError, match="repeated"):
        LoopField(loops=((1, 2), (2, 1)))


def test_fit_without_fluctuations_is_the_zero_field():
    """χ_t with Q = 0 on every training draw: nothing to fit, v = 0."""
    field = LoopField()
    theta = draws(64, 4, 20.0, seed=10)
    features = field.features(theta, 20.0)
    c = field.fit(torch.zeros(64, dtype=torch.float64), features, None)
    assert np.array_equal(c, np.zeros(field.n_terms))
