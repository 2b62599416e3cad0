"""Training the pseudofermion flow ``q(φ | θ)`` (and optionally the gauge flow) on the joint
target ``p(θ, φ) ∝ e^{-S_g(θ) - φ†(D†D)^{-1}φ}`` by the reverse KL (notebook 04, part 2).

The loss is ``E[log q(θ) + log q(φ | θ) + S_g(θ) + S_pf(θ, φ)]`` (plus ``|φ_o|²`` with
even/odd pseudofermions: :func:`~lqft_lab.samplers.joint_pseudofermion.joint_action`) over
joint draws ``θ ~ q``, ``φ = F_θ(χ)``: no determinant anywhere, one CG solve per sample
and step. Its gradient is the reparameterization one, through the flows' samples and
through ``S_pf`` by :meth:`~lqft_lab.actions.PseudofermionAction.fermion_action`, whose
backward pass reuses the forward solve (``∂S_pf/∂φ* = X``, ``∂S_pf/∂θ`` the pseudofermion
force; ``D†D`` is Hermitian, so no adjoint solve). With the gauge flow frozen
(``train_gauge=False``) its draws are constants and only ``q(φ | θ)`` learns; its best is
the exact conditional ``CN(0, D†D)``, where the joint weights equal the marginal ones.
"""

from __future__ import annotations

import math

import torch

from ... import checks
from ...actions import PseudofermionAction
from ...analysis import ess
from ...flows.pseudofermion import PseudofermionFlow
from ...samplers.joint_pseudofermion import joint_action
from .. import _checks


def train_pseudofermion_flow(
    gauge_model,
    fermion_flow: PseudofermionFlow,
    action: PseudofermionAction,
    *,
    n_steps: int = 200,
    batch_size: int = 64,
    lr: float = 1e-3,
    train_gauge: bool = False,
    seed: int = 0,
    log_every: int = 5,
    callback=None,
    progress: bool = False,
) -> list[dict]:
    """Adam on the joint reverse KL, with a cosine decay from ``lr`` to ``lr/100``.

    Args:
        gauge_model: the U(1) flow ``q(θ)`` (e.g. a shipped Schwinger flow); frozen unless
            ``train_gauge``.
        fermion_flow: the :class:`~lqft_lab.flows.pseudofermion.PseudofermionFlow` to train.
        action: the target's :class:`~lqft_lab.actions.PseudofermionAction`.
        n_steps, batch_size, lr: steps, joint draws per step, learning rate.
        train_gauge: train the gauge flow jointly (its samples then carry gradients).
        seed: seeds the draws.
        log_every: steps between history entries.
        callback: ``callback(entry)`` with each history entry (a dashboard's).
        progress: show a progress bar.

    Returns:
        The history: ``{"step", "loss", "loss_err", "ess", "cg_iterations"}`` every
        ``log_every`` steps, ``ess`` the batch's joint-weight ESS (fraction).

    Raises:
        TypeError, ValueError: naming the argument.
    """
    if not isinstance(fermion_flow, PseudofermionFlow):
        raise checks.ArgumentKindError(
            f"fermion_flow must be a PseudofermionFlow, got {type(fermion_flow).__name__}"
        )
    _checks.instance("action", action, PseudofermionAction)
    n_steps = checks.integer("n_steps", n_steps, low=1)
    batch_size = checks.integer("batch_size", batch_size, low=2)
    lr = checks.positive("lr", lr)
    train_gauge = _checks.flag("train_gauge", train_gauge)
    seed = _checks.seed("seed", seed)
    log_every = checks.integer("log_every", log_every, low=1)
    _checks.flag("progress", progress)
    if callback is not None and not callable(callback):
        raise checks.ArgumentKindError(f"callback must be callable, got {callback!r}")

    params = list(fermion_flow.parameters())
    if train_gauge:
        params += list(gauge_model.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps, eta_min=lr / 100)
    generator = torch.Generator().manual_seed(seed)
    fermion_flow.train()
    history = []
    steps = range(1, n_steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="joint training")
    for step in steps:
        with torch.set_grad_enabled(train_gauge):
            theta, logq_theta = gauge_model.sample(batch_size, generator=generator)
        phi, logq_phi = fermion_flow.sample(theta, generator)
        per_sample = logq_theta + logq_phi + joint_action(action, theta, phi)  # log q/p + const
        loss = per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 100.0)
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == n_steps:
            values = per_sample.detach()
            entry = {
                "step": step,
                "loss": loss.item(),
                "loss_err": values.std().item() / math.sqrt(batch_size),
                "ess": ess(-values),
                "cg_iterations": action.last_iterations.double().mean().item(),
            }
            history.append(entry)
            if callback is not None:
                callback(entry)
    fermion_flow.eval()
    return history
