"""Measuring a flow on fresh samples, and the compositions that train and then measure.

The ESS and acceptance a trainer logs come from its training batch and are biased high for
small batches; :func:`evaluate` draws new samples, so its figures are the ones to quote.
:func:`train_and_evaluate` is the shipped flows' training recipe followed by
:func:`evaluate`; :func:`train_to_acceptance` trains until :func:`evaluate` reads a target
acceptance (arXiv:1904.12072).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..analysis.ess import ess as _ess
from ..checks import integer, random_generator, real
from ..lattice import resolve_device
from ..samplers.flow_mcmc import _check_local_sampler, independence_metropolis
from .forward_kl import ChainTrainer
from .reverse_kl import TrainConfig, Trainer, _check_model

__all__ = ["evaluate", "train_and_evaluate", "train_to_acceptance"]


@torch.no_grad()
def evaluate(model, action, n_samples: int = 4096, batch_size: int = 1024, generator=None) -> dict:
    """ESS and independence-Metropolis acceptance of ``model`` on fresh samples.

    Unlike the figures logged during training (measured on the training batch), these come
    from ``n_samples`` new draws, so they are unbiased up to their statistical error: about
    ``1/sqrt(n_samples)`` for the acceptance.

    Args:
        model: the flow (a module with ``sample(n, generator=...)``).
        action: ``S(x) -> (B,)``.
        n_samples: fresh samples drawn, ``>= 2``.
        batch_size: samples drawn at once, ``>= 1`` (memory, not statistics).
        generator: a ``torch.Generator`` on the model's device type, or ``None``.

    Returns:
        ``{"ess", "acceptance", "loss", "loss_err", "n"}``: ``loss`` is the reverse-KL loss
        ``E_q[log q + S] = KL(q‖p) - log Z`` on these samples and ``loss_err`` its standard
        error. Unlike the ESS, which a few large weights dominate once it is small, the
        loss averages every sample: the figure that shows whether training helped. All
        but ``n`` are NaN if a weight is not finite (the model, not the input, is broken:
        the NaN flags it, and :func:`train_to_acceptance` never keeps such a check).

    Raises:
        TypeError: for a ``model`` that is not a flow, an ``action`` that is not callable,
            a ``generator`` that is not a ``torch.Generator``, or counts that are not
            integers.
        ValueError: for ``n_samples < 2``, ``batch_size < 1``, or a generator on another
            device type than the model.
    """
    _check_model(model, action)
    n_samples = integer("n_samples", n_samples, low=2)
    batch_size = integer("batch_size", batch_size, low=1)
    _check_generator(generator, model)
    was_training = model.training
    model.eval()
    try:
        logw = []
        for start in range(0, n_samples, batch_size):
            x, logq = model.sample(min(batch_size, n_samples - start), generator=generator)
            logw.append((-action(x) - logq).double().cpu())
    finally:
        model.train(was_training)
    logw = torch.cat(logw)
    if not torch.isfinite(logw).all():
        nan = float("nan")
        return {"ess": nan, "acceptance": nan, "loss": nan, "loss_err": nan, "n": n_samples}
    # The weights are on the CPU; a CUDA generator cannot draw the uniforms there.
    mh_gen = generator if generator is not None and generator.device.type == "cpu" else None
    _, accepted = independence_metropolis(logw, torch.zeros_like(logw), mh_gen)
    return {
        "ess": _ess(logw),
        "acceptance": accepted[1:].double().mean().item(),
        "loss": -logw.mean().item(),
        "loss_err": (logw.std() / n_samples**0.5).item(),
        "n": n_samples,
    }


def _check_generator(generator, model) -> None:
    """``None``, or a ``torch.Generator`` on the device type of the model's parameters."""
    param = next(model.parameters(), None)
    random_generator("generator", generator, None if param is None else param.device)


