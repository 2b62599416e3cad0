"""Reverse-KL self-training of a flow against an action, with callbacks.

The loss is the shifted reverse Kullback–Leibler divergence (arXiv:2101.08176 eq. (19))

    L(q) = E_{x~q}[ log q(x) + S(x) ] = KL(q || p) - log Z,

estimated on a fresh batch from the model every step; only samples of the model are
needed, never samples of ``p``. Training reports through callbacks (dashboards subscribe;
the trainer never draws) and can be stopped from another thread with :meth:`Trainer.stop`.

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

from ..analysis.ess import ess as _ess
from ..samplers.flow_mcmc import independence_metropolis
from .cuda_graph import GraphedStep

__all__ = ["TrainConfig", "Trainer"]

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
            ``False`` never captures. Ignored on the CPU.
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

    def __post_init__(self):
        for name in ("n_steps", "batch_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.lr_schedule not in (None, "cosine"):
            raise ValueError(f"lr_schedule must be None or 'cosine', got {self.lr_schedule!r}")
        if not 0 < self.lr_min_factor <= 1:
            raise ValueError(f"lr_min_factor must be in (0, 1], got {self.lr_min_factor}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.cuda_graph not in (None, True, False):
            raise ValueError(f"cuda_graph must be None, True or False, got {self.cuda_graph!r}")

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


class Trainer:
    """Trains a :class:`~lqft_lab.flows.FlowModel` by minimising the shifted reverse KL.

    Args:
        model: the flow; trained where it lives (move it with ``model.to(device)`` first).
        action: callable ``S(x) -> (B,)``.
        config: hyper-parameters.
        callbacks: functions ``fn(trainer, metrics)`` called every ``log_every`` steps.

    Example:
        >>> trainer = Trainer(build_real_nvp(L=8), Phi4Action(-4, 8), TrainConfig(n_steps=500))
        >>> trainer.add_callback(lambda t, m: print(m["step"], m["ess"]))
        >>> history = trainer.train(progress=True)
    """

    def __init__(self, model, action, config: TrainConfig | None = None, callbacks=()):
        self.model = model
        self.action = action
        self.config = config or TrainConfig()
        self.callbacks: list[Callback] = list(callbacks)
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
        use_graph = on_cuda and self.config.cuda_graph is not False
        self._graph = GraphedStep() if use_graph else None

    def add_callback(self, fn: Callback) -> None:
        """Register ``fn(trainer, metrics)``, called every ``log_every`` steps."""
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
        """
        target = self.config.n_steps if n_steps is None else self.step + int(n_steps)
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

    def _eager_step(self) -> torch.Tensor:
        """The step itself, op by op (what a CUDA graph captures)."""
        x, logq = self.model.sample(self.config.batch_size, generator=self.generator)
        logp = -self.action(x)
        loss = (logq - logp).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self._step_or_skip(torch.isfinite(loss) & torch.isfinite(grad_norm))
        return (logp - logq).detach()

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
