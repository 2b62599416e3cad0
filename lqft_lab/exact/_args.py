"""Argument checks shared by the exact references: each refusal names the argument.

Messages keep the wording the references always had (``beta must be finite and >= 0``,
``every extent … must be an integer >= 2``), so a ``ValueError`` is raised for any number
outside what is accepted and a ``TypeError`` only for arguments of the wrong kind altogether
(a string where a coupling is needed), as in :mod:`lqft_lab.checks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

#: Largest lattice extent accepted: far beyond any lattice a finite-volume reference is
#: needed for (the infinite-volume limits have their own functions), and small enough that
#: every volume is an exact float64 integer.
MAX_EXTENT = 2**20


def lattice(
    name: str, L, *, dim: int | None = 2, square_dim: int = 2, max_volume: int | None = None
) -> tuple[int, ...]:
    """Return ``L`` as a lattice shape after checking it.

    Args:
        name: the argument's name, for the message (``"L"``, ``"shape"``).
        L: one extent (an ``L × … × L`` lattice of ``square_dim`` directions) or one extent
            per direction; extents are integers in ``[2, MAX_EXTENT]``.
        dim: the number of directions required (``None``: any).
        square_dim: directions of the lattice an integer ``L`` stands for.
        max_volume: largest number of sites accepted (the references that build arrays of
            the lattice's size).

    Raises:
        TypeError: if ``L`` is neither an integer nor a sequence.
        ValueError: for extents that are not integers in range, the wrong number of
            directions or too large a volume.
    """
    if isinstance(L, bool) or not isinstance(L, (Integral, Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be an integer >= 2 or a sequence of them (one per direction), got {L!r}"
        )
    shape = (L,) * square_dim if isinstance(L, Integral) else tuple(L)
    if not shape:
        raise ValueError(f"{name} needs at least one direction, got {L!r}")
    for extent in shape:
        if (
            isinstance(extent, bool)
            or not isinstance(extent, Integral)
            or not 2 <= extent <= MAX_EXTENT
        ):
            raise ValueError(
                f"every extent of {name} must be an integer >= 2 (and <= {MAX_EXTENT}), "
                f"got {shape!r}"
            )
    shape = tuple(int(n) for n in shape)
    if dim is not None and len(shape) != dim:
        raise ValueError(f"{name} must be a {dim}D lattice, got shape {shape}")
    if max_volume is not None and math.prod(shape) > max_volume:
        raise ValueError(
            f"{name} = {shape} has {math.prod(shape)} sites; these references build arrays "
            f"of the lattice's size and accept at most {max_volume}"
        )
    return shape


def coupling(name: str, value, *, high: float | None = None, why: str = "") -> float:
    """Return ``value`` as a float after checking it is a finite real ``>= 0`` (``<= high``).

    Raises:
        TypeError: for anything but a real number (``bool`` included).
        ValueError: for NaN, infinities, negative values or values above ``high``.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be finite and >= 0 and at most {high:g}{why}, got {x}")
    return x


def group_rank(N, *, high: int = 100) -> int:
    """``N`` of SU(N): an integer in ``[2, high]``.

    Raises:
        TypeError: for anything but a number.
        ValueError: for numbers that are not integers in range (``2.5`` included, as the
            SU(N) references always did).
    """
    if isinstance(N, bool) or not isinstance(N, Real):
        raise TypeError(f"N must be an integer >= 2 (the group SU(N)), got {N!r}")
    if not isinstance(N, Integral) or N < 2:
        raise ValueError(f"N must be an integer >= 2 (the group SU(N)), got {N!r}")
    if N > high:
        raise ValueError(
            f"N must be an integer >= 2 and <= {high} for the exact SU(N) references "
            f"(|Δ|² reaches N^N, which overflows float64 beyond N ≈ 143), got {N}"
        )
    return int(N)
