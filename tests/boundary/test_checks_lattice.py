"""Boundary tests of the validators themselves (:mod:`lqft_lab.checks`) and of the lattice
geometry (:mod:`lqft_lab.lattice`): bad input is refused naming the argument, good input is
returned converted and correct."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given

from lqft_lab import checks
from lqft_lab.lattice import check_field, checkerboard, lattice_shape, resolve_device, shift

from .harness import (
    BOUNDARY,
    HALF,
    bad_fields,
    bad_integers,
    bad_reals,
    not_integers,
    not_reals,
    refuses,
)

COVERED = {
    "lqft_lab.checks.integer",
    "lqft_lab.checks.real",
    "lqft_lab.checks.positive",
    "lqft_lab.checks.boolean",
    "lqft_lab.checks.choice",
    "lqft_lab.checks.tensor",
    "lqft_lab.checks.finite_tensor",
    "lqft_lab.checks.field_dtype",
    "lqft_lab.checks.torch_device",
    "lqft_lab.checks.random_generator",
    "lqft_lab.checks.ArgumentKindError",
    "lqft_lab.lattice.lattice_shape",
    "lqft_lab.lattice.check_field",
    "lqft_lab.lattice.shift",
    "lqft_lab.lattice.checkerboard",
    "lqft_lab.lattice.resolve_device",
}

X = torch.arange(2 * 3 * 4, dtype=torch.float64).view(2, 3, 4)


# ------------------------------------------------------------------------------ regressions


@pytest.mark.parametrize("mu", [-1, -2, 2, 5])
def test_regression_shift_refuses_a_mu_outside_the_lattice_directions(mu):
    """``shift(x, mu=-1)`` rolled the batch axis (``dims=mu + 1 = 0``) without a word."""
    err = refuses(shift, "mu", X, mu)
    assert "0" in str(err) and "1" in str(err)  # says which directions there are


def test_regression_kind_errors_are_type_and_value_errors():
    """Counts refused with ValueError before the validators stay catchable as ValueError."""
    for call in (lambda: checks.integer("n", 2.5), lambda: checks.real("eps", "0.1")):
        with pytest.raises(TypeError) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, checks.ArgumentKindError)


def test_regression_real_refuses_integers_beyond_the_float_range():
    """``float(10**400)`` raised OverflowError from inside ``real``."""
    refuses(checks.real, "beta", "beta", 10**400)
    assert checks.real("beta", 10**400, finite=False) == math.inf
    assert checks.real("beta", -(10**400), finite=False) == -math.inf


def test_regression_choice_survives_arrays_and_refuses_bools_among_numbers():
    """``np.array([1, 2]) in options`` raised numpy's ambiguous-truth ValueError, unnamed."""
    refuses(checks.choice, "integrator", "integrator", np.array([1, 2]), ("leapfrog",))
    refuses(checks.choice, "integrator", "integrator", torch.tensor([1.0, 2.0]), (1, 2))
    refuses(checks.choice, "parity", "parity", True, (0, 1))
    assert checks.choice("flag", True, (True, False)) is True


@pytest.mark.parametrize("dtype", [*HALF, torch.complex32])
def test_regression_half_precision_has_one_message_even_where_only_complex_is_accepted(dtype):
    for kw in ({}, {"allow_complex": True}, {"complex_only": True}):
        err = refuses(checks.tensor, "U", "U", torch.zeros(2, dtype=dtype), **kw)
        assert "half precision is not supported" in str(err)


def test_regression_finite_tensor_refuses_non_tensors():
    refuses(checks.finite_tensor, "x", "x", [1.0, math.nan])


# --------------------------------------------------------------------------- the checks


@BOUNDARY
@given(value=bad_integers(low=1, high=10))
def test_integer_refuses_what_is_not_an_integer_in_range(value):
    refuses(checks.integer, "n_layers", "n_layers", value, low=1, high=10)


@BOUNDARY
@given(value=st.integers(1, 10), kind=st.sampled_from([int, np.int64, np.int32, torch.tensor]))
def test_integer_returns_a_python_int(value, kind):
    n = checks.integer("n", kind(value), low=1, high=10)
    assert type(n) is int and n == value


@BOUNDARY
@given(value=bad_reals(low=0, high=1, low_open=True))
def test_real_refuses_what_is_not_a_finite_real_in_range(value):
    refuses(checks.real, "jitter", "jitter", value, low=0, high=1, low_open=True)


