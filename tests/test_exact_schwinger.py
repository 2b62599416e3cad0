"""Exact Schwinger-model references (lqft_lab.exact.schwinger) against independent checks.

* Free fermions: the analytic spectrum against dense eigenvalues (1e-12, antiperiodic and
  periodic, square and not), a constant time link ``π/L0`` turning periodic into
  antiperiodic, ``log det`` against ``slogdet``, the momentum-space propagator against the
  dense inverse.
* The 2×2 Nf = 2 integral: the pure gauge limit (κ = 0) against the character expansion of
  :mod:`lqft_lab.exact.u1` to 1e-12, a refined grid agreeing to rounding, and a brute-force
  trapezoid rule with ``U1WilsonAction`` in the integrand (no character expansion) to 1e-8.
* Reweighted exact draws: uniform weights at κ = 0 (ESS = 1), agreement with the 2×2
  integral within 4σ, errors that are honest over repeats, and the 4×4 ESS at β = 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import U1WilsonAction
from lqft_lab.actions.wilson_dirac import WilsonDirac
from lqft_lab.exact import u1_log_z, u1_plaquette
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
from lqft_lab.observables import plaquette
from lqft_lab.observables.fermion import schwinger_observables
from lqft_lab.samplers import u1_links_from_plaquettes

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def _sorted(z: np.ndarray) -> np.ndarray:
    """Complex numbers in a canonical order (real part rounded, then imaginary part)."""
    z = np.asarray(z)
    return z[np.lexsort((z.imag.round(9), z.real.round(9)))]


# --- free fermions ------------------------------------------------------------------------


@pytest.mark.parametrize("antiperiodic", [True, False])
@pytest.mark.parametrize(("L0", "L1", "kappa"), [(4, 4, 0.2), (6, 4, 0.27), (3, 5, 0.1)])
def test_free_spectrum_is_the_dense_spectrum(L0, L1, kappa, antiperiodic):
    D = WilsonDirac(kappa, antiperiodic=antiperiodic).dense(torch.zeros(1, 2, L0, L1, dtype=F64))
    dense = torch.linalg.eigvals(D[0]).numpy()
    analytic = free_spectrum(L0, L1, kappa, antiperiodic)
    assert analytic.dtype == torch.complex128 and analytic.shape == (2 * L0 * L1,)
    np.testing.assert_allclose(_sorted(analytic.numpy()), _sorted(dense), rtol=0, atol=1e-12)


def test_a_constant_time_link_of_pi_over_L0_makes_periodic_antiperiodic():
    """Constant links ``e^{iα_μ}`` shift ``p_μ → p_μ + α_μ``: ``α0 = π/L0`` moves the periodic
    momenta ``2πn/L0`` onto the antiperiodic ones ``2π(n + ½)/L0``."""
    L0, L1, kappa = 4, 6, 0.23
    theta = torch.zeros(1, 2, L0, L1, dtype=F64)
    theta[:, 0] = math.pi / L0
    D = WilsonDirac(kappa, antiperiodic=False).dense(theta)[0]
    dense = torch.linalg.eigvals(D).numpy()
    analytic = free_spectrum(L0, L1, kappa, antiperiodic=True).numpy()
    np.testing.assert_allclose(_sorted(analytic), _sorted(dense), rtol=0, atol=1e-12)


@pytest.mark.parametrize("antiperiodic", [True, False])
def test_free_log_det_is_slogdet(antiperiodic):
    L0, L1, kappa = 4, 6, 0.24
    D = WilsonDirac(kappa, antiperiodic=antiperiodic)
    sign, logabs = torch.linalg.slogdet(D.dense(torch.zeros(1, 2, L0, L1, dtype=F64))[0])
    assert sign.real.item() == pytest.approx(1.0)  # det D = Π_p (a² + b²) > 0
    assert free_log_det(L0, L1, kappa, antiperiodic) == pytest.approx(logabs.item(), abs=1e-11)


@pytest.mark.parametrize("antiperiodic", [True, False])
def test_free_propagator_condensate_and_pion_are_the_dense_inverse(antiperiodic):
    L0, L1, kappa = 6, 4, 0.2
    D = WilsonDirac(kappa, antiperiodic=antiperiodic).dense(torch.zeros(1, 2, L0, L1, dtype=F64))
    S = torch.linalg.inv(D[0])  # (2V, 2V)
    column = S[:, :2].reshape(L0, L1, 2, 2)  # S(x, 0)_{ab}
    torch.testing.assert_close(
        free_propagator(L0, L1, kappa, antiperiodic), column, rtol=0, atol=1e-13
    )
    exact_trace = S.diagonal().sum().real.item() / (L0 * L1)
    assert free_condensate(L0, L1, kappa, antiperiodic) == pytest.approx(exact_trace, abs=1e-13)
    pion = column.abs().square().sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        free_pion_correlator(L0, L1, kappa, antiperiodic), pion, rtol=0, atol=1e-13
    )


def test_free_references_refuse_a_singular_operator():
    """Periodic boundary conditions at κ = 1/4 leave a zero mode at p = 0."""
    for fn in (free_spectrum, free_log_det, free_condensate, free_pion_correlator):
        with pytest.raises(ValueError, match="kappa"):
            fn(4, 4, 0.25, antiperiodic=False)
    assert math.isfinite(free_log_det(4, 4, 0.25, antiperiodic=True))


# --- the 2×2 lattice ----------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0, 8.0])
def test_2x2_at_kappa_zero_is_the_pure_gauge_theory(beta):
    exact = schwinger_2x2(beta, 0.0)
    assert isinstance(exact, Schwinger2x2)
    assert exact.plaquette == pytest.approx(u1_plaquette(beta, 2), abs=1e-12)
    assert exact.log_z == pytest.approx(u1_log_z(beta, 2), abs=1e-11)
    assert exact.condensate == pytest.approx(2.0, abs=1e-14)  # D = 1: tr 1 / V = 2
    np.testing.assert_allclose(exact.pion_correlator, [2.0, 0.0], atol=1e-14)


def test_2x2_is_exact_on_its_grid():
    """Doubling the grid changes nothing beyond rounding: the fermion factors are
    trigonometric polynomials of the degree the grid resolves."""
    coarse = schwinger_2x2(2.0, 0.26)
    fine = schwinger_2x2(2.0, 0.26, refine=2)
    assert fine.grid == tuple(2 * n for n in coarse.grid)
    for name in ("log_z", "plaquette", "condensate"):
        assert getattr(fine, name) == pytest.approx(getattr(coarse, name), abs=1e-12)
    np.testing.assert_allclose(fine.pion_correlator, coarse.pion_correlator, atol=1e-12)


def _brute_force_2x2(beta: float, kappa: float, n: int = 16, n_polyakov: int = 5) -> dict:
    """The same integral by a plain product trapezoid rule over the gauge-fixed angles, with
    ``exp(-U1WilsonAction)`` itself in the integrand: converges like ``I_n(2β)``
    (about 2e-10 at β = 1, n = 16)."""
    grid = 2 * math.pi * (torch.arange(n, dtype=F64) + 0.5) / n - math.pi
    loops = 2 * math.pi * torch.arange(n_polyakov, dtype=F64) / n_polyakov
    v = torch.cartesian_prod(grid, grid, grid, loops, loops)
    plaquettes = torch.cat([v[:, :3], -v[:, :3].sum(1, keepdim=True)], 1).reshape(-1, 2, 2)
    theta = u1_links_from_plaquettes(plaquettes, v[:, 3:].contiguous())
    D = WilsonDirac(kappa).dense(theta)  # (N, 8, 8)
    weight = torch.exp(-U1WilsonAction(beta)(theta) - 4 * beta + 2 * torch.linalg.slogdet(D)[1])
    S = torch.linalg.inv(D)
    pion = S[:, :, :2].abs().square().reshape(-1, 2, 8).sum(dim=2)  # rows ((x0·2)+x1)·2+spin
    observables = {
        "plaquette": plaquette(theta),
        "condensate": S.diagonal(dim1=1, dim2=2).sum(dim=1).real / 4,
        "pion_0": pion[:, 0],
        "pion_1": pion[:, 1],
    }
    return {name: ((weight * o).sum() / weight.sum()).item() for name, o in observables.items()}


def test_2x2_agrees_with_a_brute_force_trapezoid_rule():
    beta, kappa = 1.0, 0.2
    exact = schwinger_2x2(beta, kappa)
    brute = _brute_force_2x2(beta, kappa)
    assert exact.plaquette == pytest.approx(brute["plaquette"], abs=1e-8)
    assert exact.condensate == pytest.approx(brute["condensate"], abs=1e-8)
    np.testing.assert_allclose(
        exact.pion_correlator, [brute["pion_0"], brute["pion_1"]], rtol=0, atol=1e-8
    )


def test_2x2_fermions_raise_the_plaquette():
    """det² favours smooth fields: at fixed β the plaquette grows with κ (towards κ_c)."""
    plaquettes = [schwinger_2x2(1.0, k).plaquette for k in (0.0, 0.1, 0.2, 0.26)]
    assert all(a < b for a, b in zip(plaquettes, plaquettes[1:], strict=False))


# --- reweighted exact draws ---------------------------------------------------------------


def test_reweighting_at_kappa_zero_has_uniform_weights():
    gen = torch.Generator().manual_seed(0)
    ref = reweighted_reference(1.0, 0.0, 4, 2000, generator=gen)
    assert isinstance(ref, ReweightedReference)
    assert ref.ess == 1.0 and np.all(ref.log_weights == 0)
    z = (ref.values["plaquette"] - u1_plaquette(1.0, 4)) / ref.errors["plaquette"]
    assert abs(z) < 4, z
    assert ref.values["condensate"] == pytest.approx(2.0, abs=1e-14)


@pytest.mark.parametrize(("beta", "kappa"), [(1.0, 0.2), (2.0, 0.26)])
def test_reweighting_agrees_with_the_2x2_integral(beta, kappa):
    exact = schwinger_2x2(beta, kappa)
    gen = torch.Generator().manual_seed(1)
    ref = reweighted_reference(beta, kappa, 2, 20000, generator=gen)
    reference = {
        "plaquette": exact.plaquette,
        "condensate": exact.condensate,
        "pion_1": exact.pion_correlator[1],
    }
    for name, value in reference.items():
        z = (ref.values[name] - value) / ref.errors[name]
        assert abs(z) < 4, (name, ref.values[name], ref.errors[name], value)


def test_reweighting_errors_are_honest():
    """Over 40 independent repeats the pulls ``(estimate - exact)/error`` have unit spread:
    the delta-method error neither hides nor inflates the ratio estimator's noise."""
    beta, kappa = 1.0, 0.26
    exact = schwinger_2x2(beta, kappa)
    gen = torch.Generator().manual_seed(2)
    observables = schwinger_observables(kappa, times=())
    pulls = []
    for _ in range(40):
        ref = reweighted_reference(beta, kappa, 2, 500, observables, generator=gen)
        pulls.append((ref.values["condensate"] - exact.condensate) / ref.errors["condensate"])
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 4 / math.sqrt(len(pulls)), pulls.mean()
    assert 0.65 < pulls.std() < 1.4, pulls.std()  # χ²(39) at 4σ: std in ~[0.6, 1.4]


def test_reweighting_ess_at_4x4(capsys):
    """The weights' ESS at β = 2 on 4×4, 4096 draws: it falls towards κ_c ≈ 0.277."""
    gen = torch.Generator().manual_seed(3)
    observables = {"plaquette": plaquette}
    ess = {}
    for kappa in (0.2, 0.25):
        ess[kappa] = reweighted_reference(2.0, kappa, 4, 4096, observables, generator=gen).ess
    with capsys.disabled():
        print(f"\n4x4, beta = 2: reweighting ESS {ess}")
    assert 0.7 < ess[0.2] <= 1.0
    assert 0.2 < ess[0.25] < ess[0.2]
