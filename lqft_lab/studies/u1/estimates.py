"""What a normalised flow measures on fresh samples: ``log Z`` and the charge distribution.

A flow's ``logq`` is a density with respect to ``dθ`` on ``[-π, π)^{n_links}``, while
:func:`lqft_lab.exact.u1_log_z` is normalised to the Haar measure ``dθ/2π`` per link, so
``E_q[e^{-S}/q] = Z · (2π)^{n_links}``; :func:`log_z_estimate` removes that factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import checks, exact
from ...actions import U1WilsonAction
from ...observables import topological_charge
from .. import _checks

__all__ = [
    "LogZEstimate",
    "log_z_estimate",
    "ChargeDistribution",
    "charge_distribution",
    "charge_table",
]


@dataclass(frozen=True)
class LogZEstimate:
    """Importance-sampling estimate of ``log Z`` (Haar normalisation, as :func:`u1_log_z`).

    Attributes:
        value: ``log Ẑ``.
        error: its statistical error (delta method, ``sqrt((1/ESS - 1)/N)`` for ESS per
            sample; the ``O(1/N)`` bias of the logarithm is far below it).
        ess: ESS per sample of the weights.
        n: number of fresh samples.
        lebesgue_offset: ``n_links · log 2π``, subtracted from ``log ⟨e^{-S}/q⟩``.
    """

    value: float
    error: float
    ess: float
    n: int
    lebesgue_offset: float

    def __post_init__(self):
        checks.integer("n", self.n, low=1)


@torch.no_grad()
def log_z_estimate(
    model, action, n_samples: int, generator=None, batch_size: int = 1024
) -> LogZEstimate:
    """``log Z`` from the flow's importance weights on ``n_samples`` fresh draws.

    ``Z_dθ = ∫ dθ e^{-S} = E_q[e^{-S}/q]`` (``q`` a density w.r.t. ``dθ``), estimated by
    ``(1/N) Σ_i w_i``, ``w_i = e^{-S(θ_i) - logq(θ_i)}``. The exact result of
    :func:`lqft_lab.exact.u1_log_z` uses the Haar measure ``dθ/2π`` per link, so
    ``log Z = log Z_dθ - n_links log 2π``. Because ``q`` is normalised, the estimate is
    unbiased for ``Z`` and ``-log Ẑ`` is an upper bound on the free energy ``F = -log Z`` in
    expectation (Jensen); the reverse-KL loss ``E_q[logq + S]`` is a cruder, deterministic
    bound. Reference: arXiv:2101.08176 sec. on free energies; Nicoli et al., arXiv:2007.07115.

    Returns:
        A :class:`LogZEstimate`.

    Raises:
        TypeError, ValueError: for a ``model`` that is not a U(1) flow, ``n_samples`` not
            an integer >= 2, ``batch_size`` < 1, a ``generator`` that is not one, or a flow
            whose log-weights are not finite (no estimate exists then).
    """
    _check_sampling(model, action, n_samples, generator, batch_size)
    logw, _ = _fresh_log_weights(model, action, n_samples, generator, batch_size)
    if not bool(torch.isfinite(logw).all()):
        raise ValueError("model produced a non-finite log-weight; log Z cannot be estimated")
    n = logw.numel()
    log_mean_w = float(torch.logsumexp(logw, 0) - math.log(n))
    w = torch.exp(logw - logw.max())  # rescaled weights; ratios are what matter
    ess = float(w.sum() ** 2 / (n * (w**2).sum()))
    # var(mean w)/mean(w)² = (⟨w²⟩/⟨w⟩² - 1)/N = (1/ESS - 1)/N
    error = math.sqrt(max(1 / ess - 1, 0.0) / n)
    offset = _lebesgue_offset(model)
    return LogZEstimate(log_mean_w - offset, error, ess, n, offset)


def _check_sampling(model, action, n_samples, generator, batch_size) -> None:
    """The arguments shared by the fresh-sample estimates."""
    if not hasattr(model, "sample") or not hasattr(model, "lattice_shape"):
        raise TypeError(f"model must be a U(1) flow (build_u1_flow), got {type(model).__name__}")
    if not callable(action):
        raise TypeError(f"action must be an action, got {type(action).__name__}")
    checks.integer("n_samples", n_samples, low=2)
    checks.integer("batch_size", batch_size, low=1)
    _checks.generator("generator", generator)


def _lebesgue_offset(model) -> float:
    """``n_links · log 2π``: a flow's ``logq`` (per ``dθ``) minus the Haar-normalised one."""
    return math.prod(model.lattice_shape) * math.log(2 * math.pi)


@torch.no_grad()
def _fresh_log_weights(model, action, n_samples: int, generator, batch_size: int, observable=None):
    """``log w = -S - logq`` of ``n_samples`` fresh draws (float64, on the CPU), and
    ``observable(x)`` of the same draws (or None), drawn ``batch_size`` at a time."""
    logw, obs = [], []
    for start in range(0, n_samples, batch_size):
        x, logq = model.sample(min(batch_size, n_samples - start), generator=generator)
        logw.append((-action(x) - logq).double().cpu())
        if observable is not None:
            obs.append(observable(x).cpu())
    return torch.cat(logw), (torch.cat(obs) if observable is not None else None)


