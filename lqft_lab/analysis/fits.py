"""Least-squares fits of Monte Carlo results, with errors propagated to the parameters.

The one fit the lab needs so far is the dynamical critical exponent: autocorrelation times
along a line of constant physics scale as ``τ_int = α L^z`` (Wolff, hep-lat/0306017 sec. 1;
arXiv:1904.12072 sec. V), a straight line in ``log τ`` against ``log L``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._arrays import as_float_array, check_finite_result

__all__ = ["PowerLawFit", "fit_power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    """``y = alpha · x^z`` fitted to data with errors.

    Attributes:
        alpha, alpha_error: prefactor and its error.
        z, z_error: exponent and its error.
        cov: covariance of ``(log alpha, z)``.
        chi2, dof: the fit's χ² and degrees of freedom (``n - 2``).
        p_value: probability of a χ² at least this large if the model holds (NaN if
            ``dof = 0``: two points are fitted exactly, and no p-value exists).

    Calling a fit, ``fit(x)``, evaluates ``alpha · x^z`` at positive ``x``.
    """

    alpha: float
    alpha_error: float
    z: float
    z_error: float
    cov: np.ndarray
    chi2: float
    dof: int
    p_value: float

    def __call__(self, x):
        """``alpha · x^z`` at positive finite ``x`` (a number or an array).

        Raises:
            TypeError: for non-numeric ``x``.
            ValueError: for NaN, infinite or non-positive ``x`` (``x^z`` is not real there).
        """
        x = as_float_array(x, "x")
        if np.any(x <= 0):
            raise ValueError(f"x must be positive for a power law, got {x[x <= 0].ravel()[:5]}")
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            y = self.alpha * x**self.z
        check_finite_result("x", y)
        return y


def fit_power_law(x, y, y_error) -> PowerLawFit:
    """Weighted least-squares fit of ``y = alpha · x^z`` as a line in ``log y`` vs ``log x``.

    The errors of ``log y`` are ``y_error / y`` (linear propagation, fine while errors are
    a few percent); parameter errors are the standard ones from the inverse of the
    weighted normal matrix, not rescaled by ``χ²/dof`` (look at ``p_value`` instead).

    Args:
        x: positive abscissae, e.g. lattice sizes ``L`` (at least 2 distinct values).
        y: positive values, e.g. ``τ_int``.
        y_error: their positive errors.

    Raises:
        TypeError: for non-numeric input.
        ValueError: for NaN/inf, arrays that are not 1D of equal length, non-positive
            values, fewer than two distinct ``x``, or values whose ratios overflow float64
            (``y / y_error ≳ 1e154``, or a prefactor beyond ``1e308``).

    Example:
        >>> fit = fit_power_law([6, 8, 10], [2.0, 3.1, 4.4], [0.1, 0.15, 0.2])
        >>> fit.z, fit.z_error
    """
    x, y, dy = (as_float_array(v, name) for v, name in ((x, "x"), (y, "y"), (y_error, "y_error")))
    if not (x.ndim == y.ndim == dy.ndim == 1 and x.shape == y.shape == dy.shape):
        raise ValueError(
            f"x, y, y_error must be 1D of equal length, got {x.shape, y.shape, dy.shape}"
        )
    for name, values in (("x", x), ("y", y), ("y_error", dy)):
        if np.any(values <= 0):
            raise ValueError(
                f"x, y and y_error must all be positive for a power-law fit; {name} holds "
                f"{values[values <= 0][:5]}"
            )
    if len(np.unique(x)) < 2:
        raise ValueError("a power-law fit needs at least two distinct x")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        u, v, w = np.log(x), np.log(y), (y / dy) ** 2  # weights 1/σ² of log y
        A = np.stack([np.ones_like(u), u], axis=1)
        try:
            cov = np.linalg.inv(A.T @ (w[:, None] * A))
        except np.linalg.LinAlgError:
            cov = np.full((2, 2), np.nan)  # refused just below
        log_alpha, z = cov @ (A.T @ (w * v))
        chi2 = float(np.sum(w * (v - log_alpha - z * u) ** 2))
        alpha = float(np.exp(log_alpha))
        alpha_error = alpha * float(np.sqrt(cov[0, 0]))
        z_error = float(np.sqrt(cov[1, 1]))
    if not np.all(np.isfinite([*cov.ravel(), log_alpha, z, chi2, alpha_error, z_error])):
        raise ValueError(
            "y / y_error out of range for a weighted fit in float64: the weights "
            "(y / y_error)² under- or overflow, or x are too close together in log x"
        )
    check_finite_result("y", alpha)
    dof = len(x) - 2
    return PowerLawFit(
        alpha=alpha,
        alpha_error=alpha_error,
        z=float(z),
        z_error=z_error,
        cov=cov,
        chi2=chi2,
        dof=dof,
        p_value=float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"),
    )
