"""From Markov-chain measurements to estimates with honest errors (Γ-method).

A chain run measures the per-configuration primaries of :func:`phi4_primaries` (use
:func:`phi4_chain_observables` as ``run_chain(observables=...)``); :func:`estimate` turns
those series, shaped ``(T,)`` for one chain or ``(T, B)`` for ``B`` independent chains, into a
:class:`~lqft_lab.analysis.GammaResult` for a primary (``"absM"``) or a derived observable
(``"chi2"``, ``"E"``, ``"binder"``), the error including autocorrelations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

from .. import checks
from ..analysis import GammaResult, gamma_method
from ..analysis._arrays import as_float_array
from .scalar import (
    DERIVED,
    PRIMARY_FNS,
    _check_time_range,
    derived_observable,
    pole_mass_from_means,
)

__all__ = ["PRIMARIES", "phi4_chain_observables", "estimate", "pole_mass"]

PRIMARIES = tuple(PRIMARY_FNS)


def phi4_chain_observables(
    keys: Iterable[str] = PRIMARIES,
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Name → function ``(B, *lattice) -> (B,)`` for each primary, for ``run_chain``.

    Args:
        keys: names of primaries (a single name may be passed as a string).

    Raises:
        TypeError: if ``keys`` is not an iterable of strings.
        ValueError: for a name that is not a primary.
    """
    if isinstance(keys, str):
        keys = (keys,)
    try:
        keys = tuple(keys)
    except TypeError:
        raise TypeError(
            f"keys must be an iterable of primary names, got {type(keys).__name__}"
        ) from None
    strange = [k for k in keys if not isinstance(k, str)]
    if strange:
        raise TypeError(f"keys must be primary names (strings), got {strange!r}")
    unknown = set(keys) - set(PRIMARIES)
    if unknown:
        raise ValueError(f"keys: unknown primaries {sorted(unknown)}; choose from {PRIMARIES}")
    return {key: PRIMARY_FNS[key] for key in keys}


def _check_series(series) -> None:
    if not isinstance(series, Mapping):
        raise TypeError(
            f"series must be a mapping of primary name -> measurements (T,) or (T, B), got "
            f"{type(series).__name__}"
        )


def _column(series: Mapping, key: str) -> np.ndarray:
    """``series[key]`` as float64 ``(T, B)`` (``B = 1`` for one chain), checked."""
    label = f"series[{key!r}]"
    x = as_float_array(series[key], label)  # refuses NaN and inf, non-numeric data
    if x.ndim not in (1, 2) or x.shape[0] < 4 or (x.ndim == 2 and x.shape[1] < 1):
        raise ValueError(
            f"{label} must hold at least 4 measurements, shape (T,) or (T, B) with T >= 4, "
            f"got shape {x.shape}"
        )
    return x.reshape(x.shape[0], -1)  # (T, B)


def _window_factor(S) -> float:
    S = checks.real("S", S)
    if S <= 0:
        raise ValueError(f"S must be positive, got {S}.")
    return S


def estimate(
    series: Mapping[str, torch.Tensor], name: str, volume: int | None = None, S: float = 2.0
) -> GammaResult:
    """Γ-method estimate of a primary or derived φ⁴ observable from chain measurements.

    Args:
        series: primary name → measurements ``(T,)`` or ``(T, B)`` (``chain.observables``),
            torch or numpy, ``T >= 4``.
        name: a primary (``"absM"``, ``"M2"``, ...) or a derived observable in
            :data:`~lqft_lab.observables.scalar.DERIVED`.
        volume: lattice volume, needed for ``"chi2"``.
        S: Wolff's window parameter.

    Raises:
        TypeError: for a ``series`` that is not a mapping or holds non-numeric data, a
            ``name`` that is not a string, or a ``volume`` or ``S`` of the wrong kind.
        ValueError: for an unknown ``name``, missing primaries, series holding NaN or inf,
            of different shapes or with fewer than 4 measurements, a missing or non-positive
            ``volume`` for ``"chi2"``, ``S <= 0``, or means where the derived observable is
            not defined (e.g. the Binder cumulant at ``<M2> = 0``).

    Example:
        >>> chain = run_chain(hmc, x0, 2000, observables=phi4_chain_observables())
        >>> chi2 = estimate(chain.observables, "chi2", volume=64)
        >>> chi2.value, chi2.error, chi2.tau_int
    """
    _check_series(series)
    if not isinstance(name, str):
        raise TypeError(f"name must be a string naming an observable, got {name!r}")
    S = _window_factor(S)
    if volume is not None:
        volume = checks.integer("volume", volume, low=1)
    if name in DERIVED:
        keys, f = derived_observable(name, volume)
    elif name in series:
        keys, f = (name,), None
    else:
        raise ValueError(
            f"name {name!r}: no series for it; have {sorted(map(str, series))} and derived "
            f"{sorted(DERIVED)}"
        )
    missing = [k for k in keys if k not in series]
    if missing:
        raise ValueError(f"{name!r} needs the primaries {list(keys)}; missing {missing} in series")
    data = _stack(series, keys, name)  # (T, R, K)
    return _gamma(data, f, S, name)


