"""Nf = 2 Schwinger-model samplers against exact references (statistical tests).

Exact-determinant HMC (``HMC(SchwingerAction)``) and pseudofermion HMC
(``PseudofermionHMC(PseudofermionAction)``) must reproduce

* the exact 2×2 plaquette (:func:`lqft_lab.exact.schwinger.schwinger_2x2`, exact to
  rounding) at two (β, κ) points, and
* at 4×4, the det²-reweighted exact pure-gauge draws
  (:func:`lqft_lab.exact.schwinger.reweighted_reference`) for the plaquette, the
  condensate and ``C_π(1)``,

within 4σ, σ the Γ-method error of the chains (``B`` replicas, τ_int included) combined
with the reference's delta-method error. Chains start from exact quenched draws (close to
the target: short thermalisation), float64 links, fixed seeds.

Cost: exact-determinant HMC builds dense Schur complements configuration by configuration
(about 20 ms per configuration and trajectory on one core), so its chains are short and
its errors a few times larger than the pseudofermion chains'.
"""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions.pseudofermion import PseudofermionAction
from lqft_lab.actions.schwinger import SchwingerAction
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.schwinger import reweighted_reference, schwinger_2x2
from lqft_lab.observables import plaquette, schwinger_observables
from lqft_lab.samplers import HMC, PseudofermionHMC, run_chain, sample_u1_exact

F64 = torch.float64
POINTS_2X2 = [(1.0, 0.2), (2.0, 0.26)]
BETA_4X4, KAPPA_4X4 = 2.0, 0.25

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def _sampler(kind: str, beta: float, kappa: float, step_size: float, n_steps: int):
    if kind == "exact":
        return HMC(SchwingerAction(beta, kappa), step_size, n_steps)
    return PseudofermionHMC(PseudofermionAction(beta, kappa), step_size, n_steps)


def _chain_estimates(sampler, L, beta, observables, B, n, seed) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x0 = sample_u1_exact(B, L, beta, gen, dtype=F64)  # quenched: near the target already
    chain = run_chain(sampler, x0, n, gen, observables, thermalize=10)
    assert chain.acceptance > 0.7, chain.acceptance
    return {name: gamma_method(series.numpy()) for name, series in chain.observables.items()}


def _assert_agrees(estimate, value: float, error: float = 0.0, name: str = ""):
    sigma = math.sqrt(estimate.error**2 + error**2)
    z = (estimate.value - value) / sigma
    assert abs(z) < 4, f"{name}: {estimate.value:.5f} ± {estimate.error:.5f} vs {value:.5f}"


# (B, n) per sampler: the exact-determinant HMC costs ~5× more per trajectory at 2×2
SIZES_2X2 = {"exact": (16, 150), "pseudofermion": (32, 200)}


@pytest.mark.parametrize("kind", ["exact", "pseudofermion"])
@pytest.mark.parametrize(("beta", "kappa"), POINTS_2X2)
def test_2x2_plaquette_is_exact(kind, beta, kappa):
    exact = schwinger_2x2(beta, kappa)
    B, n = SIZES_2X2[kind]
    sampler = _sampler(kind, beta, kappa, step_size=0.2, n_steps=5)
    estimates = _chain_estimates(sampler, 2, beta, {"plaquette": plaquette}, B, n, seed=1)
    _assert_agrees(estimates["plaquette"], exact.plaquette, name=f"{kind} 2x2 plaquette")


@pytest.fixture(scope="module")
def reference_4x4():
    """det²-reweighted exact draws at β = 2, κ = 0.25 on 4×4 (ESS ≈ 0.48)."""
    gen = torch.Generator().manual_seed(2)
    return reweighted_reference(BETA_4X4, KAPPA_4X4, 4, 8192, generator=gen)


@pytest.mark.parametrize("kind", ["exact", "pseudofermion"])
def test_4x4_agrees_with_reweighted_exact_draws(kind, reference_4x4):
    sampler = _sampler(kind, BETA_4X4, KAPPA_4X4, step_size=0.2, n_steps=6)
    observables = schwinger_observables(KAPPA_4X4)  # plaquette, condensate, pion_1
    estimates = _chain_estimates(sampler, 4, BETA_4X4, observables, 16, 150, seed=3)
    for name, estimate in estimates.items():
        _assert_agrees(
            estimate,
            reference_4x4.values[name],
            reference_4x4.errors[name],
            name=f"{kind} 4x4 {name}",
        )
