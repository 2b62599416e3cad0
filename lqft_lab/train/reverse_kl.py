"""Reverse-KL self-training of a flow against an action, with callbacks.

The loss is the shifted reverse Kullback–Leibler divergence (arXiv:2101.08176 eq. (19))

    L(q) = E_{x~q}[ log q(x) + S(x) ] = KL(q || p) - log Z,

estimated on a fresh batch from the model every step; only samples of the model are
needed, never samples of ``p``. Its gradient (``TrainConfig.gradient``) is taken by
reparameterization, autograd through ``x = f_w(z)`` *and the action* (the default), or by
the score function (:mod:`~lqft_lab.train.score`, arXiv:2308.13294), which never
differentiates the action; both estimate the same gradient, and the logged ``loss`` is the
KL estimate ``mean(logq - logp)`` either way. Training reports through callbacks
(dashboards subscribe; the trainer never draws) and can be stopped from another thread with
:meth:`Trainer.stop`.

Every ``log_every`` steps the metrics dict
``{"step", "loss", "ess", "acceptance", "lr", "skipped", "time"}`` is appended to
``trainer.history`` and passed to each callback. ``ess`` and ``acceptance`` there are
measured on the training batch and are biased high for small batches; quote figures
measured on a fresh batch of at least 4096 samples (:func:`lqft_lab.train.evaluate`, and
see :mod:`lqft_lab.analysis.ess`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from .. import checks
from ..analysis.ess import ess as _ess
from ..samplers.flow_mcmc import independence_metropolis
from .cuda_graph import GraphedStep
from .score import _score_step

__all__ = ["TrainConfig", "Trainer", "GRADIENTS"]

#: The gradient estimators of :class:`TrainConfig` (see the module docstring).
GRADIENTS = ("reparameterization", "score")

log = logging.getLogger(__name__)

Callback = Callable[["Trainer", dict], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; defaults are the full-mode run of notebook 01.

    Attributes:
        n_steps: optimisation steps (one fresh batch each).
        batch_size: samples per step (64 in arXiv:2101.08176).
        lr: Adam learning rate.
        lr_schedule: ``None`` (constant) or ``"cosine"`` (decay to ``lr_min_factor * lr``).
        lr_min_factor: final learning rate of the cosine schedule, relative to ``lr``.
        grad_clip: maximum gradient norm, or ``None`` for no clipping.
        seed: seeds the sampling generator of the training batches.
        log_every: steps between metric records and callbacks.
        cuda_graph: capture the whole training step (sampling, loss, backward, clipping,
            Adam and the NaN guard) as one CUDA graph and replay it, on a GPU. Small
            batches are launch-bound there: a step of the tutorial's flow is a few hundred
            tiny kernels, and one replay costs about one launch. ``None`` (default) uses a
            graph whenever the model is on CUDA, and a flow that cannot be captured (one
            that asks the host mid-step, such as the SU(N ≥ 3) flows' eigendecompositions)
            falls back to ordinary steps with a warning; ``True`` raises instead;
            ``False`` never captures. Ignored on the CPU. The score estimator is never
            captured (its reverse pass checks the drawn fields on the host): ``None``
            then means ordinary steps, and ``True`` is refused.
        gradient: ``"reparameterization"`` (autograd through the flow and the action) or
            ``"score"`` (:func:`~lqft_lab.train.score_surrogate`: ``x`` drawn without
            gradient, ``∇ log q_w(x)`` through the model's ``log_prob``, the action never
            differentiated; needs ``batch_size >= 2`` for its leave-one-out baseline).

    Raises:
        ValueError: at construction, naming the field, for any field of the wrong kind or
            out of range: ``n_steps``, ``batch_size``, ``log_every`` integers ``>= 1``;
            ``lr`` a finite real ``> 0``; ``lr_schedule`` ``None`` or ``"cosine"``;
            ``lr_min_factor`` in ``(0, 1]``; ``grad_clip`` ``None`` or a finite real
            ``> 0``; ``seed`` an integer in ``[0, 2**63 - 1)``; ``cuda_graph`` ``None`` or a
            bool; ``gradient`` one of :data:`GRADIENTS`, and for ``"score"`` a
            ``batch_size >= 2`` and ``cuda_graph`` not ``True``. (Wrong kinds raise
            :class:`~lqft_lab.checks.ArgumentKindError`, a ``TypeError`` and a
            ``ValueError``, as every bad config always was.)
    """

    n_steps: int = 20_000
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str | None = "cosine"
    lr_min_factor: float = 0.01
    grad_clip: float | None = 100.0
    seed: int = 0
    log_every: int = 50
    cuda_graph: bool | None = None
    gradient: str = "reparameterization"

    def __post_init__(self):
        # Every field is checked and stored in its plain Python form (numpy integers become
        # int), so that to_dict() is JSON and checkpoints compare equal.
        def store(name, value):
            object.__setattr__(self, name, value)

        # Wrong kinds raise checks.ArgumentKindError, a ValueError too (as they always were).
        for name in ("n_steps", "batch_size", "log_every"):
            store(name, checks.integer(name, getattr(self, name), low=1))
        store("lr", checks.real("lr", self.lr, low=0, low_open=True))
        store(
            "lr_min_factor",
            checks.real("lr_min_factor", self.lr_min_factor, low=0, low_open=True, high=1),
        )
        if self.grad_clip is not None:
            store("grad_clip", checks.real("grad_clip", self.grad_clip, low=0, low_open=True))
        store("seed", checks.integer("seed", self.seed, low=0, high=2**63 - 2))
        checks.choice("lr_schedule", self.lr_schedule, (None, "cosine"))
        if self.cuda_graph is not None and not isinstance(self.cuda_graph, bool):
            raise ValueError(f"cuda_graph must be None, True or False, got {self.cuda_graph!r}")
        checks.choice("gradient", self.gradient, GRADIENTS)
        if self.gradient == "score":
            if self.batch_size < 2:
                raise ValueError(
                    "batch_size must be >= 2 for gradient='score' (its leave-one-out baseline "
                    f"needs another draw), got {self.batch_size}"
                )
            if self.cuda_graph is True:
                raise ValueError(
                    "cuda_graph=True cannot be honoured with gradient='score': the score step's "
                    "reverse pass checks the drawn fields on the host, which a CUDA graph cannot "
                    "capture; use cuda_graph=None or False"
                )

    def lr_at(self, step: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based) under the schedule.

        The cosine schedule in closed form, ``lr_min + (lr - lr_min)(1 + cos(π t/T))/2`` with
        ``t = min(step, n_steps)``: steps past ``n_steps`` (resumed training) stay at
        ``lr_min`` rather than climbing back up.
        """
        if self.lr_schedule is None:
            return self.lr
        lr_min = self.lr * self.lr_min_factor
        t = min(step, self.n_steps) / self.n_steps
        return lr_min + 0.5 * (self.lr - lr_min) * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> dict:
        return asdict(self)


def _check_model(model, action) -> None:
    """Refuse a ``model`` that is not a flow (a module with ``sample``) or an uncallable action.

    Raises:
        TypeError: naming ``model`` or ``action``.
    """
    if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "sample", None)):
        raise TypeError(
            f"model must be a flow (a torch.nn.Module with sample(n, generator=...)), got "
            f"{type(model).__name__}"
        )
    if not callable(action):
        raise TypeError(f"action must be callable, S(x) -> (B,), got {type(action).__name__}")


class Trainer:
    """Trains a :class:`~lqft_lab.flows.FlowModel` by minimising the shifted reverse KL.

    Args:
        model: the flow; trained where it lives (move it with ``model.to(device)`` first).
        action: callable ``S(x) -> (B,)``.
        config: hyper-parameters.
        callbacks: functions ``fn(trainer, metrics)`` called every ``log_every`` steps.

    Raises:
        TypeError: for a ``model`` that is not a flow module, an ``action`` or callback that
            is not callable, a ``config`` that is not a :class:`TrainConfig`, or (with
            ``config.gradient == "score"``) a model without ``log_prob(x)``.
        ValueError: for a model without parameters.

    Example:
        >>> trainer = Trainer(build_real_nvp(L=8), Phi4Action(-4, 8), TrainConfig(n_steps=500))
        >>> trainer.add_callback(lambda t, m: print(m["step"], m["ess"]))
        >>> history = trainer.train(progress=True)
    """

    def __init__(self, model, action, config: TrainConfig | None = None, callbacks=()):
        _check_model(model, action)
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
        try:
            callbacks = list(callbacks)
        except TypeError:
            raise TypeError(
                f"callbacks must be a sequence of functions, got {type(callbacks).__name__}"
            ) from None
        if not all(callable(fn) for fn in callbacks):
            raise TypeError(f"callbacks must be functions fn(trainer, metrics), got {callbacks!r}")
        if next(model.parameters(), None) is None:
            raise ValueError("model has no parameters to train")
        config = config or TrainConfig()
        if config.gradient == "score" and not callable(getattr(model, "log_prob", None)):
            raise TypeError(
                f"model must have log_prob(x) for gradient='score' (the reverse pass at fixed "
                f"x), got {type(model).__name__}"
            )
        self.model = model
        self.action = action
        self.config = config
        self.callbacks: list[Callback] = callbacks
        self.history: list[dict] = []
        self.step = 0
        self._skipped_logged = 0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._elapsed = 0.0
        param = next(model.parameters())
        self._skipped = torch.zeros((), dtype=torch.long, device=param.device)
        # capturable keeps Adam's step counter on the GPU, so a skipped step can be undone
        # there (see _step_or_skip) without asking the host, and lets the step be captured
        # in a CUDA graph; the learning rate is then a device tensor that the schedule
        # refills, so a captured step reads the current value. On the CPU the fused kernel
        # is several times faster than the per-tensor loop for a flow's many small tensors.
        on_cuda = param.is_cuda
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=torch.tensor(self.config.lr, device=param.device) if on_cuda else self.config.lr,
            capturable=on_cuda,
            fused=True if param.device.type == "cpu" else None,
        )
        self.generator = torch.Generator(device=param.device).manual_seed(self.config.seed)
        # A separate CPU generator for the acceptance estimate, so logging never changes
        # the training batches.
        self._mh_generator = torch.Generator().manual_seed(self.config.seed + 1)
        self._lr = self.config.lr  # what the optimiser holds
        use_graph = (
            on_cuda and self.config.cuda_graph is not False and self.config.gradient != "score"
        )
        self._graph = GraphedStep() if use_graph else None

    def add_callback(self, fn: Callback) -> None:
        """Register ``fn(trainer, metrics)``, called every ``log_every`` steps.

        Raises:
            TypeError: if ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable as fn(trainer, metrics), got {fn!r}")
        self.callbacks.append(fn)

    @property
    def skipped(self) -> int:
        """Steps whose update was skipped for a non-finite loss or gradient (reads the device)."""
        return int(self._skipped)

    @property
    def running(self) -> bool:
        return self._running.is_set()

    @property
    def uses_cuda_graph(self) -> bool:
        """Whether training steps are replays of a captured CUDA graph (see ``TrainConfig``)."""
        return self._graph is not None and self._graph.graph is not None

    def stop(self) -> None:
        """Ask :meth:`train` to return after the current step (safe from any thread).

        The request holds until a :meth:`train` call has honoured it: a stop that arrives
        while another thread is still entering :meth:`train` is not lost (and one made while
        idle ends the next call at once).
        """
        self._stop.set()

    def train(self, n_steps: int | None = None, progress: bool = False) -> list[dict]:
        """Run ``n_steps`` more steps (default: until ``config.n_steps`` in total).

        Returns:
            ``self.history``, the list of logged metric dicts.

        Raises:
            TypeError, ValueError: for an ``n_steps`` that is not an integer ``>= 0``.
        """
        if n_steps is not None:
            n_steps = checks.integer("n_steps", n_steps, low=0)
        target = self.config.n_steps if n_steps is None else self.step + n_steps
        self._running.set()
        bar = tqdm(total=target - self.step, disable=not progress, desc="training", leave=False)
        t0 = time.perf_counter() - self._elapsed
        try:
            self.model.train()
            while self.step < target and not self._stop.is_set():
                logw = self._train_step()
                self.step += 1
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == target:
                    self._elapsed = time.perf_counter() - t0
                    metrics = self._metrics(logw)
                    bar.set_postfix(loss=f"{metrics['loss']:.2f}", ess=f"{metrics['ess']:.2f}")
                    self.history.append(metrics)
                    for fn in self.callbacks:
                        fn(self, metrics)
        finally:
            self._elapsed = time.perf_counter() - t0
            bar.close()
            self.model.eval()
            self._stop.clear()  # the request is honoured: the next train() runs normally
            self._running.clear()
        return self.history

    def _train_step(self) -> torch.Tensor:
        """One optimisation step; returns the batch's detached ``logw = logp - logq``."""
        self._set_lr(self.config.lr_at(self.step))
        if self._graph is not None:
            return self._graph.step(self)
        return self._eager_step()

    def _loss(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """A fresh batch's ``(objective, logw)``: the objective's gradient is the configured
        estimate of ``∇ KL`` (for ``"score"`` a surrogate whose value is not the KL; ``None``
        when the batch holds a non-finite field); ``logw = logp - logq`` is detached."""
        batch = self.config.batch_size
        if self.config.gradient == "score":
            return _score_step(self.model, self.action, batch, self.generator)
        x, logq = self.model.sample(batch, generator=self.generator)  # x = f_w(z)
        logp = -self.action(x)
        return (logq - logp).mean(), (logp - logq).detach()

    def _eager_step(self) -> torch.Tensor:
        """The step itself, op by op (what a CUDA graph captures)."""
        loss, logw = self._loss()
        if loss is None:  # the score step found a non-finite field: skip, as for a NaN loss
            self._skipped += 1
            return logw
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self._step_or_skip(torch.isfinite(loss) & torch.isfinite(grad_norm))
        return logw

    def _set_lr(self, lr: float) -> None:
        if lr == self._lr:  # a constant schedule writes once, not a kernel per step
            return
        self._lr = lr
        for group in self.optimizer.param_groups:
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(lr)  # queued on the device, no host round trip
            else:
                group["lr"] = lr

    @torch.no_grad()
    def _step_or_skip(self, ok: torch.Tensor) -> None:
        """Adam step if ``ok`` (a bool tensor), else leave weights and Adam's state untouched.

        On the CPU the decision is taken on the host, which costs nothing there. On a GPU,
        deciding on the host would stop it every step. Instead the step is always taken on
        finite (zeroed) gradients and then undone where ``ok`` is false, by selecting the
        old parameters and optimiser state: a skipped step changes nothing, moments and step
        count included. The copies cost one model's worth of memory (13k numbers for the
        tutorial's flow) and a few hundred small kernels, which is why the CPU does not
        take this path.
        """
        if not ok.is_cuda:
            if bool(ok):
                self.optimizer.step()
            else:
                self._skipped += 1
            return
        params = [p for p in self.model.parameters() if p.grad is not None]
        for p in params:
            p.grad = torch.where(ok, p.grad, torch.zeros_like(p.grad))  # no NaN into Adam
        state = [self.optimizer.state[p] for p in params]
        old_params = [p.detach().clone() for p in params]
        old_state = [{k: v.clone() for k, v in st.items() if torch.is_tensor(v)} for st in state]
        self.optimizer.step()
        for p, old in zip(params, old_params, strict=True):
            p.copy_(torch.where(ok, p, old))
        for st, old in zip(state, old_state, strict=True):
            for key, value in old.items():
                st[key].copy_(torch.where(ok.to(value.device), st[key], value))
        self._skipped += (~ok).long()

    def _metrics(self, logw: torch.Tensor) -> dict:
        skipped = self.skipped  # logging is the one place that reads the device
        if skipped > self._skipped_logged:
            log.warning(
                "%d step(s) with a non-finite loss or gradient skipped by step %d (%d in all)",
                skipped - self._skipped_logged,
                self.step,
                skipped,
            )
            self._skipped_logged = skipped
        logw = logw.double().cpu()
        finite = torch.isfinite(logw)
        if finite.all():
            _, accepted = independence_metropolis(logw, torch.zeros_like(logw), self._mh_generator)
            acceptance = accepted[1:].double().mean().item()
            ess = _ess(logw)
        else:
            acceptance, ess = float("nan"), float("nan")
        return {
            "step": self.step,
            "loss": (-logw).mean().item(),
            "ess": ess,
            "acceptance": acceptance,
            "lr": self.config.lr_at(self.step),  # that of the next step
            "skipped": skipped,
            "time": self._elapsed,
        }
