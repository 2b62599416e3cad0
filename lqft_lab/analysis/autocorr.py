"""Statistical errors of Markov-chain averages with autocorrelations: Wolff's Γ-method.

Contract: time is axis 0. ``data`` has shape ``(N,)`` (one chain), ``(N, R)`` (``R``
independent replicas of equal length) or ``(N, R, K)`` (``K`` primary observables, combined
by a derived observable ``f``). Numpy arrays and torch tensors are accepted; results are Python
floats and numpy arrays. Convention: ``tau_int = 1/2`` for uncorrelated data, so that
``error**2 = 2 tau_int var / N``.

The implementation follows Wolff's UWerr as also implemented in pyerrors 2.x, and agrees with
``pyerrors.Obs.gamma_method`` to rounding for one chain (windowing, the bias-corrected τ_int
of eq. (49), the error of τ_int of eq. (42)). Documented differences:

* with replicas, fluctuations are taken about the **overall** mean (Wolff sec. 3, UWerr);
  pyerrors subtracts each replica's own mean, which drops the between-replica spread;
* derived observables use UWerr's numerical gradient (central differences with a step equal
  to each primary's naive error ``std/sqrt(N)``) where pyerrors differentiates exactly; the
  relative difference is ``O((error/mean)^2)``, far below the error's own uncertainty;
* for derived observables with ``R >= 2`` replicas the value is bias-corrected as in UWerr
  (``GammaResult.bias``); pyerrors returns ``f(means)`` uncorrected;
* UWerr also adds ``C_F/N`` to every Γ(t) before forming τ_int; pyerrors (and this module)
  divide by ``1 + 1/N`` instead. Error bars agree exactly, τ_int differs at ``O(τ_int/N)``.

References:
    U. Wolff, "Monte Carlo errors with less errors", Comput. Phys. Commun. 156 (2004) 143,
    hep-lat/0306017.
    N. Madras, A. D. Sokal, J. Stat. Phys. 50 (1988) 109.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from .. import checks
from ._arrays import as_float_array, check_finite_result, quiet_overflow

__all__ = ["GammaResult", "gamma_method", "integrated_autocorrelation_time", "autocorrelation"]


@dataclass(frozen=True)
class GammaResult:
    """The Γ-method analysis of one (possibly derived) observable.

    Attributes:
        value: estimate of the observable; for derived observables with ``R >= 2`` replicas,
            corrected for the ``O(1/N)`` bias of ``f(means)`` as in UWerr (see ``bias``).
        error: statistical error including autocorrelations, ``sqrt(2 tau_int Γ(0)(1+1/N)/N)``
            with the bias-corrected τ_int (eq. (49)).
        tau_int: integrated autocorrelation time at the window, bias-corrected (eq. (49)).
        tau_int_error: its error, ``2 tau_int sqrt((W + 1/2 - tau_int)/N)`` (eq. (42)).
        window: the automatic window ``W`` (eq. (52)); 0 for constant data.
        n_samples: total number of samples ``N`` summed over replicas.
        rho: normalised autocorrelation ``ρ(t) = Γ(t)/Γ(0)``, ``t = 0 .. N_r//2 - 1``.
        tau_int_running: ``τ_int(W) = 1/2 + Σ_{t=1}^{W} ρ(t)`` for every ``W`` (no bias correction).
        tau_int_running_error: eq. (42) at every ``W``, for an error band.
        window_converged: ``False`` when the criterion never triggered and the largest window
            ``N_r//2 - 1`` was used (a ``RuntimeWarning`` is issued too): the replicas are too
            short for their autocorrelation. For a single chain this is practically
            unreachable (at ``W ≈ N/2`` the noise term always wins); it happens with many
            short replicas.
        bias: the bias ``b_F`` subtracted from ``f(means)`` (0 for primaries or one replica).
    """

    value: float
    error: float
    tau_int: float
    tau_int_error: float
    window: int
    n_samples: int
    rho: np.ndarray = field(repr=False)
    tau_int_running: np.ndarray = field(repr=False)
    tau_int_running_error: np.ndarray = field(repr=False)
    window_converged: bool = True
    bias: float = 0.0


def _window_factor(S) -> float:
    """Wolff's ``S``: a finite real number > 0."""
    S = checks.real("S", S)
    if S <= 0:
        raise ValueError(f"S must be positive, got {S}.")
    return S


def _as_chains(data, name: str = "data") -> np.ndarray:
    """Return ``data`` as float64 of shape ``(N, R, K)``, checked."""
    x = as_float_array(data, name)
    if x.ndim not in (1, 2, 3):
        raise ValueError(f"{name} must have shape (N,), (N, R) or (N, R, K); got {x.shape}.")
    x = x.reshape(x.shape + (1,) * (3 - x.ndim))  # (N, R, K)
    if x.shape[0] < 4:
        raise ValueError(f"{name} has {x.shape[0]} samples per chain; the Γ-method needs >= 4.")
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"{name} has an empty replica or observable axis: shape {x.shape}.")
    return x