@dataclass(frozen=True)
class ChargeDistribution:
    """The topological charge of a flow's fresh samples against the exact ``P(Q)``.

    Attributes:
        charges: ``Q = -q_max, …, q_max`` (``q_max`` the largest ``|Q|`` drawn, at least 3).
        raw: fraction of the flow's samples with each charge: the flow's own ``q(Q)``.
        reweighted: ``Σ_i w_i [Q_i = Q] / Σ_i w_i`` with ``w = e^{-S}/q``: an estimate of
            ``P(Q)`` (consistent for any flow, noisy when the ESS is small).
        reweighted_err: its delta-method errors (independent samples).
        exact: :func:`lqft_lab.exact.u1_charge_distribution`.
        kl: ``KL(q‖p) = E_q[log q + S] + log Z`` on these samples, in nats, and ``kl_err``
            its standard error.
        kl_Q: ``Σ_Q q(Q) log(q(Q)/P(Q))`` from ``raw`` (a plug-in estimate). Mapping a
            configuration to its charge cannot increase a KL divergence, so ``kl_Q <= kl``:
            it is the part of the flow's mismatch that its proposals' topology alone shows.
        n: number of fresh samples.
    """

    charges: np.ndarray
    raw: np.ndarray
    reweighted: np.ndarray
    reweighted_err: np.ndarray
    exact: np.ndarray
    kl: float
    kl_err: float
    kl_Q: float
    n: int

    def __post_init__(self):
        checks.integer("n", self.n, low=1)


@torch.no_grad()
def charge_distribution(
    model, action: U1WilsonAction, n_samples: int, generator=None, batch_size: int = 1024
) -> ChargeDistribution:
    """Histogram the charge of ``n_samples`` fresh flow samples, raw and reweighted.

    At large β a flow's proposals carry too much topology (a too-broad ``q(Q)``): the prior
    (uniform links) has ``⟨Q²⟩ = V/12``, the target about ``V/(4π²β)``, and a local flow
    squeezes that global distribution only partly. Every such proposal is rejected by
    flow-MH, so this is one of the places where acceptance is lost.

    Args:
        model: a U(1) flow whose lattice is ``L × L``.
        action: the target, a :class:`~lqft_lab.actions.U1WilsonAction`.
        n_samples: fresh samples (>= 2).
        generator: seeds the draws.

    Returns:
        A :class:`ChargeDistribution`.

    Raises:
        TypeError, ValueError: for an ``action`` that is not a
            :class:`~lqft_lab.actions.U1WilsonAction`, ``n_samples`` not an integer >= 2,
            ``batch_size`` < 1, a bad ``generator``, or non-finite log-weights.
    """
    if not isinstance(action, U1WilsonAction):
        raise TypeError(f"action must be a U1WilsonAction, got {type(action).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    _check_sampling(model, action, n_samples, generator, batch_size)
    logw, charge = _fresh_log_weights(
        model,
        action,
        n_samples,
        generator,
        batch_size,
        observable=lambda x: torch.round(topological_charge(x)).long(),
    )
    logw, charge = logw.numpy(), charge.numpy()
    lattice = tuple(model.lattice_shape[-2:])  # (L0, L1) of the links (2, L0, L1)
    if not np.all(np.isfinite(logw)):
        raise ValueError("model produced a non-finite log-weight; it cannot be measured")
    q_max = max(3, int(np.abs(charge).max()))
    charges = np.arange(-q_max, q_max + 1)
    onehot = charge[:, None] == charges[None, :]  # (N, 2 q_max + 1)
    raw = onehot.mean(axis=0)
    w = np.exp(logw - logw.max())
    reweighted = (w @ onehot) / w.sum()
    # delta method for a ratio of means: var = E[w² (1 - P)²]/(N E[w]²) per charge
    resid = onehot - reweighted[None, :]
    reweighted_err = np.sqrt((w[:, None] ** 2 * resid**2).mean(axis=0) / len(w)) / w.mean()
    _, p_exact = exact.u1_charge_distribution(action.beta, lattice, q_max=q_max)
    log_z = exact.u1_log_z(action.beta, lattice) + _lebesgue_offset(model)
    kl_samples = -logw + log_z  # log q + S + log Z_dθ
    drawn = raw > 0
    with np.errstate(divide="ignore"):  # a drawn charge of exact probability 0: KL = inf
        kl_Q = float(np.sum(raw[drawn] * (np.log(raw[drawn]) - np.log(p_exact[drawn]))))
    return ChargeDistribution(
        charges,
        raw,
        reweighted,
        reweighted_err,
        p_exact,
        float(kl_samples.mean()),
        float(kl_samples.std(ddof=1) / math.sqrt(len(kl_samples))),
        kl_Q,
        len(charge),
    )


def charge_table(charge: dict) -> str:
    """A markdown table per β of ``charge``: ``KL(q‖p)``, the charge's part ``KL(q_Q‖P)``,
    and ``⟨Q²⟩`` of the proposals, reweighted and exact.

    Raises:
        TypeError, ValueError: unless ``charge`` is a dict ``β → ChargeDistribution``.
    """
    _checks.mapping("charge", charge, ChargeDistribution, empty=True)
    for b in charge:
        checks.real("charge key (β)", b, low=0)
    rows = [
        "| β | KL(q‖p) (nats) | KL of the charge | ⟨Q²⟩ proposals | ⟨Q²⟩ reweighted | ⟨Q²⟩ exact |",
        "|---|---|---|---|---|---|",
    ]
    for b, d in charge.items():
        q2 = {
            k: float((d.charges**2 * getattr(d, k)).sum()) for k in ("raw", "reweighted", "exact")
        }
        rows.append(
            f"| {b:g} | {d.kl:.2f} ± {d.kl_err:.2f} | {d.kl_Q:.2f} | {q2['raw']:.2f} "
            f"| {q2['reweighted']:.2f} | {q2['exact']:.3f} |"
        )
    return "\n".join(rows)
