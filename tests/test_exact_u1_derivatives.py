"""The β-derivatives of 2D U(1) expectation values (:mod:`lqft_lab.exact.u1_derivatives`):
against central differences of the exact values, the notes' table, and Monte Carlo."""

from __future__ import annotations

import pytest
import torch

from lqft_lab.exact import (
    u1_log_z,
    u1_log_z_derivative,
    u1_plaquette,
    u1_plaquette_derivative,
    u1_susceptibility_derivative,
    u1_topological_susceptibility,
)
from lqft_lab.observables import plaquette, topological_charge
from lqft_lab.samplers import sample_u1_exact

CASES = [(0.5, 3), (1.0, 4), (2.0, 8), (4.0, 16), (6.0, 8), (6.0, (8, 12)), (4.0, 32)]


@pytest.mark.parametrize("beta, L", CASES)
def test_derivatives_against_central_differences(beta, L):
    """Closed forms against a central difference with step 1e-4 (truncation ~1e-9
    relative; rounding of the differenced values ~1e-13/1e-4)."""
    h = 1e-4
    for exact, derivative, rel in (
        (u1_log_z, u1_log_z_derivative, 1e-8),
        (u1_plaquette, u1_plaquette_derivative, 1e-7),
        (u1_topological_susceptibility, u1_susceptibility_derivative, 1e-6),
    ):
        difference = (exact(beta + h, L) - exact(beta - h, L)) / (2 * h)
        assert derivative(beta, L) == pytest.approx(difference, rel=rel), exact.__name__


@pytest.mark.parametrize(
    "beta, L, dp, dchi",
    [(4.0, 16, 0.038448, -2.388e-3), (6.0, 8, 0.015608, -1.095e-3), (6.0, 16, 0.015541, -8.769e-4)],
)
def test_the_notes_table(beta, L, dp, dchi):
    """The values quoted in the notes for notebook 06 (to the digits given there)."""
    assert u1_plaquette_derivative(beta, L) == pytest.approx(dp, abs=1e-6)
    assert u1_susceptibility_derivative(beta, L) == pytest.approx(dchi, rel=1e-3)


def test_derivatives_are_covariances_with_the_energy():
    """``d⟨O⟩/dβ = Cov(O, E)`` on 2¹⁶ exact draws at β = 2, L = 6, within 4σ (errors from
    the per-draw products, independent draws)."""
    beta, L, n = 2.0, 6, 1 << 16
    theta = sample_u1_exact(n, L, beta, torch.Generator().manual_seed(3), dtype=torch.float64)
    e = plaquette(theta) * L * L
    for o, exact in (
        (plaquette(theta), u1_plaquette_derivative(beta, L)),
        (topological_charge(theta).round() ** 2 / (L * L), u1_susceptibility_derivative(beta, L)),
    ):
        product = (o - o.mean()) * (e - e.mean())
        value, error = product.mean().item(), product.std().item() / n**0.5
        assert abs(value - exact) < 4 * error, (value, error, exact)


def test_frozen_charge_and_bad_arguments():
    assert abs(u1_susceptibility_derivative(20.0, 2)) < 1e-15  # χ_t frozen: rounding noise
    with pytest.raises(ValueError, match="beta"):
        u1_plaquette_derivative(-1.0, 8)
    with pytest.raises(ValueError):
        u1_susceptibility_derivative(1.0, 1)