def _stack(series, keys, name: str) -> np.ndarray:
    """The primaries ``keys`` as one float64 array ``(T, R, K)`` (``R = 1``: one chain)."""
    columns = [_column(series, k) for k in keys]
    shapes = {c.shape for c in columns}
    if len(shapes) != 1:
        raise ValueError(f"primaries for {name!r} have different shapes {sorted(shapes)} in series")
    return np.stack(columns, axis=-1)  # (T, R, K)


def _gamma(data: np.ndarray, f, S: float, name: str) -> GammaResult:
    """The Γ-method on checked data; its refusals (an undefined ``f``, overflow) name series."""
    try:
        return gamma_method(data, f=f, S=S)
    except ValueError as err:
        raise ValueError(f"{name!r} cannot be estimated from these series: {err}") from err


def _lattice(lattice) -> tuple[int, ...]:
    if isinstance(lattice, (str, bytes)) or not hasattr(lattice, "__len__"):
        raise TypeError(f"lattice must be a tuple of extents (L0, *spatial), got {lattice!r}")
    if len(lattice) < 1:
        raise ValueError("lattice must have at least one extent, got ()")
    extents = tuple(
        checks.integer(f"lattice[{i}]", n, low=3 if i == 0 else 2) for i, n in enumerate(lattice)
    )
    return extents


def pole_mass(
    series: Mapping[str, torch.Tensor],
    lattice: tuple[int, ...],
    t_range=None,
    S: float = 2.0,
) -> GammaResult:
    """Γ-method estimate of the pole mass ``m_p`` from chain measurements.

    Args:
        series: needs ``"M"`` and ``"c0" … "c{L0-1}"``; measure them with
            ``observables={**phi4_chain_observables(("M",)), **timeslice_observables(L0)}``.
        lattice: the lattice shape ``(L0, *spatial)``, ``L0 >= 3``, spatial extents ``>= 2``.
        t_range: time separations averaged over (default ``1 … L0/2 - 1``), integers in
            ``[1, L0 - 1]``, see :func:`~lqft_lab.observables.scalar.pole_mass_from_means`.
        S: Wolff's window parameter.

    Raises:
        TypeError: for a ``series`` that is not a mapping, a ``lattice`` that is not a tuple
            of integers, or a ``t_range`` or ``S`` of the wrong kind.
        ValueError: for missing primaries, series holding NaN or inf or of different shapes,
            extents out of range, an empty ``t_range`` or one outside ``[1, L0 - 1]``,
            ``S <= 0``, or a correlator too noisy for an effective mass.
    """
    _check_series(series)
    lattice = _lattice(lattice)
    L0, spatial = lattice[0], int(np.prod(lattice[1:], dtype=np.int64))
    t_range = _check_time_range(t_range, L0)
    S = _window_factor(S)
    keys = ("M", *(f"c{t}" for t in range(L0)))
    missing = [k for k in keys if k not in series]
    if missing:
        raise ValueError(
            f"the pole mass needs the primaries M, c0..c{L0 - 1} in series; missing {missing}"
        )

    def f(means):
        return pole_mass_from_means(means, L0, spatial, t_range)

    data = _stack(series, keys, "mp")  # (T, R, K)
    if not np.isfinite(f(data.mean(axis=(0, 1)))):
        raise ValueError(
            "the correlator in series is too noisy for an effective mass (an arccosh "
            "argument is < 1); measure longer or narrow t_range"
        )
    # The Γ-method also evaluates f on each replica's means (for its bias correction), where
    # many short chains can make the arccosh undefined. Averaging independent chains in
    # groups at each Monte Carlo time changes neither the means nor the normalised
    # autocorrelation function, and leaves the error as it was; halve the number of groups
    # until every group's correlator has an effective mass.
    while data.shape[1] > 1 and not all(np.isfinite(f(m)) for m in data.mean(axis=0)):
        R = data.shape[1] - data.shape[1] % 2
        data = 0.5 * (data[:, 0:R:2] + data[:, 1:R:2])  # an odd last chain is dropped
    return _gamma(data, f, S, "mp")
