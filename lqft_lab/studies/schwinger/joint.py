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
from collections.abc import Mapping

import torch

from ... import checks
from ...actions import PseudofermionAction, SchwingerAction
from ...analysis import ess
from ...flows.pseudofermion import PseudofermionFlow
from ...samplers.flow_mcmc import independence_metropolis
from ...samplers.joint_pseudofermion import joint_action
from .. import _checks
from ..u1.training import ShippedFlow
from .training import load_shipped


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
        callback: ``callback(step, entry)`` with each history entry, e.g. a
            :class:`~lqft_lab.widgets.SamplingDashboard`'s ``callback`` following
            ``["loss", "ess", "cg_iterations"]`` live.
        progress: show a progress bar.

    Returns:
        The history: ``{"step", "loss", "loss_err", "ess", "acceptance", "cg_iterations"}``
        every ``log_every`` steps: ``ess`` the batch's joint-weight ESS (fraction),
        ``acceptance`` that of an independence Metropolis chain through the batch.

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
    if train_gauge:
        gauge_model.train()
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
            _, accepted = independence_metropolis(-values, torch.zeros_like(values), generator)
            entry = {
                "step": step,
                "loss": loss.item(),
                "loss_err": values.std().item() / math.sqrt(batch_size),
                "ess": ess(-values),
                "acceptance": accepted[1:].double().mean().item(),
                "cg_iterations": action.last_iterations.double().mean().item(),
            }
            history.append(entry)
            if callback is not None:
                callback(step, entry)
    fermion_flow.eval()
    if train_gauge:
        gauge_model.eval()
    return history


def joint_ess(
    gauge_model,
    conditionals: Mapping,
    action: PseudofermionAction,
    n_samples: int,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """ESS (fraction) of the marginal weights and of the joint weights with each model of
    ``φ``, all on the same ``n_samples`` draws ``θ ~ q(θ)``.

    The marginal weight is ``-S_g + log det D†D - log q(θ)`` (the dense determinant of
    :class:`~lqft_lab.actions.SchwingerAction`: small lattices); the joint one
    ``-S(θ, φ) - log q(θ) - log q(φ | θ)`` with ``φ ~ q(· | θ)``. With the exact conditional
    the two are equal draw by draw; any other ``q(φ | θ)`` has a lower ESS in expectation.
    ``S_pf`` is computed by a dense solve with ``D†``, not CG: the flow's draws include
    configurations near a zero mode of ``D``, where CG on ``D†D`` cannot reach a tight
    tolerance (its floor is about ``eps · cond(D†D)``), while ``D``'s own conditioning is
    the square root of that.

    Args:
        gauge_model: the U(1) flow ``q(θ)``.
        conditionals: name → ``q(φ | θ)`` (``sample(θ, generator) -> (φ, log q)``).
        action: the target's :class:`~lqft_lab.actions.PseudofermionAction`.
        n_samples: draws, ``>= 2``; ``batch_size``: draws per pass.
        generator: random source.

    Returns:
        ``{"marginal": ESS, name: ESS, ...}``.
    """
    _checks.instance("action", action, PseudofermionAction)
    _checks.mapping("conditionals", conditionals)
    n_samples = checks.integer("n_samples", n_samples, low=2)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    marginal_action = SchwingerAction(action.beta, action.kappa)
    logw: dict[str, list[torch.Tensor]] = {"marginal": [], **{k: [] for k in conditionals}}
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            n = min(batch_size, n_samples - start)
            theta, logq_theta = gauge_model.sample(n, generator=generator)
            logw["marginal"].append(-marginal_action(theta) - logq_theta)
            for name, model in conditionals.items():
                phi, logq_phi = model.sample(theta, generator)
                S = joint_action(action, theta, phi, dense=True)
                logw[name].append(-S - logq_theta - logq_phi)
    return {name: ess(torch.cat(parts)) for name, parts in logw.items()}


def shipped_pseudofermion_flow(
    beta: float,
    kappa: float,
    L: int,
    *,
    even_odd: bool = False,
    device: str | torch.device = "cpu",
) -> ShippedFlow | None:
    """The lab's pseudofermion flow ``q(φ | θ)`` at ``(β, κ)`` on ``L × L``, if it ships.

    The name is ``pseudofermion_L<L>_b<β>_k<κ>`` (``_eo`` appended for even/odd
    pseudofermions); the checkpoint must record a
    :class:`~lqft_lab.actions.PseudofermionAction` with these couplings and ``even_odd``.
    Its ``meta["start"]`` names the gauge flow it was trained with (frozen), the one to pair
    it with. The model is float64, in eval mode, on ``device``.

    Returns:
        A :class:`~lqft_lab.studies.u1.ShippedFlow`, or ``None`` when none ships.

    Raises:
        TypeError, ValueError: for bad couplings, ``L``, ``even_odd`` or ``device``.
    """
    action = PseudofermionAction(beta, kappa, even_odd=_checks.flag("even_odd", even_odd))
    L = checks.integer("L", L, low=2)
    device = _checks.device("device", device)
    name = f"pseudofermion_L{L}_b{action.beta:g}_k{action.kappa:g}" + ("_eo" if even_odd else "")
    return load_shipped(name, action, device)


def plot_parallel_transport(ax=None, L: int = 4):
    """The hop layer on a small lattice: even sites filled, odd sites open, and the four
    parallel-transported neighbours that update one even site ``x``.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    L = checks.integer("L", L, low=4)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    x1, x0 = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="xy")
    even = ((x0 + x1) % 2 == 0).flatten()
    xs, ys = x1.flatten(), x0.flatten()
    for i in range(L):
        ax.plot([-0.3, L - 0.7], [i, i], color="0.85", lw=0.8, zorder=0)
        ax.plot([i, i], [-0.3, L - 0.7], color="0.85", lw=0.8, zorder=0)
    ax.scatter(xs[even], ys[even], s=120, color="C0", label="even sites (updated)", zorder=2)
    ax.scatter(xs[~even], ys[~even], s=120, facecolor="white", edgecolor="C1", lw=1.5,
               label="odd sites (read)", zorder=2)  # fmt: skip
    c = L // 2
    labels = {
        (1, 0): r"$U_1(x)\,\phi(x+\hat1)$",
        (-1, 0): r"$U_1(x-\hat1)^*\phi(x-\hat1)$",
        (0, 1): r"$U_0(x)\,\phi(x+\hat0)$",
        (0, -1): r"$U_0(x-\hat0)^*\phi(x-\hat0)$",
    }
    for (dx, dy), text in labels.items():
        ax.annotate("", xy=(c + 0.18 * dx, c + 0.18 * dy), xytext=(c + 0.82 * dx, c + 0.82 * dy),
                    arrowprops=dict(arrowstyle="->", color="C3", lw=1.8))  # fmt: skip
        ax.text(c + dx * 1.05, c + dy * 1.05 + (0.22 if dy >= 0 else -0.3), text,
                ha="center", fontsize=8, color="C3")  # fmt: skip
    ax.text(c + 0.12, c - 0.32, "$x$", fontsize=11)
    ax.set(xlim=(-0.6, L - 0.4), ylim=(-0.8, L - 0.2), aspect="equal", xticks=[], yticks=[],
           xlabel="direction 1", ylabel="direction 0 (time)")  # fmt: skip
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    return ax
