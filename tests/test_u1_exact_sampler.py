"""Exact independent draws of 2D U(1): the tree construction, and the draws against the
character expansion (plaquette, χ_t and the whole charge distribution), on the periodic torus
and on the torus with a defect."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lqft_lab.actions import U1DefectAction, plaquette_angles, wrap_angle
from lqft_lab.exact import u1_charge_distribution, u1_plaquette, u1_topological_susceptibility
from lqft_lab.exact.u1 import u1_defect_references
from lqft_lab.observables import topological_charge
from lqft_lab.samplers import sample_u1_exact, u1_links_from_plaquettes


@pytest.mark.parametrize("shape", [(4, 4), (6, 4), (2, 8)])
def test_the_tree_links_have_the_given_plaquettes(shape):
    gen = torch.Generator().manual_seed(0)
    B = 5
    P = 2 * math.pi * torch.rand(B, *shape, generator=gen, dtype=torch.float64) - math.pi
    P[:, -1, -1] = wrap_angle(-P.flatten(1)[:, :-1].sum(dim=1))  # the torus constraint
    polyakov = 2 * math.pi * torch.rand(B, 2, generator=gen, dtype=torch.float64) - math.pi
    theta = u1_links_from_plaquettes(P, polyakov)
    assert theta.shape == (B, 2, *shape)
    assert wrap_angle(plaquette_angles(theta) - P).abs().max() < 1e-12
    # the free links are the Polyakov loops through the origin
    loops = torch.stack([theta[:, 0, :, 0].sum(dim=1), theta[:, 1, 0, :].sum(dim=1)], dim=1)
    assert wrap_angle(loops - polyakov).abs().max() < 1e-12


@pytest.mark.parametrize("L, beta", [(4, 2.0), (8, 6.0), ((6, 4), 1.0)])
def test_draws_reproduce_the_exact_plaquette_and_susceptibility(L, beta):
    n = 20_000
    theta = sample_u1_exact(n, L, beta, torch.Generator().manual_seed(1), dtype=torch.float64)
    V = theta.shape[2] * theta.shape[3]
    plaq = torch.cos(plaquette_angles(theta)).flatten(1).mean(dim=1)
    chi = topological_charge(theta) ** 2 / V
    # independent draws: the standard error of the mean is the honest error
    for values, exact in (
        (plaq, u1_plaquette(beta, L)),
        (chi, u1_topological_susceptibility(beta, L)),
    ):
        err = values.std().item() / math.sqrt(n)
        assert abs(values.mean().item() - exact) < 4 * err, (values.mean().item(), exact, err)


def test_the_charge_distribution_is_the_exact_one():
    # χ² of the charge histogram against the exact P(Q); charges with fewer than 5 expected
    # counts are pooled into the two tails.
    L, beta, n = 8, 3.0, 40_000
    theta = sample_u1_exact(n, L, beta, torch.Generator().manual_seed(2))
    Q = topological_charge(theta).round().long().numpy()
    charges, P = u1_charge_distribution(beta, L)
    expected = n * P
    inner = expected >= 5
    lo, hi = charges[inner].min(), charges[inner].max()
    observed = np.array(
        [(Q < lo).sum()] + [(Q == q).sum() for q in charges[inner]] + [(Q > hi).sum()]
    )
    expected = np.concatenate(
        [[n * P[charges < lo].sum()], expected[inner], [n * P[charges > hi].sum()]]
    )
    assert observed.sum() == n
    assert stats.chisquare(observed, expected * n / expected.sum()).pvalue > 1e-3


def test_draws_are_gauge_random_links_of_any_dtype():
    # A uniformly random gauge: a single link is uniform on the circle (KS test), while the
    # plaquettes follow the action.
    theta = sample_u1_exact(4000, 4, 2.0, torch.Generator().manual_seed(3))
    assert theta.dtype == torch.float32 and theta.shape == (4000, 2, 4, 4)
    assert theta.min() >= -math.pi and theta.max() < math.pi
    link = (theta[:, 0, 1, 2].double().numpy() + math.pi) / (2 * math.pi)
    assert stats.kstest(link, "uniform").pvalue > 1e-3
    a = sample_u1_exact(3, 4, 2.0, torch.Generator().manual_seed(4))
    b = sample_u1_exact(3, 4, 2.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0, 4, 1.0), ValueError, "batch_size"),
        ((2, 1, 1.0), ValueError, "extent"),
        ((2, (4, 4, 4), 1.0), ValueError, "2D"),
        ((2, 4, -1.0), ValueError, "beta"),
        ((2, 4, float("nan")), ValueError, "beta"),
        ((2, 4, "2"), TypeError, "beta"),
    ],
)
def test_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        sample_u1_exact(*args)
    with pytest.raises(ValueError, match="polyakov"):
        u1_links_from_plaquettes(torch.zeros(2, 4, 4), torch.zeros(3, 2))


@pytest.mark.parametrize("c, d", [(0.0, 4), (0.4, 3), (1.0, 8)])
def test_defect_draws_reproduce_the_defect_torus(c, d):
    # Plaquettes on and off the defect, and χ_t, against the character expansion of the torus
    # whose d defect plaquettes carry coupling cβ (U1DefectAction's weights).
    L, beta, n = 8, 6.0, 20_000
    w = U1DefectAction(beta, c, d).plaquette_weights(L, L)
    theta = sample_u1_exact(n, L, beta, torch.Generator().manual_seed(5), weights=w,
                            dtype=torch.float64)  # fmt: skip
    exact = u1_defect_references(beta, c, d, L)
    cos = torch.cos(plaquette_angles(theta))
    on = torch.zeros(L, L, dtype=torch.bool)
    on[0, :d] = True  # where U1DefectAction puts the defect
    checks = [
        (cos[:, ~on].mean(dim=1), exact.plaquette_bulk),
        (cos[:, on].mean(dim=1), exact.plaquette_defect),
        (topological_charge(theta) ** 2 / L**2, exact.chi_t),
    ]
    for values, reference in checks:
        err = values.std().item() / math.sqrt(n)
        assert abs(values.mean().item() - reference) < 4 * err, (values.mean(), reference, err)


def test_defect_draws_at_c_zero_change_the_charge_more_often():
    # The point of the defect: cutting the torus open spreads P(Q). χ_t at c = 0 exceeds the
    # periodic torus's by far more than the errors.
    L, beta, n = 8, 6.0, 8000
    gen = torch.Generator().manual_seed(6)
    open_ = sample_u1_exact(
        n, L, beta, gen, weights=U1DefectAction(beta, 0.0, 8).plaquette_weights(L, L)
    )
    periodic = sample_u1_exact(n, L, beta, gen)
    q_open = topological_charge(open_).round().abs().gt(0).double().mean().item()
    q_periodic = topological_charge(periodic).round().abs().gt(0).double().mean().item()
    assert q_open > q_periodic + 5 * math.sqrt(q_open * (1 - q_open) / n), (q_open, q_periodic)


@pytest.mark.parametrize(
    "weights, error, message",
    [
        (torch.ones(4, 5), ValueError, "weights"),
        (-torch.ones(4, 4), ValueError, "weights"),
        (torch.full((4, 4), float("nan")), ValueError, "weights"),
        ([[1.0] * 4] * 4, TypeError, "weights"),
    ],
)
def test_bad_weights(weights, error, message):
    with pytest.raises(error, match=message):
        sample_u1_exact(2, 4, 1.0, weights=weights)
