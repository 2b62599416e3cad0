"""Lattice geometry: validated shapes, periodic shifts and checkerboard masks.

Conventions (see DESIGN.md): fields are batch first, ``(B, *lattice)``, with periodic
boundary conditions in every direction. ``shift(x, mu, +1)`` returns the field at the
neighbour ``x + mu``, i.e. ``shift(x, mu)[n] == x[n + mu]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lqft_lab import checks

__all__ = ["lattice_shape", "check_field", "shift", "checkerboard", "resolve_device"]


def lattice_shape(L: int | Sequence[int], dim: int = 2, *, name: str = "L") -> tuple[int, ...]:
    """Return a validated lattice shape, a tuple of Python ints.

    Args:
        L: one extent (used in every direction) or one extent per direction; numpy and
            torch integers are accepted, ``bool`` and floats are not.
        dim: number of dimensions when ``L`` is a single integer, ``>= 1``.
        name: the caller's name for ``L``, for the messages.

    Raises:
        TypeError: (also a ValueError, :class:`~lqft_lab.checks.ArgumentKindError`) if ``L``
            is neither an integer nor a sequence of them, or ``dim`` is not an integer.
        ValueError: for extents below 2, an empty sequence or ``dim < 1``.
    """
    wanted = "an integer >= 2 or a sequence of them (one lattice extent per direction)"
    if isinstance(L, (str, bytes)) or not isinstance(L, Sequence):
        try:
            extent = checks.integer(name, L)
        except TypeError:
            raise checks.ArgumentKindError(f"{name} must be {wanted}, got {L!r:.80}") from None
        shape = (extent,) * checks.integer("dim", dim, low=1)
    else:
        shape = tuple(L)
        if len(shape) == 0:
            raise ValueError(f"{name} must be {wanted}: a lattice needs at least one direction")
        try:
            shape = tuple(checks.integer(name, n) for n in shape)
        except TypeError:
            raise checks.ArgumentKindError(f"{name} must be {wanted}, got {L!r:.80}") from None
    if any(n < 2 for n in shape):
        raise ValueError(f"{name}: every lattice extent must be an integer >= 2, got {shape}")
    return shape


def check_field(
    x: torch.Tensor,
    ndim: int | None = None,
    name: str = "field",
    allow_complex: bool = False,
    finite: bool = False,
) -> None:
    """Check that ``x`` is a floating batched field ``(B, *lattice)``.

    ``allow_complex`` also accepts complex fields (SU(N) links ``(B, 2, L0, L1, N, N)``);
    ``finite`` also refuses NaN and ``±inf`` entries (what a sampler's starting field must
    satisfy). Half precision is refused (see :mod:`lqft_lab.checks`).

    Raises:
        TypeError: if ``x`` is not a tensor.
        ValueError: if it is not float32/float64 (or complex, where allowed), has the wrong
            number of dimensions, extents below 2, or (with ``finite``) non-finite entries.
    """
    checks.tensor(name, x, allow_complex=allow_complex, finite=False)
    if ndim is not None:
        ndim = checks.integer("ndim", ndim, low=1)
    if ndim is not None and x.dim() != ndim + 1:
        raise ValueError(
            f"{name} must have shape (B, {', '.join(['L'] * ndim)}), got {tuple(x.shape)}"
        )
    if x.dim() < 2:
        raise ValueError(f"{name} must be batched, shape (B, *lattice), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch, shape {tuple(x.shape)}")
    if any(n < 2 for n in x.shape[1:]):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: every lattice extent must be >= 2, "
            f"got {tuple(x.shape[1:])}"
        )
    if finite:
        checks.finite_tensor(name, x)


def shift(x: torch.Tensor, mu: int, step: int = 1) -> torch.Tensor:
    """Periodic shift along lattice direction ``mu`` (0-based, batch excluded).

    ``shift(x, mu, +1)[:, ..., n, ...] == x[:, ..., n + 1, ...]`` (the forward neighbour).

    Raises:
        TypeError: if ``x`` is not a tensor, ``mu`` or ``step`` not an integer.
        ValueError: for an ``x`` without lattice axes, or a ``mu`` that is not a lattice
            direction of ``x`` (``0 <= mu < x.dim() - 1``: negative values would roll the
            batch axis or count from the end).
    """
    if not isinstance(x, torch.Tensor):
        raise checks.ArgumentKindError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x must be batched, shape (B, *lattice), got {tuple(x.shape)}")
    mu = checks.integer("mu", mu, low=0, high=x.dim() - 2)
    step = checks.integer("step", step)
    return torch.roll(x, shifts=-step, dims=mu + 1)


def checkerboard(
    shape: Sequence[int],
    parity: int = 0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Checkerboard mask of a lattice: 1 where ``sum(n) % 2 == parity``, else 0.

    Args:
        shape: lattice extents; each must be even so the mask is consistent with
            periodic boundaries.
        parity: 0 (even sites) or 1 (odd sites).
        device: where to allocate the mask.
        dtype: of the mask (any torch dtype: ``torch.bool`` for indexing, a float to multiply).

    Raises:
        TypeError: for a ``shape`` that is not a sequence of integers, a non-integer
            ``parity``, a ``dtype`` that is not a ``torch.dtype``.
        ValueError: for odd extents or extents below 2, a parity other than 0 or 1, or a
            device that is not here.
    """
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise checks.ArgumentKindError(
            f"shape must be a sequence of lattice extents, got {shape!r:.80}"
        )
    shape = lattice_shape(tuple(shape), name="shape")
    if any(n % 2 for n in shape):
        raise ValueError(f"checkerboard masks need even lattice extents, got shape {shape}")
    parity = checks.integer("parity", parity, low=0, high=1)
    if device is not None:
        device = checks.torch_device("device", device)
    if not isinstance(dtype, torch.dtype):
        raise checks.ArgumentKindError(f"dtype must be a torch.dtype, got {dtype!r:.80}")
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in shape], indexing="ij")
    total = sum(grids)
    return ((total % 2) == parity).to(dtype)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when available (else CPU); check explicit requests.

    Raises:
        TypeError: for a ``device`` that is neither a string nor a ``torch.device``.
        ValueError: for ``"cuda"`` on a machine without CUDA (or a CUDA index beyond its
            devices), or an unknown name.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise checks.ArgumentKindError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r:.80}"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return checks.torch_device("device", dev)
