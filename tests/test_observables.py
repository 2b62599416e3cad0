"""Scalar-field observables: shapes, FFT vs shifts, and exact free-field sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import Phi4Action
from lqft_lab.exact import (
    free_field_chi2,
    free_field_ising_energy,
    free_field_phi2,
    free_field_pole_mass,
    free_field_propagator,
)
from lqft_lab.lattice import shift
from lqft_lab.observables import (
    DERIVED,
    abs_magnetization,
    chi2,
    connected_two_point,
    derived_observable,
    effective_mass,
    ising_energy,
    magnetization,
    phi4_primaries,
    pole_mass,
    pole_mass_from_means,
    stack_primaries,
    timeslice_correlator,
    timeslice_observables,
    two_point,
    zero_momentum_correlator,
)


def slow_two_point(phi):
    """Reference ``(1/V) Σ_y φ_y φ_{y+x}`` by explicit periodic shifts."""
    lattice = phi.shape[1:]
    out = torch.empty_like(phi)
    for x in np.ndindex(*lattice):
        shifted = phi
        for mu, n in enumerate(x):
            shifted = shift(shifted, mu, n)
        out[(slice(None), *x)] = (phi * shifted).flatten(1).mean(dim=1)
    return out


@pytest.mark.parametrize("lattice", [(4, 4), (3, 5), (2, 3, 4), (7,)])
def test_two_point_fft_matches_shifts(lattice):
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(3, *lattice, dtype=torch.float64, generator=g)
    tp = two_point(phi)
    assert tp.shape == phi.shape
    torch.testing.assert_close(tp, slow_two_point(phi), rtol=0, atol=1e-12)
    # x = 0 is the mean of φ², and Σ_x is V M²
    torch.testing.assert_close(tp.flatten(1)[:, 0], (phi**2).flatten(1).mean(1))
    V = math.prod(lattice)
    torch.testing.assert_close(tp.flatten(1).sum(1), V * magnetization(phi) ** 2)


def test_magnetization_and_shapes():
    phi = torch.full((5, 4, 6), -0.7)
    torch.testing.assert_close(magnetization(phi), torch.full((5,), -0.7))
    torch.testing.assert_close(abs_magnetization(phi), torch.full((5,), 0.7))
    prim = phi4_primaries(torch.randn(5, 4, 6))
    assert set(prim) >= {"M", "M2", "M4", "absM", "phi2", "nn"}
    for value in prim.values():
        assert value.shape == (5,) and value.dtype == torch.float32
    assert connected_two_point(phi).shape == (4, 6)
    assert isinstance(chi2(phi), float) and isinstance(ising_energy(phi), float)


def test_zero_momentum_and_effective_mass():
    G = torch.rand(6, 4, 3, dtype=torch.float64)
    C = zero_momentum_correlator(G)
    torch.testing.assert_close(C, G.sum(dim=(1, 2)))
    Cb = zero_momentum_correlator(G[None].expand(2, -1, -1, -1), batched=True)
    assert Cb.shape == (2, 6)
    torch.testing.assert_close(Cb[1], C)
    # a pure periodic cosh gives its mass at every t; a non-convex point gives NaN
    t = torch.arange(10, dtype=torch.float64)
    m_eff = effective_mass(torch.cosh(0.3 * (t - 5)))
    torch.testing.assert_close(m_eff[1:], torch.full((9,), 0.3, dtype=torch.float64))
    bumpy = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    assert torch.isnan(effective_mass(bumpy)[5])  # (5 + 3) / 18 < 1
    assert effective_mass(torch.stack([C, C])).shape == (2, 6)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="float32 or float64"):
        magnetization(torch.zeros(3, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError):
        two_point(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError):
        magnetization(torch.zeros(4))  # no batch dimension
    with pytest.raises(ValueError):
        two_point(torch.zeros(2, 1, 4))  # extent below 2
    with pytest.raises(ValueError, match="at least 2"):
        chi2(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError):
        effective_mass(torch.ones(2))
    with pytest.raises(ValueError, match="volume"):
        derived_observable("chi2")
    with pytest.raises(ValueError):
        derived_observable("nope")
    with pytest.raises(ValueError):
        stack_primaries({"M": torch.zeros(3)}, ["M", "M2"])


def test_derived_functions_match_direct_estimators():
    phi = torch.randn(200, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    phi = phi + 0.3  # nonzero mean so the subtraction matters
    prim = phi4_primaries(phi)
    keys, f = derived_observable("chi2", volume=16)
    means = stack_primaries(prim, keys).mean(dim=0).numpy()
    assert f(means) == pytest.approx(chi2(phi), rel=1e-12)
    assert chi2(phi) == pytest.approx(float(connected_two_point(phi).sum()), rel=1e-10)
    keys, f = derived_observable("E")
    means = stack_primaries(prim, keys).mean(dim=0).numpy()
    # translation-invariant vs site-resolved subtraction: equal up to O(1/N) noise
    assert f(means) == pytest.approx(ising_energy(phi), abs=0.02)
    assert set(DERIVED) == {"chi2", "E", "binder"}


# ---------------------------------------------------------------- exact free-field samples

SHAPE, M2, N = (4, 6), 0.5, 100_000


@pytest.fixture(scope="module")
def free_samples():
    """``N`` iid exact samples of ``e^{-S}`` at λ = 0, covariance ``H⁻¹`` with ``H = 2K``.

    The covariance comes from the Hessian of :class:`Phi4Action`, not from lqft_lab.exact,
    so the comparison below tests both the estimators and the analytic formulas.
    """
    V = math.prod(SHAPE)
    action = Phi4Action(M2, 0.0)
    H = torch.autograd.functional.hessian(
        lambda v: action(v.reshape(1, *SHAPE))[0], torch.zeros(V, dtype=torch.float64)
    )
    chol = torch.linalg.cholesky(torch.linalg.inv(H))  # (2K)^{-1} = chol cholᵀ
    xi = torch.randn(N, V, dtype=torch.float64, generator=torch.Generator().manual_seed(2024))
    return (xi @ chol.T).reshape(N, *SHAPE)  # (N, V) -> (N, *SHAPE)


def delta_method_sigma(data: torch.Tensor, grad: np.ndarray) -> float:
    """Error of ``f(means)`` for iid rows of ``data (N, K)``: ``sqrt(gᵀ Cov g / N)``."""
    cov = np.cov(data.numpy(), rowvar=False)
    return float(np.sqrt(grad @ cov @ grad / data.shape[0]))


def test_exact_samples_chi2_energy(free_samples):
    phi, V = free_samples, math.prod(SHAPE)
    prim = phi4_primaries(phi)
    M = float(prim["M"].mean())
    sigma = delta_method_sigma(stack_primaries(prim, ["M", "M2"]), V * np.array([-2 * M, 1.0]))
    assert abs(chi2(phi) - free_field_chi2(SHAPE, M2)) < 4 * sigma
    assert sigma < 0.02 * free_field_chi2(SHAPE, M2)  # the check has teeth
    sigma = delta_method_sigma(stack_primaries(prim, ["M", "nn"]), np.array([-2 * M, 1.0]))
    E_exact = free_field_ising_energy(SHAPE, M2)
    assert abs(ising_energy(phi) - E_exact) < 4 * sigma
    _, f = derived_observable("E")
    assert abs(f([M, float(prim["nn"].mean())]) - E_exact) < 4 * sigma
    phi2 = prim["phi2"]
    assert abs(float(phi2.mean()) - free_field_phi2(SHAPE, M2)) < 4 * float(phi2.std()) / N**0.5


def test_exact_samples_correlators(free_samples):
    phi = free_samples
    G = torch.from_numpy(free_field_propagator(SHAPE, M2))
    tp = two_point(phi)
    # iid samples: the error of the mean of each x is std/sqrt(N). For G_c the extra
    # product of sample means is O(1/N) here (⟨φ⟩ = 0), below first-order error propagation.
    sigma = tp.std(dim=0) / N**0.5
    assert torch.all((tp.mean(dim=0) - G).abs() < 4 * sigma)
    assert torch.all((connected_two_point(phi) - G).abs() < 4 * sigma)
    # effective mass of the measured C(t) at t = 1, 2, error by a 20-block jackknife
    blocks = 20
    tp_blocks = tp.reshape(blocks, N // blocks, *SHAPE).sum(dim=1)  # (20, *SHAPE)
    phi_blocks = phi.reshape(blocks, N // blocks, *SHAPE).sum(dim=1)  # (20, *SHAPE)
    n_keep = N - N // blocks
    tp_loo = (tp_blocks.sum(dim=0) - tp_blocks) / n_keep  # leave-one-block-out means
    phi_loo = (phi_blocks.sum(dim=0) - phi_blocks) / n_keep
    Gc_loo = tp_loo - two_point(phi_loo)  # (20, *SHAPE)
    m_loo = effective_mass(zero_momentum_correlator(Gc_loo, batched=True))[:, 1:3]
    sigma_m = ((blocks - 1) * m_loo.var(dim=0, unbiased=False)) ** 0.5
    m_eff = effective_mass(zero_momentum_correlator(connected_two_point(phi)))[1:3]
    assert torch.all((m_eff - free_field_pole_mass(M2)).abs() < 4 * sigma_m)


def test_timeslice_correlator_is_the_zero_momentum_two_point():
    phi = torch.randn(7, 6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = zero_momentum_correlator(two_point(phi), batched=True)  # (B, L0)
    assert torch.allclose(timeslice_correlator(phi), expected)
    for name, fn in timeslice_observables(6).items():
        assert torch.allclose(fn(phi), expected[:, int(name[1:])])


def test_pole_mass_of_exact_free_samples(free_samples):
    # iid exact samples as a "chain": the Γ-method must find tau_int ≈ 1/2 and the estimate
    # must agree with the exact pole mass arccosh(1 + m²/2) within 4σ of its own error.
    observables = {"M": magnetization, **timeslice_observables(SHAPE[0])}
    series = {name: fn(free_samples) for name, fn in observables.items()}
    result = pole_mass(series, SHAPE)
    exact_mp = free_field_pole_mass(M2)
    assert abs(result.value - exact_mp) < 4 * result.error
    assert result.error < 0.02 * exact_mp  # enough statistics for the check to bite
    assert result.tau_int == pytest.approx(0.5, abs=4 * result.tau_int_error + 0.05)
    # a different plateau window estimates the same mass (single state, exact cosh)
    assert abs(pole_mass(series, SHAPE, t_range=[1]).value - exact_mp) < 4 * result.error


def test_pole_mass_bad_input():
    with pytest.raises(ValueError, match="missing"):
        pole_mass({"M": torch.zeros(10)}, (4, 4))
    with pytest.raises(ValueError, match="L0"):
        timeslice_observables(2)
    with pytest.raises(ValueError, match="means"):
        pole_mass_from_means([0.0, 1.0], 4, 4)
    noise = torch.randn(200, 4, 4, generator=torch.Generator().manual_seed(0))
    series = {
        "M": magnetization(noise),
        **{k: f(noise) for k, f in timeslice_observables(4).items()},
    }
    with pytest.raises(ValueError, match="too noisy"):
        pole_mass(series, (4, 4))  # white noise: C(t>0) ≈ 0, no effective mass
