"""Binning, jackknife and bootstrap errors: the resampling alternatives to the Γ-method.

Contract: time (the sample index) is axis 0; ``data`` is numpy or torch of shape ``(N, ...)``.
A ``statistic`` maps an array of (binned) samples ``(M, ...)`` to a scalar, e.g. ``np.mean``
or ``lambda b: V * (b[:, 1].mean() - b[:, 0].mean() ** 2)`` for ``(N, 2)`` data. Results are
Python floats. Binning with ``bin_size`` well above ``2 tau_int`` makes bins nearly
independent; the errors then approach the Γ-method's (with larger uncertainty).

References:
    B. Efron, "The jackknife, the bootstrap and other resampling plans", SIAM (1982).
    U. Wolff, hep-lat/0306017, Comput. Phys. Commun. 156 (2004) 143 (binning vs. Γ-method).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import checks
from ._arrays import as_float_array, check_finite_result, quiet_overflow

__all__ = ["bin_data", "jackknife", "bootstrap"]


def bin_data(data, bin_size: int) -> np.ndarray:
    """Average consecutive blocks of ``bin_size`` samples along axis 0.

    The last ``N mod bin_size`` samples are dropped.

    Args:
        data: samples of shape ``(N, ...)``.
        bin_size: samples per bin, a positive integer.

    Returns:
        Bin means of shape ``(N // bin_size, ...)``.

    Raises:
        TypeError: if ``bin_size`` is not an integer.
        ValueError: if ``bin_size < 1``, the data are 0-dimensional, hold NaN or inf, are
            so large that a bin mean overflows, or not even one bin fits.
    """
    if isinstance(bin_size, bool) or not isinstance(bin_size, int | np.integer):
        raise TypeError(f"bin_size must be an integer, got {type(bin_size).__name__}.")
    if bin_size < 1:
        raise ValueError(f"bin_size must be at least 1, got {bin_size}.")
    x = as_float_array(data)
    if x.ndim == 0:
        raise ValueError("data must have a sample axis 0, got a scalar.")
    n_bins = x.shape[0] // bin_size
    if n_bins < 1:
        raise ValueError(
            f"bin_size = {bin_size} exceeds the number of samples in data, {x.shape[0]}."
        )
    blocks = x[: n_bins * bin_size].reshape((n_bins, bin_size) + x.shape[1:])  # (M, b, ...)
    with np.errstate(over="ignore", invalid="ignore"):  # refused just below, by name
        means = blocks.mean(axis=1)
    check_finite_result("data", means)
    return means


def _binned(data, bin_size: int) -> np.ndarray:
    bins = bin_data(data, bin_size)
    if bins.shape[0] < 2:
        raise ValueError(
            f"resampling needs at least 2 bins; {bins.shape[0]} bin of size "
            f"{bin_size} fits in the data."
        )
    return bins


def _check_statistic(statistic) -> None:
    if not callable(statistic):
        raise TypeError(
            f"statistic must be a function of the bins returning a scalar, got "
            f"{type(statistic).__name__}."
        )


def _scalar(statistic: Callable, sample: np.ndarray) -> float:
    out = statistic(sample)
    if np.ndim(out) != 0:
        raise ValueError(
            f"statistic must return a scalar, got shape {np.shape(out)}; "
            "reduce over all axes (np.mean does) or index one component."
        )
    try:
        value = float(out)
    except (TypeError, ValueError) as err:
        raise ValueError(f"statistic must return a real number, got {out!r}.") from err
    if not np.isfinite(value):
        raise ValueError(
            f"statistic returned the non-finite value {value} on bins of shape "
            f"{sample.shape} (for finite data, an overflow: rescale the data)."
        )
    return value


def _row_means(bins: np.ndarray) -> np.ndarray:
    """Per-bin mean over all non-sample axes: np.mean of a subset of bins is their average."""
    return bins.reshape(bins.shape[0], -1).mean(axis=1)


@quiet_overflow
def jackknife(
    data, statistic: Callable[[np.ndarray], float] = np.mean, bin_size: int = 1
) -> tuple[float, float]:
    """Delete-one jackknife estimate and error of ``statistic`` over bins.

    With ``M`` bins and leave-one-out values ``θ_i``, the error is
    ``sqrt((M-1)/M Σ_i (θ_i - θ̄)²)`` and the estimate is bias-corrected,
    ``M θ(all) - (M-1) θ̄`` (identical to ``θ(all)`` for the mean).

    Args:
        data: samples of shape ``(N, ...)``, time first.
        statistic: maps bins ``(M', ...)`` to a scalar; ``np.mean`` takes a fast path,
            any other function is called ``M + 1`` times.
        bin_size: samples per bin; choose it ``≫ tau_int`` for Markov-chain data.

    Returns:
        ``(estimate, error)``.

    Raises:
        TypeError: for a ``statistic`` that is not callable, a ``bin_size`` that is not an
            integer, or non-numeric data.
        ValueError: for ``bin_size < 1``, fewer than 2 bins, NaN/inf data, a statistic
            that does not return a finite scalar, or data so large that the error overflows.
    """
    _check_statistic(statistic)
    bins = _binned(data, bin_size)
    m = bins.shape[0]
    full = _scalar(statistic, bins)
    if statistic is np.mean:
        r = _row_means(bins)
        theta = (r.sum() - r) / (m - 1)  # (M,) leave-one-out means
    else:
        keep = np.ones(m, dtype=bool)
        theta = np.empty(m)
        for i in range(m):
            keep[i] = False
            theta[i] = _scalar(statistic, bins[keep])
            keep[i] = True
    mean_theta = theta.mean()
    error = np.sqrt((m - 1) / m * np.sum((theta - mean_theta) ** 2))
    estimate = m * full - (m - 1) * mean_theta
    check_finite_result("data", estimate, error)
    return float(estimate), float(error)


@quiet_overflow
def bootstrap(
    data,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 1000,
    bin_size: int = 1,
    seed: int | np.random.Generator | None = None,
) -> tuple[float, float]:
    """Bootstrap error of ``statistic`` from ``n_boot`` resamplings of the bins.

    Args:
        data: samples of shape ``(N, ...)``, time first.
        statistic: maps bins ``(M, ...)`` to a scalar; ``np.mean`` takes a fast path.
        n_boot: number of bootstrap samples (at least 2).
        bin_size: samples per bin; choose it ``≫ tau_int`` for Markov-chain data.
        seed: an int seed ``>= 0`` or a ``numpy.random.Generator``; ``None`` draws fresh
            entropy.

    Returns:
        ``(statistic(bins), std of the bootstrap distribution)``.

    Raises:
        TypeError: for an ``n_boot``, ``bin_size`` or ``seed`` of the wrong kind, or a
            ``statistic`` that is not callable.
        ValueError: for ``n_boot < 2``, ``bin_size < 1``, a negative seed, fewer than 2
            bins, NaN/inf data, a statistic that does not return a finite scalar, or data so
            large that the spread overflows.
    """
    n_boot = checks.integer("n_boot", n_boot, low=2)
    _check_statistic(statistic)
    if seed is not None and not isinstance(seed, np.random.Generator):
        try:
            seed = checks.integer("seed", seed, low=0)
        except TypeError:
            raise TypeError(
                f"seed must be an integer >= 0, a numpy.random.Generator or None, got {seed!r}."
            ) from None
    bins = _binned(data, bin_size)
    m = bins.shape[0]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    idx = rng.integers(0, m, size=(n_boot, m))  # (n_boot, M)
    if statistic is np.mean:
        theta = _row_means(bins)[idx].mean(axis=1)
    else:
        theta = np.array([_scalar(statistic, bins[i]) for i in idx])
    full = _scalar(statistic, bins)
    spread = theta.std(ddof=1)
    check_finite_result("data", full, spread)
    return full, float(spread)
