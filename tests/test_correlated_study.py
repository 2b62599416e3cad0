"""Notebook 06's study (:mod:`lqft_lab.studies.correlated`): every estimator at one point,
the flowed one with trained maps, against the exact derivatives; sizes and tables."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.exact import u1_plaquette, u1_plaquette_derivative
from lqft_lab.flows.u1 import LoopField
from lqft_lab.observables import plaquette
from lqft_lab.samplers import sample_u1_exact
from lqft_lab.studies.correlated import (
    DRAW_CHUNK,
    OBSERVABLES,
    CorrelatedSizes,
    chain_table,
    cost_table,
    estimates_table,
    exact_draws,
    fh_chain_estimates,
    fh_estimates,
    pulls,
    train_fh_maps,
    variance_ratios,
    variance_table,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("beta, L", [(4.0, 8), (6.0, 12)])
def test_flowed_estimator_with_trained_maps_is_unbiased_and_less_noisy(beta, L):
    """Maps f± trained briefly (60 steps): the flowed estimate within 3σ of the exact
    difference quotient for both observables, every other estimator within 3σ of its
    target, and the maps already beat reweighting for d⟨cos θ_P⟩/dβ. Two couplings and
    two lattices (the other estimators are tested on all four pairs in test_derivatives)."""
    maps = train_fh_maps(beta, 0.25, L, n_steps=60, seed=1)
    result = fh_estimates(beta, L, 4096, delta=0.25, train_draws=2048, maps=maps, seed=2)
    for observable in OBSERVABLES:
        assert set(result.estimates[observable]) == {
            "independent",
            "covariance",
            "reweighted",
            "flowed",
            "stein",
        }
    for key, pull in pulls(result).items():
        assert abs(pull) < 3, (key, result.estimates)
    ratios = variance_ratios(result, "plaquette")
    assert ratios["flowed"] > 1.5 * ratios["reweighted"], ratios
    assert result.estimates["plaquette"]["flowed"].ess > 0.9
    assert result.training_seconds["flowed"] == maps.seconds > 0


def test_tables_and_targets():
    a = fh_estimates(6.0, 8, 256, train_draws=128, seed=3)
    b = fh_estimates(6.0, 12, 256, train_draws=128, seed=4, methods=("covariance", "stein"))
    assert "flowed" not in a.estimates["plaquette"]
    assert a.target("plaquette", "reweighted") == a.exact_difference["plaquette"]
    assert a.target("plaquette", "stein") == a.exact["plaquette"]
    assert abs(a.exact_difference["plaquette"] - a.exact["plaquette"]) < 1e-4
    table = estimates_table(a, "chi_t")
    assert table.count("\n") == 1 + 4 and "Cov(O, E)" in table
    volume = variance_table([a, b], "plaquette")
    assert volume.count("\n") == 3 and "| 6 | 12 |" in volume and "—" in volume
    cost = cost_table(a, "plaquette", relative_error=0.05)
    assert cost.count("\n") == 1 + 4
    assert math.isfinite(variance_ratios(a, "plaquette")["stein"])


def test_sizes_and_bad_arguments():
    fast = CorrelatedSizes.for_mode("fast")
    assert fast.Ls == (8, 16, 32) and fast.flow_Ls == (8, 16) and fast.betas == (6.0,)
    assert CorrelatedSizes.for_mode("full").Ls == (8, 16, 32)
    with pytest.raises(ValueError, match="no field"):
        CorrelatedSizes.for_mode("fast", steps=3)
    with pytest.raises(ValueError, match="multiple of 4"):
        CorrelatedSizes(Ls=(6,), flow_Ls=())
    with pytest.raises(ValueError, match="among Ls"):
        CorrelatedSizes(Ls=(8,), flow_Ls=(16,))
    with pytest.raises(ValueError, match="beta - delta"):
        fh_estimates(0.2, 8, 128, delta=0.25)
    maps = train_fh_maps(6.0, 0.25, 8, n_steps=1)
    with pytest.raises(ValueError, match="trained for"):
        fh_estimates(6.0, 8, 128, delta=0.5, maps=maps)
    with pytest.raises(ValueError, match="needs maps"):
        fh_estimates(6.0, 8, 128, methods=("flowed",))
    with pytest.raises(ValueError, match="method"):
        fh_estimates(6.0, 8, 128, methods=("magic",))


def test_exact_draws_come_in_pieces_from_one_stream():
    """Drawn in pieces of DRAW_CHUNK plaquettes, from one generator: the same numbers as
    the pieces drawn by hand, and every piece an exact draw (plaquette within 4σ)."""
    L = 32
    per_call = DRAW_CHUNK // (L * L)
    theta = exact_draws(per_call + 3, L, 4.0, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    by_hand = [sample_u1_exact(k, L, 4.0, gen, dtype=torch.float64) for k in (per_call, 3)]
    assert torch.equal(theta, torch.cat(by_hand))
    p = plaquette(theta)
    assert abs(p.mean().item() - u1_plaquette(4.0, L)) < 4 * p.std().item() / len(p) ** 0.5


def test_estimators_on_heatbath_chains():
    """On heatbath chains started from exact draws (β = 6, L = 8, 8 chains × 150 sweeps),
    with coefficients fitted on exact draws: every estimator within 4σ of its target, the
    Stein one still far less noisy, τ_int measured. Started cold, every chain would sit at
    Q = 0 and the Stein estimate would miss (−4.1σ measured with 8 × 200 sweeps): the
    bias of the Q = 0 sector."""
    beta, L = 6.0, 8
    field = LoopField()
    train = exact_draws(2048, L, beta, torch.Generator().manual_seed(5))
    c = field.fit(plaquette(train), field.features(train, beta), "plaquette")
    estimates = fh_chain_estimates(beta, L, 8, 150, c, thermalize=20, seed=2)
    exact = u1_plaquette_derivative(beta, L)
    quotient = (u1_plaquette(beta + 0.25, L) - u1_plaquette(beta - 0.25, L)) / 0.5
    for method, est in estimates.items():
        target = quotient if method == "reweighted" else exact
        assert abs(est.pull(target)) < 4, (method, est)
        assert est.n_configs == 8 * 150 and 0.4 < est.tau_int < 3, (method, est)
    assert estimates["stein"].variance < estimates["covariance"].variance / 5
    reference = fh_estimates(beta, L, 64, train_draws=64, methods=("covariance",))
    assert reference.target("plaquette", "reweighted") == pytest.approx(quotient, rel=1e-12)
    assert chain_table(estimates, reference).count("\n") == 1 + 3
    with pytest.raises(TypeError, match="reference"):
        chain_table(estimates, exact)
    with pytest.raises(ValueError, match="coefficients"):
        fh_chain_estimates(beta, L, 2, 10, [1.0])
