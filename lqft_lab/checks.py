"""Boundary validators: every public entry point checks its arguments with these.

The contract: a refusal is a ``TypeError`` (the argument has the wrong kind: a float where an
integer is needed, a list where a tensor is; raised as :class:`ArgumentKindError`, which is
also a ``ValueError`` because the package refused such arguments with ``ValueError`` before
these validators existed) or a ``ValueError`` (the right kind, a value
outside what is accepted), and its message names the argument, quotes the value and says
what is accepted, e.g. ``n_layers must be an integer >= 1, got 2.5``. Each validator returns
the value converted to its plain Python (or tensor) form, so a caller writes
``n = integer("n_layers", n_layers, low=1)`` and uses ``n`` from then on.

Conventions the whole package follows through these helpers:

- ``bool`` is never an integer or a real number here (``True`` as a lattice extent is a
  mistake, not ``1``); numpy integers and floats are accepted.
- Real numbers must be finite unless ``finite=False`` is asked for explicitly.
- Fields are real ``float32`` or ``float64`` tensors (complex64/complex128 where a caller
  allows complex links). Half precision (``float16``, ``bfloat16``) is refused everywhere with
  the same message: the actions' quartic and exponential terms overflow it at couplings of
  interest (``φ⁴`` at ``|φ| ≳ 16``), so results would turn into ``inf`` without a word.
- A field handed to a sampler, a flow or an action must be finite: NaN or ``inf`` in a
  starting configuration is refused where it enters, not discovered later as NaN observables.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "integer",
    "real",
    "positive",
    "boolean",
    "choice",
    "tensor",
    "finite_tensor",
    "field_dtype",
    "torch_device",
    "random_generator",
    "ArgumentKindError",
    "REAL_DTYPES",
    "COMPLEX_DTYPES",
    "HALF_PRECISION",
]

#: Floating dtypes a field may have.
REAL_DTYPES = (torch.float32, torch.float64)
#: Complex dtypes a link field may have where complex is allowed (SU(N) links).
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
#: Dtypes refused everywhere, with one message (see the module docstring).
HALF_PRECISION = (torch.float16, torch.bfloat16, torch.complex32)


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer in ``[low, high]``.

    Accepts Python and numpy integers (anything with ``__index__``) but not ``bool`` and not
    floats, even integral ones: ``2.0`` layers is a sign of a computation gone wrong.

    Raises:
        TypeError: (:class:`ArgumentKindError`) if ``value`` is not an integer.
        ValueError: if it lies outside ``[low, high]``.
    """
    if type(value) is int and (low is None or value >= low) and (high is None or value <= high):
        return value  # the common case, without building a message (shift() calls this often)
    wanted = f"an integer {_bounds(low, high)}".rstrip()
    if isinstance(value, bool):
        raise ArgumentKindError(f"{name} must be {wanted}, got the bool {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise ArgumentKindError(f"{name} must be {wanted}, got {value!r:.80}") from None
    if (low is not None and n < low) or (high is not None and n > high):
        raise ValueError(f"{name} must be {wanted}, got {n}")
    return n


def real(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """Return ``value`` as a ``float`` after checking it is a real number within the bounds.

    ``low_open``/``high_open`` make a bound strict. NaN is always refused; ``±inf`` unless
    ``finite=False``.

    Raises:
        TypeError: (:class:`ArgumentKindError`) for ``bool``, complex numbers, strings, tensors
            with more than one element.
        ValueError: for NaN, infinities (when ``finite``) and values outside the bounds.
    """
    if type(value) is float and math.isfinite(value):  # the common case, no message built
        ok_low = low is None or (value > low if low_open else value >= low)
        ok_high = high is None or (value < high if high_open else value <= high)
        if ok_low and ok_high:
            return value
    bounds = _bounds(low, high, low_open, high_open)
    wanted = ("a finite real number" if finite else "a real number") + (
        f" {bounds}" if bounds else ""
    )
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentKindError(f"{name} must be {wanted}, got {value!r:.80}")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range: as infinite as it gets
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x) or (finite and math.isinf(x)):
        raise ValueError(f"{name} must be {wanted}, got {x}")
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {wanted}, got {x}")
    return x


def positive(name: str, value) -> float:
    """A finite real number ``> 0`` (a step size, a learning rate, a coupling that must be)."""
    return real(name, value, low=0, low_open=True)


def boolean(name: str, value) -> bool:
    """Return ``value`` as a ``bool``; only ``True``/``False`` (and numpy bools) are accepted.

    Raises:
        TypeError: for anything else (``"no"`` or ``0`` as a switch is a mistake).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ArgumentKindError(f"{name} must be True or False, got {value!r:.80}")


def choice(name: str, value, options: Iterable):
    """Return ``value`` if it is one of ``options``.

    Raises:
        ValueError: naming the accepted options.
    """
    options = tuple(options)
    try:
        ok = bool(value in options)
    except (TypeError, ValueError, RuntimeError):  # incomparable, or an array's ambiguous ==
        ok = False
    if isinstance(value, bool) and not any(isinstance(o, bool) for o in options):
        ok = False  # True == 1, but True is not an option among numbers
    if not ok:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r:.80}")
    return value


def _dtype_message(name: str, dtype: torch.dtype, allow_complex: bool) -> str:
    kinds = "float32, float64, complex64 or complex128" if allow_complex else "float32 or float64"
    if dtype in HALF_PRECISION:
        return (
            f"{name} must be {kinds}, got {dtype}: half precision is not supported (the "
            "actions overflow it); convert with .float() or .double()"
        )
    return f"{name} must be {kinds}, got {dtype}"


def tensor(
    name: str,
    x,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    allow_complex: bool = False,
    complex_only: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """Check a floating (or complex) tensor and return it unchanged.

    Args:
        name: the argument's name, for the message.
        x: the tensor.
        ndim: required number of dimensions, counting every axis (batch included).
        shape: required shape; ``None`` entries match any extent.
        allow_complex: also accept complex64/complex128.
        complex_only: accept only complex64/complex128.
        dtype: the one dtype required (e.g. a flow's parameter dtype).
        device: the device required (e.g. a flow's); CUDA indices are compared only when
            both name one.
        finite: refuse NaN and ``±inf`` entries.

    Raises:
        TypeError: if ``x`` is not a tensor.
        ValueError: for a wrong dtype (half precision always), dimension count, shape,
            device, or non-finite entries.
    """
    if not isinstance(x, torch.Tensor):
        raise ArgumentKindError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype in HALF_PRECISION:  # one message, whatever else the caller accepts
        raise ValueError(_dtype_message(name, x.dtype, allow_complex or complex_only))
    if complex_only:
        if x.dtype not in COMPLEX_DTYPES:
            raise ValueError(f"{name} must be complex64 or complex128, got {x.dtype}")
    elif x.dtype not in REAL_DTYPES + (COMPLEX_DTYPES if allow_complex else ()):
        raise ValueError(_dtype_message(name, x.dtype, allow_complex))
    if dtype is not None and x.dtype != dtype:
        raise ValueError(
            f"{name} has dtype {x.dtype} but {dtype} is required here (the model's dtype); "
            f"convert with .to({dtype})"
        )
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if shape is not None and (
        x.dim() != len(shape)
        or any(s is not None and s != n for s, n in zip(shape, x.shape, strict=True))
    ):
        wanted = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(x.shape)}")
    if device is not None:
        want = torch.device(device)
        if x.device.type != want.type or (
            want.index is not None and x.device.index is not None and want.index != x.device.index
        ):
            raise ValueError(
                f"{name} is on {x.device} but {want} is required here; "
                f"move it with .to({str(want)!r})"
            )
    if finite:
        finite_tensor(name, x)
    return x


def finite_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """Refuse a tensor holding NaN or ``±inf``, saying how many entries are bad.

    Raises:
        TypeError: if ``x`` is not a tensor.
        ValueError: naming the argument and the count of NaN and infinite entries.
    """
    if not isinstance(x, torch.Tensor):
        raise ArgumentKindError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            n_nan = int(torch.isnan(x).sum())
            n_inf = int(bad.sum()) - n_nan
            raise ValueError(
                f"{name} must be finite, got {n_nan} NaN and {n_inf} infinite entries "
                f"(of {x.numel()})"
            )
    return x


class ArgumentKindError(TypeError, ValueError):
    """An argument of the wrong kind (a float where an integer is needed, a list where a
    tensor is). A ``TypeError``, and a ``ValueError`` too: before these validators the
    package refused such arguments with ``ValueError``, and callers that catch it keep
    working."""


def field_dtype(name: str, value, *, allow_complex: bool = False) -> torch.dtype:
    """Return ``value`` if it is a dtype a field may have (``float32``/``float64``, and
    ``complex64``/``complex128`` with ``allow_complex``); half precision gets the one message
    of :func:`tensor`.

    Raises:
        TypeError: if ``value`` is not a ``torch.dtype``.
        ValueError: for any other dtype (integers, bool, half precision).
    """
    if not isinstance(value, torch.dtype):
        raise ArgumentKindError(f"{name} must be a torch.dtype, got {value!r:.80}")
    if value not in REAL_DTYPES + (COMPLEX_DTYPES if allow_complex else ()):
        raise ValueError(_dtype_message(name, value, allow_complex))
    return value


def torch_device(name: str, value) -> torch.device:
    """Return ``value`` as a ``torch.device`` that exists on this machine.

    Accepts ``torch.device`` objects and strings such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Raises:
        TypeError: if ``value`` is neither a string nor a ``torch.device``.
        ValueError: for a string torch cannot parse, or a CUDA device that is not here.
    """
    if not isinstance(value, (str, torch.device)):
        raise ArgumentKindError(
            f"{name} must be a device name such as 'cpu' or 'cuda', got {value!r:.80}"
        )
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"{name} must be a device name such as 'cpu' or 'cuda', got {value!r}"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} is {value!r} but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name} is {value!r} but only {torch.cuda.device_count()} CUDA devices exist"
            )
    return device


def random_generator(name: str, value, device: torch.device | str | None = None):
    """Return ``value`` if it is ``None`` or a ``torch.Generator`` (on ``device``'s type, when
    given: a CPU generator cannot draw on a GPU, nor the reverse).

    Raises:
        TypeError: if ``value`` is neither ``None`` nor a ``torch.Generator``.
        ValueError: for a generator on another kind of device than ``device``.
    """
    if value is None:
        return None
    if not isinstance(value, torch.Generator):
        raise ArgumentKindError(f"{name} must be a torch.Generator or None, got {value!r:.80}")
    if device is not None and torch.device(device).type != value.device.type:
        raise ValueError(
            f"{name} is on {value.device} but draws are made on {torch.device(device)}; "
            f"create it with torch.Generator(device={str(torch.device(device).type)!r})"
        )
    return value
