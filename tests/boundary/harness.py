"""What every boundary test shares: the contract, strategies of bad and edge-case inputs.

The contract (issue: "every bad input gets a clear error"): called with a drawn input, a
public entry point either

- raises ``TypeError`` or ``ValueError`` (the documented exceptions of
  :mod:`lqft_lab.checks`) whose message names the offending argument, or
- returns a result whose numbers are all finite (and, where the test knows it, correct).

Anything else fails: another exception type (``RuntimeError`` from inside torch,
``AttributeError``, ``KeyError``, ``IndexError``, ``ZeroDivisionError`` …), a refusal that
does not say which argument, a NaN or ``inf`` in what comes back, or an example that runs
past the deadline (a hang).

Each ``test_*.py`` in this folder lists the public names it covers in ``COVERED``;
``test_coverage.py`` fails when a name in some package's ``__all__`` is covered nowhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

#: Hypothesis settings for the whole folder: few examples (the folder runs in CI in a couple
#: of minutes), a per-example deadline that turns a hang into a failure, no database (CI
#: starts from a clean clone anyway, and a local one would make runs differ).
BOUNDARY = settings(
    max_examples=25,
    deadline=5000,  # ms; far above a refusal or a tiny-lattice call on a loaded 2-core box
    database=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ACCEPTED_ERRORS = (TypeError, ValueError)


def names_argument(message: str, argument: str | Iterable[str]) -> bool:
    """Whether ``message`` names ``argument`` (or one of several) as a word."""
    names = [argument] if isinstance(argument, str) else list(argument)
    return any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message) for n in names)


def refuses(call: Callable, argument: str | Iterable[str], *args, **kwargs) -> Exception:
    """Assert that ``call(*args, **kwargs)`` raises TypeError/ValueError naming ``argument``.

    Returns the exception, so a test can check more of its message.
    """
    try:
        result = call(*args, **kwargs)
    except ACCEPTED_ERRORS as err:
        assert names_argument(str(err), argument), (
            f"{type(err).__name__} does not name {argument!r}: {err}"
        )
        return err
    raise AssertionError(f"accepted {argument!r} and returned {summary(result)}")


def refused_or_finite(call: Callable, argument: str | Iterable[str], *args, **kwargs):
    """The contract for a drawn input that may or may not be acceptable.

    Returns the result when the call returned (after checking it is finite), ``None`` when
    it refused properly.
    """
    try:
        result = call(*args, **kwargs)
    except ACCEPTED_ERRORS as err:
        assert names_argument(str(err), argument), (
            f"{type(err).__name__} does not name {argument!r}: {err}"
        )
        return None
    assert_finite(result)
    return result


def assert_finite(result, where: str = "result") -> None:
    """Every number in ``result`` (tensors, arrays, numbers, tuples, lists, dicts and
    dataclass-like objects' public fields) is finite."""
    for path, value in _numbers(result, where):
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() or value.is_complex():
                assert bool(torch.isfinite(value).all()), f"{path} holds NaN or inf"
        elif isinstance(value, np.ndarray):
            if np.issubdtype(value.dtype, np.inexact):
                assert np.isfinite(value).all(), f"{path} holds NaN or inf"
        elif isinstance(value, (float, complex)):
            assert math.isfinite(abs(value)), f"{path} is {value}"


def _numbers(value, path: str, depth: int = 0):
    if depth > 4:
        return
    if isinstance(value, (torch.Tensor, np.ndarray, float, complex)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]", depth + 1)
    elif hasattr(value, "__dataclass_fields__"):
        for k in value.__dataclass_fields__:
            yield from _numbers(getattr(value, k, None), f"{path}.{k}", depth + 1)


def summary(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor {tuple(value.shape)} {value.dtype}"
    return repr(value)[:200]


# --- strategies ---------------------------------------------------------------------------

#: Things that are not integers at all, or integers of the wrong kind.
not_integers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.just([2]),
)

#: Things that are not real numbers (NaN and inf are: they are drawn by ``non_finite``).
not_reals = st.one_of(
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.complex_numbers(min_magnitude=1e-3, max_magnitude=10).filter(lambda z: z.imag != 0),
    st.just([1.0]),
)

non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def integers_outside(low: int | None = None, high: int | None = None) -> st.SearchStrategy:
    """Integers below ``low`` or above ``high`` (huge ones included)."""
    parts = []
    if low is not None:
        parts.append(st.integers(max_value=low - 1))
    if high is not None:
        parts.append(st.integers(min_value=high + 1))
    return st.one_of(*parts)


def bad_integers(low: int | None = None, high: int | None = None) -> st.SearchStrategy:
    """Anything that should be refused where an integer in ``[low, high]`` is needed."""
    if low is None and high is None:
        return not_integers
    return st.one_of(not_integers, integers_outside(low, high))


def bad_reals(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> st.SearchStrategy:
    """Anything that should be refused where a finite real in the bounds is needed."""
    parts = [not_reals, non_finite]
    if low is not None:
        below = st.floats(
            max_value=low, exclude_max=not low_open, allow_nan=False, allow_infinity=False
        )
        parts.append(below)
    if high is not None:
        parts.append(
            st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False)
        )
    return st.one_of(*parts)


HALF = (torch.float16, torch.bfloat16)
INTEGER_DTYPES = (torch.int64, torch.int32, torch.bool)


@st.composite
def poisoned(draw, like: torch.Tensor) -> torch.Tensor:
    """A copy of ``like`` with one to three entries set to NaN or ``±inf``."""
    x = like.clone(memory_format=torch.contiguous_format)  # reshape(-1) must be a view
    flat = x.view(-1)
    n = draw(st.integers(1, min(3, flat.numel())))
    for _ in range(n):
        i = draw(st.integers(0, flat.numel() - 1))
        bad = draw(non_finite)
        flat[i] = complex(bad, 0) if x.is_complex() else bad
    return x


@st.composite
def bad_fields(draw, like: torch.Tensor) -> torch.Tensor:
    """Something that must be refused where a field shaped and typed as ``like`` is needed:
    non-finite entries, half precision, an integer dtype, a dimension missing or added, an
    empty batch, or not a tensor."""
    kind = draw(st.sampled_from(["poisoned", "half", "integer", "fewer", "more", "empty", "list"]))
    if kind == "poisoned":
        return draw(poisoned(like))
    if kind == "half":
        return (
            like.to(draw(st.sampled_from(HALF)))
            if not like.is_complex()
            else like.to(torch.complex32)
        )
    if kind == "integer":
        return like.real.to(draw(st.sampled_from(INTEGER_DTYPES)))
    if kind == "fewer":
        return like[0]
    if kind == "more":
        return like.unsqueeze(-1)
    if kind == "empty":
        return like[:0]
    return like.tolist()


def expect_error_naming(argument: str):
    """``pytest.raises`` for TypeError/ValueError whose message names ``argument``."""
    return pytest.raises(ACCEPTED_ERRORS, match=rf"(?<![\w]){re.escape(argument)}(?![\w])")
