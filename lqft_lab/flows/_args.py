"""Argument checks the flow configurations and builders share (on top of :mod:`lqft_lab.checks`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import checks
from .base import layer_checks_suspended

__all__ = ["MAX_L", "flag", "widths", "seed", "kernel_size", "config", "kernel_inputs"]


#: the largest lattice extent a flow is built for: its masks and convolution buffers grow as
#: L², and a checkpoint's metadata (which alone fixes L for U(1) and SU(N) flows) must not be
#: able to make ``load_checkpoint`` allocate gigabytes; L = 1024 is far beyond 2D studies.
MAX_L = 1024

flag = checks.boolean  # a switch: True or False only


def widths(name: str, value, *, allow_empty: bool = True) -> tuple[int, ...]:
    """A sequence of layer widths, each an integer >= 1, as a tuple (e.g. ``hidden=(8, 8)``).

    Raises:
        TypeError: ``value`` is not a list or tuple (``hidden=8`` instead of ``(8,)``), or an
            entry is not an integer.
        ValueError: an entry is below 1, or the sequence is empty where it may not be.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise checks.ArgumentKindError(
            f"{name} must be a sequence of integers >= 1 such as (8, 8), got {value!r}"
        )
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise checks.ArgumentKindError(f"{name} must hold integers >= 1, got {tuple(value)!r}")
        if v < 1:
            raise ValueError(f"{name} must hold integers >= 1, got {tuple(value)!r}")
        out.append(int(v))
    if not out and not allow_empty:
        raise ValueError(f"{name} must hold at least one width, got {tuple(value)!r}")
    return tuple(out)


def seed(value) -> int | None:
    """A seed for ``torch.manual_seed``: ``None`` or an integer in ``[0, 2**64)``."""
    if value is None:
        return None
    return checks.integer("seed", value, low=0, high=2**64 - 1)


def kernel_size(value, L: int) -> int:
    """A periodic convolution's kernel size on an ``L × L`` lattice (``L`` even): odd, and its
    half width ``kernel_size // 2`` at most ``L / 2``, so ``kernel_size <= L + 1``.

    A wider kernel reaches around the periodic lattice onto sites it already covers; the
    padding cannot be built (the flow would build and fail at its first sample), and for
    the line rotations of a U(1) flow, whose 1D convolutions run over ``L / 2`` lines, it is
    exactly the limit.
    """
    k = checks.integer("kernel_size", value, low=1)
    if k % 2 != 1:
        raise ValueError(f"kernel_size must be odd and positive, got {k}")
    if k > L + 1:
        raise ValueError(
            f"kernel_size must be odd and at most L + 1 = {L + 1} for the lattice size L = {L} "
            f"(a wider periodic kernel wraps around the lattice), got {k}"
        )
    return k


def config(config_cls, base, overrides: dict, what: str):
    """A builder's architecture: ``config_cls`` from ``base`` (or defaults) and overrides.

    Raises:
        TypeError: ``base`` is not a ``config_cls``, or an override is not one of its fields.
    """
    if base is not None and not isinstance(base, config_cls):
        raise checks.ArgumentKindError(
            f"config must be a {config_cls.__name__} or None, got {type(base).__name__}"
        )
    known = config_cls.__dataclass_fields__
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise checks.ArgumentKindError(
            f"{what} got unknown argument(s) {', '.join(map(repr, unknown))}; the architecture "
            f"fields are {', '.join(known)}"
        )
    return config_cls(**{**(base.to_dict() if base else {}), **overrides})


def kernel_inputs(kernel, name: str, x, params, *, channel_last: bool = False) -> None:
    """Check the arguments of an elementwise kernel call ``kernel(x, params)``.

    Channel-first kernels (the lattice ones) take ``x: (B, ...)`` and ``params:
    (B, n_params, ...)``; channel-last ones ``params: (..., n_params)`` broadcasting against
    ``x``. Metadata only (no host sync): kernels run inside every layer.

    Raises:
        TypeError: ``x`` or ``params`` is not a tensor.
        ValueError: a dtype other than float32/float64 or different between the two, a
            device mismatch, or shapes that do not fit ``kernel.n_params``.
    """
    if layer_checks_suspended():
        return
    checks.tensor(name, x, finite=False)
    checks.tensor("params", params, dtype=x.dtype, device=x.device, finite=False)
    n = kernel.n_params
    if channel_last:
        ok = params.dim() >= 1 and params.shape[-1] == n
        if ok:
            try:
                ok = torch.broadcast_shapes(params.shape[:-1], x.shape) == x.shape
            except RuntimeError:
                ok = False
        wanted = (
            f"(..., {n}) ({n} parameters per element) broadcasting to {name}'s shape "
            f"{tuple(x.shape)}"
        )
    else:
        ok = (
            x.dim() >= 1
            and params.dim() == x.dim() + 1
            and params.shape[1] == n
            and params.shape[0] == x.shape[0]
            and params.shape[2:] == x.shape[1:]
        )
        wanted = f"(B, {n}, ...) matching {name}'s shape {tuple(x.shape)}"
    if not ok:
        raise ValueError(f"params must have shape {wanted}, got {tuple(params.shape)}")
