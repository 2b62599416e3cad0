"""The score-function (REINFORCE) gradient of the reverse KL, which never differentiates S.

The reparameterization gradient of ``L(w) = E_{x~q_w}[log q_w(x) + S(x)]`` writes
``x = f_w(z)`` and backpropagates through ``S``: for the Schwinger model that is a backward
pass through a dense ``slogdet``. The score-function form (arXiv:2308.13294) needs only
``∇_w log q_w(x)`` at *fixed* ``x``, i.e. the flow's reverse pass
(:meth:`~lqft_lab.flows.FlowModel.log_prob`):

    ∇_w L = E_{x~q_w}[ (log q_w(x) - log p(x) - b) ∇_w log q_w(x) ],               (1)

because ``∇_w E_q[F_w] = E_q[F_w ∇_w log q_w] + E_q[∇_w F_w]`` for ``F_w = log q_w - log p``,
and ``E_q[∇_w log q_w] = ∇_w ∫ q_w = 0`` removes the second term and any constant ``b``:
that is also why ``log Z`` (``log p = -S`` only up to it) drops out. ``x`` is drawn without
gradient and ``S`` is evaluated without autograd.

The baseline is the leave-one-out mean of the batch, ``b_i = Σ_{j≠i} F_j / (B - 1)``. It
does not depend on ``x_i`` (the draws are independent), so ``E[b_i ∇ log q(x_i)] =
E[b_i] E[∇ log q(x_i)] = 0`` and the estimate is **exactly unbiased**; it equals
``B/(B-1) (F_i - F̄)``. The plain batch mean ``b = F̄`` contains ``F_i / B`` itself and gives
``(1 - 1/B)`` times the gradient: a bias of ``O(1/B)`` that the factor ``B/(B-1)`` removes.
The baseline matters: without one, the estimator's variance grows with ``(E_q F)²``, which
for a lattice action is extensive.

Convention: as everywhere in :mod:`lqft_lab.train`, ``logp = -S(x)`` and ``logw = logp - logq``.
"""

from __future__ import annotations

import torch

from .. import checks

__all__ = ["score_surrogate"]


def score_surrogate(logq: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient is the score-function estimate (1) with the leave-one-out baseline.

    ``surrogate = (1/B) Σ_i (F_i - b_i) log q_w(x_i)`` with ``F_i = logq_i - logp_i`` and
    ``b_i`` the mean of the other ``F_j``, both detached: only ``log q_w(x_i)`` carries the
    weights' gradient. Its *value* is not the KL (it is zero up to the weights' spread);
    the KL estimate is ``mean(logq - logp)``.

    Args:
        logq: ``log q_w(x)`` of a batch drawn from the model, shape ``(B,)``, computed at
            fixed ``x`` and differentiable with respect to the weights (``model.log_prob(x)``).
        logp: ``log p(x) = -S(x)`` up to a constant, shape ``(B,)``; treated as data.

    Returns:
        A 0-dimensional tensor on ``logq``'s device and dtype. Non-finite entries are not
        refused (a trainer's guard skips such a step) and make it non-finite.

    Raises:
        TypeError: if ``logq`` or ``logp`` is not a tensor.
        ValueError: for shapes other than ``(B,)``, different shapes, ``B < 2`` (a
            leave-one-out baseline needs another draw), a non-real or half-precision dtype.

    Example:
        >>> with torch.no_grad():
        ...     x, _ = model.sample(64)
        ...     logp = -action(x)
        >>> score_surrogate(model.log_prob(x), logp).backward()   # no backward through S
    """
    checks.tensor("logq", logq, ndim=1, finite=False)
    checks.tensor("logp", logp, ndim=1, device=logq.device, finite=False)
    if logp.shape != logq.shape:
        raise ValueError(
            f"logq {tuple(logq.shape)} and logp {tuple(logp.shape)} must have the same shape (B,)"
        )
    B = logq.shape[0]
    if B < 2:
        raise ValueError(f"logq: the leave-one-out baseline needs a batch of B >= 2, got B = {B}")
    F = logq.detach() - logp.detach().to(logq.dtype)  # (B,)
    advantage = B / (B - 1) * (F - F.mean())  # F_i - b_i, b_i = Σ_{j≠i} F_j / (B - 1)
    return (advantage * logq).mean()


def _score_step(model, action, batch_size: int, generator: torch.Generator | None):
    """A trainer's score-function step: ``(surrogate, logw)`` on a fresh batch of the model.

    ``x ~ q`` and ``S(x)`` are computed without autograd; the surrogate differentiates
    ``model.log_prob(x)`` at fixed ``x``. The surrogate is ``None`` when a drawn field is
    not finite (``log_prob`` refuses it; the trainer skips the step). No argument checks:
    the :class:`~lqft_lab.train.Trainer` made them.
    """
    with torch.no_grad():  # x is data here, and S is never differentiated
        x, logq = model.sample(batch_size, generator=generator)
        logp = -action(x)
    logw = logp - logq  # (B,)
    if not bool(torch.isfinite(x).all()):  # a host read: score steps are never graphed
        return None, logw
    return score_surrogate(model.log_prob(x), logp), logw  # ∇_w log q_w(x) at fixed x
