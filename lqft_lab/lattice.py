"""Lattice geometry: validated shapes, periodic shifts and checkerboard masks.

Conventions (see DESIGN.md): fields are batch first, ``(B, *lattice)``, with periodic
boundary conditions in every direction. ``shift(x, mu, +1)`` returns the field at the
neighbour ``x + mu``, i.e. ``shift(x, mu)[n] == x[n + mu]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["lattice_shape", "check_field", "shift", "checkerboard", "resolve_device"]


def lattice_shape(L: int | Sequence[int], dim: int = 2) -> tuple[int, ...]:
    """Return a validated lattice shape.

    Args:
        L: one extent (used in every direction) or one extent per direction.
        dim: number of dimensions when ``L`` is a single integer.

    Raises:
        ValueError: for extents below 2 or non-integers.
    """
    if isinstance(L, bool) or not isinstance(L, (int, Sequence)):
        raise ValueError(f"lattice extent must be an int or a sequence of ints, got {L!r}")
    shape = (L,) * dim if isinstance(L, int) else tuple(L)
    if len(shape) == 0:
        raise ValueError("a lattice needs at least one direction")
    for extent in shape:
        if isinstance(extent, bool) or not isinstance(extent, int) or extent < 2:
            raise ValueError(f"every lattice extent must be an integer >= 2, got {shape}")
    return shape


def check_field(
    x: torch.Tensor, ndim: int | None = None, name: str = "field", allow_complex: bool = False
) -> None:
    """Check that ``x`` is a floating batched field ``(B, *lattice)``.

    ``allow_complex`` also accepts complex fields (SU(N) links ``(B, 2, L0, L1, N, N)``).

    Raises:
        TypeError: if ``x`` is not a tensor.
        ValueError: if it is not floating point (or complex, where allowed), has the wrong
            number of dimensions or extents below 2.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or (allow_complex and x.is_complex())):
        kinds = (
            "float32, float64, complex64 or complex128" if allow_complex else "float32 or float64"
        )
        raise ValueError(f"{name} must be {kinds}, got {x.dtype}")
    if ndim is not None and x.dim() != ndim + 1:
        raise ValueError(
            f"{name} must have shape (B, {', '.join(['L'] * ndim)}), got {tuple(x.shape)}"
        )
    if x.dim() < 2:
        raise ValueError(f"{name} must be batched, shape (B, *lattice), got {tuple(x.shape)}")
    if any(n < 2 for n in x.shape[1:]):
        raise ValueError(f"every lattice extent must be >= 2, got {tuple(x.shape[1:])}")


def shift(x: torch.Tensor, mu: int, step: int = 1) -> torch.Tensor:
    """Periodic shift along lattice direction ``mu`` (0-based, batch excluded).

    ``shift(x, mu, +1)[:, ..., n, ...] == x[:, ..., n + 1, ...]`` (the forward neighbour).
    """
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

    Raises:
        ValueError: for odd extents or a parity other than 0 or 1.
    """
    shape = lattice_shape(tuple(shape))
    if any(n % 2 for n in shape):
        raise ValueError(f"checkerboard masks need even lattice extents, got {shape}")
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in shape], indexing="ij")
    total = sum(grids)
    return ((total % 2) == parity).to(dtype)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when available (else CPU); check explicit requests.

    Raises:
        ValueError: for ``"cuda"`` on a machine without CUDA, or an unknown name.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return dev
