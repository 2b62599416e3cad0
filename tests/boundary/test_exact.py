"""Boundary tests of :mod:`lqft_lab.exact` (free field, U(1), SU(N)).

Every reference refuses bad lattices, couplings, group ranks, truncations and arrays by
name, and returns finite, correct numbers at the edges of what it accepts, including large
``β`` and large lattices, where the character sums must not overflow; arguments that would
take minutes or exhaust memory are refused with the range that is accepted.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given
from scipy.special import iv

from lqft_lab.exact import free_field, sun, u1

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_integers,
    bad_reals,
    expect_error_naming,
    not_integers,
    refused_or_finite,
    refuses,
)

FREE_FIELD = [getattr(free_field, name) for name in free_field.__all__]
U1 = [getattr(u1, name) for name in u1.__all__]
SUN = [getattr(sun, name) for name in sun.__all__]

COVERED = {
    *(f"lqft_lab.exact.free_field.{name}" for name in free_field.__all__),
    *(f"lqft_lab.exact.u1.{name}" for name in u1.__all__),
    *(f"lqft_lab.exact.sun.{name}" for name in sun.__all__),
}

#: Functions of ``(shape, m2)``.
SHAPE_M2 = [f for f in FREE_FIELD if f.__name__ not in ("free_field_pole_mass",)]
SHAPE_M2.remove(free_field.lattice_momentum_squared)
#: Functions of ``(beta, L)``.
BETA_L = [
    u1.u1_log_z,
    u1.u1_plaquette,
    u1.u1_energy_variance,
    u1.u1_topological_susceptibility,
    u1.u1_charge_distribution,
]
BETA = [u1.u1_plaquette_infinite_volume, u1.u1_topological_susceptibility_infinite_volume]

#: Lattices that must be refused: not integers at all, extents below 2 or huge, no direction.
bad_lattices = st.one_of(
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.integers(max_value=1),
    st.integers(min_value=2**20 + 1),
    st.just(()),
    st.just("44"),
    st.lists(
        st.one_of(st.integers(max_value=1), st.floats(2, 8), st.booleans()), min_size=1, max_size=3
    ).map(lambda bad: (4, *bad)),
)
small_shapes = st.lists(st.integers(2, 6), min_size=1, max_size=3).map(tuple)
#: Outside ``m2 > 0``, and ``m2`` whose ``1/(2 m2)`` leaves float64.
bad_m2 = st.one_of(bad_reals(low=0, low_open=True), st.sampled_from([5e-324, 1e-310, 1e305]))
#: Outside ``[0, 1e4]`` for the U(1) references.
bad_u1_beta = st.one_of(bad_reals(low=0), st.floats(1e4, 1e300, exclude_min=True))


# --- free field ---------------------------------------------------------------------------


@BOUNDARY
@given(shape=bad_lattices)
def test_free_field_refuses_bad_shapes(shape):
    refuses(free_field.lattice_momentum_squared, "shape", shape)
    for fn in SHAPE_M2:
        refuses(fn, "shape", shape, 1.0)


@BOUNDARY
@given(m2=bad_m2)
def test_free_field_refuses_bad_m2(m2):
    refuses(free_field.free_field_pole_mass, "m2", m2)
    for fn in SHAPE_M2:
        refuses(fn, "m2", (4, 4), m2)


def test_free_field_refuses_a_volume_it_cannot_hold():
    for fn in SHAPE_M2:
        refuses(fn, "shape", (2**12, 2**12, 2), 1.0)  # 2^25 sites: refused, not allocated


@BOUNDARY
@given(shape=small_shapes, m2=st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-300, 1e300])))
def test_free_field_edges_are_finite_and_exact(shape, m2):
    """χ₂ = 1/(2m²) = Σ_x G(x) = Σ_t C(t); cosh(m_p) = 1 + m²/2 (module docstring)."""
    chi2 = refused_or_finite(free_field.free_field_chi2, "m2", shape, m2)
    assert chi2 == 1 / (2 * m2)
    G = refused_or_finite(free_field.free_field_propagator, "m2", shape, m2)
    assert G.shape == shape
    C = refused_or_finite(free_field.free_field_zero_momentum_correlator, "m2", shape, m2)
    for total in (G.sum(), C.sum()):
        assert total == pytest.approx(chi2, rel=1e-9)
    assert refused_or_finite(free_field.free_field_phi2, "m2", shape, m2) > 0
    assert_finite(free_field.free_field_ising_energy(shape, m2))
    assert_finite(free_field.free_field_log_z(shape, m2))
    assert_finite(free_field.free_field_momentum_propagator(shape, m2))
    p2 = free_field.lattice_momentum_squared(shape)
    assert p2.flat[0] == 0 and (p2 >= 0).all() and (p2 <= 4 * len(shape) + 1e-12).all()
    m_p = free_field.free_field_pole_mass(m2)
    assert math.cosh(m_p) == pytest.approx(1 + m2 / 2, rel=1e-12)


# --- U(1) ---------------------------------------------------------------------------------


@BOUNDARY
@given(beta=bad_u1_beta)
def test_u1_refuses_bad_beta(beta):
    for fn in BETA_L:
        refuses(fn, "beta", beta, 4)
    refuses(u1.u1_wilson_loop, "beta", beta, 4, 1, 1)
    refuses(u1.u1_swap_acceptance, "beta_a", beta, 1.0, 4)
    refuses(u1.u1_swap_acceptance, "beta_b", 1.0, beta, 4)
    for fn in BETA:
        refuses(fn, "beta", beta)


@BOUNDARY
@given(L=st.one_of(bad_lattices, st.just((4, 4, 4)), st.just((4,))))
def test_u1_refuses_bad_lattices(L):
    for fn in BETA_L:
        refuses(fn, "L", 1.0, L)
    refuses(u1.u1_wilson_loop, "L", 1.0, L, 1, 1)
    refuses(u1.u1_swap_acceptance, "L", 1.0, 2.0, L)


@BOUNDARY
@given(R=bad_integers(1, 6), T=st.integers(1, 4))
def test_u1_wilson_loop_refuses_bad_loops(R, T):
    refuses(u1.u1_wilson_loop, "R", 1.0, (4, 6), R, T)
    refuses(u1.u1_wilson_loop, "T", 1.0, (6, 4), T, R if isinstance(R, int) and R > 6 else 0)


@BOUNDARY
@given(q_max=st.one_of(not_integers.filter(lambda q: q is not None), st.integers(max_value=-1)))
def test_u1_charge_distribution_refuses_bad_q_max(q_max):
    refuses(u1.u1_charge_distribution, "q_max", 1.0, 4, q_max)


def test_u1_charge_distribution_refuses_work_it_cannot_finish():
    refuses(u1.u1_charge_distribution, ["L", "q_max"], 1.0, 1024)  # default q_max = V/2
    refuses(u1.u1_charge_distribution, "q_max", 1.0, 8, 10**9)


@BOUNDARY
@given(
    beta=st.one_of(st.floats(0, 50), st.sampled_from([0.0, 1e-300, 1e3, 1e4])),
    L=st.one_of(st.integers(2, 6), st.tuples(st.integers(2, 5), st.integers(2, 5))),
)
def test_u1_edges_are_finite_and_consistent(beta, L):
    log_z = refused_or_finite(u1.u1_log_z, "beta", beta, L)
    plaq = refused_or_finite(u1.u1_plaquette, "beta", beta, L)
    assert 0 <= plaq <= 1
    chi = refused_or_finite(u1.u1_topological_susceptibility, "beta", beta, L)
    assert 0 <= chi <= 1 / 12 + 1e-12
    Q, P = refused_or_finite(u1.u1_charge_distribution, "beta", beta, L, 2)
    assert (P >= 0).all() and P.sum() <= 1 + 1e-9
    assert_finite(
        (
            u1.u1_wilson_loop(beta, L, 1, 1),
            u1.u1_plaquette_infinite_volume(beta),
            u1.u1_topological_susceptibility_infinite_volume(beta),
        )
    )
    if beta == 0:
        assert log_z == 0 and plaq == 0


def test_u1_beta_to_zero_and_sum_rules():
    """Known values: ⟨cos θ_P⟩ → 0 and χ_t = 1/12 at β = 0; Σ_Q P(Q) = 1."""
    assert u1.u1_plaquette(0.0, 4) == 0.0
    assert u1.u1_plaquette(1e-12, 4) == pytest.approx(0.5e-12, rel=1e-6)  # I_1/I_0 ≈ β/2
    assert u1.u1_topological_susceptibility(0.0, 4) == pytest.approx(1 / 12, rel=1e-12)
    for beta, L in [(0.0, 3), (1.0, 4), (6.0, (4, 6)), (1e4, 2)]:
        Q, P = u1.u1_charge_distribution(beta, L)
        assert P.sum() == pytest.approx(1.0, abs=1e-10)
        assert np.array_equal(Q, -Q[::-1])
    assert u1.u1_plaquette_infinite_volume(2.0) == pytest.approx(iv(1, 2.0) / iv(0, 2.0))


def test_u1_character_sums_stay_finite_at_large_beta_and_volume():
    """Issue 25: the character sums at large β or L stay finite (ratios, logs)."""
    for beta, L in [(1e4, 2), (1e4, 2**20), (700.0, (2**20, 2**20)), (1.0, (2**20, 2))]:
        log_z = u1.u1_log_z(beta, L)
        plaq = u1.u1_plaquette(beta, L)
        assert math.isfinite(log_z) and 0 < plaq < 1
        assert_finite((u1.u1_topological_susceptibility(beta, L), u1.u1_wilson_loop(beta, L, 2, 2)))
    # the infinite-volume plaquette is reached at large L
    assert u1.u1_plaquette(3.0, 2**20) == pytest.approx(iv(1, 3.0) / iv(0, 3.0), rel=1e-12)
    with expect_error_naming("beta") as err:
        u1.u1_log_z(1e5, 4)
    assert "at most 10000" in str(err.value)


# --- SU(N) --------------------------------------------------------------------------------


@BOUNDARY
@given(N=st.one_of(bad_integers(low=2), st.integers(101, 10**6)))
def test_sun_refuses_bad_n(N):
    refuses(sun.single_matrix_log_z, "N", N, 1.0, (1.0,))
    refuses(sun.single_matrix_mean_trace, "N", N, 1.0, (1.0,))
    refuses(sun.single_matrix_log_density, "N", np.zeros((1, 3)), N, 1.0, (1.0,))
    refuses(sun.single_matrix_eigenphase_histogram, "N", N, 1.0, (1.0,), [-1.0, 1.0])
    refuses(sun.sun_character_coefficient, "N", N, 1.0, (1, 0))
    refuses(sun.sun_lattice_log_z, "N", N, 1.0, 2)
    refuses(sun.sun_plaquette, "N", N, 1.0, 2)
    refuses(sun.sun_plaquette_infinite_volume, "N", N, 1.0)
    refuses(sun.sun_wilson_loop_infinite_volume, "N", N, 1.0, 1)
    if N is not None:  # irrep_dimension's N defaults to len(weights)
        refuses(sun.irrep_dimension, "N", (1, 0), N)


@BOUNDARY
@given(beta=bad_reals(low=0))
def test_sun_refuses_bad_beta(beta):
    refuses(sun.single_matrix_log_z, "beta", 2, beta, (1.0,))
    refuses(sun.single_matrix_mean_trace, "beta", 2, beta, (1.0,))
    refuses(sun.single_matrix_log_density, "beta", np.zeros((1, 2)), 2, beta, (1.0,))
    refuses(sun.single_matrix_eigenphase_histogram, "beta", 2, beta, (1.0,), [-1.0, 1.0])
    refuses(sun.sun_character_coefficient, "beta", 2, beta, (1, 0))
    refuses(sun.sun_lattice_log_z, "beta", 2, beta, 2)
    refuses(sun.sun_plaquette, "beta", 2, beta, 2)
    refuses(sun.sun_plaquette_infinite_volume, "beta", 2, beta)
    refuses(sun.sun_wilson_loop_infinite_volume, "beta", 2, beta, 1)


@BOUNDARY
@given(
    coeffs=st.one_of(
        st.none(),
        st.text(max_size=3),
        st.just([]),
        st.just([[1.0]]),
        st.just([True]),
        st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=1, max_size=2),
        st.sampled_from([(1e200,), (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e6)]),
    )
)
def test_sun_refuses_bad_coeffs(coeffs):
    """Not a finite 1D sequence, or so large that the quadrature grid would not fit."""
    refuses(sun.single_matrix_log_z, "coeffs", 3, 1.0, coeffs)
    refuses(sun.single_matrix_mean_trace, "coeffs", 3, 1.0, coeffs)


@BOUNDARY
@given(
    n_grid=st.one_of(
        bad_integers(low=4).filter(lambda n: n is not None), st.integers(2**22 + 1, 2**40)
    )
)
def test_sun_refuses_bad_n_grid(n_grid):
    refuses(sun.single_matrix_log_z, "n_grid", 2, 1.0, (1.0,), n_grid)
    refuses(sun.single_matrix_mean_trace, "n_grid", 2, 1.0, (1.0,), n_grid)


@BOUNDARY
@given(L=st.one_of(bad_lattices, st.just((4, 4, 4))))
def test_sun_refuses_bad_lattices(L):
    refuses(sun.sun_lattice_log_z, "L", 2, 1.0, L)
    refuses(sun.sun_plaquette, "L", 2, 1.0, L)


@BOUNDARY
@given(area=st.one_of(bad_integers(low=1), st.integers(2**53 + 1, 2**70)))
def test_sun_refuses_bad_area(area):
    refuses(sun.sun_wilson_loop_infinite_volume, "area", 2, 1.0, area)


@BOUNDARY
@given(
    weights=st.one_of(
        st.none(),
        st.floats(),
        st.text(min_size=2, max_size=3),
        st.sampled_from([(0, 1), (1, -1), (1.0, 0), (True, 0), (1, 0, 0, 0), (5000, 0), (2, 1, 0)]),
    )
)
def test_sun_refuses_bad_weights(weights):
    refuses(sun.irrep_dimension, "weights", weights, 2)
    refuses(sun.weyl_character, "weights", weights, np.zeros(2))
    refuses(sun.sun_character_coefficient, "weights", 2, 1.0, weights)


@BOUNDARY
@given(
    theta=st.one_of(
        st.none(),
        st.text(max_size=3),
        st.just([[0.0]]),
        st.just(np.zeros(3) + 1j),
        st.just(np.array([0.0, math.nan])),
        st.just(np.array([math.inf, -math.inf])),
        st.just(torch.zeros(2, dtype=torch.float16)),
        st.just(np.zeros((2, 101))),
    )
)
def test_sun_refuses_bad_eigenphases(theta):
    refuses(sun.vandermonde_sq, "theta", theta)
    refuses(sun.weyl_character, ["theta", "N"], (1, 0), theta)
    refuses(sun.haar_eigenphase_density, ["theta", "N"], theta)
    refuses(sun.single_matrix_log_density, ["theta", "N"], theta, 2, 1.0, (1.0,))


def test_haar_density_refuses_phases_that_do_not_sum_to_zero():
    refuses(sun.haar_eigenphase_density, "theta", np.array([0.3, 0.4]))


@BOUNDARY
@given(
    edges=st.one_of(
        st.none(),
        st.text(max_size=3),
        st.just([0.0]),
        st.just([[0.0, 1.0]]),
        st.just([1.0, 0.0]),
        st.just([0.0, math.nan]),
        st.just([-math.inf, 0.0]),
    )
)
def test_sun_histogram_refuses_bad_edges(edges):
    refuses(sun.single_matrix_eigenphase_histogram, "edges", 2, 1.0, (1.0,), edges)


@BOUNDARY
@given(
    N=st.sampled_from([2, 3]),
    beta=st.one_of(st.floats(0, 12), st.just(1e-300)),
    L=st.integers(2, 4),
)
def test_sun_edges_are_finite_and_consistent(N, beta, L):
    log_z = refused_or_finite(sun.sun_lattice_log_z, "beta", N, beta, L)
    plaq = refused_or_finite(sun.sun_plaquette, "beta", N, beta, L)
    assert 0 <= plaq <= 1
    plaq_inf = sun.sun_plaquette_infinite_volume(N, beta)
    assert sun.sun_wilson_loop_infinite_volume(N, beta, 3) == pytest.approx(plaq_inf**3)
    f0 = sun.sun_character_coefficient(N, beta, (0,) * N)
    assert math.exp(sun.single_matrix_log_z(N, beta, (1.0,))) == pytest.approx(f0, rel=1e-10)
    assert sun.single_matrix_mean_trace(N, beta, (1.0,)) == pytest.approx(plaq_inf, abs=1e-10)
    if beta == 0:
        assert log_z == 0 and plaq == 0


def test_sun_known_values():
    """SU(2): f_λ = 2(λ_1+1) I_{λ_1+1}(β)/β; Weyl dimensions; χ_λ(1) = d_λ; Haar density."""
    for lam in (0, 1, 3):
        f = sun.sun_character_coefficient(2, 1.5, (lam, 0))
        assert f == pytest.approx(2 * (lam + 1) * iv(lam + 1, 1.5) / 1.5, rel=1e-12)
    assert [sun.irrep_dimension(w) for w in [(1, 0, 0), (2, 1, 0), (3, 0, 0)]] == [3, 8, 10]
    assert sun.weyl_character((2, 1, 0), np.zeros(3)) == pytest.approx(8)
    assert sun.weyl_character((1, 0), torch.zeros(2, dtype=torch.float64)) == pytest.approx(2)
    phases = np.array([[0.4, -0.4], [1.0, -1.0]])
    assert_finite(sun.vandermonde_sq(phases))
    assert sun.haar_eigenphase_density(phases) == pytest.approx(
        4 * np.sin(phases[:, 0]) ** 2 / (4 * math.pi)
    )
    hist = sun.single_matrix_eigenphase_histogram(2, 2.0, (1.0,), np.linspace(-math.pi, math.pi, 5))
    assert hist.sum() == pytest.approx(1.0, abs=1e-12)
    log_p = sun.single_matrix_log_density(phases, 2, 2.0, (1.0,))
    assert_finite(log_p)


def test_sun_character_sums_stay_finite_or_refuse_at_large_beta_and_volume():
    """Issue 25: large β and large L are finite (ratios and logs), or refused naming β."""
    for N, beta, L in [(2, 1e4, 2), (2, 50.0, 2**20), (3, 200.0, 2), (3, 5.0, (2**20, 2**20))]:
        log_z = sun.sun_lattice_log_z(N, beta, L)
        plaq = sun.sun_plaquette(N, beta, L)
        assert math.isfinite(log_z) and 0 < plaq < 1
    assert sun.sun_plaquette(2, 3.0, 2**20) == pytest.approx(iv(2, 3.0) / iv(1, 3.0), rel=1e-10)
    assert math.isfinite(sun.single_matrix_log_z(2, 1e6, (1.0,)))
    for call in (
        lambda: sun.sun_plaquette(4, 1e6, 2),
        lambda: sun.single_matrix_log_z(3, 1e300, (1.0,)),
        lambda: sun.sun_plaquette_infinite_volume(3, 1e12),
    ):
        with expect_error_naming("beta") as err:
            call()
        assert "more than" in str(err.value)
    with expect_error_naming("N"):
        sun.single_matrix_log_z(12, 1.0, (1.0,))  # a 16^11-point grid: refused, not run


@BOUNDARY
@given(c=bad_reals(low=0, high=1))
def test_u1_defect_references_refuse_bad_input(c):
    refuses(u1.u1_defect_references, "c", 6.0, c, 2, 8)
    refuses(u1.u1_defect_references, "beta", -1.0, 0.5, 2, 8)
    refuses(u1.u1_defect_references, "d", 6.0, 0.5, 65, 8)  # more than V plaquettes
    refuses(u1.u1_defect_references, "d", 6.0, 0.5, 1.5, 8)
    refuses(u1.u1_defect_references, "L", 6.0, 0.5, 2, 1)
    ref = u1.u1_defect_references(6.0, 0.0, 64, 8)  # every plaquette free
    assert ref.plaquette == 0 and math.isnan(ref.plaquette_bulk)
    assert ref.chi_t == pytest.approx(1 / 12, rel=1e-9)  # uniform angles: ⟨φ²⟩ = π²/3
