"""Boundary tests of :mod:`lqft_lab.actions`: couplings, fields, link helpers.

The contract (package docstring): constructors refuse bad couplings naming them; actions,
forces and link functions refuse fields of the wrong kind, dtype (half precision with one
message) or shape, cheaply, and leave the values alone (finiteness is checked where a
field enters a sampler, not in HMC's inner loop).
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given

from lqft_lab.actions import (
    Phi4Action,
    SingleMatrixAction,
    SUNWilsonAction,
    U1DefectAction,
    U1WilsonAction,
    autograd_force,
    check_links,
    check_sun_links,
    gauge_transform,
    plaquette_angles,
    random_gauge_transform,
    random_sun_gauge_transform,
    sun_gauge_transform,
    sun_plaquettes,
    sun_staples,
    wrap_angle,
)
from lqft_lab.groups.sun import haar

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    expect_error_naming,
    not_reals,
    refused_or_finite,
    refuses,
)

COVERED = {
    "lqft_lab.actions.Phi4Action",
    "lqft_lab.actions.SingleMatrixAction",
    "lqft_lab.actions.SUNWilsonAction",
    "lqft_lab.actions.U1WilsonAction",
    "lqft_lab.actions.U1DefectAction",
    "lqft_lab.actions.autograd_force",
    "lqft_lab.actions.check_links",
    "lqft_lab.actions.check_sun_links",
    "lqft_lab.actions.random_sun_gauge_transform",
    "lqft_lab.actions.sun_gauge_transform",
    "lqft_lab.actions.sun_plaquettes",
    "lqft_lab.actions.sun_staples",
    "lqft_lab.actions.gauge_transform",
    "lqft_lab.actions.plaquette_angles",
    "lqft_lab.actions.random_gauge_transform",
    "lqft_lab.actions.wrap_angle",
}

# complex32 links are drawn to be refused; torch warns on creating them
pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")

F64, C128 = torch.float64, torch.complex128
#: A 1D φ⁴ batch: removing its batch axis leaves no batch, adding one gives an extent 1.
PHI = torch.linspace(-1.0, 1.0, 12, dtype=F64).reshape(3, 4)
THETA = torch.linspace(-3.0, 3.0, 32, dtype=F64).reshape(1, 2, 4, 4)
U2 = haar((1, 2, 2, 2), 2, generator=torch.Generator().manual_seed(0))  # (1, 2, 2, 2, 2, 2)


def bad_but_finite_fields(like: torch.Tensor) -> st.SearchStrategy:
    """``bad_fields`` without its poisoned copies: actions do not check values (contract)."""

    def same_kind(x) -> bool:
        return isinstance(x, torch.Tensor) and x.dtype == like.dtype and x.shape == like.shape

    return bad_fields(like).filter(lambda x: not same_kind(x))


# --- couplings ----------------------------------------------------------------------------


@BOUNDARY
@given(m2=bad_reals())
def test_phi4_refuses_bad_m2(m2):
    refuses(Phi4Action, "m2", m2, 1.0)


@BOUNDARY
@given(lam=bad_reals(low=0))
def test_phi4_refuses_bad_lam(lam):
    refuses(Phi4Action, "lam", -1.0, lam)


@BOUNDARY
@given(m2=st.floats(-10, 10), lam=st.floats(0, 10), c=st.floats(-3, 3))
def test_phi4_constant_field_has_the_exact_action(m2, lam, c):
    """A constant field has ``S = V (m² c² + λ c⁴)``: the hopping and ``2d`` terms cancel."""
    phi = torch.full((2, 4, 4), c, dtype=F64)
    S = refused_or_finite(lambda: Phi4Action(m2, lam)(phi), ["m2", "lam"])
    if S is not None:
        assert torch.allclose(S, torch.full((2,), 16 * (m2 * c**2 + lam * c**4), dtype=F64))
        assert_finite(Phi4Action(m2, lam).force(phi))


@BOUNDARY
@given(beta=bad_reals(low=0))
def test_wilson_actions_refuse_bad_beta(beta):
    refuses(U1WilsonAction, "beta", beta)
    refuses(SUNWilsonAction, "beta", beta, 2)
    refuses(SingleMatrixAction, "beta", beta, (1.0,), 2)


@BOUNDARY
@given(c=bad_reals(low=0, high=1), d=bad_integers(low=0))
def test_defect_action_refuses_bad_couplings(c, d):
    refuses(U1DefectAction, "beta", -1.0, 0.5, 1)
    refuses(U1DefectAction, "c", 1.0, c, 1)
    refuses(U1DefectAction, "d", 1.0, 0.5, d)


def test_defect_action_refuses_a_defect_longer_than_the_lattice_and_is_finite():
    theta = torch.zeros(2, 2, 4, 4, dtype=F64)
    refuses(U1DefectAction(1.0, 0.5, 5), "d", theta)
    action = U1DefectAction(2.0, 0.25, 4)
    # cold links: every plaquette at cos 1, four of them weighted by c
    assert torch.allclose(action(theta), torch.full((2,), -2.0 * (12 + 4 * 0.25), dtype=F64))
    assert_finite(action.force(theta))
    assert action.params() == {"beta": 2.0, "c": 0.25, "d": 4}


@BOUNDARY
@given(N=bad_integers(low=2))
def test_sun_actions_refuse_bad_n(N):
    refuses(SUNWilsonAction, "N", 1.0, N)
    refuses(SingleMatrixAction, "N", 1.0, (1.0,), N)


@BOUNDARY
@given(
    coeffs=st.one_of(
        not_reals.filter(lambda v: not isinstance(v, list)),
        st.just([]),
        st.lists(st.one_of(not_reals, bad_reals()), min_size=1, max_size=3).map(
            lambda bad: [0.5, *bad]
        ),
    )
)
def test_single_matrix_action_refuses_bad_coeffs(coeffs):
    refuses(SingleMatrixAction, "coeffs", 1.0, coeffs, 2)


@BOUNDARY
@given(beta=st.floats(0, 1e3), c=st.lists(st.floats(-5, 5), min_size=1, max_size=3))
def test_cold_starts_have_the_exact_action(beta, c):
    """Unit links: ``S = -β V`` (U(1), SU(N)) and ``-β Σ_k c_k`` (one SU(N) matrix)."""
    theta = torch.zeros(2, 2, 3, 4, dtype=F64)
    assert torch.allclose(U1WilsonAction(beta)(theta), torch.full((2,), -12 * beta, dtype=F64))
    assert_finite(U1WilsonAction(beta).force(theta))
    for N in (2, 3):
        U = torch.eye(N, dtype=C128).expand(2, 2, 3, 4, N, N)
        S = SUNWilsonAction(beta, N)(U)
        assert torch.allclose(S, torch.full((2,), -12 * beta, dtype=F64))
        assert_finite(SUNWilsonAction(beta, N).force(U))
        one = torch.eye(N, dtype=C128).expand(2, N, N)
        S1 = SingleMatrixAction(beta, c, N)(one)
        assert torch.allclose(S1, torch.full((2,), -beta * sum(c), dtype=F64), atol=1e-9)


# --- fields -------------------------------------------------------------------------------


@BOUNDARY
@given(phi=bad_but_finite_fields(PHI))
def test_phi4_refuses_bad_fields(phi):
    action = Phi4Action(-1.0, 1.0)
    refuses(action, "phi", phi)
    refuses(action.force, "phi", phi)


@BOUNDARY
@given(theta=bad_but_finite_fields(THETA))
def test_u1_functions_refuse_bad_links(theta):
    action = U1WilsonAction(1.0)
    for call in (action, action.force, plaquette_angles, check_links, random_gauge_transform):
        refuses(call, "theta", theta)
    refuses(gauge_transform, "theta", theta, torch.zeros(4, 4, dtype=F64))


@BOUNDARY
@given(U=bad_but_finite_fields(U2))
def test_sun_functions_refuse_bad_links(U):
    action = SUNWilsonAction(1.0, 2)
    for call in (action, action.force, sun_plaquettes, check_sun_links, random_sun_gauge_transform):
        refuses(call, "U", U)
    refuses(sun_staples, "U", U, 0)
    refuses(sun_gauge_transform, "U", U, torch.eye(2, dtype=C128).expand(2, 2, 2, 2))


@BOUNDARY
@given(U=bad_but_finite_fields(U2[:, 0, 0, 0]))  # (1, 2, 2)
def test_single_matrix_action_refuses_bad_matrices(U):
    refuses(SingleMatrixAction(1.0, (1.0,), 2), "U", U)


@BOUNDARY
@given(theta=bad_fields(torch.zeros(3, 2, dtype=F64)))
def test_single_matrix_from_eigenphases_refuses_bad_phases(theta):
    action = SingleMatrixAction(1.0, (1.0, -0.5), 2)
    if isinstance(theta, torch.Tensor) and theta.dtype == F64 and theta.shape[-1:] == (2,):
        return  # poisoned, or another batch shape: values are not checked (contract)
    refuses(action.from_eigenphases, "theta", theta)


@BOUNDARY
@given(x=bad_but_finite_fields(PHI))
def test_autograd_force_refuses_bad_fields(x):
    refuses(autograd_force, ["x", "phi"], Phi4Action(1.0, 0.5), x)


@BOUNDARY
@given(action=st.sampled_from([None, 1.0, "S", [1.0]]))
def test_autograd_force_refuses_a_non_callable_action(action):
    refuses(autograd_force, "action", action, PHI)


@pytest.mark.parametrize(
    "action",
    [lambda x: x, lambda x: x.sum(), lambda x: x.flatten(1).sum(1).to(torch.complex128), list],
)
def test_autograd_force_refuses_an_action_of_the_wrong_shape(action):
    refuses(autograd_force, "action", action, PHI)


def test_autograd_force_of_a_constant_action_is_zero():
    assert torch.equal(autograd_force(lambda x: x.new_ones(x.shape[0]), PHI), torch.zeros_like(PHI))
    assert torch.allclose(
        autograd_force(Phi4Action(1.0, 0.5), PHI), Phi4Action(1.0, 0.5).force(PHI)
    )


@BOUNDARY
@given(phi=bad_fields(THETA))
def test_wrap_angle_refuses_what_is_not_an_angle_tensor(phi):
    if isinstance(phi, torch.Tensor) and phi.dtype == F64:
        result = wrap_angle(phi)  # any shape; non-finite angles come out as NaN (docstring)
        finite = torch.isfinite(phi)
        assert torch.equal(torch.isnan(result), ~finite)
        assert bool(((result[finite] >= -math.pi) & (result[finite] < math.pi)).all())
        return
    refuses(wrap_angle, "phi", phi)


@BOUNDARY
@given(angles=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8))
def test_wrap_angle_lands_in_the_principal_interval(angles):
    phi = torch.tensor(angles, dtype=F64)
    wrapped = refused_or_finite(wrap_angle, "phi", phi)
    assert bool(((wrapped >= -math.pi) & (wrapped < math.pi)).all())
    assert torch.allclose(torch.cos(wrapped), torch.cos(phi), atol=1e-6)


# --- other arguments ----------------------------------------------------------------------


@BOUNDARY
@given(mu=bad_integers(0, 1))
def test_sun_staples_refuses_bad_mu(mu):
    refuses(sun_staples, "mu", U2, mu)


@BOUNDARY
@given(
    alpha=st.one_of(
        st.sampled_from([None, 0.0, [[0.0] * 4] * 4]),
        st.sampled_from(["half", "int", "complex", "shape", "batch"]),
    )
)
def test_gauge_transform_refuses_bad_alpha(alpha):
    made = {
        "half": torch.zeros(4, 4, dtype=torch.float16),
        "int": torch.zeros(4, 4, dtype=torch.int64),
        "complex": torch.zeros(4, 4, dtype=C128),
        "shape": torch.zeros(4, 5, dtype=F64),
        "batch": torch.zeros(3, 4, 4, dtype=F64),
    }
    if isinstance(alpha, str):
        alpha = made[alpha]
    refuses(gauge_transform, "alpha", THETA, alpha)


@pytest.mark.parametrize(
    "omega",
    [
        None,
        torch.eye(2, dtype=torch.complex64).expand(2, 2, 2, 2),  # another dtype than U
        torch.eye(2, dtype=C128).expand(3, 3, 2, 2),  # another lattice
        torch.eye(3, dtype=C128).expand(2, 2, 3, 3),  # another N
        torch.zeros(2, 2, 2, 2, dtype=F64),  # real
    ],
)
def test_sun_gauge_transform_refuses_bad_omega(omega):
    refuses(sun_gauge_transform, "omega", U2, omega)


@pytest.mark.parametrize("generator", [1, "seed", np.random.default_rng(0), torch.zeros(1)])
def test_random_gauge_transforms_refuse_bad_generators(generator):
    refuses(random_gauge_transform, "generator", THETA, generator)
    refuses(random_sun_gauge_transform, "generator", U2, generator)


def test_gauge_transforms_leave_the_action_alone():
    g = torch.Generator().manual_seed(1)
    action = U1WilsonAction(1.3)
    assert torch.allclose(action(random_gauge_transform(THETA, g)), action(THETA))
    sun = SUNWilsonAction(2.0, 2)
    assert torch.allclose(sun(random_sun_gauge_transform(U2, g)), sun(U2))
    staples = sun_staples(U2, 1)
    assert_finite(staples)
    assert staples.shape == (1, 2, 2, 2, 2)


# --- the cases --------------------------------------------------------------------


def test_float16_phi4_field_is_refused_not_overflowed():
    """Issue 25: a float16 φ⁴ field overflowed to inf while the error said float32/float64."""
    phi = torch.full((1, 4, 4), 20.0, dtype=torch.float16)  # λ φ⁴ = 1.3e6 > float16 max
    action = Phi4Action(-4.0, 8.0)
    for call in (action, action.force):
        with expect_error_naming("phi") as err:
            call(phi)
        assert "half precision is not supported" in str(err.value)
    for call, field, name in [
        (U1WilsonAction(1.0), THETA.half(), "theta"),
        (U1WilsonAction(1.0).force, THETA.to(torch.bfloat16), "theta"),
        (SUNWilsonAction(1.0, 2), U2.to(torch.complex32), "U"),
        (wrap_angle, THETA.half(), "phi"),
        (lambda x: autograd_force(action, x), phi, "x"),
    ]:
        with expect_error_naming(name) as err:
            call(field)
        assert "half precision is not supported" in str(err.value)


def test_actions_check_finiteness_only_where_asked():
    """Actions run in HMC's hot loop: no finiteness check (a GPU sync) in ``__call__`` or
    ``force``; the link checks do it on request, for a sampler's ``init``."""
    theta = THETA.clone()
    theta[0, 1, 2, 3] = math.inf
    assert torch.isnan(U1WilsonAction(1.0)(theta)).all()
    with expect_error_naming("theta"):
        check_links(theta, finite=True)
    check_links(theta)  # shape and dtype only
    U = U2.clone()
    U[0, 0, 0, 0, 0, 0] = complex(math.nan, 0)
    with expect_error_naming("U"):
        check_sun_links(U, finite=True)
    assert check_sun_links(U) == 2


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: Phi4Action("1.0", 1.0), "m2"),
        (lambda: Phi4Action(1.0, math.nan), "lam"),
        (lambda: Phi4Action(-1.0, 0.0), "lam"),
        (lambda: U1WilsonAction(True), "beta"),
        (lambda: SUNWilsonAction(1.0, 2.0), "N"),
        (lambda: SingleMatrixAction(1.0, 3.0, 2), "coeffs"),
        (lambda: SingleMatrixAction(1.0, (1.0, "a"), 2), "coeffs"),
    ],
)
def test_couplings_are_refused_naming_the_argument_and_value(make, argument):
    """Issue 25: couplings are finite reals in range, refused by name (lqft_lab.checks)."""
    with expect_error_naming(argument):
        make()