@BOUNDARY
@given(
    value=st.floats(-1e300, 1e300),
    kind=st.sampled_from([float, np.float64, lambda v: torch.tensor(v, dtype=torch.float64)]),
)
def test_real_returns_a_python_float(value, kind):
    x = checks.real("x", kind(value))
    assert type(x) is float and x == pytest.approx(value)


@BOUNDARY
@given(value=bad_reals(low=0, low_open=True))
def test_positive_refuses_zero_negative_and_non_finite(value):
    refuses(checks.positive, "step_size", "step_size", value)


@BOUNDARY
@given(value=st.floats(min_value=5e-324, max_value=1e308))
def test_positive_accepts_every_positive_finite_float(value):
    assert checks.positive("step_size", value) == value


@BOUNDARY
@given(value=st.one_of(not_integers.filter(lambda v: not isinstance(v, bool)), st.integers()))
def test_boolean_refuses_what_is_not_true_or_false(value):
    refuses(checks.boolean, "switch", "switch", value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_boolean_returns_a_python_bool(value):
    out = checks.boolean("switch", value)
    assert type(out) is bool and out == bool(value)


@BOUNDARY
@given(value=st.one_of(st.text(max_size=5), not_integers, not_reals))
def test_choice_refuses_what_is_not_an_option(value):
    options = ("leapfrog", "omelyan")
    if value in options:
        assert checks.choice("integrator", value, options) == value
    else:
        refuses(checks.choice, "integrator", "integrator", value, options)


@BOUNDARY
@given(x=bad_fields(X).filter(lambda x: not (isinstance(x, torch.Tensor) and x.numel() == 0)))
def test_tensor_refuses_bad_fields(x):
    """(An empty batch is a field's problem, refused by ``check_field``, not a tensor's.)"""
    refuses(checks.tensor, "phi", "phi", x, ndim=3)


def test_tensor_checks_shape_dtype_and_device():
    refuses(checks.tensor, "p", "p", X, shape=(2, 3, 5))
    refuses(checks.tensor, "p", "p", X, dtype=torch.float32)
    refuses(checks.tensor, "p", "p", X, device="meta")
    refuses(checks.tensor, "p", "p", X.to(torch.complex128))
    refuses(checks.tensor, "p", "p", X, complex_only=True)
    assert checks.tensor("p", X, shape=(2, None, 4), dtype=torch.float64, device="cpu") is X
    z = X.to(torch.complex64)
    assert checks.tensor("U", z, complex_only=True) is z


@BOUNDARY
@given(bad=st.sampled_from([math.nan, math.inf, -math.inf]), at=st.integers(0, X.numel() - 1))
def test_finite_tensor_counts_the_bad_entries(bad, at):
    x = X.clone()
    x.view(-1)[at] = bad
    err = refuses(checks.finite_tensor, "phi", "phi", x)
    assert ("1 NaN" if math.isnan(bad) else "1 infinite") in str(err)
    assert checks.finite_tensor("phi", X) is X


@BOUNDARY
@given(
    dtype=st.one_of(
        st.sampled_from([torch.int64, torch.bool, torch.complex64, *HALF]),
        st.just("float32"),
        st.none(),
    )
)
def test_field_dtype_refuses_what_a_field_cannot_be(dtype):
    refuses(checks.field_dtype, "dtype", "dtype", dtype)
    assert checks.field_dtype("dtype", torch.complex64, allow_complex=True) == torch.complex64
    assert checks.field_dtype("dtype", torch.float32) == torch.float32


@BOUNDARY
@given(device=st.one_of(st.just("nowhere"), st.just("cuda:99"), st.just(0.5), st.none()))
def test_torch_device_refuses_devices_that_are_not_here(device):
    refuses(checks.torch_device, "device", "device", device)
    assert checks.torch_device("device", "cpu") == torch.device("cpu")


@BOUNDARY
@given(generator=st.one_of(st.just("seed"), st.integers(), st.just(torch.zeros(1))))
def test_random_generator_refuses_what_is_not_a_generator(generator):
    refuses(checks.random_generator, "generator", "generator", generator)
    g = torch.Generator()
    assert checks.random_generator("generator", g, "cpu") is g
    assert checks.random_generator("generator", None) is None
    refuses(checks.random_generator, "generator", "generator", g, "meta")  # a CPU generator


# ------------------------------------------------------------------------------ lattice


@BOUNDARY
@given(
    L=st.one_of(
        bad_integers(low=2),
        st.lists(st.one_of(bad_integers(low=2), st.integers(2, 9)), min_size=1).filter(
            lambda extents: any(
                not isinstance(n, int) or isinstance(n, bool) or n < 2 for n in extents
            )
        ),
        st.just([]),
        st.just("44"),
    )
)
def test_lattice_shape_refuses_bad_extents(L):
    if L == [2]:  # harness.not_integers draws [2]: one extent, a fine 1D lattice here
        assert lattice_shape(L) == (2,)
        return
    refuses(lattice_shape, "L", L)


@BOUNDARY
@given(dim=bad_integers(low=1))
def test_lattice_shape_refuses_bad_dimensions(dim):
    refuses(lattice_shape, "dim", 4, dim)


@BOUNDARY
@given(L=st.integers(2, 64), dim=st.integers(1, 4), extents=st.lists(st.integers(2, 9), min_size=1))
def test_lattice_shape_returns_python_ints(L, dim, extents):
    assert lattice_shape(L, dim) == (L,) * dim
    assert lattice_shape(np.int64(L), dim) == (L,) * dim
    assert lattice_shape(tuple(extents)) == tuple(extents)
    assert all(type(n) is int for n in lattice_shape([np.int32(n) for n in extents]))


@BOUNDARY
@given(x=bad_fields(X))
def test_check_field_refuses_bad_fields(x):
    refuses(check_field, "phi", x, ndim=2, name="phi", finite=True)


def test_check_field_refuses_small_extents_and_bad_ndim():
    refuses(check_field, "phi", torch.zeros(2, 1, 4), name="phi")
    refuses(check_field, "ndim", X, ndim=0)
    assert check_field(X, ndim=2, name="phi", finite=True) is None


@BOUNDARY
@given(mu=bad_integers(low=0, high=1), step=not_integers)
def test_shift_refuses_bad_directions_and_steps(mu, step):
    refuses(shift, "mu", X, mu)
    refuses(shift, "step", X, 0, step)


def test_shift_refuses_what_is_not_a_batched_field():
    refuses(shift, "x", [[1.0, 2.0]], 0)
    refuses(shift, "x", torch.zeros(4), 0)


@BOUNDARY
@given(mu=st.integers(0, 1), step=st.integers(-10, 10))
def test_shift_is_the_periodic_neighbour(mu, step):
    y = shift(X, mu, step)
    n = X.shape[mu + 1]
    for i in range(n):
        j = (i + step) % n
        taken = y.select(mu + 1, i)
        assert torch.equal(taken, X.select(mu + 1, j))  # shift(x, mu, s)[n] == x[n + s]


@BOUNDARY
@given(
    shape=st.one_of(
        st.just((3, 4)),
        st.just((4, 1)),
        st.just(4),
        st.just("44"),
        st.just(()),
        st.just((4.0, 4)),
    ),
)
def test_checkerboard_refuses_bad_shapes(shape):
    refuses(checkerboard, "shape", shape)


@BOUNDARY
@given(parity=bad_integers(low=0, high=1))
def test_checkerboard_refuses_bad_parities(parity):
    refuses(checkerboard, "parity", (4, 4), parity)


def test_checkerboard_refuses_bad_devices_and_dtypes():
    refuses(checkerboard, "device", (4, 4), device="nowhere")
    refuses(checkerboard, "dtype", (4, 4), dtype="bool")


@BOUNDARY
@given(shape=st.lists(st.sampled_from([2, 4, 6]), min_size=1, max_size=3), parity=st.integers(0, 1))
def test_checkerboard_masks_are_complementary(shape, parity):
    mask = checkerboard(shape, parity, dtype=torch.bool)
    other = checkerboard(shape, 1 - parity, dtype=torch.bool)
    assert torch.equal(mask ^ other, torch.ones(shape, dtype=torch.bool))
    assert int(mask.sum()) * 2 == math.prod(shape)


@BOUNDARY
@given(device=st.one_of(st.just("nowhere"), st.just(0.5), st.none(), st.just(["cpu"])))
def test_resolve_device_refuses_unknown_devices(device):
    refuses(resolve_device, "device", device)


def test_resolve_device_resolves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