def _deltas(x: np.ndarray) -> np.ndarray:
    """Fluctuations about the overall mean, exactly zero for a constant observable."""
    delta = x - x.mean(axis=(0, 1))  # (N, R, K)
    constant = (x == x[:1, :1]).all(axis=(0, 1))  # (K,)
    delta[..., constant] = 0.0
    return delta


def _gamma(delta: np.ndarray, n_lags: int) -> np.ndarray:
    """Γ(t) for ``t < n_lags`` from fluctuations ``(N, R)``, averaged over all R (N - t) pairs."""
    n, r = delta.shape
    size = scipy.fft.next_fast_len(n + n_lags, real=True)  # zero padding: no wrap-around
    spec = scipy.fft.rfft(delta, n=size, axis=0)
    acf = scipy.fft.irfft(np.abs(spec) ** 2, n=size, axis=0)[:n_lags].sum(axis=1)
    return acf / (r * (n - np.arange(n_lags)))


def _call_f(f: Callable, means: np.ndarray) -> float:
    try:
        out = f(means)
    except Exception as err:  # user code: report it as bad input, keeping the cause
        raise ValueError(f"f failed on a vector of {means.size} means: {err!r}") from err
    if np.ndim(out) != 0:
        raise ValueError(f"f must return a scalar, got an array of shape {np.shape(out)}.")
    out = float(np.real_if_close(out))
    if not np.isfinite(out):
        raise ValueError(f"f returned the non-finite value {out} at the means {means}.")
    return out


def _project(x: np.ndarray, f: Callable | None) -> tuple[np.ndarray, float, float]:
    """Return the projected fluctuations ``(N, R)``, the value f(Ā) and the replica bias."""
    delta = _deltas(x)  # (N, R, K)
    abar = x.mean(axis=(0, 1))  # (K,)
    if f is None:
        return delta[..., 0], float(abar[0]), 0.0
    value = _call_f(f, abar)
    # UWerr: step = naive error per primary; constant primaries carry no fluctuation
    step = np.sqrt((delta**2).mean(axis=(0, 1)) / (x.shape[0] * x.shape[1]))
    grad = np.zeros(x.shape[2])
    for alpha in np.flatnonzero(step > 0):
        e = np.zeros_like(abar)
        e[alpha] = step[alpha]
        grad[alpha] = (_call_f(f, abar + e) - _call_f(f, abar - e)) / (2 * step[alpha])
    bias = 0.0
    n_rep = x.shape[1]
    if n_rep >= 2:  # UWerr's bias cancellation, b_F = (F_replicas - F_total)/(R - 1)
        f_rep = np.mean([_call_f(f, m) for m in x.mean(axis=0)])
        bias = (f_rep - value) / (n_rep - 1)
    return delta @ grad, value, bias


