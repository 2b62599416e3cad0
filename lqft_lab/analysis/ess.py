"""Effective sample sizes: of importance weights (flow samples) and of Markov chains.

Contract: ``ess(log_weights)`` takes ``logw = logp - logq`` of shape ``(B,)`` (numpy or torch;
any constant offset, e.g. the unknown ``log Z``, is irrelevant) and returns the *normalised*
ESS as a Python float in ``(0, 1]``: 1 for a perfect model, ``1/B`` when one sample carries all
the weight.

**Report ESS on a fresh batch of at least 4096 samples, never on the training batch.** The
ratio estimator is biased high at small ``B`` (rare large weights are missed): a model whose
batch-64 ESS reads 0.4 can have a true ESS near 0.1 (see DESIGN.md, "Data conventions").

References:
    A. Kong, "A note on importance sampling using standardized weights", Tech. Rep. 348,
    U. Chicago (1992).
    M. S. Albergo, G. Kanwar, P. E. Shanahan, Phys. Rev. D 100 (2019) 034515, arXiv:1904.12072.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .. import checks
from ._arrays import check_log_weights

__all__ = ["ess", "mcmc_ess"]


def ess(log_weights) -> float:
    """Normalised effective sample size of importance weights ``w = exp(logp - logq)``.

    .. math:: \\mathrm{ESS} = \\frac{(\\sum_i w_i)^2}{B \\sum_i w_i^2}
              = \\exp\\big(2\\,\\mathrm{LSE}(\\log w) - \\mathrm{LSE}(2\\log w) - \\log B\\big)

    computed in log space, after shifting ``log w`` by its maximum (the ratio does not
    depend on a constant offset), so neither weights spanning hundreds of orders of
    magnitude nor log-weights near the float64 limit (``1e308``, where ``2 log w`` would
    overflow) are a problem.

    Args:
        log_weights: ``logp - logq`` per sample, shape ``(B,)``, numpy or torch. ``-inf``
            (weight zero) is allowed.

    Returns:
        The ESS per sample, a float in ``(0, 1]``.

    Raises:
        ValueError: for empty input, NaN, ``+inf``, or all weights zero.

    Example:
        >>> ess([0.0, 0.0, 0.0, 0.0])
        1.0
    """
    logw = check_log_weights(log_weights)
    # Shifted, logw <= 0 and 2 logw cannot overflow upwards; where it overflows downwards
    # (below -9e307) the weight is 0 relative to the largest, which -inf says exactly.
    with np.errstate(over="ignore"):
        logw = logw - logw.max()
        log_ess = 2 * logsumexp(logw) - logsumexp(2 * logw) - np.log(logw.size)
    return float(min(1.0, np.exp(log_ess)))  # Cauchy–Schwarz bound, up to rounding


def mcmc_ess(n: int, tau_int: float) -> float:
    """Effective number of independent samples in a Markov chain, ``n / (2 tau_int)``.

    Uses the convention ``tau_int = 1/2`` for uncorrelated samples (as
    :func:`lqft_lab.analysis.gamma_method`), so iid data give ``n``.

    Args:
        n: number of samples in the chain.
        tau_int: integrated autocorrelation time of the observable of interest.

    Raises:
        TypeError: if ``n`` is not an integer or ``tau_int`` not a real number.
        ValueError: if ``n < 0`` or ``tau_int`` is not positive and finite.

    References:
        U. Wolff, hep-lat/0306017, Comput. Phys. Commun. 156 (2004) 143.
    """
    n = checks.integer("n", n, low=0)
    tau_int = checks.real("tau_int", tau_int, low=0, low_open=True)
    result = n / (2 * tau_int)
    if not np.isfinite(result):  # a tau_int below ~1e-308 against a large n
        raise ValueError(f"tau_int = {tau_int} is too small: n / (2 tau_int) overflows.")
    return float(result)
