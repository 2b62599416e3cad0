"""Training notebook 02's flows, and finding the ones the lab ships in ``data/models``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ... import checks
from ...actions import U1WilsonAction
from ...flows import LineRotationCoupling, build_u1_flow
from ...io import load_checkpoint, pretrained_path
from ...samplers import U1Heatbath
from ...train import evaluate, train_and_evaluate
from .. import _checks

__all__ = ["train_u1_flow", "ShippedFlow", "shipped_u1_flow"]


def train_u1_flow(
    L: int,
    beta: float,
    n_steps: int,
    *,
    seed: int = 0,
    n_layers: int = 16,
    kernel: str = "ncp",
    lr: float = 1e-3,
    batch_size: int = 64,
    n_eval: int = 4096,
    model=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    keep_better: bool = False,
    rotations_only: bool = False,
    forward_kl: bool = False,
):
    """Train a gauge-equivariant flow and measure it on fresh samples.

    The recipe of the checkpoints shipped in ``data/models/u1_*.safetensors``: Adam with a
    cosine decay from ``lr`` to ``lr/100``, gradient clip 100, batch ``batch_size``.

    Args:
        L, beta: lattice extent (multiple of 4) and coupling.
        n_steps: optimisation steps.
        seed: seeds the weights (unless ``model`` is given) and the training batches.
        n_layers, kernel: architecture passed to :func:`~lqft_lab.flows.build_u1_flow`.
        model: continue training this model instead of building a new one.
        n_eval: fresh samples for the final :func:`~lqft_lab.train.evaluate`.
        keep_better: measure ``model`` on ``n_eval`` fresh samples before training too, and
            if training left the reverse-KL loss higher, return the weights it started from.
            At large β training can blow up and leave a flow worse than its start (at
            β = 6, L = 8, the shipped flow went from 3.86 to 6.90 nats in 8000 steps of
            batch 128 at 10⁻⁴); a long unattended run should not lose a good start to it.
            Choosing between two flows on samples of their own does not touch the
            exactness of flow-MH, which is exact for any flow.
        rotations_only: train only the model's
            :class:`~lqft_lab.flows.u1.LineRotationCoupling` layers, the plaquette couplings
            frozen (as they were shipped). Their gradients are small and steady beside the
            plaquette couplings' heavy-tailed ones, which a shared clip would let dominate.
        forward_kl: train by maximum likelihood on ``batch_size`` chains that alternate a
            flow-MH move and a heatbath + overrelaxation sweep
            (:class:`~lqft_lab.train.ChainTrainer`) instead of by reverse KL. Its gradient
            is not dominated by a few heavy weights; it is how the shipped flows were
            finished (``data/README.md``).

    Returns:
        ``(model, trainer, metrics)``, ``metrics`` from :func:`~lqft_lab.train.evaluate`
        of the returned weights; with ``keep_better`` it also holds ``"kept"``
        (``"trained"`` or ``"start"``) and ``"loss_trained"``.

    Raises:
        TypeError, ValueError: naming the argument, before anything is built or trained:
            ``L`` not a multiple of 4 (or not ``model``'s), ``beta`` not finite and >= 0,
            ``n_steps``, ``n_layers``, ``batch_size`` < 1, ``n_eval`` < 2, an unknown
            ``kernel``, ``lr`` not positive, a bad seed, device or flag.
    """
    L = checks.integer("L", L, low=4)
    if L % 4:
        raise ValueError(f"L must be a multiple of 4 (the stripe masks have period 4), got {L}")
    beta = checks.real("beta", beta, low=0)
    n_steps = checks.integer("n_steps", n_steps, low=1)
    seed = _checks.seed("seed", seed)
    n_layers = checks.integer("n_layers", n_layers, low=1)
    checks.choice("kernel", kernel, ("ncp", "spline"))
    lr = checks.positive("lr", lr)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    n_eval = checks.integer("n_eval", n_eval, low=2)
    device = _checks.device("device", device)
    for name, value in (
        ("progress", progress),
        ("keep_better", keep_better),
        ("rotations_only", rotations_only),
        ("forward_kl", forward_kl),
    ):
        _checks.flag(name, value)
    if model is not None:
        lattice = tuple(getattr(model, "lattice_shape", ()))
        if lattice != (2, L, L):
            raise ValueError(f"model samples links of shape {lattice}, not (2, {L}, {L}) for L={L}")
    action = U1WilsonAction(beta)
    if model is None:
        model = build_u1_flow(L, n_layers=n_layers, kernel=kernel, seed=seed)
    if rotations_only:
        rotations = [m for m in model.modules() if isinstance(m, LineRotationCoupling)]
        if not rotations:
            raise ValueError(
                "rotations_only needs a flow with line rotations (U1FlowConfig.line_rotations, "
                "or lqft_lab.flows.add_line_rotations)"
            )
        frozen = [p for p in model.parameters() if p.requires_grad]
        model.requires_grad_(False)
        for layer in rotations:
            layer.requires_grad_(True)
    if keep_better:
        model = model.to(device)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        generator = torch.Generator(device=torch.device(device)).manual_seed(seed + 2)
        before = evaluate(model, action, n_eval, generator=generator)
        model.train()
    try:
        model, trainer, metrics = train_and_evaluate(
            model,
            action,
            n_steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            n_eval=n_eval,
            device=device,
            progress=progress,
            local=U1Heatbath(action, n_overrelax=1) if forward_kl else None,
        )
    finally:
        if rotations_only:  # the caller gets the model back as trainable as it came
            for p in frozen:
                p.requires_grad_(True)
    if keep_better:
        # a NaN loss (a non-finite weight) loses to any finite one
        better = metrics["loss"] <= before["loss"] or math.isnan(before["loss"])
        kept = "trained" if better else "start"
        loss_trained = metrics["loss"]
        if kept == "start":
            model.load_state_dict(start)
            metrics = before
        metrics = {**metrics, "kept": kept, "loss_trained": loss_trained}
    return model, trainer, metrics


@dataclass(frozen=True)
class ShippedFlow:
    """A pretrained U(1) flow from ``data/models`` (see ``data/README.md``).

    Attributes:
        name: the checkpoint's name, ``u1_L<L>_b<β>``.
        model: the flow, in eval mode; ``model.config.L`` is the lattice it was trained on.
        meta: the checkpoint's header (:func:`~lqft_lab.io.read_metadata`).
    """

    name: str
    model: torch.nn.Module = field(repr=False)
    meta: dict = field(repr=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        _checks.mapping("meta", self.meta, empty=True)

    def summary(self) -> str:
        """One sentence: what the file is and how good it was when saved."""
        m = self.meta["metrics"]
        return (
            f"shipped flow {self.name} ({self.model.config.n_layers} layers), "
            f"{self.meta['steps']} steps from {self.meta.get('start', 'scratch')}; "
            f"acceptance {m['acceptance']:.3f}, ESS {m['ess']:.2g} on {m['ess_samples']} "
            f"fresh samples (L={self.model.config.L}) when saved"
        )


def shipped_u1_flow(
    beta: float, L: int, *, fallback_L8: bool = True, device: str | torch.device = "cpu"
) -> ShippedFlow | None:
    """The lab's flow for ``β`` on an ``L × L`` scan: ``u1_L<L>_b<β>``, trained on that
    lattice, if it is shipped; else (``fallback_L8``) ``u1_L8_b<β>``, whose conv nets run at
    any ``L``; else ``None``.

    The checkpoint must record a :class:`~lqft_lab.actions.U1WilsonAction` at ``β``
    (:func:`~lqft_lab.io.load_checkpoint` refuses it otherwise); its architecture is its own.

    Raises:
        TypeError, ValueError: for ``beta`` not finite and >= 0, ``L`` not an integer >= 1,
            a non-bool ``fallback_L8`` or a bad device.
    """
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=1)
    _checks.flag("fallback_L8", fallback_L8)
    device = _checks.device("device", device)
    names = [f"u1_L{L}_b{beta:g}"] + ([f"u1_L8_b{beta:g}"] if fallback_L8 else [])
    for name in dict.fromkeys(names):
        try:
            path = pretrained_path(name)
        except FileNotFoundError:
            continue
        model, meta = load_checkpoint(path, action=U1WilsonAction(beta), device=device)
        return ShippedFlow(name, model, meta)
    return None