@quiet_overflow
def gamma_method(
    data, f: Callable[[np.ndarray], float] | None = None, S: float = 2.0, warn: bool = True
) -> GammaResult:
    """Mean, error, and integrated autocorrelation time of a Monte Carlo observable.

    Γ(t) is computed by FFT (fast for 10⁶ samples), summed over replicas and normalised by the
    number of pairs; the window ``W`` is the first ``W >= 1`` with
    ``g(W) = exp(-W/τ) - τ/sqrt(W N) < 0``, ``τ = S / ln((2τ_int(W)+1)/(2τ_int(W)-1))``.

    Args:
        data: samples of shape ``(N,)``, ``(N, R)`` or ``(N, R, K)``; time first.
        f: derived observable, a function of the length-``K`` vector of means returning a
            scalar; required when ``K > 1``. It is linearised (Wolff sec. 3): the projected
            series ``Σ_α ∂f/∂A_α (a_α(t) - Ā_α)`` is analysed with the standard windowing.
        S: Wolff's ``S = τ/τ_int`` guess for the window criterion; 1–2 is typical.
        warn: emit a ``RuntimeWarning`` when the window does not converge. Callers that
            expect it (frozen topology) pass ``False`` and read ``window_converged``.

    Returns:
        A :class:`GammaResult`. Constant data give ``error = 0``, ``tau_int = 0.5``.

    Raises:
        ValueError: for fewer than 4 samples per chain, NaN/inf, a bad shape, ``S <= 0`` or
            non-finite, an ``f`` that fails or does not return a finite scalar, or data so
            large (``|x| ≳ 1e150``) that the variance overflows float64.
        TypeError: if ``f`` is given but not callable, or ``S`` or ``data`` is not numeric.

    References:
        U. Wolff, hep-lat/0306017, Comput. Phys. Commun. 156 (2004) 143.

    Example:
        >>> res = gamma_method(chain)  # doctest: +SKIP
        >>> f"{res.value:.4f} ± {res.error:.4f}, tau_int = {res.tau_int:.1f}"  # doctest: +SKIP
    """
    S = _window_factor(S)
    if f is not None and not callable(f):
        raise TypeError(f"f must be a callable of the vector of means, got {type(f).__name__}.")
    x = _as_chains(data)
    n_r, n_rep, n_obs = x.shape
    if n_obs > 1 and f is None:
        raise ValueError(f"data has K = {n_obs} observables; pass f to combine them.")
    delta, value, bias = _project(x, f)
    n = n_r * n_rep
    w_max = n_r // 2
    gamma = _gamma(delta, w_max)
    check_finite_result("data", value, gamma)  # a NaN Γ(0) would pass as constant data

    if not gamma[0] > 10 * np.finfo(float).tiny:  # constant (or constant-projected) data
        rho = np.zeros(w_max)
        rho[0] = 1.0
        check_finite_result("data", value - bias)
        return GammaResult(
            value - bias, 0.0, 0.5, 0.0, 0, n, rho, np.full(w_max, 0.5), np.zeros(w_max), True, bias
        )

    rho = gamma / gamma[0]
    lags = np.arange(w_max)
    tau_run = np.cumsum(np.concatenate(([0.5], rho[1:])))
    dtau_run = 2 * tau_run * np.sqrt(np.abs(lags + 0.5 - tau_run) / n)  # eq. (42)
    dtau_run[0] = 0.0
    # as UWerr/pyerrors: τ_int(W) <= 1/2 is read as 1/2 (+eps) for the criterion
    tau_clip = np.where(tau_run <= 0.5, 0.5 + np.finfo(float).eps, tau_run)
    w = lags[1:]
    tau_exp = S / np.log((2 * tau_clip[1:] + 1) / (2 * tau_clip[1:] - 1))  # τ = S τ_int
    g = np.exp(-w / tau_exp) - tau_exp / np.sqrt(w * n)  # eq. (52)
    hits = np.flatnonzero(g < 0)
    converged = hits.size > 0
    window = int(w[hits[0]]) if converged else w_max - 1
    if not converged and warn:
        warnings.warn(
            f"Γ-method window did not converge up to W = {window}; the chain is "
            f"too short for its autocorrelation (tau_int ≳ {tau_run[-1]:.1f}).",
            RuntimeWarning,
            stacklevel=2,
        )
    tau_int = tau_clip[window] * (1 + (2 * window + 1) / n) / (1 + 1 / n)  # eq. (49)
    tau_err = 2 * tau_clip[window] * np.sqrt(abs(window + 0.5 - tau_clip[window]) / n)
    error = np.sqrt(2 * tau_int * gamma[0] * (1 + 1 / n) / n)
    check_finite_result("data", value - bias, error, tau_int, tau_err)
    return GammaResult(
        value=float(value - bias),
        error=float(error),
        tau_int=float(tau_int),
        tau_int_error=float(tau_err),
        window=window,
        n_samples=n,
        rho=rho,
        tau_int_running=tau_run,
        tau_int_running_error=dtau_run,
        window_converged=converged,
        bias=float(bias),
    )


def integrated_autocorrelation_time(data, S: float = 2.0) -> tuple[float, float]:
    """Return ``(tau_int, tau_int_error)`` of a chain ``(N,)`` or replicas ``(N, R)``.

    A shortcut for :func:`gamma_method`; see there for conventions (``tau_int = 1/2`` for
    uncorrelated data).

    Raises:
        ValueError, TypeError: as :func:`gamma_method`, and for data of another shape.
    """
    x = as_float_array(data)
    if x.ndim not in (1, 2):
        raise ValueError(f"data must have shape (N,) or (N, R), got {x.shape}.")
    res = gamma_method(x, S=S)
    return res.tau_int, res.tau_int_error


@quiet_overflow
def autocorrelation(data, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation function ``ρ(t) = Γ(t)/Γ(0)`` for ``t = 0 .. max_lag``.

    Args:
        data: a chain ``(N,)`` or replicas ``(N, R)``; replicas are averaged (fluctuations
            about the overall mean, Γ(t) normalised by the ``R (N - t)`` pairs).
        max_lag: largest lag, ``0 <= max_lag < N``; default ``N // 2 - 1``.

    Returns:
        ``ρ`` of shape ``(max_lag + 1,)``; constant data give ``ρ = (1, 0, 0, ...)``.

    Raises:
        TypeError: for non-numeric ``data`` or a ``max_lag`` that is not an integer.
        ValueError: for NaN/inf, a bad shape, fewer than 4 samples, ``max_lag`` outside
            ``[0, N)``, or data so large that the variance overflows float64.
    """
    x = as_float_array(data)
    if x.ndim not in (1, 2):
        raise ValueError(f"data must have shape (N,) or (N, R), got {x.shape}.")
    delta = _deltas(_as_chains(x))[..., 0]  # (N, R)
    n_r = delta.shape[0]
    if max_lag is None:
        max_lag = n_r // 2 - 1
    max_lag = checks.integer("max_lag", max_lag)
    if not 0 <= max_lag < n_r:
        raise ValueError(f"max_lag must satisfy 0 <= max_lag < N = {n_r}, got {max_lag}.")
    gamma = _gamma(delta, max_lag + 1)
    check_finite_result("data", gamma)  # a NaN Γ(0) would pass as constant data
    if not gamma[0] > 10 * np.finfo(float).tiny:
        return np.eye(1, max_lag + 1).ravel()
    rho = gamma / gamma[0]
    check_finite_result("data", rho)
    return rho
