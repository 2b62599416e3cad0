"""Self-normalised importance sampling: expectation values under p from samples of q.

Contract: ``reweight(values, log_weights)`` takes per-sample observables ``O_i`` of shape
``(B,)`` drawn from ``q`` and ``logw_i = logp(x_i) - logq(x_i)`` (any constant offset, e.g. the
unknown ``log Z``, cancels), both numpy or torch, and returns ``(estimate, error)`` as Python
floats. The error is the delta-method (first-order) error for **independent** samples, as from
a flow; for correlated samples (a Markov chain) use :func:`lqft_lab.analysis.gamma_method` with
the derived observable ``f = <w O>/<w>`` instead.

References:
    A. B. Owen, "Monte Carlo theory, methods and examples" (2013), ch. 9 (self-normalised IS).
    K. A. Nicoli et al., Phys. Rev. E 101 (2020) 023304, arXiv:1910.13496.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_float_array, check_finite_result, check_log_weights

__all__ = ["reweight"]


def reweight(values, log_weights) -> tuple[float, float]:
    """Estimate ``<O>_p`` from samples of ``q`` with log importance weights ``logp - logq``.

    .. math:: \\bar O = \\frac{\\sum_i w_i O_i}{\\sum_i w_i}, \\qquad
              \\delta \\bar O = \\frac{\\sqrt{\\sum_i w_i^2 (O_i - \\bar O)^2}}{\\sum_i w_i}

    Weights are shifted by ``max(logw)`` before exponentiating, so the result is the same
    for any constant offset and does not overflow.

    Args:
        values: observable per sample, shape ``(B,)``.
        log_weights: ``logp - logq`` per sample, shape ``(B,)``; ``-inf`` (weight 0) allowed.

    Returns:
        ``(estimate, error)``; the error is 0 when only one sample has nonzero weight.

    Raises:
        TypeError: for non-numeric ``values`` or ``log_weights``.
        ValueError: for mismatched shapes, empty input, NaN/inf values, NaN/``+inf`` weights,
            all weights zero, or values so large (``|O| ≳ 1e154``) that the error overflows.

    Example:
        >>> reweight([1.0, 3.0], [0.0, 0.0])
        (2.0, 0.7071067811865476)
    """
    obs = as_float_array(values, "values")
    logw = check_log_weights(log_weights)
    if obs.shape != logw.shape:
        raise ValueError(
            f"values {obs.shape} and log_weights {logw.shape} must have the same shape (B,)."
        )
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        w = np.exp(logw - logw.max())  # in [0, 1], the largest weight is exactly 1
        norm = w.sum()
        mean = np.dot(w, obs) / norm
        error = np.sqrt(np.sum((w * (obs - mean)) ** 2)) / norm
    check_finite_result("values", mean, error)
    return float(mean), float(error)
