"""Flows with the exact determinant: notebook 02's gauge-equivariant U(1) flow trained on
the Nf = 2 Schwinger model by reverse KL, with either gradient estimator, and the ones the
lab ships in ``data/models`` (``schwinger_L<L>_b<β>_k<κ>``; ``data/README.md`` gives each
one's recipe)."""

from __future__ import annotations

import torch

from ... import checks
from ...actions.schwinger import SchwingerAction
from ...flows import U1FlowConfig, build_u1_flow
from ...io import load_checkpoint, pretrained_path
from ...lattice import resolve_device
from ...train import GRADIENTS, TrainConfig, Trainer
from .. import _checks
from ..u1.training import ShippedFlow


def train_schwinger_flow(
    beta: float,
    kappa: float,
    L: int,
    *,
    n_layers: int = 16,
    hidden: tuple[int, ...] = (8, 8),
    kernel: str = "ncp",
    n_steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    gradient: str = "reparameterization",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
    model: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train a gauge-equivariant U(1) flow on the Nf = 2 Schwinger model by reverse KL.

    The lab's recipe (:class:`~lqft_lab.train.TrainConfig`): Adam with a cosine decay from
    ``lr`` to ``lr/100``, gradient clip 100, a fresh batch of ``batch_size`` per step from a
    generator seeded by ``seed`` (which also seeds the weights).

    Args:
        beta: gauge coupling, finite and ``>= 0``.
        kappa: hopping parameter, ``0 <= κ < 1`` (critical near 0.2773 at β = 2).
        L: lattice extent, a multiple of 4.
        n_layers, hidden, kernel: the flow's architecture
            (:class:`~lqft_lab.flows.u1.U1FlowConfig`).
        n_steps, batch_size, lr: optimisation steps, samples per step, learning rate.
        gradient: ``"reparameterization"`` or ``"score"`` (see :class:`TrainConfig`).
        seed: seeds the weights and the training batches.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        dtype: ``torch.float64`` (recommended: the determinant enters ``log p``) or
            ``torch.float32``.
        progress: show a progress bar.
        model: continue training this U(1) flow on ``(2, L, L)`` links instead of building
            one (``n_layers``, ``hidden``, ``kernel`` are then not used; ``seed`` still
            seeds the batches). A pure-gauge flow of notebook 02 (``data/models/u1_*``) is a
            good start: the determinant is a mild reweighting away from ``κ_c``.

    Returns:
        ``(model, history)``: the trained flow in eval mode on ``device`` in ``dtype`` (its
        :class:`~lqft_lab.flows.u1.U1FlowConfig` as ``model.config``), and the trainer's
        logged metrics (``{"step", "loss", "ess", "acceptance", ...}``, ``loss`` the
        reverse-KL estimate ``E_q[log q + S]`` on the training batch).

    Raises:
        TypeError, ValueError: naming the argument, before anything is built: ``beta`` not
            finite and ``>= 0``, ``kappa`` outside ``[0, 1)``, ``L`` not a multiple of 4,
            ``n_layers``, ``n_steps`` or ``batch_size`` below 1 (below 2 for ``"score"``), a
            bad ``hidden``, ``kernel``, ``lr``, ``gradient``, ``seed``, ``device``, ``dtype``
            or ``progress``; a ``model`` that is not a U(1) flow on ``(2, L, L)``.

    Example:
        >>> model, history = train_schwinger_flow(1.0, 0.2, 4, n_layers=8, n_steps=100,
        ...                                       gradient="score")
        >>> [m["loss"] for m in history]   # the reverse-KL estimate, every 5 steps
    """
    action = SchwingerAction(beta, kappa)  # checks beta and kappa, naming them
    L = checks.integer("L", L, low=4)
    n_steps = checks.integer("n_steps", n_steps, low=1)
    architecture = U1FlowConfig(L=L, n_layers=n_layers, hidden=hidden, kernel=kernel)
    checks.choice("gradient", gradient, GRADIENTS)
    seed = _checks.seed("seed", seed)
    device = resolve_device(device)
    dtype = checks.field_dtype("dtype", dtype)
    _checks.flag("progress", progress)
    config = TrainConfig(
        n_steps=n_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        gradient=gradient,
        log_every=max(1, min(50, n_steps // 20)),
    )
    if model is None:
        model = build_u1_flow(config=architecture, seed=seed)
    elif not isinstance(model, torch.nn.Module) or tuple(getattr(model, "lattice_shape", ())) != (
        2,
        L,
        L,
    ):
        raise ValueError(
            f"model must be a U(1) flow on links (2, {L}, {L}), got {type(model).__name__} "
            f"with lattice {tuple(getattr(model, 'lattice_shape', ()))}"
        )
    model = model.to(device=device, dtype=dtype).train()
    trainer = Trainer(model, action, config)
    history = trainer.train(progress=progress)
    model.eval()
    return model, history


def shipped_schwinger_flow(
    beta: float, kappa: float, L: int, *, device: str | torch.device = "cpu"
) -> ShippedFlow | None:
    """The lab's flow for the Nf = 2 Schwinger model at ``(β, κ)`` on ``L × L``, if it ships.

    The name is ``schwinger_L<L>_b<β>_k<κ>`` (``β`` and ``κ`` as ``%g``); the checkpoint
    must record a :class:`~lqft_lab.actions.schwinger.SchwingerAction` with these couplings
    (:func:`~lqft_lab.io.load_checkpoint` refuses it otherwise). The model is float64, in
    eval mode, on ``device``.

    Returns:
        A :class:`~lqft_lab.studies.u1.ShippedFlow`, or ``None`` when none ships.

    Raises:
        TypeError, ValueError: for ``beta`` not finite and ``>= 0``, ``kappa`` outside
            ``[0, 1)``, ``L`` not an integer ``>= 1``, or a bad ``device``.
    """
    action = SchwingerAction(beta, kappa)  # checks beta and kappa, naming them
    L = checks.integer("L", L, low=1)
    device = _checks.device("device", device)
    return load_shipped(f"schwinger_L{L}_b{action.beta:g}_k{action.kappa:g}", action, device)


def load_shipped(name: str, action, device: torch.device) -> ShippedFlow | None:
    """``data/models/<name>`` checked against ``action``, float64 on ``device``, or ``None``
    when no such model ships (the shipped Schwinger and pseudofermion flows)."""
    try:
        path = pretrained_path(name)
    except FileNotFoundError:
        return None
    model, meta = load_checkpoint(path, action=action, device=device)
    return ShippedFlow(name, model.double(), meta)