def train_and_evaluate(
    model,
    action,
    n_steps: int,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    n_eval: int = 4096,
    device: str | torch.device = "cpu",
    progress: bool = False,
    local=None,
    n_local: int = 1,
):
    """Train ``model`` by reverse KL (cosine schedule), then :func:`evaluate` it afresh.

    The recipe of the gauge-theory notebooks' shipped flows: Adam with a cosine decay from
    ``lr`` to ``lr/100``, gradient clip 100, a fresh batch per step seeded by ``seed``; the
    evaluation draws ``n_eval`` new samples from a generator seeded by ``seed + 1``.
    With ``local`` (a local sampler, see :class:`ChainTrainer`) the loss is the forward KL
    on ``batch_size`` chains of flow-MH moves and ``n_local`` local moves per step instead.

    Returns:
        ``(model, trainer, metrics)``: the model in eval mode on ``device``, and ``metrics``
        from :func:`evaluate` on those samples.

    Raises:
        TypeError, ValueError: naming the argument, for any of them of the wrong kind or
            out of range (as :class:`TrainConfig` for ``n_steps``, ``lr``, ``batch_size``,
            ``seed``; ``n_eval >= 2``; ``device`` ``"auto"``, ``"cpu"``, ``"cuda"`` or a
            ``torch.device`` that exists here; ``n_local >= 0``), all before the model is
            moved or trained.
    """
    _check_model(model, action)
    n_steps = integer("n_steps", n_steps, low=1)
    n_eval = integer("n_eval", n_eval, low=2)
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or torch.device, got {device!r}")
    device = resolve_device(device)
    if local is not None:
        _check_local_sampler(local)
        integer("n_local", n_local, low=0)
    config = TrainConfig(
        n_steps=n_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log_every=max(1, min(50, n_steps // 20)),
    )
    model = model.to(device)
    if local is None:
        trainer = Trainer(model, action, config)
    else:
        trainer = ChainTrainer(model, action, config, local=local, n_local=n_local)
    trainer.train(progress=progress)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    return model, trainer, evaluate(model, action, n_eval, generator=generator)


def train_to_acceptance(
    trainer: Trainer,
    target: float,
    check_every: int = 500,
    n_samples: int = 4096,
    generator: torch.Generator | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    confirm: bool = True,
) -> list[dict]:
    """Train until the acceptance on fresh samples reaches ``target`` (or the step budget).

    arXiv:1904.12072 trained each ensemble's flow to a common acceptance rate, so that
    differences in autocorrelation between ensembles reflect the physics, not the effort
    spent. Every ``check_every`` steps this measures :func:`evaluate` on ``n_samples`` fresh
    samples and stops at the first check that meets the target. The first check is made
    before any training: a flow that already meets the target is left as it is.

    Args:
        trainer: a :class:`Trainer`; its ``config.n_steps`` is the step budget.
        target: acceptance in ``(0, 1)``.
        check_every: steps between checks (a multiple of ``config.log_every`` keeps the
            checks at logged steps).
        n_samples: fresh samples per check.
        generator: random source for the checks.
        progress: progress bar for the training.
        log: called with one line per check (e.g. ``print``).
        confirm: a check that meets the target is measured again on ``2 * n_samples`` new
            samples, and that measurement decides. With heavy-tailed weights one batch can
            read high: on ensemble E3 of notebook 01b a 4096-sample check read 0.42 where
            16 384 fresh samples gave 0.36, and stopping at the first lucky check leaves
            every flow above its true acceptance by about one check's error.

    If the budget runs out first, the model is put back to the weights of its best check
    (highest acceptance), which with a noisy or drifting training need not be the last;
    Adam's moments are left as they are.

    Returns:
        The checks, ``[{"step", "ess", "acceptance", "n"}, ...]`` (confirmed ones also hold
        ``"screen"``, the first measurement's acceptance); the last is the state the
        model was left in. When the weights were put back, that last entry repeats the best
        check with ``"restored": True``.

    Raises:
        TypeError: for a ``trainer`` that is not a :class:`Trainer`, a ``log`` that is not
            callable, or arguments of the wrong kind.
        ValueError: for a ``target`` outside ``(0, 1)``, ``check_every < 1``,
            ``n_samples < 2``, or a generator on another device type than the model.
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must be a Trainer, got {type(trainer).__name__}")
    target = real("target", target)
    if not 0 < target < 1:
        raise ValueError(f"target acceptance must be in (0, 1), got {target}")
    check_every = integer("check_every", check_every, low=1)
    n_samples = integer("n_samples", n_samples, low=2)
    _check_generator(generator, trainer.model)
    if log is not None and not callable(log):
        raise TypeError(f"log must be a function of one string (e.g. print), got {log!r}")
    checks: list[dict] = []
    best: dict = {"acceptance": -math.inf}

    def check() -> bool:
        result = {
            "step": trainer.step,
            **evaluate(trainer.model, trainer.action, n_samples, generator=generator),
        }
        screen = result["acceptance"]
        if confirm and screen >= target:
            result = {
                "step": trainer.step,
                **evaluate(trainer.model, trainer.action, 2 * n_samples, generator=generator),
                "screen": screen,
            }
        checks.append(result)
        if result["acceptance"] > best["acceptance"]:  # a NaN acceptance is never best
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best.update(result, weights=weights)
        if log is not None:
            confirmed = f" (a first {n_samples} read {screen:.3f})" if "screen" in result else ""
            log(
                f"step {result['step']}: acceptance {result['acceptance']:.3f}, "
                f"ESS {result['ess']:.3f} on {result['n']} fresh samples{confirmed}"
            )
        return result["acceptance"] >= target

    met = check()
    while not met and trainer.step < trainer.config.n_steps:
        trainer.train(min(check_every, trainer.config.n_steps - trainer.step), progress=progress)
        met = check()
    if not met and "weights" in best and best["step"] != checks[-1]["step"]:
        trainer.model.load_state_dict(best.pop("weights"))  # in place: a CUDA graph stays valid
        checks.append({**best, "restored": True})
        if log is not None:
            log(f"target not met; weights of step {best['step']} restored")
    return checks
