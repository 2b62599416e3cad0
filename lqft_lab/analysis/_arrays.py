"""Input conversion shared by the analysis modules: numpy or torch in, checked float64 out."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["as_float_array", "check_log_weights", "check_finite_result", "quiet_overflow"]


def as_float_array(data, name: str = "data", allow_inf: bool = False) -> np.ndarray:
    """Return ``data`` (numpy array, torch tensor, or nested sequence) as a float64 array.

    Torch tensors are detached and copied to the CPU; torch is never imported here.

    Args:
        data: array-like of real numbers.
        name: what to call the argument in error messages.
        allow_inf: accept ``±inf`` entries (NaN is always rejected).

    Raises:
        TypeError: for ``None``, strings, complex or non-numeric input.
        ValueError: for NaN (or infinite, unless ``allow_inf``) entries.
    """
    if data is None or isinstance(data, (str, bytes, dict)):
        raise TypeError(f"{name} must be an array of real numbers, got {type(data).__name__}.")
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch.Tensor
        data = data.detach().cpu()
        if data.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor of dtype {data.dtype}.")
        data = data.double().numpy()
    if np.iscomplexobj(data):
        raise TypeError(f"{name} must be real, got complex values.")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers ({err}).") from err
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at {int(np.isnan(arr).sum())} position(s).")
    if not allow_inf and np.isinf(arr).any():
        raise ValueError(f"{name} contains inf at {int(np.isinf(arr).sum())} position(s).")
    return arr


def check_log_weights(log_weights, name: str = "log_weights") -> np.ndarray:
    """Return log importance weights as a 1D float64 array, checked.

    ``-inf`` (weight zero) is allowed; NaN and ``+inf`` are not, and at least one
    weight must be nonzero.

    Raises:
        ValueError: for empty, non-1D, NaN, ``+inf`` or all ``-inf`` input.
    """
    logw = as_float_array(log_weights, name, allow_inf=True)
    if logw.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (B,), got shape {logw.shape}.")
    if logw.size == 0:
        raise ValueError(f"{name} is empty; need at least one sample.")
    if np.isposinf(logw).any():
        raise ValueError(f"{name} contains +inf: an infinite importance weight has no estimate.")
    if np.isneginf(logw).all():
        raise ValueError(f"all entries of {name} are -inf, so every weight is zero.")
    return logw


def check_finite_result(name: str, *values) -> None:
    """Refuse a result that overflowed float64 although every input was finite.

    Inputs near the float64 limit (``|x| ≳ 1e154`` once squared) can overflow in sums of
    squares; rather than return ``inf`` or NaN without a word, the entry point says so,
    naming the argument whose size caused it.

    Raises:
        ValueError: if any of ``values`` (numbers or arrays) is not finite.
    """
    for value in values:
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"{name} is too large for float64 arithmetic: the result overflowed to inf "
                f"or NaN; rescale {name} (divide by a typical magnitude) first."
            )


def quiet_overflow(fn):
    """Run ``fn`` with numpy's overflow warnings off: what overflows is refused by name
    (:func:`check_finite_result`) rather than warned about and returned."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return fn(*args, **kwargs)

    return wrapped
