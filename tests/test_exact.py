"""Free-field references in lqft_lab.exact against brute force from Phi4Action itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import Phi4Action
from lqft_lab.exact import (
    free_field_chi2,
    free_field_ising_energy,
    free_field_log_z,
    free_field_momentum_propagator,
    free_field_phi2,
    free_field_pole_mass,
    free_field_propagator,
    free_field_zero_momentum_correlator,
    lattice_momentum_squared,
)
from lqft_lab.observables import effective_mass

SHAPES = [(4, 4), (3, 5), (6,), (2, 3, 4)]
M2S = [0.5, 1.7]


def dense_K(shape, m2):
    """``K`` with ``S = φᵀKφ``, from the Hessian of the action (``H = 2K``), float64."""
    action = Phi4Action(m2, 0.0)
    V = math.prod(shape)

    def S(v):
        return action(v.reshape(1, *shape))[0]  # (V,) -> (1, *shape)

    # S is quadratic, so the Hessian is the same at any point; use a random one
    v0 = torch.randn(V, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    H = torch.autograd.functional.hessian(S, v0)
    return (H / 2).numpy()


def separation_index(shape):
    """Flat index of ``(z - y) mod L`` for every pair of sites ``(y, z)``, shape ``(V, V)``."""
    coords = np.array(np.unravel_index(np.arange(math.prod(shape)), shape))  # (d, V)
    diff = (coords[:, None, :] - coords[:, :, None]) % np.array(shape)[:, None, None]
    return np.ravel_multi_index(tuple(diff), shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m2", M2S)
def test_against_dense_inverse(shape, m2):
    K = dense_K(shape, m2)
    np.testing.assert_allclose(K, K.T, atol=1e-14)
    cov = np.linalg.inv(2 * K)  # ⟨φ_y φ_z⟩ = (2K)^{-1}_{yz}
    G = free_field_propagator(shape, m2)
    assert G.shape == shape and G.dtype == np.float64
    # translation invariance: cov[y, z] = G(z - y) for every pair
    np.testing.assert_allclose(cov, G.reshape(-1)[separation_index(shape)], atol=1e-10)
    V = math.prod(shape)
    assert free_field_phi2(shape, m2) == pytest.approx(np.trace(cov) / V, abs=1e-10)
    assert free_field_chi2(shape, m2) == pytest.approx(cov.sum() / V, abs=1e-10)
    assert free_field_chi2(shape, m2) == pytest.approx(G.sum(), abs=1e-10)
    d = len(shape)
    units = [
        np.ravel_multi_index(tuple(int(nu == mu) for nu in range(d)), shape) for mu in range(d)
    ]
    E = np.mean([cov[0, u] for u in units])
    assert free_field_ising_energy(shape, m2) == pytest.approx(E, abs=1e-10)
    # log ∫ dφ e^{-φᵀKφ} = (V/2) log π - (1/2) log det K
    sign, logdet = np.linalg.slogdet(K)
    assert sign > 0
    log_z = 0.5 * V * math.log(math.pi) - 0.5 * logdet
    assert free_field_log_z(shape, m2) == pytest.approx(log_z, abs=1e-10)


def test_log_z_by_quadrature_two_sites():
    """log Z of a 2-site lattice by direct numerical integration of e^{-S} on a grid.

    The trapezoid rule converges exponentially for a smooth integrand that vanishes at the
    ends of the grid, so a 601² grid on [-10, 10]² is accurate far beyond the tolerance.
    """
    m2 = 0.8
    grid = torch.linspace(-10, 10, 601, dtype=torch.float64)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    phi = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)  # (601², 2)
    w = torch.exp(-Phi4Action(m2, 0.0)(phi)).reshape(601, 601)
    h = float(grid[1] - grid[0])
    Z = float(w.sum()) * h * h  # the edges contribute nothing (e^{-80} and below)
    assert free_field_log_z((2,), m2) == pytest.approx(math.log(Z), abs=1e-9)


def test_momentum_grid():
    p2 = lattice_momentum_squared((4, 3))
    assert p2[0, 0] == 0.0
    assert p2[2, 0] == pytest.approx(4.0)  # p = π: 4 sin²(π/2)
    Gp = free_field_momentum_propagator((4, 3), 0.5)
    assert Gp[0, 0] == pytest.approx(1.0)  # 1/(2 m²)


@pytest.mark.parametrize("shape", [(8, 4), (7, 3), (16,), (6, 2, 3)])
@pytest.mark.parametrize("m2", [0.1, 0.5, 2.0])
def test_zero_momentum_correlator_and_pole_mass(shape, m2):
    C = free_field_zero_momentum_correlator(shape, m2)
    L0 = shape[0]
    assert C.shape == (L0,)
    mp = free_field_pole_mass(m2)
    assert math.cosh(mp) == pytest.approx(1 + m2 / 2, rel=1e-14)
    t = np.arange(L0)
    closed = np.cosh(mp * (t - L0 / 2)) / (4 * np.sinh(mp) * np.sinh(mp * L0 / 2))
    np.testing.assert_allclose(C, closed, rtol=1e-11)
    m_eff = effective_mass(torch.from_numpy(C)).numpy()
    # every t except the source t = 0 gives the pole mass exactly
    np.testing.assert_allclose(m_eff[1:], mp, rtol=1e-9)


@pytest.mark.parametrize("m2", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_mass_raises(m2):
    for fn in (free_field_propagator, free_field_chi2, free_field_log_z, free_field_ising_energy):
        with pytest.raises(ValueError, match="m2 > 0"):
            fn((4, 4), m2)
    with pytest.raises(ValueError):
        free_field_pole_mass(m2)


@pytest.mark.parametrize("shape", [(1, 4), (), (4, 2.5), "44"])
def test_bad_shape_raises(shape):
    with pytest.raises(ValueError):
        free_field_propagator(shape, 1.0)


def test_int_shape_is_square():
    np.testing.assert_array_equal(free_field_propagator(4, 0.3), free_field_propagator((4, 4), 0.3))
