"""Estimators of a coupling derivative ``d⟨O⟩/dβ`` from Monte Carlo draws (Feynman–Hellmann).

For ``p_β ∝ e^{β E}`` (a Wilson gauge action ``S = -β E``) the derivative of an expectation
value is the connected correlator ``d⟨O⟩/dβ = Cov(O, E)``. Every function here estimates it
from per-configuration numbers and returns a :class:`DerivativeEstimate`: value, error
(Wolff's Γ-method on the estimator's linearisation, so chains are handled; independent draws
give ``τ_int ≈ 1/2``), the variance per configuration ``n · error²`` with its own error, and
the ESS where importance weights enter.

Contract: inputs are numpy arrays or torch tensors of shape ``(N,)`` (independent draws) or
``(N, R)`` (``R`` chains, time first, as :func:`~lqft_lab.analysis.gamma_method`); the
arrays of one call share their shape. ``delta`` is a finite coupling step ``> 0``. Bad input
raises ``ValueError`` (or ``TypeError`` for the wrong kind) with a sentence.

The estimators, from the noisiest (at small ``δ``) to the least:

* :func:`independent_difference`: ``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ`` from two independent
  ensembles; its variance grows as ``1/δ²``;
* :func:`reweighted_difference`: the same difference from draws at ``β`` alone, by
  reweighting with ``e^{±δ E}``; its ``δ → 0`` limit is :func:`covariance_derivative`;
* :func:`flowed_difference`: draws at ``β`` carried by maps ``f_±`` towards ``β ± δ`` and
  reweighted, ``⟨O⟩_{β±δ} = ⟨w_± O(f_± U)⟩/⟨w_±⟩`` with
  ``log w_± = S_β(U) - S_{β±δ}(f_± U) + log J_±(U)``; exact for any invertible map, and with
  the identity it is :func:`reweighted_difference` term by term;
* :func:`stein_derivative`: the ``δ → 0`` limit of a flow ``U → U + ε v(U)``,
  ``d⟨O⟩/dβ = ⟨∇O·v⟩ + Cov(O, R)``, ``R = E + β ∇E·v + ∇·v`` (a Stein identity: unbiased
  for every ``v``, and ``v = 0`` is :func:`covariance_derivative`).

The finite-``δ`` estimators are central differences, biased by ``δ² d³⟨O⟩/dβ³ / 6`` against
the derivative; the self-normalised ones carry an ``O(1/N)`` bias too (report the ESS).

References:
    R. Abbott et al., arXiv:2401.10874 (correlated ensembles by flows); M. Lüscher,
    arXiv:0907.5491 (trivializing maps); U. Wolff, hep-lat/0306017 (Γ-method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import checks
from ._arrays import as_float_array
from .autocorr import _as_chains, _project, gamma_method
from .ess import ess

__all__ = [
    "DerivativeEstimate",
    "independent_difference",
    "covariance_derivative",
    "reweighted_difference",
    "flowed_difference",
    "stein_derivative",
]


@dataclass(frozen=True)
class DerivativeEstimate:
    """One estimate of ``d⟨O⟩/dβ``.

    Attributes:
        method: a short name (``"independent"``, ``"covariance"``, …).
        value, error: the estimate and its Γ-method error.
        n_configs: configurations it used (both ensembles for independent ones).
        tau_int: integrated autocorrelation time of its linearisation (1/2: independent).
        variance: ``n_configs · error²``, the variance per configuration (times ``2τ_int``
            for chains): what the comparisons of estimators are made in.
        variance_error: its error (fourth moment of the linearisation and ``τ_int``'s error).
        ess: the normalised ESS of the importance weights (the smaller of ``±δ``), NaN where
            no weights enter.
    """

    method: str
    value: float
    error: float
    n_configs: int
    tau_int: float
    variance: float
    variance_error: float
    ess: float = math.nan

    def pull(self, exact: float) -> float:
        """``(value - exact)/error``; ``±inf`` for a zero error away from ``exact``."""
        exact = checks.real("exact", exact)
        if self.error == 0:
            return 0.0 if self.value == exact else math.copysign(math.inf, self.value - exact)
        return (self.value - exact) / self.error


def _stack(named: dict) -> np.ndarray:
    """``(N, R, K)`` from ``K`` arrays of one shape ``(N,)`` or ``(N, R)``."""
    arrays = []
    for name, data in named.items():
        x = as_float_array(data, name)
        if x.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape (N,) or (N, R); got {x.shape}.")
        arrays.append((name, x.reshape(x.shape[0], -1)))
    first_name, first = arrays[0]
    for name, x in arrays[1:]:
        if x.shape != first.shape:
            raise ValueError(
                f"{name} has shape {x.shape} but {first_name} has {first.shape}: one shape."
            )
    return _as_chains(np.stack([x for _, x in arrays], axis=-1))


def _analyse(method: str, x: np.ndarray, f, ess_value: float = math.nan) -> DerivativeEstimate:
    """Γ-method of ``f`` of the means of ``x`` ``(N, R, K)``, with the variance per
    configuration and its error from the fourth moment of the linearised series.

    The series ``Σ_α ∂f/∂A_α (a_α - Ā_α)`` is made once (:func:`_project`, as
    :func:`gamma_method` makes it for a derived observable) and analysed as a primary; the
    value is ``f`` of the means with the replicas' bias correction."""
    series, value, bias = _project(x, f)
    result = gamma_method(series, warn=False)
    n = result.n_samples
    m2 = float((series**2).mean())
    m4 = float((series**4).mean())
    variance = n * result.error**2
    relative = 0.0
    if m2 > 0:
        relative = math.hypot(
            math.sqrt(max(m4 - m2**2, 0.0) / n) / m2, result.tau_int_error / result.tau_int
        )
    return DerivativeEstimate(
        method,
        value - bias,
        result.error,
        n,
        result.tau_int,
        variance,
        variance * relative,
        ess_value,
    )


def independent_difference(o_plus, o_minus, delta: float) -> DerivativeEstimate:
    """``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ`` from two independent ensembles.

    Each mean is analysed on its own (Γ-method); the errors add in quadrature. Per
    configuration (of both ensembles together) the variance is about
    ``Var O / δ²``: for ``O = ⟨cos θ_P⟩`` that is ``(d⟨cos θ_P⟩/dβ)/(V δ²)``.

    Args:
        o_plus, o_minus: ``O`` on the draws at ``β + δ`` and at ``β - δ``, ``(N,)`` or
            ``(N, R)`` each (the two may differ in length).
        delta: the half-step ``δ > 0``.

    Raises:
        TypeError, ValueError: for a non-numeric or malformed array or a bad ``delta``.
    """
    delta = checks.positive("delta", delta)
    plus = _analyse("plus", _stack({"o_plus": o_plus}), None)
    minus = _analyse("minus", _stack({"o_minus": o_minus}), None)
    value = (plus.value - minus.value) / (2 * delta)
    error = math.hypot(plus.error, minus.error) / (2 * delta)
    n = plus.n_configs + minus.n_configs
    variance = n * error**2
    # n error² = n (e₊² + e₋²)/4δ², each e² = variance/n_configs known to its relative error
    parts = [r.error**2 * r.variance_error / r.variance for r in (plus, minus) if r.variance > 0]
    variance_error = n * math.hypot(*parts, 0.0) / (4 * delta**2)
    tau = max(plus.tau_int, minus.tau_int)
    return DerivativeEstimate("independent", value, error, n, tau, variance, variance_error)


def covariance_derivative(o, e) -> DerivativeEstimate:
    """``Cov(O, E)``: the derivative from draws at ``β`` alone (``δ → 0`` reweighting).

    Args:
        o, e: ``O`` and the energy ``E = -∂S/∂β`` per configuration, one shape.

    Raises:
        TypeError, ValueError: for non-numeric or mismatched arrays.
    """
    x = _stack({"o": o, "e": e})
    x = x - x.mean(axis=(0, 1))  # Cov is shift invariant; centring avoids cancellation
    x = np.concatenate([x, x[..., :1] * x[..., 1:]], axis=-1)
    return _analyse("covariance", x, lambda m: m[2] - m[0] * m[1])


def flowed_difference(
    o_plus, log_w_plus, o_minus, log_w_minus, delta: float, method: str = "flowed"
) -> DerivativeEstimate:
    """``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ`` from draws at ``β`` carried by maps towards ``β ± δ``.

    ``⟨O⟩_{β±δ} = Σ w_± O(f_± U) / Σ w_±`` with ``log w_± = S_β(U) - S_{β±δ}(f_± U) +
    log J_±(U)``: exact for any invertible maps (up to the ``O(1/N)`` bias of
    self-normalisation); the better the maps, the closer ``w`` is to constant and the more
    of ``O(f_+ U)`` and ``O(f_- U)``'s fluctuations cancel in the difference.

    Args:
        o_plus, o_minus: ``O(f_± U)``, one shape ``(N,)`` or ``(N, R)``.
        log_w_plus, log_w_minus: the log-weights, the same shape; any constant offset cancels.
        delta: the half-step ``δ > 0``.
        method: the name the estimate carries.

    Returns:
        A :class:`DerivativeEstimate` with the ESS of the worse of the two weights.

    Raises:
        TypeError, ValueError: for non-numeric, non-finite or mismatched arrays (a weight
            of zero, ``log w = -inf``, included), a bad ``delta``.
    """
    delta = checks.positive("delta", delta)
    x = _stack(
        {"o_plus": o_plus, "log_w_plus": log_w_plus, "o_minus": o_minus, "log_w_minus": log_w_minus}
    )
    ess_value = min(ess(x[..., 1].ravel()), ess(x[..., 3].ravel()))
    shift = (x[..., 0].mean() + x[..., 2].mean()) / 2  # one shift: it cancels in the difference
    columns = []
    for k in (0, 2):
        o, logw = x[..., k], x[..., k + 1]
        w = np.exp(logw - logw.max())
        columns += [w, w * (o - shift)]
    y = np.stack(columns, axis=-1)
    return _analyse(method, y, lambda m: (m[1] / m[0] - m[3] / m[2]) / (2 * delta), ess_value)


def reweighted_difference(o, e, delta: float) -> DerivativeEstimate:
    """``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ`` from draws at ``β``, reweighted by ``e^{±δ E}``.

    :func:`flowed_difference` with identity maps. The weights' spread grows as
    ``δ² Var E ∝ δ² V``: the ESS falls with the volume.

    Args:
        o, e: ``O`` and ``E`` per configuration, one shape.
        delta: the half-step ``δ > 0``.

    Raises:
        TypeError, ValueError: for non-numeric or mismatched arrays or a bad ``delta``.
    """
    delta = checks.positive("delta", delta)
    x = _stack({"o": o, "e": e})
    o, e = x[..., 0], x[..., 1] - x[..., 1].mean()
    return flowed_difference(o, delta * e, o, -delta * e, delta, method="reweighted")


def stein_derivative(o, r, grad_term) -> DerivativeEstimate:
    """``⟨∇O·v⟩ + Cov(O, R)``: the linearised-flow (Stein) estimator of ``d⟨O⟩/dβ``.

    For ``p_β ∝ e^{βE}`` and any smooth vector field ``v`` on the configurations,
    ``⟨∇·(v p_β O)⟩ = 0`` gives ``⟨∇O·v⟩ + Cov(O, β∇E·v + ∇·v) = 0``; adding it to
    ``Cov(O, E)`` leaves the derivative unchanged and can cancel most of its noise.

    Args:
        o: ``O`` per configuration.
        r: ``R = E + β ∇E·v + ∇·v`` per configuration.
        grad_term: ``∇O·v`` per configuration (zero for a piecewise-constant ``O`` such as
            the topological charge; the boundary term dropped then is ``O(e^{-2β})``).

    Raises:
        TypeError, ValueError: for non-numeric or mismatched arrays.

    References:
        R. Abbott et al., arXiv:2401.10874; M. Lüscher, arXiv:0907.5491.
    """
    x = _stack({"o": o, "r": r, "grad_term": grad_term})
    centred = x[..., :2] - x[..., :2].mean(axis=(0, 1))
    y = np.concatenate([x[..., 2:], centred, centred[..., :1] * centred[..., 1:]], axis=-1)
    return _analyse("stein", y, lambda m: m[0] + m[3] - m[1] * m[2])
