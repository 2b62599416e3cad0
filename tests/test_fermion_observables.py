"""Fermion observables (lqft_lab.observables.fermion) against exact results.

* The batched dense ``D`` is :meth:`WilsonDirac.dense`.
* Free field: condensate and pion correlator against the momentum-space sums of
  :mod:`lqft_lab.exact.schwinger` (``D(p)⁻¹ = (a - i b·γ)/(a² + b²)``), 1e-12; κ = 0 limits.
* γ5-hermiticity: the point-to-point Wick contraction ``Σ tr[γ5 S(0,x) γ5 S(x,0)]`` equals
  the one-column form ``Σ |S(x,0)|²``, real and positive.
* Gauge invariance of the condensate, the pion correlator and the spectrum.
* The stochastic condensate is unbiased: within 4σ of the exact trace for Z2 and Gaussian
  noise; CG and dense solves give the same estimates for the same noise.
* The low modes: ordering, conjugate pairs, the free field's smallest |λ|.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import random_gauge_transform
from lqft_lab.actions.wilson_dirac import GAMMA, WilsonDirac
from lqft_lab.exact.schwinger import free_condensate, free_pion_correlator, free_spectrum
from lqft_lab.observables import (
    chiral_condensate,
    effective_mass,
    lowest_eigenvalues,
    pion_correlator,
    plaquette,
    schwinger_observables,
    stochastic_condensate,
)

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_links(B: int, L0: int, L1: int, seed: int = 0, spread: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return spread * math.pi * (2 * torch.rand(B, 2, L0, L1, dtype=F64, generator=gen) - 1)


@pytest.mark.parametrize(("L0", "L1"), [(4, 4), (2, 6), (3, 4)])
def test_batched_dense_is_the_dense_of_each_configuration(L0, L1):
    theta = _random_links(3, L0, L1)
    for antiperiodic in (True, False):
        D = WilsonDirac(0.23, antiperiodic=antiperiodic)
        one_by_one = torch.cat([D.dense(theta[b : b + 1]) for b in range(3)])
        torch.testing.assert_close(D.dense(theta), one_by_one, rtol=0, atol=1e-15)


@pytest.mark.parametrize("antiperiodic", [True, False])
@pytest.mark.parametrize(("L0", "L1", "kappa"), [(4, 4, 0.2), (6, 4, 0.24), (8, 2, 0.1)])
def test_free_field_observables_are_the_momentum_sums(L0, L1, kappa, antiperiodic):
    theta = torch.zeros(2, 2, L0, L1, dtype=F64)
    exact = free_condensate(L0, L1, kappa, antiperiodic)
    sigma = chiral_condensate(theta, kappa, antiperiodic=antiperiodic)
    torch.testing.assert_close(sigma, torch.full((2,), exact, dtype=F64), rtol=0, atol=1e-12)
    pion = pion_correlator(theta, kappa, antiperiodic=antiperiodic)
    expected = free_pion_correlator(L0, L1, kappa, antiperiodic).expand(2, -1)
    torch.testing.assert_close(pion, expected, rtol=0, atol=1e-12)
    # time reflection: a bilinear is periodic, C(t) = C(L0 - t)
    torch.testing.assert_close(pion[:, 1:], pion[:, 1:].flip(1), rtol=0, atol=1e-12)


def test_kappa_zero_is_the_contact_term():
    theta = _random_links(2, 4, 4)
    torch.testing.assert_close(chiral_condensate(theta, 0.0), torch.full((2,), 2.0, dtype=F64))
    expected = torch.tensor([[2.0, 0, 0, 0]] * 2, dtype=F64)
    torch.testing.assert_close(pion_correlator(theta, 0.0), expected)


def test_pion_correlator_is_the_gamma5_hermitian_wick_contraction():
    """``C_π(t) = Σ_{x1} tr[γ5 S(0,x) γ5 S(x,0)]`` from the full inverse (both propagator
    directions) equals ``Σ |S(x,0)|²``: real and positive, by ``γ5 S(0,x) γ5 = S(x,0)†``."""
    L0, L1, kappa = 4, 4, 0.25
    theta = _random_links(3, L0, L1, seed=1, spread=0.5)
    S = torch.linalg.inv(WilsonDirac(kappa).dense(theta)).reshape(3, L0, L1, 2, L0, L1, 2)
    forward = S[:, :, :, :, 0, 0, :]  # S(x, 0): (B, L0, L1, 2, 2)
    backward = S[:, 0, 0, :, :, :, :].permute(0, 2, 3, 1, 4)  # S(0, x)_{ab} at [x, a, b]
    g5 = GAMMA[2]
    wick = torch.einsum("ab,nxybc,cd,nxyda->nx", g5, backward, g5, forward)  # (B, L0)
    assert wick.imag.abs().max() < 1e-14
    pion = pion_correlator(theta, kappa)
    torch.testing.assert_close(pion, wick.real, rtol=1e-12, atol=1e-14)
    assert bool((pion > 0).all())
    assert torch.isfinite(effective_mass(pion)[:, 1:]).all()  # the cosh form applies


def test_fermion_observables_are_gauge_invariant():
    theta = _random_links(3, 4, 6, seed=2)
    rotated = random_gauge_transform(theta, torch.Generator().manual_seed(3))
    kappa = 0.22
    torch.testing.assert_close(
        chiral_condensate(rotated, kappa), chiral_condensate(theta, kappa), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        pion_correlator(rotated, kappa), pion_correlator(theta, kappa), rtol=0, atol=1e-12
    )
    # a conjugate pair ties in |λ| and Re λ: compare the whole spectra in a canonical order
    spectra = [lowest_eigenvalues(x, kappa, 48).numpy() for x in (theta, rotated)]
    for a, b in zip(*spectra, strict=True):
        np.testing.assert_allclose(_canonical(a), _canonical(b), rtol=0, atol=1e-12)


def _canonical(z: np.ndarray) -> np.ndarray:
    return z[np.lexsort((z.imag.round(9), z.real.round(9)))]


@pytest.mark.parametrize("noise", ["z2", "gaussian"])
def test_stochastic_condensate_is_unbiased(noise):
    theta = _random_links(3, 4, 4, seed=4, spread=0.6)
    kappa = 0.24
    exact = chiral_condensate(theta, kappa)
    gen = torch.Generator().manual_seed(5)
    samples = stochastic_condensate(theta, kappa, 400, noise=noise, generator=gen)
    assert samples.shape == (3, 400) and samples.dtype == F64
    mean, error = samples.mean(dim=1), samples.std(dim=1) / math.sqrt(400)
    z = (mean - exact) / error
    assert bool((z.abs() < 4).all()), z
    gen = torch.Generator().manual_seed(5)
    mean_direct = chiral_condensate(theta, kappa, n_noise=400, noise=noise, generator=gen)
    torch.testing.assert_close(mean_direct, mean, rtol=0, atol=1e-12)


def test_z2_noise_beats_gaussian_noise():
    """Z2 noise has no variance from the diagonal of ``D⁻¹`` (``|η_i|² = 1``), which
    dominates near ``D = 1``."""
    theta = _random_links(2, 4, 4, seed=6, spread=0.6)
    gen = torch.Generator().manual_seed(7)
    z2 = stochastic_condensate(theta, 0.15, 300, noise="z2", generator=gen).std(dim=1)
    gauss = stochastic_condensate(theta, 0.15, 300, noise="gaussian", generator=gen).std(dim=1)
    assert bool((z2 < gauss).all())


def test_cg_and_dense_solves_agree():
    theta = _random_links(2, 6, 4, seed=8)
    estimates = [
        stochastic_condensate(
            theta, 0.26, 5, solver=solver, generator=torch.Generator().manual_seed(9)
        )
        for solver in ("cg", "dense")
    ]
    torch.testing.assert_close(estimates[0], estimates[1], rtol=0, atol=1e-10)


def test_lowest_eigenvalues():
    L0, L1, kappa = 4, 6, 0.24
    free = free_spectrum(L0, L1, kappa)
    lam = lowest_eigenvalues(torch.zeros(1, 2, L0, L1, dtype=F64), kappa, 4)
    assert lam.shape == (1, 4) and lam.dtype == torch.complex128
    assert lam.abs()[0, 0].item() == pytest.approx(free.abs().min().item(), abs=1e-12)
    theta = _random_links(2, L0, L1, seed=10, spread=0.4)
    lam = lowest_eigenvalues(theta, kappa, 12)
    assert bool((lam.abs().diff(dim=1) >= -1e-14).all())
    everything = torch.linalg.eigvals(WilsonDirac(kappa).dense(theta))
    for b in range(2):  # the spectrum is closed under conjugation (γ5-hermiticity)
        dist = (everything[b][:, None] - everything[b].conj()[None, :]).abs().min(dim=1).values
        assert dist.max() < 1e-10
    by_real = lowest_eigenvalues(theta, kappa, 12, order="real")
    assert bool((by_real.real.diff(dim=1) >= -1e-14).all())
    assert by_real.real[:, 0].tolist() == pytest.approx(everything.real.min(dim=1).values.tolist())


def test_schwinger_observables():
    theta = _random_links(3, 4, 4, seed=11)
    obs = schwinger_observables(0.2, times=(0, 2))
    assert set(obs) == {"plaquette", "condensate", "pion_0", "pion_2"}
    torch.testing.assert_close(obs["plaquette"](theta), plaquette(theta))
    torch.testing.assert_close(obs["condensate"](theta), chiral_condensate(theta, 0.2))
    torch.testing.assert_close(obs["pion_2"](theta), pion_correlator(theta, 0.2)[:, 2])
    with pytest.raises(ValueError, match="times"):
        obs["pion_2"](theta[:, :, :2])  # t = 2 on a lattice with L0 = 2


def test_float32_links_give_float32_observables():
    theta = _random_links(2, 4, 4, seed=12).float()
    assert chiral_condensate(theta, 0.2).dtype == torch.float32
    assert pion_correlator(theta, 0.2).dtype == torch.float32
    assert np.allclose(
        chiral_condensate(theta, 0.2).numpy(),
        chiral_condensate(theta.double(), 0.2).numpy(),
        atol=1e-5,
    )
